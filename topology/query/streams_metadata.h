#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "state/status.h"

namespace cm::topology {

struct InstanceInfo {
  std::string instance_id;
  std::string endpoint;  // host:port of its HTTP API
  std::vector<std::string> tasks;
  int64_t updated_ms = 0;  // when it last said so (record timestamp)
};

// Which instance runs which task (Kafka Streams' StreamsMetadata). Every instance writes its
// HTTP endpoint and running tasks to <app-id>-instances every second and reads the topic from
// the beginning, so any instance can route a request for a key to the instance that owns it.
class StreamsMetadata {
 public:
  struct Options {
    std::string bootstrap_servers;
    std::string topic;
    std::string instance_id;
    std::string endpoint;
    std::chrono::milliseconds interval{1000};
    std::chrono::milliseconds liveness{10'000};  // older announcements no longer count
  };
  StreamsMetadata(Options options, std::function<std::vector<std::string>()> local_tasks);
  ~StreamsMetadata();
  StreamsMetadata(const StreamsMetadata&) = delete;
  StreamsMetadata& operator=(const StreamsMetadata&) = delete;

  state::Status Start();
  // Announces an empty task list, so others stop routing here at once, and stops.
  void Stop();

  // The endpoint of the live instance that announced `task` most recently.
  std::optional<InstanceInfo> OwnerOf(const std::string& task) const;
  std::vector<InstanceInfo> Instances() const;
  const std::string& instance_id() const { return options_.instance_id; }

 private:
  struct Clients;
  void Run();
  // `leaving`: the last announcement of an instance that stops (`cmstream replay` then knows
  // it is not running).
  void Announce(const std::vector<std::string>& tasks, bool leaving = false);
  void Consume(int timeout_ms);

  Options options_;
  std::function<std::vector<std::string>()> local_tasks_;
  std::unique_ptr<Clients> clients_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::map<std::string, InstanceInfo> instances_;
};

}  // namespace cm::topology
