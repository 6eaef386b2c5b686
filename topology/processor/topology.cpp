#include "topology/processor/topology.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <set>

namespace cm::topology {

using state::Result;
using state::Status;

std::string Topology::ChangelogTopic(const std::string& app_id, const std::string& store) {
  return app_id + "-" + store + "-changelog";
}

std::string Topology::CommitTopic(const std::string& app_id, int subtopology) {
  return app_id + "-" + std::to_string(subtopology) + "-commits";
}

std::string Topology::RepartitionTopic(const std::string& app_id, const std::string& name) {
  return app_id + "-" + name + "-repartition";
}

std::string Topology::ResetsTopic(const std::string& app_id) { return app_id + "-resets"; }

std::optional<int> Topology::SubTopologyOfSource(const std::string& topic) const {
  for (const auto& sub : subtopologies_) {
    if (std::find(sub.source_topics.begin(), sub.source_topics.end(), topic) !=
        sub.source_topics.end()) {
      return sub.id;
    }
  }
  return std::nullopt;
}

const Node* Topology::SourceOfTopic(const std::string& topic) const {
  for (const auto& [name, node] : nodes_) {
    if (node.type == NodeType::kSource &&
        std::find(node.topics.begin(), node.topics.end(), topic) != node.topics.end()) {
      return &node;
    }
  }
  return nullptr;
}

std::vector<std::string> Topology::InternalTopics() const { return repartition_topics_; }

nlohmann::json Topology::Describe() const {
  auto type_name = [](NodeType t) {
    switch (t) {
      case NodeType::kSource:
        return "source";
      case NodeType::kProcessor:
        return "processor";
      case NodeType::kSink:
        return "sink";
    }
    return "unknown";
  };
  nlohmann::json subs = nlohmann::json::array();
  for (const auto& sub : subtopologies_) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& name : sub.nodes) {
      const Node& n = nodes_.at(name);
      nlohmann::json j = {{"name", n.name},
                          {"type", type_name(n.type)},
                          {"parents", n.parents},
                          {"children", n.children}};
      if (n.type != NodeType::kProcessor) j["topics"] = n.topics;
      if (n.type == NodeType::kProcessor) j["stores"] = n.stores;
      if (n.type == NodeType::kSource)
        j["partitioning"] = n.partitioning == SourcePartitioning::kByKey ? "byKey" : "asProduced";
      nodes.push_back(std::move(j));
    }
    nlohmann::json stores = nlohmann::json::array();
    for (const auto& s : sub.stores) {
      nlohmann::json j = {{"name", s.name},
                          {"type", state::StoreTypeName(s.type)},
                          {"changelog", s.logged ? ChangelogTopic(application_id_, s.name) : ""}};
      if (s.type == state::StoreType::kWindow) {
        j["windowSizeMs"] = s.window.size_ms;
        j["graceMs"] = s.window.grace_ms;
        j["retentionMs"] = s.window.retention_ms;
      }
      stores.push_back(std::move(j));
    }
    subs.push_back({{"id", sub.id},
                    {"sourceTopics", sub.source_topics},
                    {"sinkTopics", sub.sink_topics},
                    {"commitTopic", CommitTopic(application_id_, sub.id)},
                    {"nodes", std::move(nodes)},
                    {"stores", std::move(stores)}});
  }
  nlohmann::json globals = nlohmann::json::array();
  for (const auto& g : global_stores_) globals.push_back({{"name", g.name}, {"topic", g.topic}});
  return {{"applicationId", application_id_},
          {"subtopologies", std::move(subs)},
          {"globalStores", std::move(globals)}};
}

TopologyBuilder& TopologyBuilder::AddSource(std::string name, std::vector<std::string> topics,
                                            SourcePartitioning partitioning) {
  Node n;
  n.name = std::move(name);
  n.type = NodeType::kSource;
  n.topics = std::move(topics);
  n.partitioning = partitioning;
  nodes_.push_back({std::move(n), std::nullopt});
  return *this;
}

TopologyBuilder& TopologyBuilder::AddProcessor(std::string name, ProcessorSupplier supplier,
                                               std::vector<std::string> parents) {
  Node n;
  n.name = std::move(name);
  n.type = NodeType::kProcessor;
  n.supplier = std::move(supplier);
  n.parents = std::move(parents);
  nodes_.push_back({std::move(n), std::nullopt});
  return *this;
}

TopologyBuilder& TopologyBuilder::AddSink(std::string name, std::string topic,
                                          std::vector<std::string> parents) {
  Node n;
  n.name = std::move(name);
  n.type = NodeType::kSink;
  n.topics = {std::move(topic)};
  n.parents = std::move(parents);
  nodes_.push_back({std::move(n), std::nullopt});
  return *this;
}

TopologyBuilder& TopologyBuilder::AddRepartitionSink(std::string name, std::string repartition,
                                                     std::vector<std::string> parents) {
  AddSink(std::move(name), "", std::move(parents));
  nodes_.back().repartition = std::move(repartition);
  return *this;
}

TopologyBuilder& TopologyBuilder::AddRepartitionSource(std::string name, std::string repartition) {
  AddSource(std::move(name), {});
  nodes_.back().repartition = std::move(repartition);
  return *this;
}

TopologyBuilder& TopologyBuilder::AddStateStore(state::StoreSpec spec,
                                                std::vector<std::string> processors) {
  stores_.emplace_back(std::move(spec), std::move(processors));
  return *this;
}

TopologyBuilder& TopologyBuilder::ConnectProcessorAndStateStores(std::string processor,
                                                                 std::vector<std::string> stores) {
  connections_.emplace_back(std::move(processor), std::move(stores));
  return *this;
}

TopologyBuilder& TopologyBuilder::AddGlobalStore(std::string name, std::string topic) {
  global_stores_.push_back({std::move(name), std::move(topic)});
  return *this;
}

Result<Topology> TopologyBuilder::Build(const std::string& application_id) const {
  if (application_id.empty()) return Status::InvalidArgument("application id is empty");
  Topology t;
  t.application_id_ = application_id;
  std::set<std::string> repartitions;
  for (const auto& pending : nodes_) {
    Node n = pending.node;
    if (n.name.empty()) return Status::InvalidArgument("a node has an empty name");
    if (pending.repartition) {
      n.topics = {Topology::RepartitionTopic(application_id, *pending.repartition)};
      repartitions.insert(n.topics.front());
    }
    if (t.nodes_.count(n.name) != 0) {
      return Status::InvalidArgument("node '" + n.name + "' is defined twice");
    }
    t.nodes_.emplace(n.name, std::move(n));
  }
  t.repartition_topics_.assign(repartitions.begin(), repartitions.end());

  std::map<std::string, std::string> topic_reader;
  for (auto& [name, n] : t.nodes_) {
    switch (n.type) {
      case NodeType::kSource:
        if (n.topics.empty())
          return Status::InvalidArgument("source '" + name + "' reads no topic");
        for (const auto& topic : n.topics) {
          auto [it, fresh] = topic_reader.emplace(topic, name);
          if (!fresh) {
            return Status::InvalidArgument("topic '" + topic + "' is read by both '" + it->second +
                                           "' and '" + name + "'");
          }
        }
        break;
      case NodeType::kProcessor:
        if (!n.supplier) return Status::InvalidArgument("processor '" + name + "' has no supplier");
        [[fallthrough]];
      case NodeType::kSink:
        if (n.parents.empty()) return Status::InvalidArgument("'" + name + "' has no parent");
        if (n.type == NodeType::kSink && n.topics.front().empty()) {
          return Status::InvalidArgument("sink '" + name + "' writes no topic");
        }
        break;
    }
    for (const auto& parent : n.parents) {
      auto it = t.nodes_.find(parent);
      if (it == t.nodes_.end()) {
        return Status::InvalidArgument("'" + name + "' names unknown parent '" + parent + "'");
      }
      if (it->second.type == NodeType::kSink) {
        return Status::InvalidArgument("'" + name + "' names sink '" + parent + "' as a parent");
      }
    }
  }
  for (auto& [name, n] : t.nodes_) {
    for (const auto& parent : n.parents) t.nodes_.at(parent).children.push_back(name);
  }

  // Topological order (Kahn) from the roots in the order they were added, as Kafka Streams
  // numbers sub-topologies: adding an application never renumbers the ones added before it.
  // Anything left over sits on a cycle.
  std::map<std::string, size_t> pending_parents;
  std::vector<std::string> order;
  for (const auto& [name, n] : t.nodes_) pending_parents[name] = n.parents.size();
  for (const auto& pending : nodes_) {
    if (pending.node.parents.empty()) order.push_back(pending.node.name);
  }
  for (size_t i = 0; i < order.size(); ++i) {
    for (const auto& child : t.nodes_.at(order[i]).children) {
      if (--pending_parents[child] == 0) order.push_back(child);
    }
  }
  if (order.size() != t.nodes_.size()) {
    std::string on_cycle;
    for (const auto& [name, left] : pending_parents) {
      if (left > 0) on_cycle += (on_cycle.empty() ? "" : ", ") + name;
    }
    return Status::InvalidArgument("the topology has a cycle through: " + on_cycle);
  }

  // Stores: each must exist once and be used by at least one known processor.
  std::map<std::string, state::StoreSpec> stores;
  for (const auto& [spec, users] : stores_) {
    if (spec.name.empty()) return Status::InvalidArgument("a store has an empty name");
    if (!stores.emplace(spec.name, spec).second) {
      return Status::InvalidArgument("store '" + spec.name + "' is defined twice");
    }
    if (users.empty()) {
      return Status::InvalidArgument("store '" + spec.name + "' is used by no processor");
    }
    if (spec.type == state::StoreType::kWindow && spec.window.size_ms <= 0) {
      return Status::InvalidArgument("window store '" + spec.name + "' needs a positive size");
    }
    for (const auto& user : users) {
      auto it = t.nodes_.find(user);
      if (it == t.nodes_.end() || it->second.type != NodeType::kProcessor) {
        return Status::InvalidArgument("store '" + spec.name + "' names unknown processor '" +
                                       user + "'");
      }
      it->second.stores.push_back(spec.name);
    }
  }
  // Connections join a store's users (so the sub-topologies below follow them).
  auto store_users = stores_;
  for (const auto& [processor, names] : connections_) {
    auto it = t.nodes_.find(processor);
    if (it == t.nodes_.end() || it->second.type != NodeType::kProcessor)
      return Status::InvalidArgument("cannot connect stores to unknown processor '" + processor +
                                     "'");
    for (const auto& name : names) {
      auto user = std::find_if(store_users.begin(), store_users.end(),
                               [&](const auto& entry) { return entry.first.name == name; });
      if (user == store_users.end())
        return Status::InvalidArgument("processor '" + processor + "' is connected to store '" +
                                       name + "', which no AddStateStore defines");
      if (std::find(it->second.stores.begin(), it->second.stores.end(), name) ==
          it->second.stores.end())
        it->second.stores.push_back(name);
      user->second.push_back(processor);
    }
  }

  // Sub-topologies: connected components over parent edges and shared stores.
  std::map<std::string, std::string> root;
  for (const auto& [name, n] : t.nodes_) root[name] = name;
  std::function<std::string(const std::string&)> find = [&](const std::string& x) {
    return root[x] == x ? x : root[x] = find(root[x]);
  };
  auto unite = [&](const std::string& a, const std::string& b) { root[find(a)] = find(b); };
  for (const auto& [name, n] : t.nodes_) {
    for (const auto& parent : n.parents) unite(name, parent);
  }
  for (const auto& [spec, users] : store_users) {
    for (const auto& user : users) unite(user, users.front());
  }
  std::map<std::string, int> component_id;
  for (const auto& name : order) {  // numbered in topological order, so ids are stable
    auto r = find(name);
    if (component_id.count(r) == 0) {
      int id = static_cast<int>(component_id.size());
      component_id[r] = id;
      SubTopology fresh;
      fresh.id = id;
      t.subtopologies_.push_back(std::move(fresh));
    }
    SubTopology& sub = t.subtopologies_[component_id[r]];
    sub.nodes.push_back(name);
    const Node& n = t.nodes_.at(name);
    if (n.type == NodeType::kSource) {
      sub.source_topics.insert(sub.source_topics.end(), n.topics.begin(), n.topics.end());
    }
    if (n.type == NodeType::kSink) sub.sink_topics.push_back(n.topics.front());
    for (const auto& store : n.stores) {
      if (std::none_of(sub.stores.begin(), sub.stores.end(),
                       [&](const state::StoreSpec& s) { return s.name == store; })) {
        sub.stores.push_back(stores.at(store));
      }
    }
  }
  for (const auto& sub : t.subtopologies_) {
    if (sub.source_topics.empty()) {
      return Status::InvalidArgument("sub-topology " + std::to_string(sub.id) +
                                     " has no source, so no task could run it");
    }
  }
  std::set<std::string> global_names;
  for (const auto& g : global_stores_) {
    if (g.name.empty() || g.topic.empty())
      return Status::InvalidArgument("a global store needs a name and a topic");
    if (stores.count(g.name) != 0 || !global_names.insert(g.name).second)
      return Status::InvalidArgument("store '" + g.name + "' is defined twice");
    if (topic_reader.count(g.topic) != 0)
      return Status::InvalidArgument("topic '" + g.topic + "' is read by both global store '" +
                                     g.name + "' and '" + topic_reader.at(g.topic) + "'");
  }
  t.global_stores_ = global_stores_;
  return t;
}

}  // namespace cm::topology
