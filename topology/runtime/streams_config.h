#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace cm::topology {

class StateSnapshotListener;

enum class ProcessingGuarantee { kExactlyOnce, kAtLeastOnce };

struct StreamsConfig {
  std::string application_id = "cmstream";
  std::string instance_id;  // stable across restarts: it names the transactional producers
  std::string bootstrap_servers;
  std::string state_dir = "./data";
  int threads = 1;
  ProcessingGuarantee guarantee = ProcessingGuarantee::kExactlyOnce;
  // True when the broker filters aborted transactions for read_committed consumers (a real
  // cluster). The embedded broker does not, so restores then skip unsealed changelog records.
  bool broker_filters_aborted = true;
  std::chrono::milliseconds commit_interval{100};
  size_t commit_max_pending = 100'000;  // commit early after this many records processed
  size_t rocksdb_memory_bytes = 256ULL << 20;
  // Each stream thread's record cache (state::RecordCache): committed entries kept for reads,
  // and the writes buffered for the next commit, which commits early when they fill it. 0: no
  // cache (buffered writes are then bounded by commit_max_pending only).
  size_t cache_max_bytes = 64ULL << 20;
  std::string dlq_topic = "cloudmatrix.dlq";
  int32_t default_partitions = 8;  // for topics cmstream has to create
  // Restored records a task hands to the state writer at a time. Small, so the writes begin
  // while the changelogs are still read (256 tasks of ~4,000 records each, written in batches
  // of 20,000, were all written at the end); 500-2,000 restored as fast in ops/bench/restore.
  size_t restore_batch_records = 1'000;
  // A restore reads a task's changelogs alongside its commit log. Changelog records that no
  // seal read so far decides are held in memory; past this many bytes per changelog, it is
  // paused until the commit log catches up.
  size_t restore_undecided_bytes = 256ULL << 10;
  // A restore reads this many records at the end of a commit log first: a seal that lists the
  // unsealed changelog ranges below it decides everything before it, so the rest of the log
  // is read only when no such seal is there (logs written before seals carried the list).
  int64_t restore_commit_tail = 32;
  // How long a restarted task may take to find which of a crash's sealed outputs reached their
  // partitions (TaskCommitter::Republish) before the task fails.
  std::chrono::milliseconds republish_timeout{60'000};
  int session_timeout_ms = 6000;
  int heartbeat_interval_ms = 500;
  int max_poll_interval_ms = 10000;
  // A bounded run (`cmstream backfill`): each listed input partition is processed up to this
  // offset (exclusive) and then paused. Where a run starts comes from a reset marker.
  std::map<std::pair<std::string, int32_t>, int64_t> stop_offsets;
  // When set, outputs to topics that are not the application's own internal topics (sinks and
  // the DLQ) go to "<prefix><topic>" instead, so a backfill leaves the live topics alone.
  std::string output_topic_prefix;
  std::map<std::string, std::string> consumer_overrides;
  std::map<std::string, std::string> producer_overrides;
  // Told about task starts, commits and closes (Postgres snapshots); not owned, may be null.
  StateSnapshotListener* snapshot_listener = nullptr;
};

}  // namespace cm::topology
