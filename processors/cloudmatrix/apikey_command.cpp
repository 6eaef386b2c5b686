#include <iostream>
#include <nlohmann/json.hpp>

#include "processors/auth/api_key.h"
#include "processors/cloudmatrix/command_line.h"
#include "processors/cloudmatrix/subcommand.h"
#include "topology/common/wall_clock.h"
#include "topology/kafka/kafka_client.h"

namespace cm::cloudmatrix {

namespace {

// Every record of the api-keys topic, the latest per key id (what a compacted topic keeps).
state::Result<std::map<std::string, auth::ApiKeyRecord>> ReadKeys(const Cluster& cluster) {
  std::map<std::string, auth::ApiKeyRecord> keys;
  auto counts = cluster.admin->PartitionCounts();
  if (!counts.ok()) return counts.status();
  auto it = counts->find(auth::kApiKeysTopic);
  if (it == counts->end()) return keys;  // no topic yet: no keys
  auto consumer = topology::NewKafkaClient(RD_KAFKA_CONSUMER, cluster.bootstrap,
                                           {{"group.id", "cmstream-apikey"}});
  if (!consumer.ok()) return consumer.status();
  for (int32_t p = 0; p < it->second; ++p) {
    int64_t low = 0, high = 0;
    if (auto s = topology::QueryWatermarks(consumer->get(), auth::kApiKeysTopic, p, low, high);
        !s.ok())
      return s;
    if (high <= low) continue;
    auto s = topology::ReadPartition(
        consumer->get(), auth::kApiKeysTopic, p, low, high, [&](const rd_kafka_message_t& m) {
          if (m.key == nullptr) return true;
          std::string key(static_cast<const char*>(m.key), m.key_len);
          if (m.payload == nullptr) {
            keys.erase(key);
            return true;
          }
          auto r = auth::ApiKeyRecord::Parse(
              std::string_view(static_cast<const char*>(m.payload), m.len));
          if (r) keys[key] = *r;
          return true;
        });
    if (!s.ok()) return s;
  }
  return keys;
}

state::Status WriteKey(const Cluster& cluster, const auth::ApiKeyRecord& record) {
  if (auto s = cluster.admin->EnsureTopics({{auth::kApiKeysTopic, 1, true}}); !s.ok()) return s;
  auto producer = topology::NewKafkaClient(RD_KAFKA_PRODUCER, cluster.bootstrap,
                                           {{"partitioner", "murmur2_random"}});
  if (!producer.ok()) return producer.status();
  const std::string value = record.Serialize();
  rd_kafka_resp_err_t err = rd_kafka_producev(
      producer->get(), RD_KAFKA_V_TOPIC(auth::kApiKeysTopic),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(const_cast<char*>(record.key_id.data()), record.key_id.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = rd_kafka_flush(producer->get(), 30'000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return state::Status::Unavailable(std::string("writing the key: ") + rd_kafka_err2str(err));
  return state::Status::OK();
}

class ApiKeyCommand final : public Subcommand {
 public:
  explicit ApiKeyCommand(CLI::App& app)
      : Subcommand(app.add_subcommand(
            "apikey",
            "create, list and revoke API keys in cloudmatrix.api-keys (through the "
            "broker; the same as the /v1/admin/api-keys routes)")) {
    cli_->require_subcommand(1);
    token_ = cli_->add_subcommand("token",
                                  "print a new random key for CM_ADMIN_KEY (nothing is written)");
    create_ = cli_->add_subcommand("create", "create a key and print it (shown only once)");
    AddBrokerFlags(create_, cluster_);
    create_->add_flag("--admin", admin_,
                      "an admin key (all organizations, every scope): only while the topic "
                      "holds no working admin key; later ones come from POST /v1/admin/api-keys");
    create_->add_option("--org", org_, "the organization the key belongs to");
    create_->add_option("--scopes", scopes_, "comma-separated scopes, e.g. usage:read,usage:write")
        ->delimiter(',');
    create_->add_option("--user", user_, "the user id the key acts as (the teams actor)");
    create_->add_option("--name", name_, "a label shown in listings");
    list_ = cli_->add_subcommand("list", "list the keys (never their secrets) as JSON lines");
    AddBrokerFlags(list_, cluster_);
    revoke_ = cli_->add_subcommand("revoke", "revoke a key everywhere");
    AddBrokerFlags(revoke_, cluster_);
    revoke_->add_option("key-id", revoke_id_, "the key id")->required();
  }

  int Execute() override {
    if (*token_) {
      auto key = auth::CreateApiKey("", {"admin"}, "", "", topology::WallClockMs());
      std::cout << key->token << '\n';
      return 0;
    }
    auto cluster = ConnectCluster(cluster_, false);
    if (!cluster.ok()) {
      std::cerr << "apikey: " << cluster.status().message() << '\n';
      return cluster.status().code() == state::Status::Code::kInvalidArgument ? 2 : 1;
    }
    auto keys = ReadKeys(*cluster);
    if (!keys.ok()) {
      std::cerr << "apikey: " << keys.status().message() << '\n';
      return 1;
    }
    if (*list_) {
      for (const auto& [id, r] : *keys) std::cout << r.ToPublicJson().dump() << '\n';
      return 0;
    }
    if (*revoke_) {
      auto it = keys->find(revoke_id_);
      if (it == keys->end()) {
        std::cerr << "apikey revoke: no key " << revoke_id_ << '\n';
        return 1;
      }
      if (!it->second.revoked()) {
        it->second.revoked_at = auth::IsoTime(topology::WallClockMs());
        if (auto s = WriteKey(*cluster, it->second); !s.ok()) {
          std::cerr << "apikey revoke: " << s.message() << '\n';
          return 1;
        }
      }
      std::cout << it->second.ToPublicJson().dump() << '\n';
      return 0;
    }
    if (admin_) {
      for (const auto& [id, r] : *keys) {
        if (!r.revoked() && r.organization.empty()) {
          std::cerr << "apikey create --admin: the topic already has a working admin key (" << id
                    << "); create further keys with POST /v1/admin/api-keys\n";
          return 1;
        }
      }
      scopes_ = {"admin"};
    }
    auto key = auth::CreateApiKey(org_, scopes_, user_, name_, topology::WallClockMs());
    if (!key.ok()) {
      std::cerr << "apikey create: " << key.status().message() << '\n';
      return 2;
    }
    if (auto s = WriteKey(*cluster, key->record); !s.ok()) {
      std::cerr << "apikey create: " << s.message() << '\n';
      return 1;
    }
    nlohmann::json out = key->record.ToPublicJson();
    out["key"] = key->token;
    std::cout << out.dump() << '\n';
    return 0;
  }

 private:
  CLI::App* token_;
  CLI::App* create_;
  CLI::App* list_;
  CLI::App* revoke_;
  BrokerFlags cluster_;
  bool admin_ = false;
  std::string org_, user_, name_, revoke_id_;
  std::vector<std::string> scopes_;
};

}  // namespace

std::unique_ptr<Subcommand> AddApiKeyCommand(CLI::App& app) {
  return std::make_unique<ApiKeyCommand>(app);
}

}  // namespace cm::cloudmatrix
