#include "topology/runtime/kafka_streams.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "topology/common/log.h"
#include "topology/common/prometheus_text.h"
#include "topology/kafka/partitioner.h"

namespace cm::topology {

using state::Status;

KafkaStreams::KafkaStreams(const Topology& topology, StreamsConfig config, TopicAdmin& admin)
    : topology_(topology), config_(std::move(config)), admin_(admin) {}

KafkaStreams::~KafkaStreams() { Stop(); }

Status KafkaStreams::EnsureTopics() {
  auto counts = admin_.PartitionCounts();
  if (!counts.ok()) return counts.status();
  const std::vector<std::string> repartition_topics = topology_.InternalTopics();
  std::set<std::string> internal(repartition_topics.begin(), repartition_topics.end());
  std::vector<TopicSpec> missing_external;
  for (const auto& sub : topology_.subtopologies()) {
    // A missing source is co-partitioned with the sub-topology's existing ones: it takes their
    // partition count (the default only when none exists yet).
    int32_t partitions = config_.default_partitions;
    for (const auto& topic : sub.source_topics) {
      if (internal.count(topic) == 0 && counts->count(topic) != 0) {
        partitions = counts->at(topic);
        break;
      }
    }
    for (const auto& topic : sub.source_topics) {
      if (internal.count(topic) == 0 && counts->count(topic) == 0) {
        missing_external.push_back({topic, partitions});
        (*counts)[topic] = partitions;
      }
    }
  }
  if (!missing_external.empty()) {
    if (auto s = admin_.EnsureTopics(missing_external); !s.ok()) return s;
  }
  // Repartition topics take the largest partition count among external sources.
  int32_t widest = config_.default_partitions;
  bool any_external = false;
  for (const auto& sub : topology_.subtopologies()) {
    for (const auto& topic : sub.source_topics) {
      if (internal.count(topic) != 0) continue;
      widest = any_external ? std::max(widest, counts->at(topic)) : counts->at(topic);
      any_external = true;
    }
  }
  std::vector<TopicSpec> wanted;
  for (const auto& topic : internal) {
    if (counts->count(topic) == 0) {
      wanted.push_back({topic, widest});
      (*counts)[topic] = widest;
    }
  }
  const std::string& app = topology_.application_id();
  partitions_.clear();
  for (const auto& sub : topology_.subtopologies()) {
    int32_t partitions = counts->at(sub.source_topics.front());
    partitions_.push_back(partitions);
    for (const auto& topic : sub.source_topics) {
      if (counts->at(topic) != partitions) {
        return Status::InvalidArgument("sub-topology " + std::to_string(sub.id) +
                                       " reads co-partitioned topics with different partition "
                                       "counts: " +
                                       sub.source_topics.front() + " has " +
                                       std::to_string(partitions) + ", " + topic + " has " +
                                       std::to_string(counts->at(topic)));
      }
    }
    for (const auto& store : sub.stores) {
      if (store.logged) wanted.push_back({Topology::ChangelogTopic(app, store.name), partitions});
    }
    wanted.push_back({Topology::CommitTopic(app, sub.id), partitions});
    for (const auto& sink : sub.sink_topics) {
      std::string topic = internal.count(sink) != 0 ? sink : config_.output_topic_prefix + sink;
      if (counts->count(topic) == 0) wanted.push_back({topic, partitions});
    }
  }
  const std::string dlq = config_.output_topic_prefix + config_.dlq_topic;
  if (counts->count(dlq) == 0) wanted.push_back({dlq, config_.default_partitions});
  if (counts->count(InstancesTopic(app)) == 0) wanted.push_back({InstancesTopic(app), 1});
  if (counts->count(Topology::ResetsTopic(app)) == 0)
    wanted.push_back({Topology::ResetsTopic(app), 1});
  // A global store's topic is one partition when cmstream creates it: it is read whole anyway.
  global_partitions_.clear();
  for (const auto& g : topology_.global_stores()) {
    auto it = counts->find(g.topic);
    if (it == counts->end()) {
      wanted.push_back({g.topic, 1, true});
      global_partitions_[g.topic] = 1;
    } else {
      global_partitions_[g.topic] = it->second;
    }
  }
  return admin_.EnsureTopics(wanted);
}

Status KafkaStreams::Start() {
  if (auto s = EnsureTopics(); !s.ok()) return s;
  resources_ = std::make_unique<state::StateResources>(config_.rocksdb_memory_bytes);
  if (!topology_.global_stores().empty()) {
    global_thread_ =
        std::make_unique<GlobalStreamThread>(topology_, config_, global_partitions_, *resources_);
    if (auto s = global_thread_->Start(); !s.ok()) return s;
  }
  for (int i = 0; i < config_.threads; ++i) {
    try {
      threads_.push_back(
          std::make_unique<StreamThread>(topology_, config_, i, *resources_, commits_));
    } catch (const std::exception& e) {
      return Status::Unavailable(std::string("cannot start stream thread: ") + e.what());
    }
  }
  for (auto& t : threads_) t->Start();
  Log(LogLevel::kInfo, "streams_started",
      {{"applicationId", topology_.application_id()},
       {"instanceId", config_.instance_id},
       {"threads", config_.threads}});
  return Status::OK();
}

void KafkaStreams::Stop() {
  for (auto& t : threads_) t->Stop();
  threads_.clear();
  if (global_thread_) global_thread_->Stop();
}

TaskId KafkaStreams::TaskForKey(int subtopology, std::string_view key) const {
  return TaskId{subtopology,
                PartitionForKey(key, partitions_.at(static_cast<size_t>(subtopology)))};
}

Status KafkaStreams::Query(const TaskId& task,
                           const std::function<void(const ReadOnlyStores&)>& query) const {
  for (const auto& t : threads_) {
    if (t->Query(task, query)) return Status::OK();
  }
  return Status::NotFound("task " + task.ToString() + " does not run in this instance");
}

std::vector<std::string> KafkaStreams::RunningTasks() const {
  std::vector<std::string> out;
  for (const auto& t : Threads()) {
    for (const auto& task : t.tasks) {
      if (task.running) out.push_back(task.task);
    }
  }
  return out;
}

std::vector<ThreadStatus> KafkaStreams::Threads() const {
  std::vector<ThreadStatus> out;
  for (const auto& t : threads_) out.push_back(t->Status());
  return out;
}

bool KafkaStreams::Ready() const {
  if (threads_.empty() || !GlobalStoresRestored()) return false;
  for (const auto& t : Threads()) {
    if (!t.alive || !t.assigned) return false;  // not ready before joining the group
    for (const auto& task : t.tasks) {
      if (!task.running) return false;
    }
  }
  return true;
}

std::string KafkaStreams::Failure() const {
  if (global_thread_ && !global_thread_->Failure().empty())
    return "global stream thread: " + global_thread_->Failure();
  for (const auto& t : Threads()) {
    if (!t.alive) return "stream thread " + std::to_string(t.index) + ": " + t.error;
  }
  return "";
}

nlohmann::json KafkaStreams::ReadyReport() const {
  nlohmann::json threads = nlohmann::json::array();
  nlohmann::json restoring = nlohmann::json::array();
  for (const auto& t : Threads()) {
    nlohmann::json tasks = nlohmann::json::array();
    for (const auto& task : t.tasks) {
      nlohmann::json j = {{"task", task.task}, {"state", task.running ? "running" : "restoring"}};
      if (!task.running) {
        j["restoredRecords"] = task.restored_records;
        j["totalRecords"] = task.restore_total_records;
        restoring.push_back(j);
      }
      tasks.push_back(std::move(j));
    }
    threads.push_back(
        {{"thread", t.index}, {"alive", t.alive}, {"error", t.error}, {"tasks", tasks}});
  }
  // Loss does not make an instance unready (it has nothing more to wait for), but it is shown
  // where an operator looks first.
  nlohmann::json lost = nlohmann::json::array();
  for (const auto& t : Threads()) {
    for (const auto& [where, records] : t.records_lost)
      lost.push_back({{"topic", where.first}, {"partition", where.second}, {"records", records}});
  }
  nlohmann::json report = {
      {"ready", Ready()}, {"threads", threads}, {"restoring", restoring}, {"recordsLost", lost}};
  if (global_thread_) report["globalStores"] = global_thread_->Report();
  return report;
}

std::string KafkaStreams::RenderMetrics() const {
  PrometheusText out;
  auto threads = Threads();
  auto per_thread = [&](const char* name, const char* type, const char* help, auto field) {
    out.Family(name, type, help);
    for (const auto& t : threads) out.Sample(name, {{"thread", std::to_string(t.index)}}, t.*field);
  };
  auto per_task = [&](const char* name, const char* help, auto value) {
    out.Family(name, "gauge", help);
    for (const auto& t : threads)
      for (const auto& k : t.tasks) out.Sample(name, {{"task", k.task}}, value(k));
  };
  per_thread("cmstream_records_processed_total", "counter", "Records processed by stream threads.",
             &ThreadStatus::processed);
  per_thread("cmstream_task_failures_total", "counter",
             "Tasks failed by a state store that could not read or write; each fails its thread.",
             &ThreadStatus::task_failures);
  out.Family("cmstream_records_lost_total", "counter",
             "Input records the broker deleted before they were processed (an offset reset "
             "past them), per topic and partition.");
  for (const auto& t : threads) {
    for (const auto& [where, records] : t.records_lost) {
      out.Sample("cmstream_records_lost_total",
                 {{"topic", where.first}, {"partition", std::to_string(where.second)}}, records);
    }
  }
  per_thread("cmstream_records_produced_total", "counter",
             "Records produced (outputs, changelogs, commit records).", &ThreadStatus::produced);
  per_thread("cmstream_dlq_records_total", "counter",
             "Records sent to the dead-letter topic by current tasks.", &ThreadStatus::dlq);
  per_thread("cmstream_replayed_outputs_dropped_total", "counter",
             "Outputs of replayed records that were sent before the reset (cmstream replay).",
             &ThreadStatus::replayed_outputs_dropped);
  out.Family("cmstream_records_misrouted_total", "counter",
             "Source records found in a partition that does not own their key (produced with "
             "another partitioner than Kafka's murmur2), per topic: re-produced to the partition "
             "that owns the key, or skipped by a bounded run.");
  for (const auto& t : threads) {
    for (const auto& [action, counts] :
         {std::pair{"rerouted", &t.records_rerouted}, std::pair{"skipped", &t.misrouted_skipped}}) {
      for (const auto& [topic, records] : *counts) {
        out.Sample("cmstream_records_misrouted_total",
                   {{"topic", topic}, {"action", action}, {"thread", std::to_string(t.index)}},
                   records);
      }
    }
  }
  auto per_cache = [&](const char* name, const char* type, const char* help, auto value) {
    out.Family(name, type, help);
    for (const auto& t : threads)
      out.Sample(name, {{"thread", std::to_string(t.index)}}, value(t.cache));
  };
  using CacheStats = state::RecordCache::Stats;
  per_cache("cmstream_record_cache_hits_total", "counter",
            "Store point reads answered by the thread's record cache.",
            [](const CacheStats& c) { return c.hits; });
  per_cache("cmstream_record_cache_misses_total", "counter",
            "Store point reads the record cache sent on to RocksDB.",
            [](const CacheStats& c) { return c.misses; });
  per_cache("cmstream_record_cache_evictions_total", "counter",
            "Committed entries evicted from the record cache to stay in its budget.",
            [](const CacheStats& c) { return c.evictions; });
  per_cache("cmstream_record_cache_entries", "gauge", "Committed entries in the record cache.",
            [](const CacheStats& c) { return c.entries; });
  out.Family("cmstream_record_cache_bytes", "gauge",
             "Bytes charged to the record cache: committed entries (clean) and writes buffered "
             "for the next commit (buffered).");
  for (const auto& t : threads) {
    const std::string thread = std::to_string(t.index);
    out.Sample("cmstream_record_cache_bytes", {{"thread", thread}, {"kind", "clean"}},
               t.cache.clean_bytes);
    out.Sample("cmstream_record_cache_bytes", {{"thread", thread}, {"kind", "buffered"}},
               t.cache.buffered_bytes);
  }
  per_thread("cmstream_commits_aborted_total", "counter", "Commits aborted and reprocessed.",
             &ThreadStatus::aborted_commits);
  out.Family("cmstream_commit_latency_seconds", "histogram", "Time to seal and apply one commit.");
  for (const auto& t : threads) {
    out.Histogram("cmstream_commit_latency_seconds", {{"thread", std::to_string(t.index)}},
                  kCommitLatencyBounds, t.commit_latency_buckets, t.commits, t.commit_seconds_sum);
  }
  per_task("cmstream_task_lag_records", "Records in the task's input partitions not yet processed.",
           [](const TaskStatus& k) { return k.lag; });
  per_task("cmstream_task_restoring", "1 while the task restores its stores.",
           [](const TaskStatus& k) { return k.running ? 0 : 1; });
  per_task("cmstream_restore_records", "Changelog records restored so far by a restoring task.",
           [](const TaskStatus& k) { return k.restored_records; });
  per_task("cmstream_restore_total_records", "Changelog records a restoring task has to read.",
           [](const TaskStatus& k) { return k.restore_total_records; });
  per_task("cmstream_store_entries", "Approximate entries in the task's stores.",
           [](const TaskStatus& k) { return k.store_entries; });
  per_task("cmstream_store_bytes", "Approximate on-disk and memtable bytes of the task's stores.",
           [](const TaskStatus& k) { return k.store_bytes; });
  return out.str();
}

}  // namespace cm::topology
