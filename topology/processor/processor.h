#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "state/key_value_store.h"
#include "state/timer_store.h"
#include "state/window_store.h"
#include "topology/processor/record.h"

namespace cm::topology {

enum class PunctuationType {
  kStreamTime,     // fires as record timestamps advance; replays identically
  kWallClockTime,  // fires on the system clock; for side effects outside the log
};

using Punctuator = std::function<void(int64_t timestamp_ms)>;

// What a processor sees of its task (Kafka Streams' ProcessorContext).
class ProcessorContext {
 public:
  virtual ~ProcessorContext() = default;

  // To every child of this processor.
  virtual void Forward(const Record& record) = 0;
  // To one named child (a processor or a sink).
  virtual void ForwardTo(std::string_view child, const Record& record) = 0;
  // To every child at the task's next commit instead of now, once per key: a later call with
  // the same key before then replaces the record (Kafka Streams' record cache, which forwards a
  // KTable's latest update per key when it flushes). An update then costs no output, and
  // downstream sees the last value of each key per commit. Deferred records are dropped with an
  // aborted commit (their inputs are processed again), and undone with a record that fails.
  virtual void ForwardAtCommit(const Record& record) = 0;
  // Rejects a record: it goes to the dead-letter topic with the reason, and processing goes on.
  virtual void SendToDlq(const Record& record, std::string_view reason) = 0;

  // Stores this processor was connected to; asserting on a name it was not connected to.
  virtual state::KeyValueStore& GetKeyValueStore(std::string_view name) = 0;
  virtual state::WindowStore& GetWindowStore(std::string_view name) = 0;
  virtual state::TimerStore& GetTimerStore(std::string_view name) = 0;

  virtual void Schedule(std::chrono::milliseconds interval, PunctuationType type,
                        Punctuator punctuator) = 0;

  // True while the input being processed had its outputs published before the latest reset
  // (`cmstream replay`): the engine drops this input's outputs to external topics. A processor
  // that starts a side effect of its own (an email) skips it then, or the replay repeats it.
  // False in wall-clock punctuations (a stream-time punctuation runs inside its record's
  // processing and sees that record's answer).
  virtual bool Replaying() const = 0;
  // True while some input of this task that was published before the latest reset has not
  // been processed again yet. A wall-clock punctuation that starts side effects (webhook
  // deliveries) waits for it: until the replay has passed, state does not yet know what was
  // already done before the reset.
  virtual bool ReplayPending() const = 0;
  // True when the task has processed every record of its partition of source `topic` that the
  // broker held when the consumer last fetched it. A wall-clock punctuation waiting for a record
  // (an outcome) uses it to tell a record that never came from one not read yet: a task that
  // lags its input must not take the second for the first. For topics written without
  // transactions: on a real cluster the marker that ends a transaction takes an offset no
  // record is read at, so a transactional topic would not read as caught up after it.
  virtual bool CaughtUp(std::string_view topic) const = 0;

  // The largest record timestamp the task has seen.
  virtual int64_t StreamTime() const = 0;
  virtual const std::string& TaskId() const = 0;
  virtual int32_t Partition() const = 0;
  virtual const std::string& ApplicationId() const = 0;
};

class Processor {
 public:
  virtual ~Processor() = default;
  virtual void Init(ProcessorContext& context) { (void)context; }
  virtual void Process(const Record& record) = 0;
  virtual void Close() {}
};

using ProcessorSupplier = std::function<std::unique_ptr<Processor>()>;

}  // namespace cm::topology
