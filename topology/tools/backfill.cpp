#include "topology/tools/backfill.h"

#include <algorithm>

#include "topology/common/log.h"

namespace cm::topology {

using state::Result;
using state::Status;

Result<Backfill> Backfill::Prepare(const Topology& topology, TopicAdmin& admin,
                                   const ResetOptions& reset, int64_t to_ms) {
  if (!reset.from_ms || *reset.from_ms >= to_ms) {
    return Status::InvalidArgument("a backfill needs --from before --to");
  }
  ApplicationReset resetter(topology, reset, admin);
  if (auto s = resetter.CheckStopped(); !s.ok()) return s;
  // The ends are read before the reset, so records that arrive while it runs are left out.
  auto ends = resetter.InputEndOffsets();
  if (!ends.ok()) return ends.status();
  auto at_to = resetter.InputOffsetsAt(to_ms);
  if (!at_to.ok()) return at_to.status();
  auto plan = resetter.Plan();
  if (!plan.ok()) return plan.status();
  Backfill b;
  b.prefix_ = topology.application_id() + "-";
  for (const auto& m : plan->moves) {
    if (m.role != PartitionRole::kInput) continue;
    TopicPartition tp{m.topic, m.partition};
    int64_t stop = std::min(ends->at(tp), at_to->at(tp));
    b.start_[tp] = std::min(m.target, stop);
    b.stop_[tp] = stop;
  }
  if (auto s = resetter.Apply(*plan); !s.ok()) return s;
  nlohmann::json partitions = nlohmann::json::array();
  for (const auto& [tp, stop] : b.stop_) {
    partitions.push_back(
        {{"topic", tp.first}, {"partition", tp.second}, {"from", b.start_.at(tp)}, {"to", stop}});
  }
  Log(LogLevel::kInfo, "backfill_plan",
      {{"applicationId", topology.application_id()}, {"partitions", partitions}});
  return b;
}

void Backfill::Configure(StreamsConfig& config) const {
  config.stop_offsets = stop_;
  config.output_topic_prefix = prefix_;
}

BackfillProgress Backfill::Progress(const KafkaStreams& streams) const {
  BackfillProgress p;
  std::map<TopicPartition, int64_t> reached;
  bool internal_caught_up = true;
  for (const auto& thread : streams.Threads()) {
    for (const auto& task : thread.tasks) {
      if (!task.running) continue;
      bool bounded = false;
      for (const auto& [topic, offset] : task.committed_inputs) {
        TopicPartition tp{topic, task.partition};
        if (stop_.count(tp) == 0) continue;
        bounded = true;
        reached[tp] = std::max(reached[tp], offset);
      }
      // Tasks fed only by repartition topics are done once they have read what exists.
      if (!bounded && task.lag > 0) internal_caught_up = false;
    }
  }
  p.finished = streams.Ready() && internal_caught_up;
  for (const auto& [tp, stop] : stop_) {
    int64_t from = start_.at(tp);
    p.total += static_cast<uint64_t>(stop - from);
    auto r = reached.find(tp);
    if (r == reached.end()) {  // its task does not run yet
      p.finished = false;
      continue;
    }
    p.done += static_cast<uint64_t>(std::clamp(r->second, from, stop) - from);
    if (r->second < stop) p.finished = false;
  }
  return p;
}

}  // namespace cm::topology
