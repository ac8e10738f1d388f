#include "storage/glob.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace orchestra::storage {
namespace {

struct GlobCase {
  std::string pattern;
  std::string text;
  bool matches;
};

TEST(Glob, MatchesLikeRedisGlobsButByCharacter) {
  const std::vector<GlobCase> cases = {
      {"*", "", true},
      {"*", "anything", true},
      {"", "anything", true},  // empty means *
      {"user:*", "user:1", true},
      {"user:*", "user:", true},
      {"user:*", "admin:1", false},
      {"user:?", "user:1", true},
      {"user:?", "user:10", false},
      {"user:?", "user:", false},
      {"?:x", "ü:x", true},  // one character, two bytes
      {"[abc]x", "bx", true},
      {"[abc]x", "dx", false},
      {"[a-c]x", "cx", true},
      {"[!a-c]x", "cx", false},
      {"[^a-c]x", "dx", true},
      {"[!a]", "ü", true},
      {"a\\*b", "a*b", true},
      {"a\\*b", "axb", false},
      {"[\\]]", "]", true},
      {"*a*b*c", "xxaxxbxxc", true},
      {"*a*b*c", "xxaxxcxxb", false},
      {"a*a*a*a*a*a*a*b", std::string(200, 'a'), false},  // no exponential backtracking
      {"**x", "abx", true},
      {"k-[0-9][0-9]", "k-42", true},
  };
  for (const GlobCase& c : cases) {
    auto glob = Glob::Parse(c.pattern);
    ASSERT_TRUE(glob.has_value()) << c.pattern;
    EXPECT_EQ(glob->Matches(c.text), c.matches) << c.pattern << " vs " << c.text;
  }
}

TEST(Glob, RejectsMalformedPatterns) {
  for (const std::string& bad : std::vector<std::string>{
           "[abc", "[]", "a\\", "[z-a]", "[!]", "\xff", std::string(kMaxPatternBytes + 1, 'a')}) {
    auto glob = Glob::Parse(bad);
    ASSERT_FALSE(glob.has_value()) << bad;
    EXPECT_EQ(glob.error().code, ErrorCode::kInvalidRequest);
    EXPECT_EQ(glob.error().param, "pattern");
  }
}

TEST(Glob, ExposesTheLiteralPrefix) {
  EXPECT_EQ(Glob::Parse("user:*").value().literal_prefix(), "user:");
  EXPECT_EQ(Glob::Parse("us?r").value().literal_prefix(), "us");
  EXPECT_EQ(Glob::Parse("a\\*b*").value().literal_prefix(), "a*b");
  EXPECT_EQ(Glob::Parse("*").value().literal_prefix(), "");
  EXPECT_TRUE(Glob::Parse("").value().matches_everything());
}

TEST(Glob, TranslatesForRedisAsAWiderPattern) {
  EXPECT_EQ(Glob::Parse("a?b[cd]*").value().ToRedisMatch("o:kv:1:*:"), "o:kv:1:\\*:a*b*");
  EXPECT_EQ(Glob::Parse("x\\[y").value().ToRedisMatch(""), "x\\[y");
}

TEST(Glob, TranslatesForPostgresExactly) {
  EXPECT_EQ(Glob::Parse("user:*").value().ToPostgresRegex(), "^user\\:.*$");
  EXPECT_EQ(Glob::Parse("a.b?").value().ToPostgresRegex(), "^a\\.b.$");
  EXPECT_EQ(Glob::Parse("[!a-c\\]]").value().ToPostgresRegex(), "^[^a-c\\]]$");
}

}  // namespace
}  // namespace orchestra::storage
