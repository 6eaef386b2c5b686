#include "topology/runtime/global_stream_thread.h"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <utility>

#include "topology/common/log.h"
#include "topology/common/thread_name.h"
#include "topology/kafka/kafka_client.h"

namespace cm::topology {

using state::Status;

namespace {

std::string CheckpointKey(const std::string& topic, int32_t partition) {
  return "offset:" + topic + ":" + std::to_string(partition);
}

}  // namespace

GlobalStreamThread::GlobalStreamThread(const Topology& topology, const StreamsConfig& config,
                                       std::map<std::string, int32_t> partitions,
                                       state::StateResources& resources)
    : topology_(topology),
      config_(config),
      partitions_(std::move(partitions)),
      resources_(resources) {}

GlobalStreamThread::~GlobalStreamThread() { Stop(); }

Status GlobalStreamThread::Start() {
  state::TaskStateOptions so;
  so.directory = config_.state_dir + "/" + config_.application_id + "/global";
  for (const auto& g : topology_.global_stores())
    so.stores.push_back({g.name, state::StoreType::kKeyValue, {}, false});
  so.resources = &resources_;
  auto opened = state::TaskState::Open(so);
  if (!opened.ok()) return opened.status();
  state_ = std::move(opened).value();
  thread_ = std::thread([this] {
    NameCurrentThread("cm-global");
    Run();
  });
  return Status::OK();
}

void GlobalStreamThread::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string GlobalStreamThread::Failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

void GlobalStreamThread::Fail(const std::string& error) {
  Log(LogLevel::kError, "global_stream_thread_failed", {{"error", error}});
  std::lock_guard<std::mutex> lock(mu_);
  failure_ = error;
}

state::ReadOnlyKeyValueStore* GlobalStreamThread::Store(std::string_view name) const {
  return state_ ? state_->committed_key_value_store(name) : nullptr;
}

nlohmann::json GlobalStreamThread::Report() const {
  nlohmann::json stores = nlohmann::json::array();
  for (const auto& g : topology_.global_stores())
    stores.push_back({{"store", g.name}, {"topic", g.topic}});
  return {{"restored", Restored()},
          {"recordsApplied", applied_.load()},
          {"error", Failure()},
          {"stores", std::move(stores)}};
}

void GlobalStreamThread::Run() {
  try {
    if (auto s = RestoreAndFollow(); !s.ok()) Fail(s.ToString());
  } catch (const std::exception& e) {
    Fail(e.what());  // a store that cannot write (StoreFailure)
  }
}

Status GlobalStreamThread::Apply(std::map<std::string, std::vector<state::StoreChange>>& changes,
                                 const std::map<std::pair<std::string, int32_t>, int64_t>& next) {
  for (const auto& g : topology_.global_stores()) {
    state::CheckpointEntries checkpoint;
    for (const auto& [tp, offset] : next)
      if (tp.first == g.topic)
        checkpoint[CheckpointKey(tp.first, tp.second)] = std::to_string(offset);
    auto& list = changes[g.name];
    if (list.empty() && checkpoint.empty()) continue;
    const size_t count = list.size();
    if (auto s = state_->ApplyRestored(g.name, std::exchange(list, {}), std::move(checkpoint));
        !s.ok()) {
      return s;
    }
    applied_ += count;
  }
  return Status::OK();
}

Status GlobalStreamThread::RestoreAndFollow() {
  auto client = NewKafkaClient(RD_KAFKA_CONSUMER, config_.bootstrap_servers,
                               {{"group.id", config_.application_id + "-global"},
                                {"enable.auto.commit", "false"},
                                {"auto.offset.reset", "earliest"},
                                {"fetch.wait.max.ms", "50"}});
  if (!client.ok()) return client.status();
  rd_kafka_t* consumer = client->get();
  if (rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(consumer))
    return Status::Unavailable(std::string("global consumer: ") + rd_kafka_err2str(err));

  // Where each partition goes on, and where the restore ends (the end offsets at start).
  std::map<std::pair<std::string, int32_t>, int64_t> next;
  std::map<std::pair<std::string, int32_t>, int64_t> restore_end;
  std::map<std::string, std::string> store_of_topic;
  for (const auto& g : topology_.global_stores()) {
    store_of_topic[g.topic] = g.name;
    std::map<int32_t, std::pair<int64_t, int64_t>> marks;  // partition -> (low, high)
    bool rebuild = false;
    for (int32_t p = 0; p < partitions_.at(g.topic); ++p) {
      int64_t low = 0, high = 0;
      if (auto s = QueryWatermarks(consumer, g.topic, p, low, high); !s.ok()) return s;
      marks[p] = {low, high};
      int64_t from = low;
      if (auto saved = state_->GetCheckpoint(CheckpointKey(g.topic, p))) from = std::stoll(*saved);
      // Records between the checkpoint and the log start are gone, or the topic is younger
      // than the store (a new broker): the store may hold keys the topic no longer has.
      if (from < low || from > high) rebuild = true;
      next[{g.topic, p}] = from;
    }
    if (rebuild) {
      Log(LogLevel::kWarn, "global_store_rebuilt",
          {{"store", g.name},
           {"topic", g.topic},
           {"reason", "its checkpoint is outside the topic's offsets"}});
      std::vector<state::StoreChange> wipe;
      state_->committed_key_value_store(g.name)->Range("", "", [&](std::string_view k, auto) {
        wipe.push_back({std::string(k), std::nullopt});
        return true;
      });
      state::CheckpointEntries reset;
      for (const auto& [p, m] : marks) {
        next[{g.topic, p}] = m.first;
        reset[CheckpointKey(g.topic, p)] = std::to_string(m.first);
      }
      if (auto s = state_->ApplyRestored(g.name, std::move(wipe), std::move(reset)); !s.ok())
        return s;
    }
    for (const auto& [p, m] : marks)
      if (m.second > next[{g.topic, p}]) restore_end[{g.topic, p}] = m.second;
  }
  PartitionList list = NewPartitionList();
  for (const auto& [tp, from] : next)
    rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset = from;
  if (rd_kafka_resp_err_t err = rd_kafka_assign(consumer, list.get()))
    return Status::Unavailable(std::string("global consumer assign: ") + rd_kafka_err2str(err));

  auto started = std::chrono::steady_clock::now();
  if (restore_end.empty()) restored_ = true;
  std::map<std::string, std::vector<state::StoreChange>> changes;
  while (!stop_) {
    size_t read = 0;
    for (rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100); m != nullptr;
         m = read < 10'000 ? rd_kafka_consumer_poll(consumer, 0) : nullptr) {
      std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> owned(
          m, rd_kafka_message_destroy);
      switch (m->err) {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
          break;
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
          continue;
        case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
        case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
          return Status::Corruption(std::string("global store topic read past deleted records: ") +
                                    rd_kafka_message_errstr(m));
        default:
          // Broker restarts and the like: librdkafka retries them itself.
          Log(LogLevel::kWarn, "global_store_read_error", {{"error", rd_kafka_message_errstr(m)}});
          continue;
      }
      ++read;
      std::string topic = rd_kafka_topic_name(m->rkt);
      auto it = store_of_topic.find(topic);
      if (it == store_of_topic.end() || m->key == nullptr) continue;
      state::StoreChange change;
      change.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) change.value.emplace(static_cast<const char*>(m->payload), m->len);
      changes[it->second].push_back(std::move(change));
      next[{topic, m->partition}] = m->offset + 1;
    }
    if (read > 0) {
      if (auto s = Apply(changes, next); !s.ok()) return s;
    }
    if (!restored_) {
      bool done = true;
      for (const auto& [tp, end] : restore_end) done = done && next.at(tp) >= end;
      if (done) {
        restored_ = true;
        Log(LogLevel::kInfo, "global_stores_restored",
            {{"records", applied_.load()},
             {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count()}});
      }
    }
  }
  rd_kafka_consumer_close(consumer);
  return Status::OK();
}

}  // namespace cm::topology
