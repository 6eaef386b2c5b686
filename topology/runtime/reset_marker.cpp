#include "topology/runtime/reset_marker.h"

#include <librdkafka/rdkafka.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "topology/kafka/kafka_client.h"

namespace cm::topology {

using state::Result;
using state::Status;

namespace {

using PartitionOffsets = std::map<std::string, std::map<int32_t, int64_t>>;

std::optional<int64_t> Find(const PartitionOffsets& offsets, const std::string& topic,
                            int32_t partition) {
  auto t = offsets.find(topic);
  if (t == offsets.end()) return std::nullopt;
  auto p = t->second.find(partition);
  if (p == t->second.end()) return std::nullopt;
  return p->second;
}

nlohmann::json ToJson(const PartitionOffsets& offsets) {
  nlohmann::json topics = nlohmann::json::object();
  for (const auto& [topic, parts] : offsets) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [p, offset] : parts) j[std::to_string(p)] = offset;
    topics[topic] = std::move(j);
  }
  return topics;
}

// Throws std::invalid_argument on a malformed partition number or offset (an offset must be a
// JSON integer: converting a float such as 1e50 to int64_t is undefined behaviour).
void FromJson(const nlohmann::json& topics, PartitionOffsets& out) {
  for (const auto& [topic, parts] : topics.items()) {
    if (!parts.is_object())
      throw std::invalid_argument("partitions of " + topic + " are not an object");
    for (const auto& [p, offset] : parts.items()) {
      int32_t partition = -1;
      auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), partition);
      if (ec != std::errc() || end != p.data() + p.size() || partition < 0)
        throw std::invalid_argument("partition '" + p + "' of " + topic + " is not a number");
      if (!offset.is_number_integer())
        throw std::invalid_argument("offset of " + topic + "/" + p + " is not an integer");
      out[topic][partition] = offset.get<int64_t>();
    }
  }
}

}  // namespace

std::optional<int64_t> ResetMarker::Offset(const std::string& topic, int32_t partition) const {
  return Find(offsets, topic, partition);
}

std::optional<int64_t> ResetMarker::Published(const std::string& topic, int32_t partition) const {
  return Find(published, topic, partition);
}

std::string ResetMarker::Encode() const {
  return nlohmann::json{{"resetId", id},
                        {"createdMs", created_ms},
                        {"from", from},
                        {"offsets", ToJson(offsets)},
                        {"published", ToJson(published)}}
      .dump();
}

Result<ResetMarker> ResetMarker::Decode(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("resetId") || !j["resetId"].is_string() ||
      !j.contains("offsets") || !j["offsets"].is_object()) {
    return Status::Corruption("unreadable reset marker: " + std::string(text.substr(0, 200)));
  }
  ResetMarker m;
  m.id = j["resetId"].get<std::string>();
  // Optional fields of the wrong type are refused like the rest, never thrown or converted.
  if (j.contains("createdMs") && !j["createdMs"].is_number_integer())
    return Status::Corruption("unreadable reset marker: createdMs is not an integer");
  if (j.contains("from") && !j["from"].is_string())
    return Status::Corruption("unreadable reset marker: from is not a string");
  m.created_ms = j.value("createdMs", int64_t{0});
  m.from = j.value("from", "");
  try {
    FromJson(j["offsets"], m.offsets);
    if (j.contains("published") && j["published"].is_object())
      FromJson(j["published"], m.published);
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("unreadable reset marker offsets: ") + e.what());
  }
  return m;
}

Result<std::optional<ResetMarker>> ReadLatestReset(rd_kafka_t* consumer, const std::string& topic) {
  int64_t low = 0, high = 0;
  rd_kafka_resp_err_t err =
      rd_kafka_query_watermark_offsets(consumer, topic.c_str(), 0, &low, &high, 10000);
  // An application that never ran under this version has no resets topic: never reset.
  if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
    return std::optional<ResetMarker>();
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::Unavailable("cannot read offsets of " + topic + ": " + rd_kafka_err2str(err));
  }
  if (high <= low) return std::optional<ResetMarker>();
  std::optional<std::string> last;
  auto s = ReadPartition(consumer, topic, 0, high - 1, high, [&](const rd_kafka_message_t& m) {
    if (m.payload != nullptr) last.emplace(static_cast<const char*>(m.payload), m.len);
    return true;
  });
  if (!s.ok()) return s;
  if (!last) return Status::Corruption("the last record of " + topic + " is empty");
  auto marker = ResetMarker::Decode(*last);
  if (!marker.ok()) return marker.status();
  return std::optional<ResetMarker>(std::move(marker).value());
}

}  // namespace cm::topology
