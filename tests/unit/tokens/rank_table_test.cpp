#include "tokens/rank_table.hpp"

#include <string>

#include <gtest/gtest.h>

#include "services/child.hpp"

namespace orchestra::tokens {
namespace {

// The 256 single bytes (ranks 0-255, base64 of each), then `extra` lines.
std::string ByteTable(const std::string& extra = {}) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string text;
  for (int b = 0; b < 256; ++b) {
    text += alphabet[b >> 2];
    text += alphabet[(b & 3) << 4];
    text += "== " + std::to_string(b) + "\n";
  }
  return text + extra;
}

Rank FindText(const RankTable& t, std::string_view s) {
  return t.Find(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

TEST(RankTable, ParsesTiktokenTextAndFindsTokens) {
  // "aGk=" is "hi", "aGVsbG8=" "hello", "IHdvcmxk" " world".
  auto table = RankTable::Parse(ByteTable("aGk= 256\naGVsbG8= 257\nIHdvcmxk 258\n"), 259);
  ASSERT_TRUE(table) << table.error().message;
  EXPECT_EQ(table->Size(), 259u);
  EXPECT_EQ(FindText(*table, "hi"), 256u);
  EXPECT_EQ(FindText(*table, "hello"), 257u);
  EXPECT_EQ(FindText(*table, " world"), 258u);
  EXPECT_EQ(FindText(*table, "a"), static_cast<Rank>('a'));
  EXPECT_EQ(table->ByteRank(0xFF), 255u);
  EXPECT_EQ(FindText(*table, "hell"), kNoRank);
  EXPECT_EQ(FindText(*table, "hello!"), kNoRank);
  EXPECT_EQ(FindText(*table, std::string(300, 'x')), kNoRank);
  EXPECT_EQ(table->Bytes(257), "hello");
  EXPECT_EQ(table->MaxTokenBytes(), 6u);
}

TEST(RankTable, RejectsMalformedFilesWithTheLine) {
  struct Case {
    std::string text;
    std::size_t count;
    std::string_view message;
  };
  const Case cases[] = {
      {ByteTable("aGk=256\n"), 257, "line 257: expected"},
      {ByteTable("aGk= x\n"), 257, "line 257: bad rank"},
      {ByteTable("aGk= 300\n"), 257, "line 257: ranks are not"},
      {ByteTable("a*k= 256\n"), 257, "line 257: bad base64"},
      {ByteTable("aGk 256\n"), 257, "line 257: bad base64"},
      {ByteTable("aGk= 256\n"), 300, "257 tokens where 300 were expected"},
      {ByteTable("aGk= 256\naGk= 257\n"), 258, "token 257 appears twice"},
      {ByteTable("aGk= 256\n"), 256, "line 257: more tokens"},
      {"YQ== 0\n", 1, "byte 0 is not a token"},
      {"", 0, "unsupported vocabulary size"},
  };
  for (const Case& c : cases) {
    auto table = RankTable::Parse(c.text, c.count);
    ASSERT_FALSE(table) << c.message;
    EXPECT_EQ(table.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(table.error().message.find(c.message), std::string::npos) << table.error().message;
  }
}

TEST(RankTable, LoadNamesTheFileItCannotRead) {
  const orchestra::testing::services::ScratchDir dir("tokens-ranks");
  auto table = RankTable::Load(dir.path() + "/absent.tiktoken", 256);
  ASSERT_FALSE(table);
  EXPECT_NE(table.error().message.find(dir.path() + "/absent.tiktoken"), std::string::npos);
}

}  // namespace
}  // namespace orchestra::tokens
