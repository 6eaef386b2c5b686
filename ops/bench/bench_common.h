// Shared pieces of the cmstream benchmarks (ops/bench): stderr capture of the engine's JSON log
// events, a fast loading producer, a plain "raw" consumer, watermarks, medians and tables.
#pragma once

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "topology/common/wall_clock.h"
#include "topology/kafka/embedded_broker.h"
#include "topology/kafka/kafka_client.h"
#include "topology/kafka/topic_admin.h"
#include "topology/processor/topology.h"

namespace cm::bench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU seconds (user + system) this process has used so far, all threads.
inline double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

// Where the benchmark's own diagnostics go: the real stderr, saved before the capture.
inline FILE*& Diag() {
  static FILE* f = stderr;
  return f;
}

inline void Say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(Diag(), fmt, ap);
  va_end(ap);
  std::fflush(Diag());
}

[[noreturn]] inline void Die(const std::string& what) {
  Say("bench: FATAL: %s\n", what.c_str());
  std::fflush(stdout);
  _exit(1);
}

// ---------------------------------------------------------------------------------------------
// Log capture. The engine logs one JSON object per line on stderr (topology/common/log.h). fd 2 is
// replaced by a pipe; a reader thread stamps every line with the steady clock as it arrives
// (spdlog flushes each line), appends it to a log file and keeps the events we time by.

struct LogEvent {
  Clock::time_point at;
  std::string event;
  nlohmann::json fields;
};

class LogCapture {
 public:
  explicit LogCapture(const std::string& path) {
    int fds[2];
    if (pipe(fds) != 0) Die("pipe failed");
    int saved = dup(2);
    Diag() = fdopen(saved, "w");
    setvbuf(Diag(), nullptr, _IONBF, 0);
    file_ = std::fopen(path.c_str(), "w");
    if (file_ == nullptr) Die("cannot write log file " + path);
    std::fflush(stderr);
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);  // room for bursts of log lines
    dup2(fds[1], 2);
    close(fds[1]);
    read_fd_ = fds[0];
    reader_ = std::thread([this] { ReadLoop(); });
  }
  ~LogCapture() {
    std::fflush(stderr);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);  // closes the pipe's last write end: the reader sees EOF
    close(devnull);
    if (reader_.joinable()) reader_.join();
    close(read_fd_);
    std::fclose(file_);
  }

  // Events with these names are kept (all others only go to the file).
  void Watch(std::set<std::string> names) {
    std::lock_guard<std::mutex> lock(mu_);
    watched_ = std::move(names);
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    events_.clear();
  }
  std::vector<LogEvent> Events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  size_t Count(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    return std::count_if(events_.begin(), events_.end(),
                         [&](const LogEvent& e) { return e.event == name; });
  }
  // Errors and warnings seen (engine "level" error/warn), for the report.
  uint64_t errors() const { return errors_.load(); }
  uint64_t warnings() const { return warnings_.load(); }
  void Mark(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    std::fprintf(file_, "=== bench: %s\n", text.c_str());
    std::fflush(file_);
  }

 private:
  void ReadLoop() {
    std::string pending;
    char buf[65536];
    for (;;) {
      ssize_t n = read(read_fd_, buf, sizeof buf);
      if (n <= 0) break;
      auto at = Clock::now();
      pending.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        HandleLine(at, std::string_view(pending).substr(start, nl - start));
      }
      pending.erase(0, start);
    }
    if (!pending.empty()) HandleLine(Clock::now(), pending);
  }
  void HandleLine(Clock::time_point at, std::string_view line) {
    std::lock_guard<std::mutex> lock(mu_);
    std::fwrite(line.data(), 1, line.size(), file_);
    std::fputc('\n', file_);
    // Cheap checks first: only watched events are parsed, so the pipe never backs up into
    // the engine's logging (a full pipe would block the stream thread's writes).
    if (line.find("\"level\":\"error\"") != std::string_view::npos) ++errors_;
    if (line.find("\"level\":\"warn\"") != std::string_view::npos) ++warnings_;
    constexpr std::string_view kEvent = "\"event\":\"";
    size_t at_event = line.find(kEvent);
    if (at_event == std::string_view::npos) return;
    size_t start = at_event + kEvent.size();
    size_t end = line.find('"', start);
    if (end == std::string_view::npos) return;
    std::string event(line.substr(start, end - start));
    if (watched_.count(event) == 0) return;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    events_.push_back({at, event, std::move(j)});
  }

  int read_fd_ = -1;
  FILE* file_ = nullptr;
  std::thread reader_;
  mutable std::mutex mu_;
  std::set<std::string> watched_;
  std::vector<LogEvent> events_;
  std::atomic<uint64_t> errors_{0}, warnings_{0};
};

// The embedded broker hosted by the benchmark process, with `topics` created.
inline void StartBroker(const std::vector<cm::topology::TopicSpec>& topics,
                        std::unique_ptr<cm::topology::EmbeddedBroker>& broker,
                        std::unique_ptr<cm::topology::TopicAdmin>& admin, std::string& bootstrap) {
  auto started = cm::topology::EmbeddedBroker::Start();
  if (!started.ok()) Die("embedded broker: " + started.status().ToString());
  broker = std::move(started).value();
  bootstrap = broker->bootstrap_servers();
  admin = cm::topology::NewEmbeddedTopicAdmin(*broker);
  if (auto s = admin->EnsureTopics(topics); !s.ok()) Die(s.ToString());
}

// ---------------------------------------------------------------------------------------------
// librdkafka helpers.

inline void Set(rd_kafka_conf_t* conf, const char* key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key, value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    Die(std::string("config ") + key + "=" + value + ": " + err);
  }
}

// The engine's owning handle (kafka_client), so no bench destroys a client by hand.
inline cm::topology::KafkaHandle NewClient(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  auto rk = cm::topology::CreateKafkaHandle(type, conf);
  if (!rk.ok()) Die(rk.status().ToString());
  return std::move(rk).value();
}

struct Watermarks {
  std::vector<int64_t> low, high;
  int64_t TotalHigh() const {
    int64_t s = 0;
    for (auto h : high) s += h;
    return s;
  }
  int64_t TotalLow() const {
    int64_t s = 0;
    for (auto l : low) s += l;
    return s;
  }
};

inline Watermarks QueryWatermarks(const std::string& bootstrap, const std::string& topic,
                                  int partitions) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  Set(conf, "bootstrap.servers", bootstrap);
  Set(conf, "group.id", "bench-watermarks");
  Set(conf, "log_level", "3");
  cm::topology::KafkaHandle rk = NewClient(RD_KAFKA_CONSUMER, conf);
  Watermarks w;
  for (int p = 0; p < partitions; ++p) {
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &lo, &hi, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) Die("watermarks of " + topic + ": " + rd_kafka_err2str(e));
    w.low.push_back(lo);
    w.high.push_back(hi);
  }
  return w;
}

// Dies when the broker dropped the front of any partition (DESIGN.md §3: 5 MiB / 100,000
// message sets per partition on the embedded broker).
inline void RequireNothingDropped(const std::string& bootstrap, const std::string& topic,
                                  int partitions) {
  Watermarks w = QueryWatermarks(bootstrap, topic, partitions);
  for (int p = 0; p < partitions; ++p) {
    if (w.low[p] != 0) {
      Die(topic + "[" + std::to_string(p) + "] starts at offset " + std::to_string(w.low[p]) +
          ": the embedded broker dropped records (5 MiB per partition); use more --partitions");
    }
  }
}

struct ProduceStats {
  uint64_t records = 0;
  double seconds = 0;
};

// A fast, non-transactional loading producer: big batches, some linger, murmur2 partitioning
// (the Java default, as the engine uses).
class Loader {
 public:
  explicit Loader(const std::string& bootstrap) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    Set(conf, "bootstrap.servers", bootstrap);
    Set(conf, "client.id", "bench-loader");
    Set(conf, "log_level", "4");
    Set(conf, "partitioner", "murmur2_random");
    Set(conf, "linger.ms", "20");
    Set(conf, "batch.num.messages", "10000");
    Set(conf, "batch.size", "1000000");
    Set(conf, "queue.buffering.max.messages", "2000000");
    Set(conf, "queue.buffering.max.kbytes", "1048576");
    Set(conf, "enable.idempotence", "false");
    Set(conf, "acks", "1");
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
      auto* self = static_cast<Loader*>(opaque);
      if (m->err) {
        ++self->failed_;
      } else {
        ++self->delivered_;
      }
    });
    rd_kafka_conf_set_opaque(conf, this);
    rk_ = NewClient(RD_KAFKA_PRODUCER, conf);
  }

  void Send(const std::string& topic, const std::string& key, const std::string& value,
            int64_t ts) {
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_TIMESTAMP(ts),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        Die(std::string("produce: ") + rd_kafka_err2str(err));
      rd_kafka_poll(rk_.get(), 10);
    }
  }
  void Poll() { rd_kafka_poll(rk_.get(), 0); }
  void Flush() {
    rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), 120000);
    if (err) Die(std::string("flush: ") + rd_kafka_err2str(err));
    if (failed_ > 0) Die(std::to_string(failed_) + " records failed delivery");
  }
  uint64_t delivered() const { return delivered_; }

 private:
  cm::topology::KafkaHandle rk_;
  uint64_t delivered_ = 0, failed_ = 0;
};

// librdkafka 2.0.2 stops fetching once a consumer's queue holds queued.min.messages (100,000)
// and looks again only about a second later, however fast the application drains it. A plain
// consumer that outpaces the broker therefore stalls now and then; with these settings the
// whole input fits the queue and it never does. A fetch of partitions with nothing new waits
// up to fetch.wait.max.ms (500 by default) before the broker answers; over hundreds of
// partitions read to their ends such waits made this rate swing by three times between runs,
// so it waits 10 ms, as the engine's restore consumer does. Used for the "no-stall" reference.
inline const std::map<std::string, std::string> kNoStallConsumer = {
    {"queued.min.messages", "10000000"},
    {"queued.max.messages.kbytes", "1048576"},
    {"fetch.wait.max.ms", "10"}};

struct ConsumeStats {
  uint64_t records = 0;
  std::map<std::string, uint64_t> per_topic;
  double seconds = 0;      // first record to last record
  double cpu_seconds = 0;  // process CPU (all threads, the in-process broker included) meanwhile
  uint64_t checksum = 0;
  double Rate() const { return seconds > 0 ? static_cast<double>(records) / seconds : 0; }
};

// A plain consumer: assigns every partition of `topics` from the beginning (no group
// membership), reads to the end of each and touches every key and value.
// `on_record` (optional) sees each record.
using RecordVisitor = std::function<void(const rd_kafka_message_t*)>;

inline ConsumeStats ConsumeAll(const std::string& bootstrap,
                               const std::vector<std::pair<std::string, int>>& topics,
                               const std::string& group, const RecordVisitor& on_record = nullptr,
                               const std::map<std::string, std::string>& overrides = {}) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  Set(conf, "bootstrap.servers", bootstrap);
  Set(conf, "client.id", "bench-raw-consumer");
  Set(conf, "group.id", group);
  Set(conf, "log_level", "4");
  Set(conf, "enable.auto.commit", "false");
  Set(conf, "enable.partition.eof", "true");
  Set(conf, "isolation.level", "read_committed");
  for (const auto& [k, v] : overrides) Set(conf, k.c_str(), v);
  cm::topology::KafkaHandle consumer = NewClient(RD_KAFKA_CONSUMER, conf);
  rd_kafka_t* rk = consumer.get();
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(64);
  size_t partitions = 0;
  for (const auto& [topic, n] : topics) {
    for (int p = 0; p < n; ++p) {
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
      ++partitions;
    }
  }
  if (rd_kafka_resp_err_t e = rd_kafka_assign(rk, list))
    Die(std::string("assign: ") + rd_kafka_err2str(e));
  rd_kafka_topic_partition_list_destroy(list);

  ConsumeStats stats;
  double cpu_first = 0, cpu_last = 0;
  std::set<std::pair<std::string, int32_t>> at_end;
  Clock::time_point first{}, last{};
  auto give_up = Clock::now() + std::chrono::minutes(10);
  while (at_end.size() < partitions) {
    if (Clock::now() > give_up) Die("raw consumer did not reach the end within 10 minutes");
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 1000);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.insert({rd_kafka_topic_name(m->rkt), m->partition});
    } else if (m->err) {
      Say("bench: raw consumer: %s\n", rd_kafka_message_errstr(m));
    } else {
      auto now = Clock::now();
      if (stats.records == 0) {
        first = now;
        cpu_first = ProcessCpuSeconds();
      }
      last = now;
      if ((stats.records & 1023) == 0) cpu_last = ProcessCpuSeconds();
      ++stats.records;
      // Touch the bytes: what any consumer would at least do.
      const auto* k = static_cast<const unsigned char*>(m->key);
      const auto* v = static_cast<const unsigned char*>(m->payload);
      uint64_t h = m->key_len * 31 + m->len;
      if (k != nullptr && m->key_len > 0) h += k[0] + k[m->key_len - 1];
      if (v != nullptr && m->len > 0) h += v[0] + v[m->len - 1];
      stats.checksum += h;
      if (on_record) on_record(m);
      // Partition EOF is not re-raised for a partition once reached; a record after it
      // (cannot happen here: nothing writes while we read) would simply be counted.
      ++stats.per_topic[rd_kafka_topic_name(m->rkt)];
    }
    rd_kafka_message_destroy(m);
  }
  stats.seconds = Seconds(last - first);
  stats.cpu_seconds = cpu_last - cpu_first;
  rd_kafka_consumer_close(rk);
  return stats;
}

// When a streams run sealed its work, read back from its commit log (sub-topology 0).
// ThreadStatus is refreshed only every 500 ms, too coarse to time a few seconds of work; every
// sealed commit record carries its wall-clock time and the input offsets each task reached, so
// "done" is the first seal after which the tasks' positions in `input` cover `records`. The
// commit log also holds outbox records and "published" marks (cm-type header); only seals count.
struct SealTimeline {
  int64_t first_ms = 0;        // wall clock of the first seal
  uint64_t first_records = 0;  // input records it covered
  int64_t done_ms = 0;         // wall clock of the seal covering every record
};

inline SealTimeline ReadSealTimeline(const std::string& bootstrap, const std::string& app,
                                     const std::string& input, int partitions, uint64_t records,
                                     int64_t wall_start, bool print, const std::string& group) {
  struct Seal {
    int32_t partition;
    int64_t wall_ms;
    int64_t position;
  };
  std::map<uint64_t, std::vector<Seal>> by_seq;
  const std::string commits = cm::topology::Topology::CommitTopic(app, 0);
  ConsumeAll(bootstrap, {{commits, partitions}}, group, [&](const rd_kafka_message_t* m) {
    if (cm::topology::LastHeader(*m, "cm-type").value_or("seal") != "seal") return;
    auto j = nlohmann::json::parse(std::string_view(static_cast<const char*>(m->payload), m->len),
                                   nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j.contains("inputs")) {
      Die("unreadable seal in " + commits + "[" + std::to_string(m->partition) + "] at offset " +
          std::to_string(m->offset));
    }
    int64_t pos = j["inputs"].value(input, int64_t{0});
    by_seq[j["seq"].get<uint64_t>()].push_back(
        {m->partition, rd_kafka_message_timestamp(m, nullptr), pos});
  });
  std::vector<int64_t> positions(static_cast<size_t>(partitions), 0);
  SealTimeline out;
  bool have_first = false;
  for (const auto& [seq, seals] : by_seq) {
    int64_t at = 0;
    for (const auto& s : seals) {
      positions[static_cast<size_t>(s.partition)] =
          std::max(positions[static_cast<size_t>(s.partition)], s.position);
      at = std::max(at, s.wall_ms);
    }
    uint64_t total = 0;
    for (auto p : positions) total += static_cast<uint64_t>(p);
    if (print) {
      Say("  seal seq %4llu at %7.3f s: %zu tasks, %llu records\n",
          static_cast<unsigned long long>(seq), (at - wall_start) / 1000.0, seals.size(),
          static_cast<unsigned long long>(total));
    }
    if (!have_first) {
      have_first = true;
      out.first_ms = at;
      out.first_records = total;
    }
    if (total >= records) {
      out.done_ms = at;
      return out;
    }
  }
  Die("the commit log of " + app + " never covers all " + std::to_string(records) + " records");
}

// ---------------------------------------------------------------------------------------------
// Figures.

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// p50 and p99 of latencies in milliseconds.
struct Latency {
  double p50_ms = 0, p99_ms = 0;
};

inline Latency Percentiles(std::vector<double> ms) {
  if (ms.empty()) return {};
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))];
  };
  return {at(0.50), at(0.99)};
}

// A table of named columns; each row is a label and one number per column.
class Table {
 public:
  struct Column {
    std::string name;
    const char* format;  // printf format for one double, e.g. "%.0f"
  };
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  void Add(std::string label, std::vector<double> values) {
    rows_.push_back({std::move(label), std::move(values)});
  }
  void AddMedian() {
    std::vector<double> med;
    for (size_t c = 0; c < columns_.size(); ++c) {
      std::vector<double> col;
      for (const auto& r : rows_) col.push_back(r.second[c]);
      med.push_back(Median(col));
    }
    rows_.push_back({"MEDIAN", med});
  }
  void Print(FILE* out) const {
    std::vector<std::vector<std::string>> cells;
    std::vector<size_t> width(columns_.size() + 1, 0);
    width[0] = 6;
    for (const auto& r : rows_) width[0] = std::max(width[0], r.first.size());
    for (size_t c = 0; c < columns_.size(); ++c) width[c + 1] = columns_[c].name.size();
    for (const auto& r : rows_) {
      std::vector<std::string> line;
      for (size_t c = 0; c < columns_.size(); ++c) {
        char buf[64];
        std::snprintf(buf, sizeof buf, columns_[c].format, r.second[c]);
        line.push_back(buf);
        width[c + 1] = std::max(width[c + 1], line.back().size());
      }
      cells.push_back(std::move(line));
    }
    auto rule = [&] {
      for (size_t c = 0; c < width.size(); ++c)
        std::fprintf(out, "%s%s", c ? "-+-" : "", std::string(width[c], '-').c_str());
      std::fprintf(out, "\n");
    };
    std::fprintf(out, "%-*s", static_cast<int>(width[0]), "run");
    for (size_t c = 0; c < columns_.size(); ++c)
      std::fprintf(out, " | %*s", static_cast<int>(width[c + 1]), columns_[c].name.c_str());
    std::fprintf(out, "\n");
    rule();
    for (size_t r = 0; r < rows_.size(); ++r) {
      if (rows_[r].first == "MEDIAN") rule();
      std::fprintf(out, "%-*s", static_cast<int>(width[0]), rows_[r].first.c_str());
      for (size_t c = 0; c < columns_.size(); ++c)
        std::fprintf(out, " | %*s", static_cast<int>(width[c + 1]), cells[r][c].c_str());
      std::fprintf(out, "\n");
    }
    std::fflush(out);
  }

 private:
  std::vector<Column> columns_;
  std::vector<std::pair<std::string, std::vector<double>>> rows_;
};

}  // namespace cm::bench
