// Smoke tests of orchestra_test_upstream through the real executable, and of the support library
// that runs it. Timings are asserted loosely ("at least the delay"): machines are noisy.

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "upstream/directives.hpp"
#include "upstream/http_request.hpp"
#include "upstream/json_scan.hpp"
#include <signal.h>

namespace {

namespace json = boost::json;
using orchestra::testing::ChildProcess;
using orchestra::testing::HttpClient;
using orchestra::testing::HttpResponse;
using orchestra::testing::ParseListeningPort;
using orchestra::testing::RunCommand;
using orchestra::testing::SseEvent;
using orchestra::testing::TempDir;
using orchestra::testing::TestUpstream;
using orchestra::testing::TlsClientOptions;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string ChatBody(std::string_view model, std::string_view text, bool stream = false,
                     std::string_view extra = {}) {
  json::object body;
  body["model"] = model;
  body["messages"] = json::array{json::object{{"role", "system"}, {"content", "be brief"}},
                                 json::object{{"role", "user"}, {"content", text}}};
  if (stream) body["stream"] = true;
  std::string out = json::serialize(body);
  if (!extra.empty()) {
    out.pop_back();
    out += ',';
    out += extra;
    out += '}';
  }
  return out;
}

milliseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

class UpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = std::make_unique<TestUpstream>();
    client_ = std::make_unique<HttpClient>("127.0.0.1", upstream_->port());
    client_->set_timeout(std::chrono::seconds(5));
  }

  HttpResponse Post(std::string_view target, std::string_view body) {
    return client_->Request("POST", target, body);
  }

  // The data payloads of a streamed reply.
  std::vector<std::string> StreamData(std::string_view target, std::string_view body,
                                      HttpResponse* response = nullptr) {
    std::vector<std::string> data;
    HttpResponse r = client_->Stream("POST", target, body, {}, [&](std::string_view d) {
      data.emplace_back(d);
      return true;
    });
    if (response != nullptr) *response = r;
    return data;
  }

  std::int64_t Stat(std::string_view name) {
    return upstream_->Stats().as_object().at(name).to_number<std::int64_t>();
  }

  // Polls /_stats until `name` reaches `value` (the upstream notices closes asynchronously).
  bool WaitForStat(std::string_view name, std::int64_t value,
                   milliseconds timeout = milliseconds(3000)) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (Stat(name) == value) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return Stat(name) == value;
  }

  std::unique_ptr<TestUpstream> upstream_;
  std::unique_ptr<HttpClient> client_;
};

// --- OpenAI -------------------------------------------------------------------------------

TEST_F(UpstreamTest, OpenAiChatEchoesLastUserMessageWithUsage) {
  HttpResponse r = Post("/v1/chat/completions", ChatBody("gpt-test", "hello big world"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  json::object o = r.Json().as_object();
  EXPECT_EQ(o.at("object"), "chat.completion");
  EXPECT_EQ(o.at("model"), "gpt-test");
  const json::object& choice = o.at("choices").as_array().at(0).as_object();
  EXPECT_EQ(choice.at("message").at("role"), "assistant");
  EXPECT_EQ(choice.at("message").at("content"), "echo: hello big world");
  EXPECT_EQ(choice.at("finish_reason"), "stop");
  // Prompt: "be brief" + "hello big world" = 5 words; completion: "echo: hello big world" = 4.
  EXPECT_EQ(o.at("usage").at("prompt_tokens"), 5);
  EXPECT_EQ(o.at("usage").at("completion_tokens"), 4);
  EXPECT_EQ(o.at("usage").at("total_tokens"), 9);
}

TEST_F(UpstreamTest, IdenticalRequestsGetTheSameAnswerWithFreshIds) {
  // The upstream reuses the bytes of its last answer on a connection for a byte-identical request.
  const std::string body = ChatBody("gpt-test", "same words");
  json::value first = Post("/v1/chat/completions", body).Json();
  json::value second = Post("/v1/chat/completions", body).Json();
  EXPECT_NE(first.at("id"), second.at("id"));
  EXPECT_EQ(first.at("choices"), second.at("choices"));
  EXPECT_EQ(std::string(second.at("id").as_string()).size(), 25u);  // chatcmpl- + 16 digits
  // Something else answered in between on the same connection: still the right answer.
  EXPECT_EQ(client_->Request("GET", "/_stats").status, 200);
  EXPECT_EQ(Post("/v1/chat/completions", body).Json().at("choices"), first.at("choices"));
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    auto data = StreamData("/v1/chat/completions", ChatBody("gpt-test", "a b", true));
    ASSERT_EQ(data.size(), 5u);
    std::string id(json::parse(data[0]).at("id").as_string());
    EXPECT_EQ(json::parse(data[3]).at("id").as_string(), id);  // every chunk carries the id
    ids.push_back(id);
  }
  EXPECT_NE(ids[0], ids[1]);
  Post("/v1/chat/completions", ChatBody("x+status=500", "hi"));
  Post("/v1/chat/completions", ChatBody("x+status=500", "hi"));
  EXPECT_EQ(Stat("injected_errors"), 2);
}

TEST_F(UpstreamTest, OpenAiChatScansTrickyJsonCorrectly) {
  // Escaped quotes, a nested "model" and "stream", an escaped key, whitespace, content parts.
  std::string body = R"( {
    "metadata": {"model": "decoy", "stream": true, "text": "a \"quoted\" } ] string"},
    "\u006dodel" : "gpt-\"test\"" ,
    "stream"	:	false,
    "messages": [ {"role": "user", "content": [ {"type": "text", "text": "tab\there"},
                                                {"type": "image_url", "image_url": {"url": "x"}} ]} ]
  } )";
  HttpResponse r = Post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  json::object o = r.Json().as_object();
  EXPECT_EQ(o.at("model"), "gpt-\"test\"");
  EXPECT_EQ(o.at("choices").at(0).at("message").at("content"), "echo: tab\there");
  EXPECT_EQ(o.at("usage").at("prompt_tokens"), 2);
}

TEST_F(UpstreamTest, OpenAiChatRejectsMalformedBodies) {
  for (std::string body :
       {std::string("{\"model\":\"m\",\"messages\":["), std::string("{\"model\":\"m\"} trailing"),
        std::string("[]"), std::string("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"),
        std::string("{\"model\":\"m\",\"messages\":[]}")}) {
    HttpResponse r = Post("/v1/chat/completions", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_TRUE(r.Json().at("error").at("message").is_string()) << r.body;
  }
}

TEST_F(UpstreamTest, OpenAiStreamSendsOneChunkPerWordThenStopAndDone) {
  HttpResponse r;
  auto data = StreamData("/v1/chat/completions", ChatBody("gpt-test", "one two three", true), &r);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  EXPECT_TRUE(r.complete);
  // "echo: one two three" = 4 content chunks, the stop chunk, [DONE]; no usage chunk.
  ASSERT_EQ(data.size(), 6u);
  std::string text;
  for (std::size_t i = 0; i < 4; ++i) {
    json::object chunk = json::parse(data[i]).as_object();
    EXPECT_EQ(chunk.at("object"), "chat.completion.chunk");
    const json::object& delta = chunk.at("choices").at(0).at("delta").as_object();
    if (i == 0) {
      EXPECT_EQ(delta.at("role"), "assistant");
    }
    text += delta.at("content").as_string();
  }
  EXPECT_EQ(text, "echo: one two three");
  json::object stop = json::parse(data[4]).as_object();
  EXPECT_EQ(stop.at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_EQ(data[5], "[DONE]");
}

TEST_F(UpstreamTest, OpenAiStreamAddsUsageChunkOnlyWhenAsked) {
  auto data = StreamData(
      "/v1/chat/completions",
      ChatBody("gpt-test", "one two", true, R"("stream_options":{"include_usage":true})"));
  ASSERT_EQ(data.size(), 6u);  // 3 content, stop, usage, [DONE]
  json::object usage = json::parse(data[4]).as_object();
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("prompt_tokens"), 4);
  EXPECT_EQ(usage.at("usage").at("completion_tokens"), 3);
  auto without = StreamData(
      "/v1/chat/completions",
      ChatBody("gpt-test", "one two", true, R"("stream_options":{"include_usage":false})"));
  EXPECT_EQ(without.size(), 5u);
}

TEST_F(UpstreamTest, OpenAiEmbeddingsAreDeterministicUnitVectors) {
  HttpResponse r = Post("/v1/embeddings", R"({"model":"emb","input":["a b c","d","a b c"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::object o = r.Json().as_object();
  EXPECT_EQ(o.at("object"), "list");
  const json::array& data = o.at("data").as_array();
  ASSERT_EQ(data.size(), 3u);
  const json::array& v0 = data[0].at("embedding").as_array();
  EXPECT_EQ(v0.size(), 16u);
  double norm = 0;
  for (const auto& x : v0)
    norm += x.to_number<double>() * x.to_number<double>();
  EXPECT_NEAR(norm, 1.0, 1e-3);
  EXPECT_EQ(data[0].at("embedding"), data[2].at("embedding"));
  EXPECT_NE(data[0].at("embedding"), data[1].at("embedding"));
  EXPECT_EQ(data[1].at("index"), 1);
  EXPECT_EQ(o.at("usage").at("prompt_tokens"), 7);

  HttpResponse single = Post("/v1/embeddings", R"({"model":"emb+dims=8","input":"a b c"})");
  EXPECT_EQ(single.Json().at("data").at(0).at("embedding").as_array().size(), 8u);
  HttpResponse sized = Post("/v1/embeddings", R"({"model":"emb","input":"x","dimensions":5})");
  EXPECT_EQ(sized.Json().at("data").at(0).at("embedding").as_array().size(), 5u);
}

TEST_F(UpstreamTest, OpenAiEmbeddingsBase64EncodesFloat32) {
  HttpResponse r =
      Post("/v1/embeddings", R"({"model":"emb+dims=8","input":"hi","encoding_format":"base64"})");
  ASSERT_EQ(r.status, 200) << r.body;
  std::string b64(r.Json().at("data").at(0).at("embedding").as_string());
  EXPECT_EQ(b64.size(), 44u);  // 8 floats = 32 bytes = 44 base64 characters
  EXPECT_EQ(Post("/v1/embeddings", R"({"model":"e","input":"x","encoding_format":"hex"})").status,
            400);
}

TEST_F(UpstreamTest, LargeRepliesArriveWhole) {
  // Bigger than a socket buffer: the partial-write path.
  HttpResponse big =
      Post("/v1/embeddings", R"({"model":"e+dims=65536","input":["a","b","c","d"]})");
  ASSERT_EQ(big.status, 200);
  EXPECT_GT(big.body.size(), 1'000'000u);
  EXPECT_EQ(big.Json().at("data").at(3).at("embedding").as_array().size(), 65536u);
  auto data = StreamData("/v1/chat/completions", ChatBody("x+chunks=20000", "a b", true));
  EXPECT_EQ(data.size(), 20002u);
  EXPECT_EQ(data.back(), "[DONE]");
}

TEST_F(UpstreamTest, OpenAiModelsListsModels) {
  HttpResponse r = client_->Request("GET", "/v1/models");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Json().at("object"), "list");
  EXPECT_FALSE(r.Json().at("data").as_array().empty());
  EXPECT_EQ(client_->Request("POST", "/v1/models").status, 405);
  EXPECT_EQ(client_->Request("GET", "/nope").status, 404);
}

// --- Gemini -------------------------------------------------------------------------------

constexpr std::string_view kGeminiBody =
    R"({"systemInstruction":{"parts":[{"text":"be brief"}]},)"
    R"("contents":[{"role":"user","parts":[{"text":"hi there"}]}]})";

TEST_F(UpstreamTest, GeminiGenerateContentHasCandidatesAndUsage) {
  HttpResponse r = Post("/v1beta/models/gemini-test:generateContent", kGeminiBody);
  ASSERT_EQ(r.status, 200) << r.body;
  json::object o = r.Json().as_object();
  const json::object& candidate = o.at("candidates").at(0).as_object();
  EXPECT_EQ(candidate.at("content").at("parts").at(0).at("text"), "echo: hi there");
  EXPECT_EQ(candidate.at("content").at("role"), "model");
  EXPECT_EQ(candidate.at("finishReason"), "STOP");
  EXPECT_EQ(o.at("usageMetadata").at("promptTokenCount"), 4);
  EXPECT_EQ(o.at("usageMetadata").at("candidatesTokenCount"), 3);
  EXPECT_EQ(o.at("modelVersion"), "gemini-test");
}

TEST_F(UpstreamTest, GeminiStreamPutsUsageInTheLastEvent) {
  HttpResponse r;
  auto data =
      StreamData("/v1beta/models/gemini-test:streamGenerateContent?alt=sse", kGeminiBody, &r);
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(data.size(), 3u);
  std::string text;
  for (std::size_t i = 0; i < data.size(); ++i) {
    json::object e = json::parse(data[i]).as_object();
    text += e.at("candidates").at(0).at("content").at("parts").at(0).at("text").as_string();
    EXPECT_EQ(e.contains("usageMetadata"), i == 2);
  }
  EXPECT_EQ(text, "echo: hi there");
}

TEST_F(UpstreamTest, GeminiStreamWithoutSseIsAJsonArray) {
  HttpResponse r = Post("/v1beta/models/gemini-test:streamGenerateContent", kGeminiBody);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Json().as_array().size(), 3u);
}

TEST_F(UpstreamTest, GeminiEmbeddingsAndVertexPaths) {
  HttpResponse one =
      Post("/v1beta/models/emb+dims=4:embedContent", R"({"content":{"parts":[{"text":"a b c"}]}})");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.Json().at("embedding").at("values").as_array().size(), 4u);
  HttpResponse batch = Post(
      "/v1beta/models/emb:batchEmbedContents",
      R"({"requests":[{"model":"models/emb","content":{"parts":[{"text":"a b c"}]}},)"
      R"({"model":"models/emb","content":{"parts":[{"text":"z"}]},"outputDimensionality":3}]})");
  ASSERT_EQ(batch.status, 200) << batch.body;
  json::value batch_json = batch.Json();
  const json::array& embeddings = batch_json.at("embeddings").as_array();
  ASSERT_EQ(embeddings.size(), 2u);
  EXPECT_EQ(embeddings[0].at("values").as_array().size(), 16u);
  EXPECT_EQ(embeddings[1].at("values").as_array().size(), 3u);
  // The same input hashes to the same vector whichever provider format asked.
  HttpResponse openai = Post("/v1/embeddings", R"({"model":"emb+dims=4","input":"a b c"})");
  EXPECT_EQ(openai.Json().at("data").at(0).at("embedding"),
            one.Json().at("embedding").at("values"));

  HttpResponse vertex = Post(
      "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-test:generateContent",
      kGeminiBody);
  ASSERT_EQ(vertex.status, 200) << vertex.body;
  EXPECT_EQ(vertex.Json().at("modelVersion"), "gemini-test");
}

TEST_F(UpstreamTest, GeminiDirectivesComeFromThePathAndErrorsUseItsShape) {
  // Percent-encoded directives work too.
  HttpResponse r = Post("/v1beta/models/g%2Bstatus%3D503:generateContent", kGeminiBody);
  ASSERT_EQ(r.status, 503);
  json::object error = r.Json().at("error").as_object();
  EXPECT_EQ(error.at("code"), 503);
  EXPECT_EQ(error.at("status"), "UNAVAILABLE");
  EXPECT_TRUE(error.at("message").is_string());
}

// --- Anthropic ----------------------------------------------------------------------------

constexpr std::string_view kAnthropicBody =
    R"({"model":"claude-test","max_tokens":64,"system":"be brief",)"
    R"("messages":[{"role":"user","content":[{"type":"text","text":"hi there"}]}]})";

TEST_F(UpstreamTest, AnthropicMessageHasContentBlocksAndUsage) {
  HttpResponse r = Post("/v1/messages", kAnthropicBody);
  ASSERT_EQ(r.status, 200) << r.body;
  json::object o = r.Json().as_object();
  EXPECT_EQ(o.at("type"), "message");
  EXPECT_EQ(o.at("role"), "assistant");
  EXPECT_EQ(o.at("content").at(0).at("type"), "text");
  EXPECT_EQ(o.at("content").at(0).at("text"), "echo: hi there");
  EXPECT_EQ(o.at("stop_reason"), "end_turn");
  EXPECT_EQ(o.at("usage").at("input_tokens"), 4);
  EXPECT_EQ(o.at("usage").at("output_tokens"), 3);
}

TEST_F(UpstreamTest, AnthropicStreamFollowsTheEventSequence) {
  std::string body(kAnthropicBody);
  body.insert(1, R"("stream":true,)");
  std::vector<SseEvent> events;
  HttpResponse r = client_->StreamEvents("POST", "/v1/messages", body, {}, [&](const SseEvent& e) {
    events.push_back(e);
    return true;
  });
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> names;
  std::string text;
  for (const auto& e : events) {
    names.push_back(e.event);
    json::object data = json::parse(e.data).as_object();
    EXPECT_EQ(data.at("type").as_string(), e.event);
    if (e.event == "content_block_delta") text += data.at("delta").at("text").as_string();
    if (e.event == "message_delta") {
      EXPECT_EQ(data.at("delta").at("stop_reason"), "end_turn");
      EXPECT_EQ(data.at("usage").at("output_tokens"), 3);
    }
    if (e.event == "message_start") {
      EXPECT_EQ(data.at("message").at("usage").at("input_tokens"), 4);
    }
  }
  std::vector<std::string> expected = {
      "message_start",       "content_block_start", "ping",
      "content_block_delta", "content_block_delta", "content_block_delta",
      "content_block_stop",  "message_delta",       "message_stop"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(text, "echo: hi there");
}

TEST_F(UpstreamTest, AnthropicErrorsUseItsShape) {
  HttpResponse missing =
      Post("/v1/messages", R"({"model":"c","messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(missing.status, 400);
  EXPECT_EQ(missing.Json().at("type"), "error");
  EXPECT_EQ(missing.Json().at("error").at("type"), "invalid_request_error");
  std::string body(kAnthropicBody);
  body.replace(body.find("claude-test"), 11, "c+status=529");
  HttpResponse overloaded = Post("/v1/messages", body);
  EXPECT_EQ(overloaded.status, 529);
  EXPECT_EQ(overloaded.Json().at("error").at("type"), "overloaded_error");
}

// --- Directives -----------------------------------------------------------------------------

TEST_F(UpstreamTest, StatusDirectiveAnswersInOpenAiErrorShape) {
  HttpResponse r = Post("/v1/chat/completions", ChatBody("x+status=500", "hi"));
  ASSERT_EQ(r.status, 500);
  json::object error = r.Json().at("error").as_object();
  EXPECT_EQ(error.at("type"), "server_error");
  EXPECT_NE(std::string(error.at("message").as_string()).find("500"), std::string::npos);
  EXPECT_EQ(r.Header("retry-after"), "");
  EXPECT_EQ(Stat("injected_errors"), 1);
}

TEST_F(UpstreamTest, TimesCountsPerModelStringUntilReset) {
  const std::string model = "x+status=429+times=2+retry_after=1";
  for (int i = 0; i < 2; ++i) {
    HttpResponse r = Post("/v1/chat/completions", ChatBody(model, "hi"));
    EXPECT_EQ(r.status, 429) << i;
    EXPECT_EQ(r.Header("Retry-After"), "1");
    EXPECT_EQ(r.Json().at("error").at("code"), "rate_limit_exceeded");
  }
  EXPECT_EQ(Post("/v1/chat/completions", ChatBody(model, "hi")).status, 200);
  // Another model string has its own count.
  EXPECT_EQ(Post("/v1/chat/completions", ChatBody("y+status=429+times=1", "hi")).status, 429);
  EXPECT_EQ(Stat("requests_total"), 4);
  upstream_->Reset();
  EXPECT_EQ(Stat("requests_total"), 0);
  EXPECT_EQ(Post("/v1/chat/completions", ChatBody(model, "hi")).status, 429);
}

TEST_F(UpstreamTest, UnknownOrMalformedDirectivesAre400) {
  for (std::string model :
       {"x+bogus=1", "x+latency=fast", "x+stall=1", "x+chunks", "x+status=99"}) {
    HttpResponse r = Post("/v1/chat/completions", ChatBody(model, "hi"));
    EXPECT_EQ(r.status, 400) << model;
    EXPECT_EQ(r.Json().at("error").at("param"), "model") << r.body;
  }
}

TEST_F(UpstreamTest, LatencyDelaysTheAnswer) {
  auto start = Clock::now();
  HttpResponse r = Post("/v1/chat/completions", ChatBody("x+latency=60ms", "hi"));
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(Since(start), milliseconds(60));
  start = Clock::now();
  r = Post("/v1/chat/completions", ChatBody("x+first_byte_delay=40ms", "hi", true));
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(Since(start), milliseconds(40));
}

TEST_F(UpstreamTest, ChunksAndChunkDelayShapeTheStream) {
  auto start = Clock::now();
  auto data = StreamData("/v1/chat/completions",
                         ChatBody("x+chunks=10+chunk_delay=10ms", "one two three", true));
  EXPECT_GE(Since(start), milliseconds(90));  // nine gaps between ten chunks
  ASSERT_EQ(data.size(), 12u);                // 10 content chunks, stop, [DONE]
  std::string text;
  for (std::size_t i = 0; i < 10; ++i) {
    text += json::parse(data[i]).at("choices").at(0).at("delta").at("content").as_string();
  }
  EXPECT_EQ(text, "echo: one two three");
  auto fewer =
      StreamData("/v1/chat/completions", ChatBody("x+chunks=2", "one two three four", true));
  EXPECT_EQ(fewer.size(), 4u);
}

TEST_F(UpstreamTest, CutEndsTheStreamWithoutItsEnd) {
  HttpResponse r;
  auto data =
      StreamData("/v1/chat/completions", ChatBody("x+cut=3", "one two three four five", true), &r);
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.complete);
  ASSERT_EQ(data.size(), 3u);
  for (const auto& d : data)
    EXPECT_NE(d, "[DONE]");
  EXPECT_TRUE(WaitForStat("cuts", 1));
  // The next request on the same client reconnects transparently.
  EXPECT_EQ(Post("/v1/chat/completions", ChatBody("x", "hi")).status, 200);
  // A plain reply is cut in the middle of its body.
  HttpResponse plain = Post("/v1/chat/completions", ChatBody("x+cut=0", "hi"));
  EXPECT_EQ(plain.status, 200);
  EXPECT_FALSE(plain.complete);
}

TEST_F(UpstreamTest, CutWithTimesFailsOnlyTheFirstStream) {
  auto cut = StreamData("/v1/chat/completions", ChatBody("x+cut=1+times=1", "a b c", true));
  EXPECT_EQ(cut.size(), 1u);
  auto whole = StreamData("/v1/chat/completions", ChatBody("x+cut=1+times=1", "a b c", true));
  EXPECT_EQ(whole.size(), 6u);
}

TEST_F(UpstreamTest, StallHoldsTheRequestUntilTheClientLeaves) {
  client_->set_timeout(milliseconds(200));
  auto start = Clock::now();
  EXPECT_THROW(Post("/v1/chat/completions", ChatBody("x+stall", "hi")), std::runtime_error);
  EXPECT_GE(Since(start), milliseconds(200));
  EXPECT_TRUE(WaitForStat("streams_aborted", 1));
  EXPECT_EQ(Stat("stalls"), 1);
}

TEST_F(UpstreamTest, ClientLeavingDuringADelayOrStreamIsCountedAsAborted) {
  client_->set_timeout(milliseconds(100));
  EXPECT_THROW(Post("/v1/chat/completions", ChatBody("x+latency=5s", "hi")), std::runtime_error);
  EXPECT_TRUE(WaitForStat("streams_aborted", 1));

  client_->set_timeout(std::chrono::seconds(5));
  int seen = 0;
  HttpResponse r =
      client_->Stream("POST", "/v1/chat/completions",
                      ChatBody("x+chunk_delay=50ms", "one two three four five six", true), {},
                      [&](std::string_view) { return ++seen < 2; });
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(seen, 2);
  EXPECT_TRUE(WaitForStat("streams_aborted", 2));
  EXPECT_EQ(Stat("streams_completed"), 0);
}

TEST_F(UpstreamTest, ResetClosesWithRst) {
  EXPECT_THROW(Post("/v1/chat/completions", ChatBody("x+reset", "hi")), std::runtime_error);
  EXPECT_TRUE(client_->LastCloseWasReset());
  EXPECT_EQ(Stat("resets"), 1);
  EXPECT_THROW(Post("/v1/chat/completions", ChatBody("x+reset+times=1", "hi")), std::runtime_error);
  EXPECT_EQ(Post("/v1/chat/completions", ChatBody("x+reset+times=1", "hi")).status, 200);
  EXPECT_EQ(Stat("resets"), 2);
}

TEST_F(UpstreamTest, LastRequestShowsHeadersAndRawBody) {
  EXPECT_TRUE(upstream_->LastRequest().is_null());
  std::string body = ChatBody("gpt-test", "hi", true, R"("stream_options":{"include_usage":true})");
  client_->Stream("POST", "/v1/chat/completions?x=1", body,
                  {{"Authorization", "Bearer sk-test"}, {"X-Custom", "a"}, {"x-custom", "b"}},
                  [](std::string_view) { return true; });
  json::object last = upstream_->LastRequest().as_object();
  EXPECT_EQ(last.at("method"), "POST");
  EXPECT_EQ(last.at("target"), "/v1/chat/completions?x=1");
  EXPECT_EQ(last.at("endpoint"), "openai_chat");
  EXPECT_EQ(last.at("headers").at("authorization"), "Bearer sk-test");
  EXPECT_EQ(last.at("headers").at("x-custom"), "a, b");
  EXPECT_EQ(last.at("body").as_string(), body);
  EXPECT_EQ(json::parse(last.at("body").as_string()).at("stream_options").at("include_usage"),
            true);
  EXPECT_GE(last.at("header_list").as_array().size(), 4u);
}

TEST_F(UpstreamTest, StatsCountEndpointsAndConnections) {
  Post("/v1/chat/completions", ChatBody("x", "hi"));
  Post("/v1/chat/completions", ChatBody("x", "hi"));
  Post("/v1/embeddings", R"({"model":"e","input":"x"})");
  json::object stats = upstream_->Stats().as_object();
  EXPECT_EQ(stats.at("requests_total"), 3);
  EXPECT_EQ(stats.at("requests").at("openai_chat"), 2);
  EXPECT_EQ(stats.at("requests").at("openai_embeddings"), 1);
  EXPECT_GE(stats.at("connections_open").to_number<int>(), 1);
}

TEST_F(UpstreamTest, KeepsConnectionsAliveAndParsesChunkedAndPipelinedRequests) {
  HttpClient raw("127.0.0.1", upstream_->port());
  const std::string body = ChatBody("x", "hi");
  char size_hex[16];
  std::snprintf(size_hex, sizeof size_hex, "%zx", body.size());
  std::string chunked =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
      std::string(size_hex) + "\r\n" + body + "\r\n0\r\n\r\n";
  std::string plain = "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  raw.SendRaw(chunked + plain);  // two pipelined requests, the second closing
  std::string answer = raw.ReadRaw(milliseconds(2000));
  std::size_t first = answer.find("HTTP/1.1 200 OK");
  ASSERT_NE(first, std::string::npos) << answer;
  EXPECT_NE(answer.find("HTTP/1.1 200 OK", first + 1), std::string::npos) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(raw.PeerClosed(milliseconds(1000)));
}

TEST_F(UpstreamTest, AnswersExpectContinue) {
  HttpClient raw("127.0.0.1", upstream_->port());
  const std::string body = ChatBody("x", "hi");
  raw.SendRaw(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n");
  EXPECT_EQ(raw.ReadRaw(milliseconds(300)), "HTTP/1.1 100 Continue\r\n\r\n");
  raw.SendRaw(body);
  EXPECT_NE(raw.ReadRaw(milliseconds(300)).find("200 OK"), std::string::npos);
}

TEST_F(UpstreamTest, MalformedHttpIs400AndClosed) {
  HttpClient raw("127.0.0.1", upstream_->port());
  raw.SendRaw("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_NE(raw.ReadRaw(milliseconds(1000)).find("400 Bad Request"), std::string::npos);
  EXPECT_TRUE(raw.PeerClosed(milliseconds(1000)));
}

// --- Process-wide defaults, threads, TLS, shutdown ----------------------------------------

TEST(TestUpstreamProcess, FlagsSetDefaultsThatModelsOverride) {
  TestUpstream upstream({"--latency", "50ms", "--threads", "2", "--dims=4"});
  HttpClient client("127.0.0.1", upstream.port());
  auto start = Clock::now();
  HttpResponse r = client.Request("POST", "/v1/embeddings", R"({"model":"e","input":"x"})");
  EXPECT_GE(Since(start), milliseconds(50));
  EXPECT_EQ(r.Json().at("data").at(0).at("embedding").as_array().size(), 4u);
  start = Clock::now();
  r = client.Request("POST", "/v1/chat/completions", ChatBody("x+latency=0", "hi"));
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(Since(start), milliseconds(50));
}

TEST(TestUpstreamProcess, ServesHttpsWithACertificateFromATestCa) {
  TempDir dir;
  auto certs = orchestra::testing::MakeTestCertificates(dir.path());
  TestUpstream upstream({"--tls-cert", certs.server_cert, "--tls-key", certs.server_key});
  EXPECT_EQ(upstream.base_url(), "https://127.0.0.1:" + std::to_string(upstream.port()));
  HttpClient client("127.0.0.1", upstream.port(), TlsClientOptions{certs.ca_cert, {}});
  HttpResponse r = client.Request("POST", "/v1/chat/completions", ChatBody("x", "secure hello"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json().at("choices").at(0).at("message").at("content"), "echo: secure hello");
  std::vector<std::string> data;
  client.Stream("POST", "/v1/chat/completions", ChatBody("x+chunk_delay=1ms", "a b", true), {},
                [&](std::string_view d) {
                  data.emplace_back(d);
                  return true;
                });
  EXPECT_EQ(data.size(), 5u);
  r = client.Request("POST", "/v1/chat/completions", ChatBody("x+latency=10ms", "again"));
  EXPECT_EQ(r.status, 200);
  json::value stats = upstream.Stats();
  EXPECT_EQ(stats.at("requests_total"), 3);
  EXPECT_EQ(stats.at("connections_total"), 2);  // the client's kept-alive one and Stats()'s
  // A client that does not trust the CA is refused.
  TempDir other;
  auto other_certs = orchestra::testing::MakeTestCertificates(other.path());
  HttpClient untrusting("127.0.0.1", upstream.port(), TlsClientOptions{other_certs.ca_cert, {}});
  EXPECT_THROW(untrusting.Request("GET", "/v1/models"), std::runtime_error);
}

TEST(TestUpstreamProcess, ExitsZeroOnSigterm) {
  auto child = ChildProcess::Start(TestUpstream::BinaryPath(), {"--listen", "127.0.0.1:0"});
  std::uint16_t port = ParseListeningPort(child->WaitForLine("listening"));
  EXPECT_GT(port, 0);
  EXPECT_EQ(child->StdoutLines().size(), 1u);
  child->Signal(SIGTERM);
  EXPECT_EQ(child->Wait(milliseconds(5000)), 0);
}

TEST(TestUpstreamProcess, RejectsBadFlags) {
  auto result = RunCommand({TestUpstream::BinaryPath(), "--latency", "soon"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("latency"), std::string::npos) << result.output;
}

// --- The support library itself -----------------------------------------------------------

TEST(SupportLibrary, ParseListeningPortReadsPlainAndJsonLines) {
  EXPECT_EQ(ParseListeningPort("listening 127.0.0.1:8080"), 8080);
  EXPECT_EQ(ParseListeningPort("listening [::1]:9"), 9);
  EXPECT_EQ(
      ParseListeningPort(R"({"severity":"INFO","message":"listening","address":"127.0.0.1:4321"})"),
      4321);
  EXPECT_EQ(ParseListeningPort(R"({"message":"listening", "address": "0.0.0.0:80","x":1})"), 80);
  EXPECT_THROW(ParseListeningPort("starting"), std::runtime_error);
}

TEST(SupportLibrary, ChildProcessCapturesLinesAndExitCodes) {
  auto child =
      ChildProcess::Start("/bin/sh", {"-c", "echo out1; echo err1 >&2; printf partial; exit 3"},
                          {{"ORCHESTRA_TEST_VAR", "v"}});
  EXPECT_EQ(child->WaitForLine("err1"), "err1");
  EXPECT_EQ(child->Wait(milliseconds(5000)), 3);
  EXPECT_EQ(child->StdoutLines(), (std::vector<std::string>{"out1", "partial"}));
  EXPECT_EQ(child->StderrLines(), (std::vector<std::string>{"err1"}));

  auto env = ChildProcess::Start("/bin/sh", {"-c", "echo $ORCHESTRA_TEST_VAR; pwd"},
                                 {{"ORCHESTRA_TEST_VAR", "value"}}, "/");
  EXPECT_EQ(env->Wait(milliseconds(5000)), 0);
  EXPECT_EQ(env->StdoutLines(), (std::vector<std::string>{"value", "/"}));
}

TEST(SupportLibrary, ChildProcessReportsSignalsTimeoutsAndEarlyExit) {
  auto sleeper = ChildProcess::Start("sleep", {"30"});
  EXPECT_FALSE(sleeper->Wait(milliseconds(20)).has_value());
  EXPECT_THROW(sleeper->WaitForLine("never", milliseconds(50)), std::runtime_error);
  sleeper->Signal(SIGKILL);
  EXPECT_EQ(sleeper->Wait(milliseconds(5000)), 128 + SIGKILL);

  auto quitter = ChildProcess::Start("/bin/sh", {"-c", "echo bye; exit 1"});
  try {
    quitter->WaitForLine("ready", milliseconds(5000));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bye"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ChildProcess::Start("/nonexistent/program", {}), std::runtime_error);
}

TEST(SupportLibrary, RunCommandAndTempDir) {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    auto r = RunCommand({"/bin/sh", "-c", "echo hi; echo there >&2; touch " + dir.File("f")});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("hi"), std::string::npos);
    EXPECT_NE(r.output.find("there"), std::string::npos);
    EXPECT_EQ(RunCommand({"/bin/sh", "-c", "exit 7"}).exit_code, 7);
    EXPECT_EQ(RunCommand({"sleep", "5"}, milliseconds(50)).exit_code, -1);
    EXPECT_EQ(RunCommand({"/nonexistent/program"}).exit_code, 127);
    EXPECT_EQ(RunCommand({"test", "-f", dir.File("f")}).exit_code, 0);
  }
  EXPECT_NE(RunCommand({"test", "-e", path}).exit_code, 0);
}

// --- The upstream's scanner and parser --------------------------------------------------

namespace up = orchestra::testing::upstream;

TEST(UpstreamJsonScan, FindsTopLevelMembersOnly) {
  std::string_view doc = R"({"a":{"model":"inner"},"s":"x\"model\":y","model":"outer"})";
  EXPECT_EQ(up::FindMember(doc, "model"), R"("outer")");
  EXPECT_TRUE(up::IsSingleValue(R"( [1, -2.5e3, true, false, null, "\u00e9", {}] )"));
  EXPECT_FALSE(up::IsSingleValue(R"({"a":1,})"));
  EXPECT_FALSE(up::IsSingleValue(R"({"a" 1})"));
  EXPECT_FALSE(up::IsSingleValue("\"unterminated"));
  std::string deep(100, '[');
  EXPECT_FALSE(up::IsSingleValue(deep + std::string(100, ']')));
  std::string decoded;
  EXPECT_TRUE(up::DecodeString(R"("a\nb\u00e9\ud83d\ude00")", decoded));
  EXPECT_EQ(decoded, "a\nb\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(UpstreamHttpParser, ParsesPipelinedRequestsAndRefusesSmuggling) {
  up::HttpRequest req;
  std::string chunked;
  std::string two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
  auto first = up::ParseRequest(two, req, chunked);
  ASSERT_EQ(first.status, up::ParseStatus::kComplete);
  EXPECT_EQ(req.path, "/a");
  EXPECT_TRUE(req.keep_alive);
  auto second = up::ParseRequest(std::string_view(two).substr(first.consumed), req, chunked);
  ASSERT_EQ(second.status, up::ParseStatus::kComplete);
  EXPECT_EQ(req.path, "/b");
  EXPECT_FALSE(req.keep_alive);
  EXPECT_EQ(up::ParseRequest("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", req, chunked).status,
            up::ParseStatus::kNeedMore);
  EXPECT_EQ(
      up::ParseRequest("POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                       req, chunked)
          .status,
      up::ParseStatus::kBad);
  EXPECT_EQ(
      up::ParseRequest("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", req, chunked).status,
      up::ParseStatus::kNotImplemented);
}

TEST(UpstreamDirectives, ParseAndOverrideDefaults) {
  up::Directives defaults;
  defaults.latency = milliseconds(20);
  auto d =
      up::ParseModelDirectives("name+status=429+times=2+retry_after=1+chunk_delay=5ms", defaults);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->status, 429);
  EXPECT_EQ(d->times, 2);
  EXPECT_EQ(d->retry_after, 1);
  EXPECT_EQ(d->chunk_delay, milliseconds(5));
  EXPECT_EQ(d->latency, milliseconds(20));
  EXPECT_FALSE(up::ParseModelDirectives("x+nope", defaults).has_value());
  EXPECT_TRUE(up::ParseModelDirectives("plain-model", defaults).has_value());
}

TEST(UpstreamDirectives, WireFaultsParseAndTimesGatesThem) {
  auto d = up::ParseModelDirectives(
      "x+interim=103+length_delta=-7+append+append_delay=5ms+encoding=gzip+reset_at=body+"
      "drip=1ms+header_bytes=100+bad_chunk+http09+content_type=text/html+html+body_mib=2",
      {});
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(d->interim, 103);
  EXPECT_EQ(d->length_delta, -7);
  EXPECT_TRUE(d->append);
  EXPECT_EQ(d->append_delay, milliseconds(5));
  EXPECT_EQ(d->encoding, up::Encoding::kGzip);
  EXPECT_EQ(d->reset_at, up::FaultPoint::kBody);
  EXPECT_EQ(d->drip, milliseconds(1));
  EXPECT_EQ(d->header_bytes, 100);
  EXPECT_TRUE(d->bad_chunk && d->http09 && d->html);
  EXPECT_EQ(d->content_type, "text/html");
  EXPECT_EQ(d->body_mib, 2);
  EXPECT_TRUE(d->HasWireFault());
  d->ClearFailures();
  EXPECT_FALSE(d->HasWireFault());
  EXPECT_FALSE(up::ParseModelDirectives("x+interim=200", {}).has_value());
  EXPECT_FALSE(up::ParseModelDirectives("x+encoding=zstd", {}).has_value());
  EXPECT_FALSE(up::ParseModelDirectives("x+stall_at=tail", {}).has_value());
  EXPECT_FALSE(up::ParseModelDirectives("x+content_type=image/png", {}).has_value());
}

// The wire directives through the executable, read with raw sockets.
TEST_F(UpstreamTest, InterimResponsesAndStrayBytesComeAsAsked) {
  const std::string body = ChatBody("x+interim=103+length_delta=-4", "hi there");
  client_->SendRaw(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  const std::string raw = client_->ReadRaw(std::chrono::seconds(3));
  ASSERT_EQ(raw.rfind("HTTP/1.1 103 Early Hints\r\n", 0), 0u) << raw;
  const std::size_t final_at = raw.find("HTTP/1.1 200 OK\r\n");
  ASSERT_NE(final_at, std::string::npos) << raw;
  const std::size_t length_at = raw.find("Content-Length: ", final_at);
  const std::size_t body_at = raw.find("\r\n\r\n", final_at) + 4;
  const std::size_t length = std::stoul(raw.substr(length_at + 16));
  EXPECT_EQ(raw.size() - body_at, length + 4) << "four bytes beyond the Content-Length";
}

TEST_F(UpstreamTest, AGzipBodyDecodesToTheAnswer) {
  HttpResponse r =
      client_->Request("POST", "/v1/chat/completions", ChatBody("x+encoding=gzip", "hi there"),
                       {{"Accept-Encoding", "gzip"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-encoding"), "gzip");
  ASSERT_GE(r.body.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(r.body[0]), 0x1f);  // the gzip magic number
  EXPECT_EQ(static_cast<unsigned char>(r.body[1]), 0x8b);
}

}  // namespace
