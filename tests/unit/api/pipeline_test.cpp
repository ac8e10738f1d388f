// The pipeline's admission and settlement hooks, with a recording stage, the real OpenAI
// handlers and orchestrator, and scripted providers: every admitted request is settled exactly
// once with its outcome — on success, on an error, when the client goes away mid-stream, when
// the upstream cuts a stream, and after a fallback to a second target; a refusal is settled by
// the stages that had admitted, and the handler never runs.

#include "api/pipeline.hpp"

#include <deque>
#include <functional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include "api/openai.hpp"
#include "orchestration/orchestrator.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
using providers::ProviderError;
using providers::ProviderResult;

// An exchange whose client can be made to leave after a number of stream chunks.
class FakeExchange final : public net::Exchange {
 public:
  explicit FakeExchange(net::Request request, std::string body)
      : request_(request), body_(std::move(body)) {}
  const net::Request& request() const override { return request_; }
  net::Response& response() override { return response_; }
  std::string TakeBody() override { return std::move(body_); }
  asio::awaitable<bool> BeginStream(std::string_view) override {
    streaming_ = true;
    co_return !client_gone();
  }
  asio::awaitable<bool> WriteChunk(std::string_view data) override {
    chunks.emplace_back(data);
    if (leave_after_chunks >= 0 && static_cast<int>(chunks.size()) >= leave_after_chunks) {
      gone_ = true;
    }
    co_return !gone_;
  }
  asio::awaitable<void> EndStream() override { co_return; }
  bool streaming() const override { return streaming_; }
  void WatchClientDisconnect() override {}
  bool client_gone() const override { return gone_; }
  std::uint64_t bytes_written() const override { return 0; }
  int worker_index() const override { return 0; }

  int leave_after_chunks = -1;
  std::vector<std::string> chunks;

 private:
  net::Request request_;
  std::string body_;
  net::Response response_;
  bool streaming_ = false;
  bool gone_ = false;
};

// A provider that plays one scripted behaviour per call.
class ScriptedProvider final : public providers::Provider {
 public:
  enum class Play { kAnswer, kFail500, kStreamThreeThenEnd, kStreamTwoThenCut };
  explicit ScriptedProvider(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  config::ProviderType type() const override { return config::ProviderType::kOpenAI; }
  bool ForwardsRawBody() const override { return true; }

  asio::awaitable<ProviderResult<wire::ChatResponse>> Chat(
      const wire::ChatRequest&, const providers::CallOptions& o) override {
    if (Next() == Play::kFail500) co_return Failure();
    wire::ChatResponse r;
    r.raw = R"({"choices":[]})";
    r.model = std::string(o.upstream_model);
    r.usage = {10, 5, 15, true};
    co_return r;
  }
  asio::awaitable<ProviderResult<providers::StreamSummary>> ChatStream(
      const wire::ChatRequest&, const providers::CallOptions&,
      providers::ChunkSink& sink) override {
    const Play play = Next();
    if (play == Play::kFail500) co_return Failure();
    const int chunks = play == Play::kStreamTwoThenCut ? 2 : 3;
    for (int i = 0; i < chunks; ++i) {
      wire::ChatChunk c;
      c.raw = R"({"choices":[{"delta":{"content":"x"}}]})";
      if (!co_await sink.OnChunk(c)) {
        ProviderError e;
        e.kind = providers::FailureKind::kCancelled;
        e.error = Error(ErrorCode::kCancelled, "client went away");
        co_return e;
      }
    }
    if (play == Play::kStreamTwoThenCut) {
      ProviderError cut;
      cut.kind = providers::FailureKind::kProtocol;
      cut.error = Error(ErrorCode::kUpstreamError, "ended the stream before its end");
      co_return cut;
    }
    providers::StreamSummary s;
    s.usage = {7, 3, 10, true};
    co_return s;
  }
  asio::awaitable<ProviderResult<wire::EmbeddingResponse>> Embed(
      const wire::EmbeddingRequest&, const providers::CallOptions&) override {
    co_return Failure();
  }
  asio::awaitable<Result<std::string>> Warmup(int) override { co_return std::string(); }

  std::deque<Play> script;

 private:
  Play Next() {
    if (script.empty()) return Play::kAnswer;
    Play p = script.front();
    script.pop_front();
    return p;
  }
  static ProviderError Failure() {
    ProviderError e;
    e.kind = providers::FailureKind::kStatus;
    e.status = 500;
    e.error = Error(ErrorCode::kUpstreamError, "upstream answered 500", "", 500);
    return e;
  }
  std::string name_;
};

// Records every admission and settlement; can refuse.
class RecordingStage final : public limits::Stage {
 public:
  std::string_view name() const override { return "recording"; }
  std::optional<limits::Refusal> Admit(const limits::Request& request,
                                       limits::Ticket& ticket) override {
    ++admitted;
    last_model = std::string(request.model);
    ticket.amount = 42;
    if (refuse) return limits::Refusal{Error(ErrorCode::kRateLimited, "slow down"), "rate_limit"};
    return std::nullopt;
  }
  void Settle(const limits::Request&, const limits::Ticket& ticket,
              const limits::Outcome& outcome) override {
    ++settled;
    EXPECT_EQ(ticket.amount, 42);
    outcomes.push_back(outcome);
    providers.emplace_back(outcome.provider);
    upstream_models.emplace_back(outcome.upstream_model);
  }
  bool refuse = false;
  int admitted = 0;
  int settled = 0;
  std::string last_model;
  std::vector<limits::Outcome> outcomes;
  std::vector<std::string> providers;
  std::vector<std::string> upstream_models;
};

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() {
    config::ProviderConfig a;
    a.name = "a";
    config::ProviderConfig b;
    b.name = "b";
    config_.providers = {a, b};
    config::ModelConfig primary;
    primary.name = "primary";
    primary.targets = {{"a", "model-a", 1}};
    primary.fallbacks = {"secondary"};
    primary.retry.attempts = 1;
    config::ModelConfig secondary;
    secondary.name = "secondary";
    secondary.targets = {{"b", "model-b", 1}};
    config_.models = {primary, secondary};
    providers_["a"] = &a_;
    providers_["b"] = &b_;
    routes_ = std::make_unique<orchestration::RouteTable>(config_, providers_, metrics_,
                                                          orchestration::RealClock(),
                                                          orchestration::RouteTable::Options());
    orchestrator_ = std::make_unique<orchestration::Orchestrator>(*routes_, metrics_, nullptr);
    AddOpenAIRoutes(router_, *orchestrator_, {});
    observability::LoggerOptions lo;
    logger_ = std::make_unique<observability::Logger>(lo);
    PipelineOptions po;
    po.access_log = false;
    pipeline_ = std::make_unique<Pipeline>(
        router_, keys_, std::vector<limits::Stage*>{&first_, &second_}, registry_, *logger_, po);
  }
  ~PipelineTest() override { logger_->Stop(); }

  void Run(FakeExchange& exchange) {
    asio::io_context io;
    asio::co_spawn(io, pipeline_->Handle(exchange), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    io.run();
  }
  FakeExchange Post(std::string body) {
    message_ = http::request<http::string_body>{http::verb::post, "/v1/chat/completions", 11};
    net::Request request;
    request.method = http::verb::post;
    request.method_name = "POST";
    request.target = "/v1/chat/completions";
    request.path = request.target;
    request.message = &message_;
    request.start = net::Clock::now();
    return FakeExchange(request, std::move(body));
  }
  static std::string Chat(bool stream) {
    return std::string(R"({"model":"primary","messages":[{"role":"user","content":"hi"}])") +
           (stream ? R"(,"stream":true})" : "}");
  }

  ScriptedProvider a_{"a"};
  ScriptedProvider b_{"b"};
  config::Config config_;
  orchestration::ProviderMap providers_;
  observability::Registry registry_;
  orchestration::Metrics metrics_{registry_};
  std::unique_ptr<orchestration::RouteTable> routes_;
  std::unique_ptr<orchestration::Orchestrator> orchestrator_;
  Router router_;
  auth::ApiKeys keys_ = auth::ApiKeys::FromConfig({}, config::ProcessEnv());
  std::unique_ptr<observability::Logger> logger_;
  RecordingStage first_;
  RecordingStage second_;
  std::unique_ptr<Pipeline> pipeline_;
  http::request<http::string_body> message_;
};

TEST_F(PipelineTest, SettlesASuccessOnceWithWhoServedAndTheUsage) {
  FakeExchange ex = Post(Chat(false));
  Run(ex);
  EXPECT_EQ(ex.response().status, 200u);
  for (RecordingStage* s : {&first_, &second_}) {
    EXPECT_EQ(s->admitted, 1);
    ASSERT_EQ(s->settled, 1);
    EXPECT_EQ(s->last_model, "primary");
    EXPECT_EQ(s->providers[0], "a");
    EXPECT_EQ(s->outcomes[0].status, 200u);
    EXPECT_EQ(s->outcomes[0].prompt_tokens, 10);
    EXPECT_EQ(s->outcomes[0].completion_tokens, 5);
    EXPECT_FALSE(s->outcomes[0].refused);
  }
}

TEST_F(PipelineTest, SettlesAnErrorOnce) {
  a_.script = {ScriptedProvider::Play::kFail500, ScriptedProvider::Play::kFail500};
  b_.script = {ScriptedProvider::Play::kFail500, ScriptedProvider::Play::kFail500};
  FakeExchange ex = Post(Chat(false));
  Run(ex);
  EXPECT_EQ(ex.response().status, 502u);
  ASSERT_EQ(first_.settled, 1);
  EXPECT_EQ(first_.outcomes[0].status, 502u);
  EXPECT_FALSE(first_.outcomes[0].usage_known);
}

TEST_F(PipelineTest, SettlesAfterAFallbackWithTheSecondTarget) {
  a_.script = {ScriptedProvider::Play::kFail500};
  FakeExchange ex = Post(Chat(false));
  Run(ex);
  EXPECT_EQ(ex.response().status, 200u);
  ASSERT_EQ(first_.settled, 1);
  EXPECT_EQ(first_.providers[0], "b");
  EXPECT_EQ(first_.upstream_models[0], "model-b");
  EXPECT_EQ(std::string(first_.outcomes[0].model), "secondary");
}

TEST_F(PipelineTest, SettlesAStreamAtItsEndWithItsUsage) {
  FakeExchange ex = Post(Chat(true));
  Run(ex);
  EXPECT_EQ(ex.response().status, 200u);
  ASSERT_EQ(first_.settled, 1);
  EXPECT_EQ(first_.outcomes[0].completion_tokens, 3);
  EXPECT_GT(first_.outcomes[0].first_token.count(), 0);
  EXPECT_FALSE(first_.outcomes[0].client_gone);
}

TEST_F(PipelineTest, SettlesOnceWhenTheClientLeavesMidStream) {
  FakeExchange ex = Post(Chat(true));
  ex.leave_after_chunks = 1;
  Run(ex);
  ASSERT_EQ(first_.settled, 1);
  ASSERT_EQ(second_.settled, 1);
  EXPECT_TRUE(first_.outcomes[0].client_gone);
  EXPECT_EQ(first_.providers[0], "a");
}

TEST_F(PipelineTest, SettlesOnceWhenTheUpstreamCutsTheStream) {
  a_.script = {ScriptedProvider::Play::kStreamTwoThenCut};
  FakeExchange ex = Post(Chat(true));
  Run(ex);
  ASSERT_EQ(first_.settled, 1);
  EXPECT_EQ(first_.providers[0], "a");
  // The error event ended the stream; no fallback once bytes reached the client.
  EXPECT_EQ(b_.script.size(), 0u);
  EXPECT_NE(ex.chunks.back().find("error"), std::string::npos);
}

TEST_F(PipelineTest, ARefusalSettlesTheStagesThatAdmittedAndSkipsTheHandler) {
  second_.refuse = true;
  FakeExchange ex = Post(Chat(false));
  Run(ex);
  EXPECT_EQ(ex.response().status, 429u);
  EXPECT_EQ(first_.admitted, 1);
  ASSERT_EQ(first_.settled, 1);
  EXPECT_TRUE(first_.outcomes[0].refused);
  EXPECT_EQ(second_.settled, 0);  // it refused: nothing to give back
  EXPECT_NE(registry_.Render().find(R"(orchestra_http_rejected_total{reason="rate_limit"} 1)"),
            std::string::npos);
}

TEST_F(PipelineTest, ABodyThatDoesNotDecodeIsNeitherAdmittedNorSettled) {
  FakeExchange ex = Post("{not json");
  Run(ex);
  EXPECT_EQ(ex.response().status, 400u);
  EXPECT_EQ(first_.admitted, 0);
  EXPECT_EQ(first_.settled, 0);
}

}  // namespace
}  // namespace orchestra::api
