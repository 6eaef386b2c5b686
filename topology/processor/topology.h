#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "state/status.h"
#include "state/store_spec.h"
#include "topology/processor/processor.h"

namespace cm::topology {

enum class NodeType { kSource, kProcessor, kSink };

// What a source expects of the partition its records arrive in.
//  kAsProduced: wherever the producer put a record, that task processes it.
//  kByKey: a record belongs to the partition Kafka's default partitioner (murmur2) gives its key,
//   because that task owns the key and queries are routed there. A record found elsewhere (a
//   producer with librdkafka's default CRC32 partitioner, say) is re-produced to its partition
//   within the commit instead of being processed where it landed (RecordCollector::Reroute).
//   Records without a key are processed where they are.
enum class SourcePartitioning { kAsProduced, kByKey };

struct Node {
  std::string name;
  NodeType type = NodeType::kSource;
  std::vector<std::string> parents;
  std::vector<std::string> children;  // filled by Build
  std::vector<std::string> topics;    // source: topics read; sink: the one topic written
  ProcessorSupplier supplier;         // processors only
  std::vector<std::string> stores;    // processors only
  SourcePartitioning partitioning = SourcePartitioning::kAsProduced;  // sources only
};

// A connected part of a topology: its tasks are numbered by the partitions of its sources,
// which must all have the same partition count (co-partitioned).
struct SubTopology {
  int id = 0;
  std::vector<std::string> nodes;  // in an order where parents come first
  std::vector<std::string> source_topics;
  std::vector<std::string> sink_topics;
  std::vector<state::StoreSpec> stores;
};

// A store every instance holds in full (Kafka Streams' global store, as behind a GlobalKTable):
// a copy of a compacted topic's latest value per key, read from all its partitions, restored
// before the instance is ready and updated while it runs. Not part of any task, so any request
// on any instance can read it without forwarding (API keys, for instance).
struct GlobalStoreSpec {
  std::string name;
  std::string topic;
};

// A validated, immutable description of processors, stores and topics.
class Topology {
 public:
  const std::string& application_id() const { return application_id_; }
  const std::vector<SubTopology>& subtopologies() const { return subtopologies_; }
  const std::vector<GlobalStoreSpec>& global_stores() const { return global_stores_; }
  const Node& node(const std::string& name) const { return nodes_.at(name); }
  // The sub-topology that reads a topic, or nullopt.
  std::optional<int> SubTopologyOfSource(const std::string& topic) const;
  // The source node that reads a topic.
  const Node* SourceOfTopic(const std::string& topic) const;
  std::vector<std::string> InternalTopics() const;  // repartition topics
  static std::string ChangelogTopic(const std::string& app_id, const std::string& store);
  static std::string CommitTopic(const std::string& app_id, int subtopology);
  static std::string RepartitionTopic(const std::string& app_id, const std::string& name);
  // One partition of reset markers written by `cmstream replay` (see application_reset.h).
  static std::string ResetsTopic(const std::string& app_id);
  nlohmann::json Describe() const;

 private:
  friend class TopologyBuilder;
  std::string application_id_;
  std::map<std::string, Node> nodes_;
  std::vector<SubTopology> subtopologies_;
  std::vector<std::string> repartition_topics_;
  std::vector<GlobalStoreSpec> global_stores_;
};

// Assembles a Topology (Kafka Streams' Topology.addSource/addProcessor/addSink/addStateStore).
// Nodes may be added in any order; Build checks the whole graph.
class TopologyBuilder {
 public:
  TopologyBuilder& AddSource(std::string name, std::vector<std::string> topics,
                             SourcePartitioning partitioning = SourcePartitioning::kAsProduced);
  TopologyBuilder& AddProcessor(std::string name, ProcessorSupplier supplier,
                                std::vector<std::string> parents);
  TopologyBuilder& AddSink(std::string name, std::string topic, std::vector<std::string> parents);
  // A sink into the internal topic <app-id>-<repartition>-repartition, which re-keys records
  // into whatever sub-topology reads it through AddRepartitionSource.
  TopologyBuilder& AddRepartitionSink(std::string name, std::string repartition,
                                      std::vector<std::string> parents);
  TopologyBuilder& AddRepartitionSource(std::string name, std::string repartition);
  TopologyBuilder& AddStateStore(state::StoreSpec spec, std::vector<std::string> processors);
  // Gives `processor` access to stores added by AddStateStore for other processors (Kafka
  // Streams' connectProcessorAndStateStores); they then share a sub-topology.
  TopologyBuilder& ConnectProcessorAndStateStores(std::string processor,
                                                  std::vector<std::string> stores);
  // A global store `name` holding the latest value of each key of `topic` (a tombstone deletes
  // it). Its topic must not also be a source of a sub-topology.
  TopologyBuilder& AddGlobalStore(std::string name, std::string topic);

  state::Result<Topology> Build(const std::string& application_id) const;

 private:
  struct PendingNode {
    Node node;
    std::optional<std::string> repartition;  // topic named by the app id at Build
  };
  std::vector<PendingNode> nodes_;
  std::vector<std::pair<state::StoreSpec, std::vector<std::string>>> stores_;
  std::vector<std::pair<std::string, std::vector<std::string>>> connections_;
  std::vector<GlobalStoreSpec> global_stores_;
};

}  // namespace cm::topology
