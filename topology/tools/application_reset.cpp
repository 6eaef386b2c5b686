#include "topology/tools/application_reset.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "state/task_state.h"
#include "topology/common/log.h"
#include "topology/common/wall_clock.h"
#include "topology/kafka/kafka_client.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::topology {

using state::Result;
using state::Status;

namespace {

std::string NewResetId() {
  std::random_device random;
  std::ostringstream id;
  id << WallClockMs() << '-' << std::hex << random() << random();
  return id.str();
}

}  // namespace

const char* PartitionRoleName(PartitionRole role) {
  switch (role) {
    case PartitionRole::kInput:
      return "input";
    case PartitionRole::kRepartition:
      return "repartition";
    case PartitionRole::kChangelog:
      return "changelog";
    case PartitionRole::kCommits:
      return "commits";
  }
  return "?";
}

std::string ResetPlan::Describe() const {
  std::ostringstream out;
  out << "reset " << marker.id << " from " << marker.from << '\n';
  for (const auto& m : moves) {
    out << "  " << PartitionRoleName(m.role) << ' ' << m.topic << '[' << m.partition << "]: ";
    if (m.role == PartitionRole::kInput) {
      out << "group offset " << (m.current < 0 ? std::string("none") : std::to_string(m.current))
          << " -> " << m.target;
      if (auto published = marker.Published(m.topic, m.partition)) {
        out << " (outputs below " << *published << " were sent before and are not sent again)";
      }
      out << '\n';
    } else {
      out << "reads begin at " << m.current << " -> " << m.target << " (cleared)\n";
    }
  }
  if (directories.empty()) out << "  no local state to delete\n";
  for (const auto& d : directories) out << "  delete " << d << '\n';
  return out.str();
}

struct ApplicationReset::Clients {
  KafkaHandle
      consumer;  // group.id = the application: committed offsets are read and written with it
  KafkaHandle producer;
};

ApplicationReset::ApplicationReset(const Topology& topology, ResetOptions options,
                                   TopicAdmin& admin)
    : topology_(topology), options_(std::move(options)), admin_(admin) {}

ApplicationReset::~ApplicationReset() = default;

Status ApplicationReset::Connect() {
  if (clients_) return Status::OK();
  auto counts = admin_.PartitionCounts();
  if (!counts.ok()) return counts.status();
  partitions_ = std::move(counts).value();
  auto consumer = NewKafkaClient(RD_KAFKA_CONSUMER, options_.bootstrap_servers,
                                 {{"group.id", topology_.application_id()},
                                  {"enable.auto.commit", "false"},
                                  {"enable.partition.eof", "true"},
                                  {"isolation.level", "read_committed"}});
  if (!consumer.ok()) return consumer.status();
  auto producer = NewKafkaClient(RD_KAFKA_PRODUCER, options_.bootstrap_servers,
                                 {{"enable.idempotence", "true"}, {"linger.ms", "0"}});
  if (!producer.ok()) return producer.status();
  clients_ = std::make_unique<Clients>();
  clients_->consumer = std::move(consumer).value();
  clients_->producer = std::move(producer).value();
  if (rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(clients_->consumer.get()))
    return Status::Unavailable(std::string("poll_set_consumer: ") + rd_kafka_err2str(err));
  return Status::OK();
}

Status ApplicationReset::CheckStopped() {
  if (auto s = Connect(); !s.ok()) return s;
  rd_kafka_t* rk = clients_->consumer.get();
  const std::string& app = topology_.application_id();
  // A real cluster describes the group; the embedded broker does not implement the request.
  const rd_kafka_group_list* groups = nullptr;
  if (rd_kafka_list_groups(rk, app.c_str(), &groups, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::vector<std::string> members;
    for (int i = 0; i < groups->group_cnt; ++i) {
      const auto& g = groups->groups[i];
      for (int m = 0; m < g.member_cnt; ++m) members.push_back(g.members[m].client_id);
    }
    rd_kafka_group_list_destroy(groups);
    if (!members.empty()) {
      nlohmann::json j = members;
      return Status::Conflict("consumer group " + app + " has active members " + j.dump() +
                              ": stop every instance of the application first");
    }
  }
  const std::string topic = KafkaStreams::InstancesTopic(app);
  if (partitions_.count(topic) == 0) return Status::OK();
  int64_t low = 0, high = 0;
  if (auto s = QueryWatermarks(rk, topic, 0, low, high); !s.ok()) return s;
  struct Seen {
    int64_t at = 0;
    bool leaving = false;
  };
  std::map<std::string, Seen> last;
  auto s = ReadPartition(rk, topic, 0, low, high, [&](const rd_kafka_message_t& m) {
    if (m.payload == nullptr) return true;
    auto j = nlohmann::json::parse(std::string_view(static_cast<const char*>(m.payload), m.len),
                                   nullptr, false);
    if (j.is_object() && j.contains("instanceId") && j["instanceId"].is_string()) {
      last[j["instanceId"].get<std::string>()] = {rd_kafka_message_timestamp(&m, nullptr),
                                                  j.value("leaving", false)};
    }
    return true;
  });
  if (!s.ok()) return s;
  int64_t now = WallClockMs();
  for (const auto& [instance, seen] : last) {
    if (seen.leaving || now - seen.at > options_.liveness.count()) continue;
    return Status::Conflict("instance " + instance + " of " + app + " announced itself " +
                            std::to_string((now - seen.at) / 1000) + " s ago in " + topic +
                            ": stop every instance first (an instance that died counts as "
                            "running for " +
                            std::to_string(options_.liveness.count() / 1000) + " s)");
  }
  return Status::OK();
}

Result<int64_t> ApplicationReset::ScanForTime(const TopicPartition& tp, int64_t low, int64_t high,
                                              int64_t time_ms) {
  int64_t found = high;
  auto s = ReadPartition(clients_->consumer.get(), tp.first, tp.second, low, high,
                         [&](const rd_kafka_message_t& m) {
                           if (rd_kafka_message_timestamp(&m, nullptr) < time_ms) return true;
                           found = m.offset;
                           return false;
                         });
  if (!s.ok()) return s;
  return found;
}

Result<std::map<TopicPartition, int64_t>> ApplicationReset::InputOffsets(
    std::optional<int64_t> time_ms, bool end) {
  if (auto s = Connect(); !s.ok()) return s;
  rd_kafka_t* rk = clients_->consumer.get();
  const auto internal = topology_.InternalTopics();
  std::map<TopicPartition, int64_t> out;
  std::map<TopicPartition, std::pair<int64_t, int64_t>> marks;
  PartitionList query(rd_kafka_topic_partition_list_new(16));
  for (const auto& sub : topology_.subtopologies()) {
    for (const auto& topic : sub.source_topics) {
      if (std::find(internal.begin(), internal.end(), topic) != internal.end()) continue;
      auto count = partitions_.find(topic);
      if (count == partitions_.end()) continue;  // never created: nothing to move
      for (int32_t p = 0; p < count->second; ++p) {
        int64_t low = 0, high = 0;
        if (auto s = QueryWatermarks(rk, topic, p, low, high); !s.ok()) return s;
        marks[{topic, p}] = {low, high};
        out[{topic, p}] = end ? high : low;
        if (time_ms)
          rd_kafka_topic_partition_list_add(query.get(), topic.c_str(), p)->offset = *time_ms;
      }
    }
  }
  if (!time_ms || query->cnt == 0) return out;
  if (rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, query.get(), 10000)) {
    return Status::Unavailable(std::string("offsets_for_times failed: ") + rd_kafka_err2str(err));
  }
  for (int i = 0; i < query->cnt; ++i) {
    const auto& e = query->elems[i];
    TopicPartition tp{e.topic, e.partition};
    auto [low, high] = marks[tp];
    if (e.err == RD_KAFKA_RESP_ERR_NO_ERROR && e.offset >= 0) {
      out[tp] = e.offset;
    } else if (options_.embedded_broker) {
      // librdkafka's mock answers every lookup by time with -1: find the offset by reading.
      auto found = ScanForTime(tp, low, high, *time_ms);
      if (!found.ok()) return found.status();
      out[tp] = *found;
    } else {
      out[tp] = high;  // no record at or after the time
    }
  }
  return out;
}

Result<std::map<TopicPartition, int64_t>> ApplicationReset::InputOffsetsAt(int64_t time_ms) {
  return InputOffsets(time_ms, false);
}

Result<std::map<TopicPartition, int64_t>> ApplicationReset::InputEndOffsets() {
  return InputOffsets(std::nullopt, true);
}

Result<ResetPlan> ApplicationReset::Plan() {
  if (auto s = Connect(); !s.ok()) return s;
  rd_kafka_t* rk = clients_->consumer.get();
  const std::string& app = topology_.application_id();
  ResetPlan plan;
  plan.marker.id = NewResetId();
  plan.marker.created_ms = WallClockMs();
  plan.marker.from = options_.from_text;
  std::optional<ResetMarker> previous;
  if (partitions_.count(Topology::ResetsTopic(app)) != 0) {
    auto latest = ReadLatestReset(rk, Topology::ResetsTopic(app));
    if (!latest.ok()) return latest.status();
    previous = std::move(latest).value();
  }

  auto inputs = InputOffsets(options_.from_ms, false);
  if (!inputs.ok()) return inputs.status();
  PartitionList committed(rd_kafka_topic_partition_list_new(16));
  for (const auto& [tp, offset] : *inputs) {
    rd_kafka_topic_partition_list_add(committed.get(), tp.first.c_str(), tp.second);
  }
  if (committed->cnt > 0) {
    if (rd_kafka_resp_err_t err = rd_kafka_committed(rk, committed.get(), 10000)) {
      return Status::Unavailable(std::string("cannot read the group's offsets: ") +
                                 rd_kafka_err2str(err));
    }
  }
  for (const auto& [tp, offset] : *inputs) {
    auto* c = rd_kafka_topic_partition_list_find(committed.get(), tp.first.c_str(), tp.second);
    const int64_t current = c != nullptr && c->offset >= 0 ? c->offset : -1;
    plan.moves.push_back({tp.first, tp.second, PartitionRole::kInput, current, offset});
    // A reset of a reset that had not caught up yet keeps the older, further position.
    int64_t published = current;
    if (previous)
      published = std::max(published, previous->Published(tp.first, tp.second).value_or(-1));
    if (published > offset) plan.marker.published[tp.first][tp.second] = published;
  }

  std::vector<std::pair<std::string, PartitionRole>> internal;
  for (const auto& topic : topology_.InternalTopics())
    internal.emplace_back(topic, PartitionRole::kRepartition);
  for (const auto& sub : topology_.subtopologies()) {
    for (const auto& store : sub.stores) {
      if (store.logged)
        internal.emplace_back(Topology::ChangelogTopic(app, store.name), PartitionRole::kChangelog);
    }
    internal.emplace_back(Topology::CommitTopic(app, sub.id), PartitionRole::kCommits);
  }
  for (const auto& [topic, role] : internal) {
    auto count = partitions_.find(topic);
    if (count == partitions_.end()) continue;
    for (int32_t p = 0; p < count->second; ++p) {
      int64_t low = 0, high = 0;
      if (auto s = QueryWatermarks(rk, topic, p, low, high); !s.ok()) return s;
      int64_t current = low;
      if (previous) current = std::max(low, previous->Offset(topic, p).value_or(low));
      plan.moves.push_back({topic, p, role, current, high});
    }
  }
  for (const auto& m : plan.moves) plan.marker.offsets[m.topic][m.partition] = m.target;

  std::filesystem::path dir = std::filesystem::path(options_.state_dir) / app;
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) {
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.is_directory()) plan.directories.push_back(entry.path().string());
    }
    std::sort(plan.directories.begin(), plan.directories.end());
    plan.directories.push_back(dir.string());
  }
  return plan;
}

Status ApplicationReset::Apply(const ResetPlan& plan) {
  if (auto s = Connect(); !s.ok()) return s;
  const std::string& app = topology_.application_id();
  const std::string topic = Topology::ResetsTopic(app);
  if (auto s = admin_.EnsureTopics({{topic, 1}}); !s.ok()) return s;
  // The marker goes first: once it is acknowledged, every restore honours it, whatever else
  // below fails (a deletion can be retried by running the reset again).
  std::string value = plan.marker.Encode();
  rd_kafka_t* producer = clients_->producer.get();
  rd_kafka_resp_err_t err =
      rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_KEY(const_cast<char*>(app.data()), app.size()),
                        RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = rd_kafka_flush(producer, 30000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::Unavailable("cannot write the reset marker to " + topic + ": " +
                               rd_kafka_err2str(err));
  }
  auto latest = ReadLatestReset(clients_->consumer.get(), topic);
  if (!latest.ok()) return latest.status();
  if (!*latest || (*latest)->id != plan.marker.id) {
    return Status::Unavailable("the reset marker was not acknowledged by " + topic);
  }
  // Group offsets follow the marker, so ordinary tools show the new positions and lag.
  PartitionList offsets(rd_kafka_topic_partition_list_new(16));
  for (const auto& m : plan.moves) {
    if (m.role == PartitionRole::kInput || m.role == PartitionRole::kRepartition) {
      rd_kafka_topic_partition_list_add(offsets.get(), m.topic.c_str(), m.partition)->offset =
          m.target;
    }
  }
  if (offsets->cnt > 0) {
    if (rd_kafka_resp_err_t e = rd_kafka_commit(clients_->consumer.get(), offsets.get(), 0)) {
      // The marker decides where tasks start; group offsets only inform monitoring.
      Log(LogLevel::kWarn, "reset_group_offsets_failed",
          {{"applicationId", app}, {"error", rd_kafka_err2str(e)}});
    }
  }
  for (const auto& dir : plan.directories) {
    if (dir == plan.directories.back()) break;  // the application directory, once emptied
    if (auto s = state::TaskState::Destroy(dir); !s.ok()) return s;
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  if (!plan.directories.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(plan.directories.back(), ec);
    if (ec)
      return Status::IOError("cannot delete " + plan.directories.back() + ": " + ec.message());
  }
  Log(LogLevel::kInfo, "application_reset",
      {{"applicationId", app},
       {"resetId", plan.marker.id},
       {"from", plan.marker.from},
       {"partitions", plan.moves.size()},
       {"deleted", plan.directories}});
  return Status::OK();
}

}  // namespace cm::topology
