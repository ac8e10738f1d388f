#include "api/query.hpp"

#include <gtest/gtest.h>

namespace orchestra::api {
namespace {

constexpr std::string_view kNames[] = {"pattern", "limit", "cursor"};

TEST(QueryParams, DecodesNamesAndValuesAsAFormDoes) {
  auto q = QueryParams::Parse("pattern=a%2Ab+c&&cursor=&limit=7", kNames);
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ(*q->Get("pattern"), "a*b c");
  EXPECT_EQ(*q->Get("cursor"), "");
  EXPECT_EQ(q->Integer("limit", 20, 1, 100).value(), 7);
  EXPECT_EQ(QueryParams::Parse("", kNames)->Get("limit"), nullptr);
  EXPECT_EQ(QueryParams::Parse("", kNames)->Integer("limit", 20, 1, 100).value(), 20);
}

TEST(QueryParams, RefusesUnknownRepeatedAndBrokenParameters) {
  auto unknown = QueryParams::Parse("limt=5", kNames);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(unknown.error().param, "limt");
  EXPECT_NE(unknown.error().message.find("expected pattern, limit, cursor"), std::string::npos);
  EXPECT_NE(unknown.error().message.find("did you mean 'limit'"), std::string::npos);

  auto repeated = QueryParams::Parse("limit=5&limit=500", kNames);
  ASSERT_FALSE(repeated);
  EXPECT_EQ(repeated.error().param, "limit");
  EXPECT_NE(repeated.error().message.find("more than once"), std::string::npos);

  auto broken = QueryParams::Parse("cursor=%zz", kNames);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().param, "cursor");
  EXPECT_FALSE(QueryParams::Parse("%=1", kNames));
  // An encoded name is the name it decodes to.
  auto encoded = QueryParams::Parse("%6Cimit=3", kNames);
  ASSERT_TRUE(encoded);
  EXPECT_EQ(encoded->Integer("limit", 20, 1, 100).value(), 3);
}

TEST(QueryParams, IntegersMustBeWholeAndInRange) {
  for (std::string_view bad : {"limit=0", "limit=101", "limit=", "limit=1.5", "limit=-1",
                               "limit=5x", "limit=99999999999999999999"}) {
    auto q = QueryParams::Parse(bad, kNames);
    ASSERT_TRUE(q) << bad;
    auto limit = q->Integer("limit", 20, 1, 100);
    ASSERT_FALSE(limit) << bad;
    EXPECT_EQ(limit.error().param, "limit");
    EXPECT_NE(limit.error().message.find("from 1 to 100"), std::string::npos);
  }
}

}  // namespace
}  // namespace orchestra::api
