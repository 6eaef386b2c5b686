#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "state/status.h"

namespace cm::topology {

class EmbeddedBroker;

struct TopicSpec {
  std::string name;
  int32_t partitions = 1;
  // cleanup.policy=compact: the latest value per key is kept (global stores' topics). The
  // embedded broker does not compact; it keeps its 5 MiB per partition either way.
  bool compacted = false;
};

// Creates topics and reads partition counts. A real cluster is served through the Kafka Admin
// API; the embedded broker, which has no Admin API, through its host process.
class TopicAdmin {
 public:
  virtual ~TopicAdmin() = default;
  // Creates the topics that do not exist yet; existing topics are left as they are.
  virtual state::Status EnsureTopics(const std::vector<TopicSpec>& topics) = 0;
  // Partition count per existing topic (topics that do not exist are absent).
  virtual state::Result<std::map<std::string, int32_t>> PartitionCounts() = 0;
};

// The Kafka Admin API of a real cluster.
std::unique_ptr<TopicAdmin> NewKafkaTopicAdmin(const std::string& bootstrap_servers);
// An embedded broker hosted by this process.
std::unique_ptr<TopicAdmin> NewEmbeddedTopicAdmin(EmbeddedBroker& broker);
// An embedded broker hosted by a `cmstream broker` process, through its admin endpoint.
std::unique_ptr<TopicAdmin> NewRemoteEmbeddedTopicAdmin(const std::string& bootstrap_servers,
                                                        const std::string& admin_url);

}  // namespace cm::topology
