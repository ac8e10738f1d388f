#include "wire/openai_scan.hpp"

#include <string>

#include <gtest/gtest.h>

#include "wire/openai_codec.hpp"

namespace orchestra::wire::openai {
namespace {

TEST(OpenAIScanUsage, ReadsTheTopLevelUsageObject) {
  const Usage u = ScanUsage(
      R"({"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],)"
      R"("usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}})");
  EXPECT_TRUE(u.known);
  EXPECT_EQ(u.prompt_tokens, 12);
  EXPECT_EQ(u.completion_tokens, 3);
  EXPECT_EQ(u.total_tokens, 15);
}

TEST(OpenAIScanUsage, AllowsWhitespaceAndComputesAMissingTotal) {
  const Usage u = ScanUsage("{\"usage\" :\n { \"prompt_tokens\": 2, \"completion_tokens\": 5 } }");
  EXPECT_TRUE(u.known);
  EXPECT_EQ(u.total_tokens, 7);
}

TEST(OpenAIScanUsage, IgnoresTheWordInsideStrings) {
  // The content mentions "usage": {...} twice, escaped; the real usage comes first.
  const Usage u =
      ScanUsage(R"({"usage":{"prompt_tokens":1,"completion_tokens":1},"choices":[{"message":)"
                R"({"content":"a \"usage\": {\"prompt_tokens\": 99} and x\"usage\":{}"}}]})");
  EXPECT_TRUE(u.known);
  EXPECT_EQ(u.prompt_tokens, 1);
}

TEST(OpenAIScanUsage, SkipsAKeyThatOnlyEndsInUsage) {
  // The key x"usage (an escaped quote before the word) is not the usage member.
  const Usage u = ScanUsage(
      R"({"usage":{"prompt_tokens":4,"completion_tokens":0},"x\"usage":{"prompt_tokens":9}})");
  EXPECT_EQ(u.prompt_tokens, 4);
}

TEST(OpenAIScanUsage, UnknownWhenAbsentNullOrMalformed) {
  EXPECT_FALSE(ScanUsage(R"({"id":"c1","choices":[]})").known);
  EXPECT_FALSE(ScanUsage(R"({"id":"c1","usage":null})").known);
  EXPECT_FALSE(ScanUsage(R"({"usage":{"prompt_tokens":1,)").known);
  EXPECT_FALSE(ScanUsage(R"("usage")").known);
  EXPECT_FALSE(ScanUsage("").known);
}

TEST(OpenAIScanChatRequest, ReadsModelStreamAndUsageOption) {
  auto req =
      ScanChatRequest(R"({"model":"gpt-x","stream":true,"stream_options":{"include_usage":true},)"
                      R"("messages":[{"role":"user","content":"hi"}]})");
  ASSERT_TRUE(req) << req.error().message;
  EXPECT_EQ(req->model, "gpt-x");
  EXPECT_TRUE(req->stream);
  EXPECT_TRUE(req->client_wants_usage);
  EXPECT_EQ(req->raw_body.substr(req->model_begin, req->model_end - req->model_begin), "\"gpt-x\"");
}

TEST(OpenAIScanChatRequest, RejectsWhatAnUpstreamWouldRejectWithTheParameterNamed) {
  struct Case {
    const char* body;
    const char* param;
  };
  for (const Case& c :
       {Case{R"({"messages":[{"role":"user","content":"x"}]})", "model"},
        Case{R"({"model":7,"messages":[{"role":"user","content":"x"}]})", "model"},
        Case{R"({"model":"m"})", "messages"}, Case{R"({"model":"m","messages":[]})", "messages"},
        Case{R"({"model":"m","messages":[{}],"stream":"yes"})", "stream"}}) {
    auto req = ScanChatRequest(c.body);
    ASSERT_FALSE(req) << c.body;
    EXPECT_EQ(req.error().param, c.param) << c.body;
  }
  auto bad = ScanChatRequest(R"({"model":"m","messages":[}])");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("not valid JSON"), std::string::npos);
}

TEST(OpenAIScanChatRequest, ARoutedMemberGivenTwiceIsRefusedEvenWhenEscaped) {
  // An upstream that keeps the last member would serve another model than the one routed.
  for (
      const char* body : {
          R"({"model":"routed","mod\u0065l":"gpt-4-EXPENSIVE","messages":[{"role":"user","content":"x"}]})",
          R"({"model":"a","model":"b","messages":[{"role":"user","content":"x"}]})",
          R"({"model":"a","messages":[{"role":"user","content":"x"}],"stream":false,"str\u0065am":true})",
          R"({"model":"a","messages":[],"messages":[{"role":"user","content":"x"}]})",
      }) {
    auto r = ScanChatRequest(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest);
    EXPECT_NE(r.error().message.find("more than once"), std::string::npos) << r.error().message;
  }
}

TEST(OpenAIScanChatRequest, AnEscapedSpellingOfModelIsTheModel) {
  auto r = ScanChatRequest(R"({"mod\u0065l":"m1","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->model, "m1");
  EXPECT_EQ(r->raw_body.substr(r->model_begin, r->model_end - r->model_begin), "\"m1\"");
}

TEST(OpenAIParseEmbeddingRequest, ARoutedMemberGivenTwiceIsRefused) {
  auto r = ParseEmbeddingRequest(R"({"model":"a","input":"x","m\u006fdel":"b"})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().param, "model");
}

}  // namespace
}  // namespace orchestra::wire::openai
