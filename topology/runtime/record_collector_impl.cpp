#include "topology/runtime/record_collector_impl.h"

#include <algorithm>

#include "topology/common/log.h"
#include "topology/kafka/partitioner.h"
#include "topology/runtime/outbox.h"

namespace cm::topology {

namespace {

// One task's view of the thread's collector.
class TaskCollector final : public RecordCollector {
 public:
  TaskCollector(RecordCollectorImpl& collector, TaskRuntime& task, rd_kafka_t* consumer)
      : collector_(collector), task_(task), consumer_(consumer) {}
  void Send(const std::string& topic, const Record& record) override {
    collector_.Send(task_, topic, record);
  }
  std::optional<int32_t> PartitionFor(const std::string& topic, const std::string& key) override {
    return collector_.PartitionFor(topic, key);
  }
  void Reroute(const Record& record) override { collector_.Reroute(task_, record); }
  bool Replaying() const override { return task_.replaying; }
  void SetReplaying(bool replaying) override { task_.replaying = replaying; }
  bool ReplayPending() const override {
    for (const auto& [topic, until] : task_.published_until) {
      auto at = task_.positions.find(topic);
      if (at == task_.positions.end() || at->second < until) return true;
    }
    return false;
  }
  bool CaughtUp(const std::string& topic) const override {
    if (consumer_ == nullptr) return false;  // a test of the collector alone
    // librdkafka keeps the high watermark of each fetch response: a local call, no request.
    int64_t low = 0;
    int64_t high = 0;
    if (rd_kafka_get_watermark_offsets(consumer_, topic.c_str(), task_.id.partition, &low, &high) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0)
      return false;  // not fetched yet: nothing says the task has read it all
    // Where the task is: as processed, else as last sealed, else the log's start.
    int64_t position = low;
    if (auto at = task_.positions.find(topic); at != task_.positions.end()) {
      position = at->second;
    } else if (auto sealed = task_.committed_positions.find(topic);
               sealed != task_.committed_positions.end()) {
      position = sealed->second;
    }
    return position >= high;
  }

 private:
  RecordCollectorImpl& collector_;
  TaskRuntime& task_;
  rd_kafka_t* consumer_;
};

}  // namespace

RecordCollectorImpl::RecordCollectorImpl(const Topology& topology, const StreamsConfig& config,
                                         StreamProducer& producer, ThreadFailure& failure,
                                         rd_kafka_t* consumer)
    : config_(config), producer_(producer), failure_(failure), consumer_(consumer) {
  for (const auto& topic : topology.InternalTopics()) internal_topics_.insert(topic);
  outbox_mode_ =
      config.guarantee == ProcessingGuarantee::kExactlyOnce && !config.broker_filters_aborted;
}

std::unique_ptr<RecordCollector> RecordCollectorImpl::ForTask(TaskRuntime& task) {
  return std::make_unique<TaskCollector>(*this, task, consumer_);
}

void RecordCollectorImpl::BeginInput(TaskRuntime& rt, const Record& r) {
  if (!rt.published_until.empty()) {
    auto until = rt.published_until.find(r.topic);
    rt.replaying = until != rt.published_until.end() && r.offset < until->second;
  }
  if (!rt.replaying) {
    rt.replaying = std::any_of(r.headers.begin(), r.headers.end(),
                               [](const Header& h) { return h.key == kReplayedHeader; });
  }
}

void RecordCollectorImpl::Send(TaskRuntime& rt, const std::string& topic, const Record& record) {
  if (rt.replaying) {
    if (internal_topics_.count(topic) == 0) {
      ++replayed_outputs_dropped_;  // sent before the reset
      return;
    }
    Record marked = record;
    marked.headers.push_back({kReplayedHeader, "1"});
    rt.replaying = false;  // Send the marked copy as usual
    Send(rt, topic, marked);
    rt.replaying = true;
    return;
  }
  const std::string& target = OutputTopic(topic);
  if (outbox_mode_) {
    rt.outbox.push_back({target, record});
    return;
  }
  auto partition = PartitionFor(target, record.key);
  if (!partition) return;  // the thread has failed; nothing of this commit is kept
  producer_.Produce(target, *partition, record.key, record.value, record.timestamp_ms,
                    record.headers, nullptr);
}

void RecordCollectorImpl::Reroute(TaskRuntime& rt, const Record& record) {
  const bool bounded = !config_.stop_offsets.empty() || !config_.output_topic_prefix.empty();
  uint64_t& count = bounded ? misrouted_skipped_[record.topic] : rerouted_[record.topic];
  if (count++ == 0) {
    // Once per topic and thread: the producer's setting is what needs fixing.
    Log(LogLevel::kWarn, "records_misrouted",
        {{"topic", record.topic},
         {"partition", record.partition},
         {"offset", record.offset},
         {"task", rt.id.ToString()},
         {"action", bounded ? "skipped (a bounded run; the live application re-produces it)"
                            : "re-produced to the partition that owns its key"},
         {"hint",
          "produce with Kafka's default partitioner (librdkafka: partitioner=murmur2_random)"}});
  }
  if (!bounded) Send(rt, record.topic, record);
}

const std::string& RecordCollectorImpl::OutputTopic(const std::string& topic) {
  if (config_.output_topic_prefix.empty() || internal_topics_.count(topic) != 0) return topic;
  auto it = output_topics_.find(topic);
  if (it == output_topics_.end())
    it = output_topics_.emplace(topic, config_.output_topic_prefix + topic).first;
  return it->second;
}

std::optional<int32_t> RecordCollectorImpl::PartitionFor(const std::string& topic,
                                                         const std::string& key) {
  auto it = partition_counts_.find(topic);
  if (it == partition_counts_.end()) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(producer_.handle(), 1, nullptr, &md, 10000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      failure_.Fatal(std::string("metadata request failed: ") + rd_kafka_err2str(err));
      return std::nullopt;  // inside a rebalance callback Fatal returns
    }
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[i].partition_cnt > 0) {
        partition_counts_[md->topics[i].topic] = md->topics[i].partition_cnt;
      }
    }
    rd_kafka_metadata_destroy(md);
    it = partition_counts_.find(topic);
    if (it == partition_counts_.end()) {
      failure_.Fatal("output topic " + topic + " does not exist");
      return std::nullopt;
    }
  }
  // Kafka's default partitioner, computed here so that outputs land where recovery looks.
  return PartitionForKey(key, it->second);
}

}  // namespace cm::topology
