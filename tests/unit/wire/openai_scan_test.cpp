#include "wire/openai_scan.hpp"

#include <string>
#include <utility>
#include <vector>

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

// An upstream's negative or absurd count is not a count: -5 once reached the token metrics as
// 2^64 - 5 (tests/fuzz/provider_stream).
TEST(OpenAIScanUsage, IgnoresNegativeAndAbsurdCounts) {
  const Usage u = ScanUsage(
      R"({"usage":{"prompt_tokens":-3,"completion_tokens":4000000000000000000,"total_tokens":-2}})");
  EXPECT_EQ(u.prompt_tokens, 0);
  EXPECT_EQ(u.completion_tokens, 0);
  EXPECT_EQ(u.total_tokens, 0);
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

// Found by tests/fuzz/openai_request (issue 10, #4): the scan must read the model the upstream
// reads, so member names are compared unescaped and a routed member may be given only once.
TEST(OpenAIScanChatRequest, ReadsMemberNamesUnescapedAsTheUpstreamDoes) {
  auto req = ScanChatRequest(
      R"({"mod\u0065l":"gpt-x","str\u0065am":true,"stream_options":{"include\u005fusage":true},)"
      R"("m\u0065ssages":[{"role":"user","content":"hi"}]})");
  ASSERT_TRUE(req) << req.error().message;
  EXPECT_EQ(req->model, "gpt-x");
  EXPECT_TRUE(req->stream);
  EXPECT_TRUE(req->client_wants_usage);
  EXPECT_EQ(req->raw_body.substr(req->model_begin, req->model_end - req->model_begin), "\"gpt-x\"");
}

TEST(OpenAIScanChatRequest, RefusesARoutedMemberGivenTwice) {
  for (const auto& [body, param] : std::vector<std::pair<std::string, std::string>>{
           {R"({"model":"routed","mod\u0065l":"gpt-4-EXPENSIVE","messages":[{}]})", "model"},
           {R"({"model":"a","messages":[{}],"model":"b"})", "model"},
           {R"({"model":"a","stream":false,"messages":[{}],"stream":true})", "stream"},
           {R"({"model":"a","stream_options":null,"messages":[{}],"stream_options":{}})",
            "stream_options"}}) {
    auto req = ScanChatRequest(body);
    ASSERT_FALSE(req) << body;
    EXPECT_EQ(req.error().code, ErrorCode::kInvalidRequest) << body;
    EXPECT_EQ(req.error().param, param) << body;
  }
}

// The chat `documents` option is Orchestra's own: given twice (even escaped) it is refused like
// the routed members, since the search it drives must be the one the client meant.
TEST(OpenAIScanChatRequest, FindsTheDocumentsOptionAndRefusesItTwice) {
  auto req = ScanChatRequest(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"documents":{"limit":2}})");
  ASSERT_TRUE(req) << req.error().message;
  EXPECT_EQ(req->raw_body.substr(req->documents_begin, req->documents_end - req->documents_begin),
            R"({"limit":2})");
  auto none = ScanChatRequest(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->documents_end, 0u);
  auto twice = ScanChatRequest(
      R"({"model":"m","documents":true,"messages":[{}],"d\u006fcuments":{"document_id":"x"}})");
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().param, "documents");
}

TEST(OpenAIWithoutDocuments, RemovesTheMemberWhereverItIsAndKeepsTheRestAsWritten) {
  for (const auto& [body, expected] : std::vector<std::pair<std::string, std::string>>{
           {R"({"documents":true,"model":"m","messages":[{"role":"user","content":"q"}]})",
            R"({"model":"m","messages":[{"role":"user","content":"q"}]})"},
           {R"({"model":"m", "d\u006fcuments" : {"limit":3} ,"messages":[1],"temperature":0.70})",
            R"({"model":"m", "messages":[1],"temperature":0.70})"},
           {R"({"model":"m","messages":[1],"documents":null})", R"({"model":"m","messages":[1]})"},
           {"{\"model\":\"m\",\"messages\":[1],\n  \"documents\": false\n}",
            "{\"model\":\"m\",\"messages\":[1]\n}"},
       }) {
    auto req = ScanChatRequest(body);
    ASSERT_TRUE(req) << body;
    auto out = WithoutDocuments(*req, "");
    ASSERT_TRUE(out) << body;
    EXPECT_EQ(out->raw_body, expected);
    EXPECT_EQ(out->documents_end, 0u);
  }
}

TEST(OpenAIWithoutDocuments, PutsTheContextFirstAsASystemMessageAndRescans) {
  auto req = ScanChatRequest(
      R"({"messages": [{"role":"system","content":"Be brief."},{"role":"user","content":"q"}],)"
      R"("stream":true,"documents":{"limit":1},"model":"m"})");
  ASSERT_TRUE(req);
  auto out = WithoutDocuments(*req, "[1] \"Quoted\"\npassage");
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->raw_body,
            R"({"messages": [{"role":"system","content":"[1] \"Quoted\"\npassage"},)"
            R"({"role":"system","content":"Be brief."},{"role":"user","content":"q"}],)"
            R"("stream":true,"model":"m"})");
  EXPECT_TRUE(out->stream);
  EXPECT_EQ(out->model, "m");
  EXPECT_EQ(out->raw_body.substr(out->model_begin, out->model_end - out->model_begin), "\"m\"");
  ASSERT_TRUE(out->Parse());
  ASSERT_EQ(out->messages.size(), 3u);
  EXPECT_EQ(out->messages[0].role, "system");
  EXPECT_EQ(out->messages[0].content, "[1] \"Quoted\"\npassage");
}

TEST(OpenAIChunkFinishesAChoice, OnlyAStringFinishReasonEndsAChoice) {
  EXPECT_TRUE(ChunkFinishesAChoice(
      R"({"id":"c","choices":[{"index":0,"delta":{},"finish_reason" : "stop"}]})"));
  EXPECT_FALSE(ChunkFinishesAChoice(
      R"({"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]})"));
  EXPECT_FALSE(ChunkFinishesAChoice(
      R"({"choices":[{"delta":{"content":"say \"finish_reason\":\"stop\""}}]})"));
  EXPECT_FALSE(ChunkFinishesAChoice(R"({"choices":[],"usage":{"prompt_tokens":1}})"));
}

TEST(OpenAIChunkIdentity, ReadsIdCreatedAndModel) {
  std::string id = "before";
  std::int64_t created = 0;
  std::string model;
  ChunkIdentity(R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,)"
                R"("model":"gpt-x","choices":[]})",
                id, created, model);
  EXPECT_EQ(id, "chatcmpl-1");
  EXPECT_EQ(created, 1700000000);
  EXPECT_EQ(model, "gpt-x");
}

}  // namespace
}  // namespace orchestra::wire::openai
