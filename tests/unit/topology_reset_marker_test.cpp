// topology::ResetMarker::Decode over what a resets topic can hold: a marker that cannot be
// read is Corruption, never an exception or a number made up from a float.
#include <gtest/gtest.h>

#include "topology/runtime/reset_marker.h"

namespace cm::topology {
namespace {

TEST(ResetMarker, RoundTrips) {
  ResetMarker m;
  m.id = "r-1";
  m.created_ms = 1714564800000;
  m.from = "beginning";
  m.offsets["cloudmatrix.events"] = {{0, 12}, {3, 0}};
  m.published["cloudmatrix.events"] = {{0, 12}};
  auto d = ResetMarker::Decode(m.Encode());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->id, m.id);
  EXPECT_EQ(d->created_ms, m.created_ms);
  EXPECT_EQ(d->from, m.from);
  EXPECT_EQ(d->offsets, m.offsets);
  EXPECT_EQ(d->published, m.published);
}

// Found by fuzz_state_codecs: createdMs of the wrong type threw out of Decode, and a float
// offset such as 1.7e50 was converted to int64_t (undefined behaviour).
TEST(ResetMarker, FieldsOfTheWrongTypeAreCorruption) {
  for (const char* text : {
           R"({"resetId":"r","createdMs":"yesterday","offsets":{}})",
           R"({"resetId":"r","createdMs":1.7e50,"offsets":{}})",
           R"({"resetId":"r","from":7,"offsets":{}})",
           R"({"resetId":"r","offsets":{"t":{"0":1.7e50}}})",
           R"({"resetId":"r","offsets":{"t":{"0":"12"}}})",
           R"({"resetId":"r","offsets":{"t":{"x":12}}})",
           R"({"resetId":"r","offsets":{"t":{"-1":12}}})",
           R"({"resetId":"r","offsets":{"t":[12]}})",
       }) {
    auto d = ResetMarker::Decode(text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_EQ(d.status().code(), state::Status::Code::kCorruption) << text;
  }
}

}  // namespace
}  // namespace cm::topology
