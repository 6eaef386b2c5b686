#include "bridges/postgres/snapshotter.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "topology/common/log.h"
#include "topology/common/prometheus_text.h"
#include "topology/common/thread_name.h"
#include "topology/common/wall_clock.h"

namespace cm::postgres {

using state::Status;
using topology::Log;
using topology::LogLevel;

Snapshotter::Snapshotter(topology::SnapshotSchema schema, SnapshotterOptions options)
    : schema_(schema),
      options_(options),
      writer_(std::move(schema), {.database_url = options.database_url,
                                  .schema = options.schema,
                                  .copy_chunk_bytes = options.copy_chunk_bytes}) {}

Snapshotter::~Snapshotter() { Stop(); }

void Snapshotter::Start() {
  thread_ = std::thread([this] {
    topology::NameCurrentThread("cm-snapshot");
    Loop();
  });
}

void Snapshotter::Stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Snapshotter::WantsStore(const std::string& store) const { return schema_.HasStore(store); }

void Snapshotter::OnTaskRunning(const topology::TaskId& task, const ChangelogOffsets& offsets,
                                StoresReader reader) {
  std::lock_guard<std::mutex> lock(mu_);
  TaskEntry& e = tasks_[task.ToString()];
  metrics_.pending_changes -= e.pending_count;
  e = TaskEntry{};
  e.start = offsets;
  e.latest = offsets;
  e.reader = std::move(reader);
  e.generation = ++generations_;
}

void Snapshotter::OnTaskCommitted(const topology::TaskId& task, std::vector<Change> changes,
                                  const ChangelogOffsets& offsets) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task.ToString());
  if (it == tasks_.end()) return;
  TaskEntry& e = it->second;
  e.latest = offsets;
  for (auto& c : changes) {
    auto& store = e.pending[c.store];
    if (store.insert_or_assign(std::move(c.change.key), std::move(c.change.value)).second) {
      ++e.pending_count;
      ++metrics_.pending_changes;
    }
  }
}

void Snapshotter::OnTaskClosed(const topology::TaskId& task) {
  std::lock_guard<std::mutex> read_lock(read_mu_);  // waits for a full read of its stores
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task.ToString());
  if (it == tasks_.end()) return;
  it->second.closed = true;
  it->second.reader = nullptr;
  // Changes are only worth keeping on top of a state Postgres is known to hold; the next
  // owner compares offsets and snapshots in full when they differ.
  if (it->second.phase != Phase::kIncremental) {
    metrics_.pending_changes -= it->second.pending_count;
    tasks_.erase(it);
  }
}

void Snapshotter::MergeBack(TaskEntry& entry, StoreChanges& failed) {
  for (auto& [store, changes] : failed) {
    auto& into = entry.pending[store];
    for (auto& [key, value] : changes) {
      if (into.try_emplace(key, std::move(value)).second) ++entry.pending_count;
    }
  }
}

void Snapshotter::Loop() {
  using Clock = std::chrono::steady_clock;
  std::chrono::milliseconds backoff = options_.min_backoff;
  auto next = Clock::now() + options_.interval;
  bool failing = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(wake_mu_);
      wake_.wait_until(lock, next, [&] { return stop_; });
      if (stop_) break;
    }
    if (Round()) {
      if (failing) Log(LogLevel::kInfo, "snapshot_recovered");
      failing = false;
      backoff = options_.min_backoff;
      next = Clock::now() + options_.interval;
    } else {
      failing = true;
      next = Clock::now() + std::min(backoff, options_.interval);
      backoff = std::min(backoff * 2, options_.interval);
    }
  }
  Round();  // the last commits of a clean shutdown
}

bool Snapshotter::Round() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, e] : tasks_) ids.push_back(id);
  }
  for (const auto& id : ids) {
    if (auto s = SnapshotTask(id); !s.ok()) {
      Log(LogLevel::kWarn, "snapshot_failed", {{"task", id}, {"error", s.ToString()}});
      std::lock_guard<std::mutex> lock(mu_);
      ++metrics_.failures;
      return false;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  metrics_.last_success_ms = topology::WallClockMs();
  metrics_.rows_written = writer_.rows_written();
  return true;
}

Status Snapshotter::SnapshotTask(const std::string& task) {
  Phase phase;
  ChangelogOffsets start;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return Status::OK();
    phase = it->second.phase;
    start = it->second.start;
    generation = it->second.generation;
  }
  // Runs `update` on the task's entry if it is still the same incarnation of the task.
  auto with_entry = [&](const auto& update) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end() || it->second.generation != generation) return;
    update(it);
  };

  if (phase == Phase::kCheck) {
    auto held = writer_.ReadOffsets(task);
    if (!held.ok()) return held.status();
    with_entry([&](auto it) {
      if (*held && **held == start) {
        it->second.phase = Phase::kIncremental;
        it->second.base = start;
      } else {
        it->second.phase = Phase::kFull;
      }
      phase = it->second.phase;
    });
  }

  if (phase == Phase::kFull) {
    TaskSnapshot snap;
    snap.task_id = task;
    snap.full = true;
    {
      std::lock_guard<std::mutex> read_lock(read_mu_);
      StoresReader reader;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = tasks_.find(task);
        if (it == tasks_.end() || it->second.generation != generation || !it->second.reader) {
          return Status::OK();
        }
        // The read below sees at least every change pending now; later ones stay pending and
        // are written on top (the same or newer values).
        metrics_.pending_changes -= it->second.pending_count;
        it->second.pending.clear();
        it->second.pending_count = 0;
        snap.offsets = it->second.latest;
        reader = it->second.reader;
      }
      std::set<std::string> stores;
      for (const auto& t : schema_.tables) stores.insert(t.store);
      bool ran = reader([&](const topology::ReadOnlyStores& read) {
        for (const auto& store : stores) {
          state::ReadOnlyKeyValueStore* kv = read.KeyValue(store);
          if (!kv) continue;
          auto& into = snap.changes[store];
          kv->Range("", "", [&](std::string_view key, std::string_view value) {
            into.emplace(std::string(key), std::string(value));
            return true;
          });
        }
      });
      if (!ran) return Status::OK();  // closing; the next owner takes over
    }
    auto written = writer_.Write(snap);
    if (!written.ok()) return written.status();
    with_entry([&](auto it) {
      if (*written == WriteOutcome::kWritten) {
        it->second.phase = Phase::kIncremental;
        it->second.base = snap.offsets;
      }
    });
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (*written == WriteOutcome::kWritten) {
        ++metrics_.full_snapshots;
        ++metrics_.task_snapshots;
      }
    }
    size_t rows = 0;
    for (const auto& [store, entries] : snap.changes) rows += entries.size();
    Log(*written == WriteOutcome::kWritten ? LogLevel::kInfo : LogLevel::kWarn, "snapshot_full",
        {{"task", task},
         {"entries", rows},
         {"outcome", *written == WriteOutcome::kWritten ? "written" : "postgres_ahead"},
         {"offsets", snap.offsets}});
    return Status::OK();
  }

  TaskSnapshot snap;
  snap.task_id = task;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end() || it->second.generation != generation) return Status::OK();
    TaskEntry& e = it->second;
    if (e.pending_count == 0 && e.latest == e.base) {
      if (e.closed) tasks_.erase(it);
      return Status::OK();
    }
    snap.base = e.base;
    snap.offsets = e.latest;
    snap.changes.swap(e.pending);
    metrics_.pending_changes -= e.pending_count;
    e.pending_count = 0;
  }
  auto written = writer_.Write(snap);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task);
  const bool same = it != tasks_.end() && it->second.generation == generation;
  if (!written.ok()) {
    if (same) {
      size_t before = it->second.pending_count;
      MergeBack(it->second, snap.changes);
      metrics_.pending_changes += it->second.pending_count - before;
    }
    return written.status();
  }
  if (!same) return Status::OK();
  TaskEntry& e = it->second;
  switch (*written) {
    case WriteOutcome::kWritten:
      ++metrics_.task_snapshots;
      e.base = snap.offsets;
      break;
    case WriteOutcome::kStale:
    case WriteOutcome::kBaseMismatch:
      // Postgres holds another state of the task than the one these changes build on.
      Log(LogLevel::kWarn, "snapshot_base_mismatch",
          {{"task", task}, {"stale", *written == WriteOutcome::kStale}});
      metrics_.pending_changes -= e.pending_count;
      e.pending.clear();
      e.pending_count = 0;
      e.phase = Phase::kFull;
      break;
  }
  if (e.closed && (e.phase != Phase::kIncremental || e.pending_count == 0)) {
    metrics_.pending_changes -= e.pending_count;
    tasks_.erase(it);
  }
  return Status::OK();
}

SnapshotterMetrics Snapshotter::Metrics() const {
  std::lock_guard<std::mutex> lock(mu_);
  return metrics_;
}

std::string Snapshotter::RenderMetrics() const {
  SnapshotterMetrics m = Metrics();
  topology::PrometheusText out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out.Family(name, type, help).Sample(name, value);
  };
  metric("cmstream_snapshot_rows_written_total", "counter",
         "Rows upserted or deleted in Postgres snapshot tables", m.rows_written);
  metric("cmstream_snapshot_task_snapshots_total", "counter",
         "Task snapshot transactions committed", m.task_snapshots);
  metric("cmstream_snapshot_full_snapshots_total", "counter",
         "Full task snapshots (task start with offsets Postgres did not hold)", m.full_snapshots);
  metric("cmstream_snapshot_failures_total", "counter", "Snapshot rounds that failed", m.failures);
  metric("cmstream_snapshot_last_success_timestamp_seconds", "gauge",
         "Wall clock of the last round that wrote every task", m.last_success_ms / 1000.0);
  metric("cmstream_snapshot_pending_changes", "gauge",
         "Coalesced store changes waiting for the next snapshot", m.pending_changes);
  return out.str();
}

}  // namespace cm::postgres
