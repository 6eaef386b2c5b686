// The webhooks stores snapshotted to the real Postgres of ops/services through the same
// snapshotter as usage and teams (migrations/0003_webhooks_snapshot_tables.sql): endpoints with
// their stats and no secret anywhere, deliveries, and one attempts row per attempt, all
// delivered for real (the HTTP bridge to a local HTTPS receiver, outcomes through
// cloudmatrix.webhook-attempts); a deleted endpoint's row goes; the README's success-rate query
// over the snapshot answers what the receiver saw.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "bridges/http/address_policy.h"
#include "bridges/postgres/migrator.h"
#include "bridges/postgres/snapshotter.h"
#include "kafka_clients.h"
#include "processors/cloudmatrix/webhook_attempt_log.h"
#include "processors/cloudmatrix/webhook_transport_http.h"
#include "processors/webhooks/webhook_sender.h"
#include "processors/webhooks/webhooks_snapshot_schema.h"
#include "snapshot_figures.h"
#include "usage_instance.h"
#include "webhook_sink.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Reply = testing::WebhookSink::Reply;

class WebhooksSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    postgres::MigratorOptions m;
    m.database_url = testing::DatabaseUrl();
    m.schema = schema_;
    m.migrations_dir = std::string(CM_SOURCE_DIR) + "/migrations";
    ASSERT_TRUE(postgres::Migrator::Run(m).ok());
    dir_ = std::filesystem::temp_directory_path() / ("cm-it-webhooks-snapshot-" + schema_);
    std::filesystem::remove_all(dir_);
    auto broker = testing::StartUsageBroker(2);
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();

    // The first attempt at /a fails with a 500, the rest succeed; /b answers 204.
    sink_.SetResponder([this](const testing::WebhookSink::Request& r) {
      if (r.path == "/a") return Reply::Status(a_requests_++ == 0 ? 500 : 200);
      return Reply::Status(204);
    });
    webhooks::WebhooksOptions w;
    w.retry.base_delay_ms = 200;  // the retry after the 500 comes soon
    w.retry.max_delay_ms = 200;
    w.retry.jitter = 0;
    auto log = cloudmatrix::KafkaAttemptLog::Create(broker_->bootstrap_servers(), w.attempts_topic);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    http::DeliveryClientOptions client;
    auto policy = http::AddressPolicy::FromAllowList("127.0.0.0/8");
    ASSERT_TRUE(policy.ok()) << policy.status().ToString();
    client.policy = std::move(policy).value();
    client.ca_file = sink_.ca_file();
    sender_ = std::make_shared<webhooks::WebhookSender>(
        std::make_unique<cloudmatrix::HttpWebhookTransport>(std::move(client)),
        std::move(log).value(), webhooks::WebhookSenderOptions{4, 2, 256});
    w.sender = sender_;

    postgres::SnapshotterOptions so;
    so.database_url = testing::DatabaseUrl();
    so.schema = schema_;
    so.interval = 200ms;
    so.min_backoff = 100ms;
    snapshotter_ = std::make_unique<postgres::Snapshotter>(webhooks::WebhooksSnapshotSchema(), so);
    snapshotter_->Start();
    instance_ = std::make_unique<testing::UsageInstance>(
        *broker_, testing::UsageInstanceOptions{.application_id = "it-webhooks-snapshot",
                                                .state_dir = (dir_ / "state").string(),
                                                .webhooks = w,
                                                .snapshot_listener = snapshotter_.get()});
    auto started = instance_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  void TearDown() override {
    instance_.reset();
    if (sender_) sender_->Stop();
    if (snapshotter_) snapshotter_->Stop();
    testing::DropSchema(schema_);
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  json Call(const std::string& method, const std::string& path, const json& body, int expected) {
    auto& c = instance_->client();
    auto r = method == "POST"     ? c.Post(path, body.dump(), "application/json")
             : method == "DELETE" ? c.Delete(path, body.dump(), "application/json")
                                  : c.Get(path);
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, expected) << method << " " << path << ": " << r->body;
    return json::parse(r->body, nullptr, false);
  }

  std::set<std::string> Column(const std::string& sql) {
    pqxx::connection conn(testing::DatabaseUrl());
    pqxx::read_transaction tx(conn);
    std::set<std::string> out;
    for (const auto& row :
         tx.exec("SET LOCAL search_path TO " + tx.quote_name(schema_) + "; " + sql))
      out.insert(row[0].is_null() ? "NULL" : row[0].as<std::string>());
    return out;
  }

  // Waits until `sql`'s first column is `expected` (the snapshot runs every 200 ms; the retry
  // after a 500 comes 200 ms later).
  void AwaitRows(const std::string& sql, const std::set<std::string>& expected) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    std::set<std::string> got;
    while (std::chrono::steady_clock::now() < deadline) {
      got = Column(sql);
      if (got == expected) return;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << sql << "\ngot " << json(got).dump() << "\nwant " << json(expected).dump();
  }

  std::string schema_ = testing::UniqueSchema("it_webhooks_snapshot");
  std::filesystem::path dir_;
  testing::WebhookSink sink_;
  std::atomic<int> a_requests_{0};
  std::unique_ptr<testing::TestBroker> broker_;
  std::shared_ptr<webhooks::WebhookSender> sender_;
  std::unique_ptr<postgres::Snapshotter> snapshotter_;
  std::unique_ptr<testing::UsageInstance> instance_;
};

TEST_F(WebhooksSnapshotTest, EndpointsDeliveriesAndAttemptsReachPostgresAndSecretsNever) {
  json a = Call("POST", "/v1/webhooks",
                {{"organizationId", "org-w"},
                 {"url", sink_.url("/a")},
                 {"events", {"*"}},
                 {"description", "billing"},
                 {"headers", {{"X-Team", "billing"}}}},
                201);
  json b =
      Call("POST", "/v1/webhooks",
           {{"organizationId", "org-w"}, {"url", sink_.url("/b")}, {"events", {"team.*"}}}, 201);
  const std::string wa = a["id"], wb = b["id"];
  const std::string secret_a = a["secret"], secret_b = b["secret"];
  ASSERT_TRUE(secret_a.starts_with("whsec_")) << a.dump();

  Call("POST", "/v1/webhooks/events",
       {{"organizationId", "org-w"},
        {"eventId", "evt-1"},
        {"eventType", "team.created"},
        {"data", {{"teamId", "t1"}}}},
       202);

  // /a: a 500, then a 200 after the retry; /b: a 204 at once.
  AwaitRows(
      "SELECT webhook_id || ':' || event_id || ':' || event_type || ':' || status || ':' || "
      "attempt_number || ':' || response_status || ':' || coalesce(error_class, 'NULL') || ':' "
      "|| (finished_at IS NOT NULL) FROM webhooks_deliveries WHERE organization_id = 'org-w'",
      {wa + ":evt-1:team.created:succeeded:2:200:NULL:true",
       wb + ":evt-1:team.created:succeeded:1:204:NULL:true"});
  AwaitRows(
      "SELECT a.webhook_id || ':' || a.attempt_number || ':' || a.response_status || ':' || "
      "a.success || ':' || coalesce(a.error_class, 'NULL') || ':' || "
      "(a.attempted_at <= d.finished_at) FROM webhooks_attempts a JOIN webhooks_deliveries d "
      "USING (organization_id, delivery_id)",
      {wa + ":1:500:false:http_5xx:true", wa + ":2:200:true:NULL:true",
       wb + ":1:204:true:NULL:true"});
  // The receiver saw exactly those requests.
  EXPECT_EQ(a_requests_.load(), 2);
  EXPECT_EQ(sink_.requests().size(), 3u);
  // The attempts rows are the delivery's attempts as the API shows them.
  json history = Call("GET", "/v1/webhooks/" + wa + "/deliveries", json::object(), 200);
  ASSERT_TRUE(history.contains("deliveries")) << history.dump();
  ASSERT_EQ(history["deliveries"].size(), 1u) << history.dump();
  const json& delivery = history["deliveries"][0];
  std::set<std::string> api_attempts;
  for (const auto& t : delivery.value("attempts", json::array()))
    api_attempts.insert(std::to_string(t["attemptNumber"].get<int>()) + ":" +
                        std::to_string(t.value("responseStatus", 0)) + ":" +
                        t["attemptedAt"].get<std::string>());
  EXPECT_EQ(Column("SELECT attempt_number || ':' || response_status || ':' || "
                   "to_char(attempted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
                   "FROM webhooks_attempts WHERE delivery_id = '" +
                   delivery["id"].get<std::string>() + "'"),
            api_attempts);

  // Endpoints: what GET shows, with the stats once both deliveries ended.
  AwaitRows(
      "SELECT webhook_id || ':' || url || ':' || events::text || ':' || active || ':' || "
      "coalesce(description, 'NULL') || ':' || headers::text || ':' || circuit_state || ':' || "
      "total_deliveries || '/' || successful_deliveries || '/' || failed_deliveries || ':' || "
      "coalesce(last_delivery_status, 'NULL') FROM webhooks_endpoints",
      {wa + ":" + sink_.url("/a") +
           ":[\"*\"]:true:billing:{\"X-Team\": \"billing\"}:closed:2/1/1:" + "succeeded",
       wb + ":" + sink_.url("/b") + ":[\"team.*\"]:true::{}:closed:1/1/0:succeeded"});
  json shown = Call("GET", "/v1/webhooks/" + wa, json::object(), 200);
  const std::set<std::string> average = Column(
      "SELECT average_response_time_ms FROM webhooks_endpoints WHERE webhook_id = '" + wa + "'");
  ASSERT_EQ(average.size(), 1u);
  EXPECT_DOUBLE_EQ(std::stod(*average.begin()),
                   shown["stats"]["averageResponseTimeMs"].get<double>())
      << shown.dump();

  // No secret in any column of any row: neither the prefix nor either secret's body.
  for (const char* table : {"webhooks_endpoints", "webhooks_deliveries", "webhooks_attempts"}) {
    for (const std::string& needle :
         {std::string("whsec_"), secret_a.substr(6), secret_b.substr(6)}) {
      EXPECT_TRUE(Column("SELECT t::text FROM " + std::string(table) + " t WHERE t::text LIKE '%" +
                         needle + "%'")
                      .empty())
          << table << " holds " << needle;
    }
  }

  // The README's success rate per endpoint over the last day.
  EXPECT_EQ(Column(R"(
    SELECT webhook_id || ' ' || count(*) || ' ' ||
           round(100.0 * count(*) FILTER (WHERE success) / count(*), 1)
      FROM webhooks_attempts
     WHERE organization_id = 'org-w' AND attempted_at > now() - interval '1 day'
     GROUP BY webhook_id)"),
            (std::set<std::string>{wa + " 2 50.0", wb + " 1 100.0"}));

  // Deleting an endpoint deletes its row; its delivery (ended) and attempts stay as history.
  Call("DELETE", "/v1/webhooks/" + wb, json::object(), 200);
  AwaitRows("SELECT webhook_id FROM webhooks_endpoints", {wa});
  AwaitRows("SELECT DISTINCT webhook_id FROM webhooks_attempts", {wa, wb});
}

}  // namespace
}  // namespace cm
