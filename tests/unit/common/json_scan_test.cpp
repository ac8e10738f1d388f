#include "common/json_scan.hpp"

#include <map>

#include <gtest/gtest.h>

namespace orchestra {
namespace {

std::map<std::string, std::string> Members(std::string_view text) {
  std::map<std::string, std::string> out;
  auto kind = ScanJson(text, [&](std::string_view key, const JsonSpan& v) {
    out[std::string(key)] = std::string(v.In(text));
  });
  EXPECT_EQ(kind, JsonKind::kObject) << text;
  return out;
}

TEST(ScanJson, ReportsTopLevelMembersWithExactSpans) {
  std::string_view text =
      R"( { "model" : "gpt-4o" , "stream":true, "messages":[{"role":"user","content":"hi \"x\""}],)"
      R"( "n": -1.5e3, "stop": null, "x": {"model": "inner"} } )";
  auto m = Members(text);
  EXPECT_EQ(m["model"], "\"gpt-4o\"");
  EXPECT_EQ(m["stream"], "true");
  EXPECT_EQ(m["messages"], R"([{"role":"user","content":"hi \"x\""}])");
  EXPECT_EQ(m["n"], "-1.5e3");
  EXPECT_EQ(m["stop"], "null");
  EXPECT_EQ(m["x"], R"({"model": "inner"})");
  EXPECT_EQ(m.size(), 6u);
}

TEST(ScanJson, RejectsMalformedDocumentsWithAnOffset) {
  for (const char* bad : {"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "{\"a\":tru}",
                          "{\"a\":\"x}", "{\"a\":01}", "{\"a\":1} x", "{\"a\":\"\\q\"}",
                          "{\"a\":\"\x01\"}", "{a:1}", "{\"a\":1.}", "{\"a\":-}"}) {
    JsonScanError error;
    auto kind = ScanJson(
        bad, [](std::string_view, const JsonSpan&) {}, &error);
    EXPECT_FALSE(kind.has_value()) << bad;
    EXPECT_NE(std::string(error.what), "") << bad;
  }
}

TEST(ScanJson, LimitsNesting) {
  std::string deep = "{\"a\":" + std::string(200, '[') + std::string(200, ']') + "}";
  EXPECT_FALSE(ScanJson(deep, [](std::string_view, const JsonSpan&) {}).has_value());
}

TEST(ScanJson, AcceptsNonObjectDocuments) {
  auto ignore = [](std::string_view, const JsonSpan&) {};
  EXPECT_EQ(ScanJson("[1, 2]", ignore), JsonKind::kArray);
  EXPECT_EQ(ScanJson(" \"s\" ", ignore), JsonKind::kString);
  EXPECT_EQ(ScanJson("12", ignore), JsonKind::kNumber);
}

TEST(ScanJson, WithAnEndPointerReadsAValueThatOtherTextFollows) {
  auto ignore = [](std::string_view, const JsonSpan&) {};
  std::size_t end = 0;
  int members = 0;
  auto kind = ScanJson(R"({"a":1,"b":[2]}, "rest": })",
                       [&](std::string_view, const JsonSpan&) { ++members; }, nullptr, &end);
  EXPECT_EQ(kind, JsonKind::kObject);
  EXPECT_EQ(end, 15u);
  EXPECT_EQ(members, 2);
  EXPECT_EQ(ScanJson("[1,2] x", ignore, nullptr, &end), JsonKind::kArray);
  EXPECT_EQ(end, 5u);
  // The value itself must still be whole.
  EXPECT_FALSE(ScanJson(R"({"a":1)", ignore, nullptr, &end).has_value());
  EXPECT_FALSE(ScanJson(R"({"a":1,})", ignore, nullptr, &end).has_value());
}

TEST(DecodeJsonString, DecodesEscapesAndSurrogatePairs) {
  EXPECT_EQ(DecodeJsonString(R"("a\"b\\c\n")"), "a\"b\\c\n");
  EXPECT_EQ(DecodeJsonString(R"("\u00e9\ud83d\ude00")"), "\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_FALSE(DecodeJsonString("abc").has_value());
}

TEST(JsonInteger, OnlyWholeNumbers) {
  EXPECT_EQ(JsonInteger("42"), 42);
  EXPECT_FALSE(JsonInteger("4.2").has_value());
}

TEST(JsonMemberName, DecodesOnlyNamesWithEscapes) {
  std::string storage;
  const std::string_view plain = "model";
  EXPECT_EQ(JsonMemberName(plain, storage).data(), plain.data());  // no copy
  EXPECT_EQ(JsonMemberName(R"(mod\u0065l)", storage), "model");
  EXPECT_EQ(JsonMemberName(R"(a\"b\\c\/)", storage), "a\"b\\c/");
}

}  // namespace
}  // namespace orchestra
