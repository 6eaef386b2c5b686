// The RabbitMQ bridge keys each event by its organizationId, from either envelope, and says
// why a message cannot be keyed (that reason becomes its dlq-reason header).
#include <gtest/gtest.h>

#include "bridges/rabbitmq/event_key.h"

namespace cm::rabbitmq {
namespace {

TEST(EventKeyTest, ReadsOrganizationIdOfAUsageEvent) {
  auto key = ExtractOrganizationId(
      R"({"eventId":"e1","organizationId":"org-7","eventType":"api.call","quantity":1})");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, "org-7");
}

TEST(EventKeyTest, ReadsOrganizationIdOfACloudEventFromDataOrExtension) {
  auto in_data = ExtractOrganizationId(
      R"({"specversion":"1.0","id":"c1","type":"api.call","source":"/api","data":{"organizationId":"org-d"}})");
  ASSERT_TRUE(in_data.ok()) << in_data.status().ToString();
  EXPECT_EQ(*in_data, "org-d");
  auto extension = ExtractOrganizationId(
      R"({"specversion":"1.0","id":"c2","type":"api.call","source":"/api","organizationid":"org-x"})");
  ASSERT_TRUE(extension.ok()) << extension.status().ToString();
  EXPECT_EQ(*extension, "org-x");
}

TEST(EventKeyTest, SaysWhyAMessageCannotBeKeyed) {
  struct Case {
    const char* body;
    const char* reason;
  };
  for (const Case& c :
       {Case{"not json {", "not valid JSON"}, Case{"", "not valid JSON"},
        Case{"[1,2]", "not a JSON object"},
        Case{"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]"
             "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
             "JSON nested deeper than 64 levels"},
        Case{R"({"eventId":"e1"})", "no organizationId"},
        Case{R"({"organizationId":42})", "organizationId must be a non-empty string"},
        Case{R"({"organizationId":""})", "organizationId must be a non-empty string"},
        Case{R"({"specversion":"1.0","id":"c","data":{}})", "no organizationId"}}) {
    auto key = ExtractOrganizationId(c.body);
    ASSERT_FALSE(key.ok()) << c.body;
    EXPECT_EQ(key.status().message(), c.reason) << c.body;
  }
}

}  // namespace
}  // namespace cm::rabbitmq
