#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "processors/cloudmatrix/command_line.h"
#include "processors/cloudmatrix/subcommand.h"
#include "topology/common/log.h"
#include "topology/kafka/embedded_broker.h"
#include "topology/query/http_server.h"

namespace cm::cloudmatrix {

using topology::HttpResponse;
using topology::Log;
using topology::LogLevel;

namespace {

class BrokerCommand final : public Subcommand {
 public:
  explicit BrokerCommand(CLI::App& app)
      : Subcommand(app.add_subcommand(
            "broker", "host the embedded Kafka-protocol broker (development and tests)")) {
    CLI::App* cmd = cli_;
    cmd->add_option("--admin-http", admin_http_, "HOST:PORT of the topic admin endpoint")
        ->envname("CM_BROKER_ADMIN_HTTP")
        ->capture_default_str();
    cmd->add_option("--info-file", info_file_, "write {bootstrap, admin} JSON here");
    cmd->add_option("--topic", topics_, "create NAME:PARTITIONS at start (repeatable)");
  }

  int Execute() override {
    sigset_t signals = BlockTerminationSignals();
    auto admin_hp = ParseHostPort(admin_http_);
    if (!admin_hp.ok()) {
      std::cerr << admin_hp.status().message() << '\n';
      return 2;
    }
    std::vector<std::pair<std::string, int>> topics;
    for (const auto& spec : topics_) {
      auto colon = spec.rfind(':');
      std::string name = spec.substr(0, colon);
      int partitions = 8;
      if (colon != std::string::npos) {
        const char* first = spec.data() + colon + 1;
        const char* last = spec.data() + spec.size();
        auto [end, err] = std::from_chars(first, last, partitions);
        if (err != std::errc() || end != last || partitions < 1 || partitions > 10'000) {
          std::cerr << "--topic " << spec << ": expected NAME:PARTITIONS with 1..10000\n";
          return 2;
        }
      }
      if (name.empty()) {
        std::cerr << "--topic " << spec << ": the topic needs a name\n";
        return 2;
      }
      topics.emplace_back(name, partitions);
    }
    auto started = topology::EmbeddedBroker::Start();
    if (!started.ok()) {
      Log(LogLevel::kError, "broker_failed", {{"error", started.status().ToString()}});
      return 1;
    }
    auto broker = std::move(started).value();
    for (const auto& [name, partitions] : topics) {
      if (auto s = broker->CreateTopic(name, partitions); !s.ok()) {
        Log(LogLevel::kError, "topic_failed", {{"error", s.ToString()}});
        return 1;
      }
    }
    // The admin endpoint stands in for the Admin API the embedded broker lacks; it is as open
    // as the broker's own Kafka port (a development broker on loopback, DESIGN.md §3).
    topology::HttpServer server;
    server.Route(
        "POST", "/topics", topology::RouteAccess::Public(), [&](const topology::HttpRequest& req) {
          auto body = nlohmann::json::parse(req.body, nullptr, false);
          if (!body.is_array())
            return HttpResponse::Error(400, "validation_error", "expected [{name, partitions}]");
          for (const auto& t : body) {
            if (!t.contains("name") || !t["name"].is_string() || !t.contains("partitions") ||
                !t["partitions"].is_number_integer() || t["partitions"].get<int>() < 1) {
              return HttpResponse::Error(400, "validation_error",
                                         "each topic needs a name and partitions >= 1");
            }
            if (auto s = broker->CreateTopic(t["name"], t["partitions"]); !s.ok()) {
              return HttpResponse::FromStatus(s);
            }
          }
          return HttpResponse::Json(200, {{"created", body.size()}});
        });
    if (auto s = server.Start(admin_hp->host, admin_hp->port); !s.ok()) {
      Log(LogLevel::kError, "http_failed", {{"error", s.ToString()}});
      return 1;
    }
    nlohmann::json info = {
        {"bootstrap", broker->bootstrap_servers()},
        {"admin", "http://" + admin_hp->host + ":" + std::to_string(server.port())}};
    if (!info_file_.empty()) {
      std::string tmp = info_file_ + ".tmp";
      std::ofstream(tmp) << info.dump() << '\n';
      std::rename(tmp.c_str(), info_file_.c_str());  // readers never see a half-written file
    }
    std::cout << info.dump() << std::endl;
    Log(LogLevel::kInfo, "broker_started", info);
    WaitForSignal(signals, [] { return true; });
    server.Stop();
    return 0;
  }

 private:
  std::string admin_http_ = "127.0.0.1:0";
  std::string info_file_;
  std::vector<std::string> topics_;
};

}  // namespace

std::unique_ptr<Subcommand> AddBrokerCommand(CLI::App& app) {
  return std::make_unique<BrokerCommand>(app);
}

}  // namespace cm::cloudmatrix
