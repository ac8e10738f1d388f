#include "providers/local/tokens.hpp"

#include <gtest/gtest.h>

namespace orchestra::providers::local {
namespace {

TEST(Tokens, WordsAreLowerCaseLetterAndDigitRuns) {
  const Tokens t = Tokenize("Hello, World! GPT-4o costs $0.15 -- café crème.");
  std::vector<std::string_view> expected{"hello", "world", "gpt",  "4o",   "costs",
                                         "0",     "15",    "café", "crème"};
  EXPECT_EQ(t.words, expected);
  EXPECT_EQ(CountWords("Hello, World! GPT-4o costs $0.15 -- café crème."), expected.size());
  EXPECT_TRUE(Tokenize("  ...  ").words.empty());
  EXPECT_EQ(CountWords(""), 0u);
}

TEST(Tokens, StopwordsAreFunctionWords) {
  EXPECT_TRUE(IsStopword("the"));
  EXPECT_TRUE(IsStopword("what"));
  EXPECT_TRUE(IsStopword("yourselves"));
  EXPECT_FALSE(IsStopword("password"));
  EXPECT_FALSE(IsStopword(""));
}

TEST(Tokens, StemmingMatchesInflections) {
  EXPECT_EQ(Stem("passwords"), "password");
  EXPECT_EQ(Stem("stories"), "story");
  EXPECT_EQ(Stem("boxes"), "box");
  EXPECT_EQ(Stem("running"), Stem("run"));
  EXPECT_EQ(Stem("played"), Stem("plays"));
  EXPECT_EQ(Stem("quickly"), "quick");
  EXPECT_EQ(Stem("class"), "class");
  EXPECT_EQ(Stem("status"), "status");
  EXPECT_EQ(Stem("is"), "is");
  EXPECT_EQ(Stem("sing"), "sing");  // no vowel would be left
}

}  // namespace
}  // namespace orchestra::providers::local
