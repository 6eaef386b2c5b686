// The webhooks stores as Postgres snapshot rows (processors/webhooks/webhooks_snapshot_schema.h),
// decoded from the entries the processor really writes (webhooks_test_support.h): an endpoint
// row without its secret, a delivery row, one attempts row per attempt, and no rows for the
// event records, the history index or the health store.
#include "processors/webhooks/webhooks_snapshot_schema.h"

#include <gtest/gtest.h>

#include <map>

#include "webhooks_test_support.h"

namespace cm::webhooks {
namespace {

using nlohmann::json;
using testing::Status;
using testing::WebhooksHarness;
using Row = topology::SnapshotTable::Row;

// table -> the rows of every entry of its store, as the snapshot writer decodes them.
std::map<std::string, std::vector<Row>> Rows(const topology::SnapshotSchema& schema,
                                             state::TaskState& task) {
  std::map<std::string, std::vector<Row>> out;
  for (const auto& t : schema.tables) {
    auto& rows = out[t.table];
    task.key_value_store(t.store)->PrefixScan("", [&](std::string_view k, std::string_view v) {
      if (t.decode_rows) {
        if (auto r = t.decode_rows(k, v)) rows.insert(rows.end(), r->begin(), r->end());
      } else if (auto r = t.decode(k, v)) {
        rows.push_back(*r);
      }
      return true;
    });
  }
  return out;
}

std::string Text(const Row& row, size_t i) { return row.at(i).value_or("NULL"); }

TEST(WebhooksSnapshotSchemaTest, EndpointDeliveryAndAttemptsRowsWithoutTheSecret) {
  WebhooksHarness h;
  int calls = 0;
  h.Respond([&](const DeliveryRequest&) { return Status(++calls == 1 ? 500 : 200, 20); });
  json endpoint = h.Register("org-a", json::array({"*"}));
  const std::string id = endpoint["id"];
  h.Event("org-a", "evt-1");
  h.Tick(1);                                   // a 500
  h.Tick(1, h.options().retry.base_delay_ms);  // the retry: a 200
  ASSERT_EQ(h.DeliveryOf("org-a", "evt-1").value("status", ""), "succeeded");

  const auto schema = WebhooksSnapshotSchema();
  EXPECT_FALSE(schema.HasStore(kHealthStore));
  EXPECT_FALSE(schema.HasStore(kCommandResultsStore));
  auto& task = h.driver().TaskFor(testing::kCommands, "org-a").state();
  auto rows = Rows(schema, task);
  ASSERT_EQ(rows["webhooks_endpoints"].size(), 1u);
  ASSERT_EQ(rows["webhooks_deliveries"].size(), 1u);  // not the event record nor the history
  ASSERT_EQ(rows["webhooks_attempts"].size(), 2u);
  for (const auto& [table, table_rows] : rows) {
    for (const auto& row : table_rows) {
      for (const auto& field : row)
        EXPECT_EQ(field.value_or("").find("whsec_"), std::string::npos) << table;
    }
  }
  const Row& e = rows["webhooks_endpoints"][0];
  EXPECT_EQ(Text(e, 0), "org-a");
  EXPECT_EQ(Text(e, 1), id);
  EXPECT_EQ(Text(e, 3), "[\"*\"]");
  EXPECT_EQ(Text(e, 4), "true");
  EXPECT_EQ(Text(e, 11), "closed");
  EXPECT_EQ(Text(e, 12) + "/" + Text(e, 13) + "/" + Text(e, 14), "2/1/1");
  EXPECT_EQ(Text(e, 17), "succeeded");

  const Row& d = rows["webhooks_deliveries"][0];
  EXPECT_EQ(Text(d, 2), id);
  EXPECT_EQ(Text(d, 3), "evt-1");
  EXPECT_EQ(Text(d, 5), "succeeded");
  EXPECT_EQ(Text(d, 6), "2");
  EXPECT_EQ(Text(d, 9), "200");
  EXPECT_EQ(Text(d, 11), "NULL");  // no error class once it succeeded

  const auto& a = rows["webhooks_attempts"];
  EXPECT_EQ(Text(a[0], 1), Text(d, 1));
  EXPECT_EQ(Text(a[0], 2) + ":" + Text(a[0], 5) + ":" + Text(a[0], 7) + ":" + Text(a[0], 8),
            "1:500:false:http_5xx");
  EXPECT_EQ(Text(a[1], 2) + ":" + Text(a[1], 5) + ":" + Text(a[1], 7) + ":" + Text(a[1], 8),
            "2:200:true:NULL");
  EXPECT_EQ(Text(a[1], 3), id);

  // A deleted key: the key columns only; for the attempts, the delivery whose rows all go.
  const auto& attempts = schema.tables[2];
  ASSERT_EQ(attempts.table, "webhooks_attempts");
  EXPECT_EQ(attempts.entry_columns, 2u);
  auto gone = attempts.decode_rows(keys::Delivery("org-a", Text(d, 1)), std::nullopt);
  ASSERT_TRUE(gone && gone->size() == 1);
  EXPECT_EQ((*gone)[0], (Row{"org-a", Text(d, 1)}));
  EXPECT_FALSE(attempts.decode_rows(keys::Event("org-a", "evt-1"), std::nullopt));
  auto endpoint_gone = schema.tables[0].decode(keys::Endpoint("org-a", id), std::nullopt);
  ASSERT_TRUE(endpoint_gone);
  EXPECT_EQ(*endpoint_gone, (Row{"org-a", id}));
}

}  // namespace
}  // namespace cm::webhooks
