#include "providers/local/local_provider.hpp"

#include <functional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "unit/providers/local/support.hpp"
#include "wire/openai_codec.hpp"
#include "wire/openai_scan.hpp"

namespace orchestra::providers {
namespace {

namespace asio = boost::asio;

// Runs a provider coroutine to its end on a private loop.
template <class T>
T Await(std::function<asio::awaitable<T>()> f) {
  asio::io_context io;
  std::optional<T> out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out.emplace(co_await f()); }, asio::detached);
  io.run();
  return std::move(*out);
}

wire::ChatRequest Parse(std::string body) {
  auto scanned = wire::openai::ScanChatRequest(std::move(body));
  EXPECT_TRUE(scanned.has_value()) << scanned.error().message;
  wire::ChatRequest r = std::move(*scanned);
  auto parsed = wire::openai::ParseChatMessages(r);
  EXPECT_TRUE(parsed.has_value()) << parsed.error().message;
  r.parsed = true;
  return r;
}

// The provider's coroutines keep references to their arguments: they must outlive the call.
const CallOptions& Chat() {
  static const CallOptions options = [] {
    CallOptions o;
    o.upstream_model = LocalProvider::kChatModel;
    return o;
  }();
  return options;
}

constexpr std::string_view kContext =
    R"({"role":"system","content":"The sky is blue. Grass is green. Snow is white."})";

std::string Body(std::string_view messages, std::string_view extra = "") {
  return R"({"model":"local-extractive","messages":[)" + std::string(messages) + "]" +
         std::string(extra) + "}";
}

class Sink final : public ChunkSink {
 public:
  asio::awaitable<bool> OnChunk(wire::ChatChunk& chunk) override {
    chunks.push_back(chunk);
    co_return true;
  }
  std::vector<wire::ChatChunk> chunks;
};

TEST(LocalProvider, AHaikuRequestIs422WithTheProvidersToConfigure) {
  LocalProvider p;
  const wire::ChatRequest r =
      Parse(Body(R"({"role":"user","content":"Write a haiku about autumn."})"));
  auto out = Await<ProviderResult<wire::ChatResponse>>([&] { return p.Chat(r, Chat()); });
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().kind, FailureKind::kStatus);
  EXPECT_EQ(out.error().status, 422);
  EXPECT_EQ(out.error().error.code, ErrorCode::kUnprocessable);
  EXPECT_NE(out.error().error.message.find("cannot generate text"), std::string::npos);
  EXPECT_NE(out.error().error.message.find("Anthropic"), std::string::npos);
  // Streaming: the same refusal, before any chunk.
  Sink sink;
  auto streamed =
      Await<ProviderResult<StreamSummary>>([&] { return p.ChatStream(r, Chat(), sink); });
  ASSERT_FALSE(streamed.has_value());
  EXPECT_EQ(streamed.error().status, 422);
  EXPECT_TRUE(sink.chunks.empty());
}

TEST(LocalProvider, FieldsItCannotHonourAre400NamingTheField) {
  LocalProvider p;
  const std::string user = R"({"role":"user","content":"What colour is the sky?"})";
  const std::string messages = std::string(kContext) + "," + user;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}])", "tools"},
      {R"(,"tool_choice":"required")", "tool_choice"},
      {R"(,"response_format":{"type":"json_object"})", "response_format"},
      {R"(,"n":2)", "n"},
      {R"(,"logprobs":true)", "logprobs"},
      {R"(,"top_logprobs":2)", "top_logprobs"},
      {R"(,"functions":[{"name":"f"}])", "functions"},
      {R"(,"modalities":["text","audio"])", "modalities"},
  };
  for (const auto& [extra, field] : cases) {
    const wire::ChatRequest r = Parse(Body(messages, extra));
    auto out = Await<ProviderResult<wire::ChatResponse>>([&] { return p.Chat(r, Chat()); });
    ASSERT_FALSE(out.has_value()) << extra;
    EXPECT_EQ(out.error().status, 400) << extra;
    EXPECT_EQ(out.error().error.code, ErrorCode::kInvalidRequest);
    EXPECT_EQ(out.error().error.param, field);
  }
  const std::string image =
      R"({"role":"user","content":[{"type":"text","text":"What is this?"},)"
      R"({"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]})";
  EXPECT_EQ(UnsupportedLocalChatField(Parse(Body(std::string(kContext) + "," + image)))->param,
            "messages");
  // What asks for nothing special is accepted.
  for (std::string_view extra :
       {R"(,"n":1)", R"(,"tool_choice":"none")", R"(,"response_format":{"type":"text"})",
        R"(,"logprobs":false)", R"(,"tools":[])", R"(,"temperature":0.7,"seed":3)"}) {
    EXPECT_FALSE(UnsupportedLocalChatField(Parse(Body(messages, extra)))) << extra;
  }
}

TEST(LocalProvider, AnswersFromTheContextAndStreamsTheSameAnswer) {
  LocalProvider p;
  const wire::ChatRequest r =
      Parse(Body(std::string(kContext) + R"(,{"role":"user","content":"What colour is grass?"})"));
  auto out = Await<ProviderResult<wire::ChatResponse>>([&] { return p.Chat(r, Chat()); });
  ASSERT_TRUE(out.has_value()) << out.error().error.message;
  ASSERT_EQ(out->choices.size(), 1u);
  EXPECT_EQ(out->choices[0].content, "Grass is green.");
  EXPECT_EQ(out->model, "local-extractive");
  EXPECT_TRUE(out->usage.known);
  EXPECT_EQ(out->usage.completion_tokens, 5);  // cl100k: "Gr" "ass" " is" " green" "."
  EXPECT_FALSE(out->usage.estimated);
  Sink sink;
  auto streamed =
      Await<ProviderResult<StreamSummary>>([&] { return p.ChatStream(r, Chat(), sink); });
  ASSERT_TRUE(streamed.has_value());
  std::string text;
  for (const wire::ChatChunk& c : sink.chunks)
    text += c.content;
  EXPECT_EQ(text, "Grass is green.");
  EXPECT_GE(sink.chunks.size(), 4u);  // three words, the finish, the usage
  EXPECT_EQ(sink.chunks.front().role, "assistant");
  EXPECT_TRUE(sink.chunks.back().usage_only);
}

TEST(LocalProvider, StopSequencesAndMaxTokensBoundTheReply) {
  LocalProvider p;
  const std::string messages =
      std::string(kContext) + R"(,{"role":"user","content":"What colour is grass?"})";
  auto stopped = Await<ProviderResult<wire::ChatResponse>>(
      [&, r = Parse(Body(messages, R"(,"stop":[" is"])"))] { return p.Chat(r, Chat()); });
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(stopped->choices[0].content, "Grass");
  auto capped = Await<ProviderResult<wire::ChatResponse>>(
      [&, r = Parse(Body(messages, R"(,"max_tokens":2)"))] { return p.Chat(r, Chat()); });
  ASSERT_TRUE(capped.has_value());
  EXPECT_EQ(capped->choices[0].content, "Grass is");
}

TEST(LocalProvider, EmbedsWithTheAskedDimensions) {
  LocalProvider p;
  CallOptions o;
  o.upstream_model = LocalProvider::kEmbedModel;
  wire::EmbeddingRequest r;
  r.inputs = {"reset my password", "forgot my login credentials"};
  r.dimensions = 64;
  auto out = Await<ProviderResult<wire::EmbeddingResponse>>([&] { return p.Embed(r, o); });
  ASSERT_TRUE(out.has_value());
  ASSERT_EQ(out->vectors.size(), 2u);
  EXPECT_EQ(out->vectors[0].size(), 64u);
  EXPECT_EQ(out->usage.prompt_tokens, 7);
  r.dimensions = 0;
  auto bad = Await<ProviderResult<wire::EmbeddingResponse>>([&] { return p.Embed(r, o); });
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().error.param, "dimensions");
  o.upstream_model = "local-nope";
  auto unknown = Await<ProviderResult<wire::EmbeddingResponse>>([&] { return p.Embed(r, o); });
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().status, 404);
}

// Issue 11: a local model asked for the other kind of work is the request's mistake (400 naming
// the model), not an unknown model (404 saying the provider serves the very model asked for).
TEST(LocalProvider, AModelAskedForTheOtherKindOfWorkIs400) {
  LocalProvider p;
  CallOptions o;
  o.upstream_model = LocalProvider::kChatModel;
  wire::EmbeddingRequest e;
  e.inputs = {"hello"};
  auto embed = Await<ProviderResult<wire::EmbeddingResponse>>([&] { return p.Embed(e, o); });
  ASSERT_FALSE(embed.has_value());
  EXPECT_EQ(embed.error().status, 400);
  EXPECT_EQ(embed.error().error.code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(embed.error().error.param, "model");
  EXPECT_EQ(embed.error().error.message,
            "local-extractive is a chat model and has no embeddings: use local-embed");

  CallOptions c;
  c.upstream_model = LocalProvider::kEmbedModel;
  const wire::ChatRequest r = Parse(Body(kContext));
  auto chat = Await<ProviderResult<wire::ChatResponse>>([&] { return p.Chat(r, c); });
  ASSERT_FALSE(chat.has_value());
  EXPECT_EQ(chat.error().status, 400);
  EXPECT_EQ(chat.error().error.param, "model");
}

}  // namespace
}  // namespace orchestra::providers
