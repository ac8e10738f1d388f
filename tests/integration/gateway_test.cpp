// The OpenAI-compatible gateway through the real binary against the test upstream: round trips,
// retries, fallbacks, broken and stalled upstreams, client disconnects, circuit breaking, load
// shedding, graceful shutdown with requests in flight, TLS, and the Gemini and Anthropic
// translations.

#include <atomic>
#include <csignal>
#include <fstream>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "integration/orchestra_process.hpp"

namespace orchestra::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

std::string Chat(std::string_view model, bool stream = false, std::string_view extra = "") {
  std::string body = R"({"model":")" + std::string(model) +
                     R"(","messages":[{"role":"user","content":"hello brave new world"}])";
  if (stream) body += R"(,"stream":true)";
  body += extra;
  body += "}";
  return body;
}

std::string ErrorCodeOf(const HttpResponse& r) {
  json::value v = r.Json();
  return std::string(v.at("error").at("code").as_string());
}

// The value of a metric series in /metrics text, or -1 when absent.
double Metric(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

// An Orchestra in front of one test upstream, with the models the tests script through
// directives in the upstream model names.
class GatewayTest : public ::testing::Test {
 protected:
  void Start(const std::string& models, const std::string& server = "max_inflight: 50",
             std::vector<std::string> upstream_args = {}) {
    upstream_ = std::make_unique<TestUpstream>(std::move(upstream_args));
    OrchestraOptions o;
    o.config_yaml = "server: {" + server +
                    "}\n"
                    "providers:\n"
                    "  - {name: up, type: openai, base_url: '" +
                    upstream_->base_url() +
                    "/v1', api_key_env: TEST_UPSTREAM_KEY}\n"
                    "models:\n" +
                    models;
    o.env = {{"TEST_UPSTREAM_KEY", "sk-upstream-secret"}};
    orchestra_ = std::make_unique<Orchestra>(o);
    client_ = orchestra_->Client();
  }

  std::string Metrics() { return orchestra_->Client()->Request("GET", "/metrics").body; }

  std::unique_ptr<TestUpstream> upstream_;
  std::unique_ptr<Orchestra> orchestra_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(GatewayTest, ForwardsARequestUntouchedButForTheModel) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n");
  auto r = client_->Request(
      "POST", "/v1/chat/completions",
      Chat("fast", false, R"(,"seed":7,"tools":[{"type":"function","function":{"name":"f"}}])"),
      {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json().at("choices").at(0).at("message").at("content"),
            "echo: hello brave new world");
  EXPECT_EQ(r.Header("x-orchestra-provider"), "up");
  EXPECT_EQ(r.Header("x-orchestra-model"), "echo-1");
  EXPECT_FALSE(r.Header("x-orchestra-overhead-us").empty());
  json::value last = upstream_->LastRequest();
  json::value sent = json::parse(last.at("body").as_string());
  EXPECT_EQ(sent.at("model"), "echo-1");
  EXPECT_EQ(sent.at("seed"), 7);
  EXPECT_EQ(sent.at("tools").at(0).at("function").at("name"), "f");
  const auto& headers = last.at("headers").as_object();
  EXPECT_EQ(headers.at("authorization"), "Bearer sk-upstream-secret");
  EXPECT_NE(
      std::string(headers.at("traceparent").as_string()).find("4bf92f3577b34da6a3ce929d0e0e4736"),
      std::string::npos);
  EXPECT_EQ(std::string(headers.at("x-request-id").as_string()), r.Header("x-request-id"));

  std::string metrics = Metrics();
  EXPECT_EQ(
      Metric(
          metrics,
          R"(orchestra_upstream_requests_total{provider="up",model="echo-1",outcome="success"})"),
      1);
  EXPECT_EQ(
      Metric(metrics,
             R"(orchestra_tokens_total{model="fast",provider="up",key="default",kind="input"})"),
      4);
  ASSERT_EQ(orchestra_->Stop(), 0);
  for (const auto& line : orchestra_->process().StdoutLines()) {
    EXPECT_EQ(line.find("sk-upstream-secret"), std::string::npos) << line;
  }
}

TEST_F(GatewayTest, StreamsChunksAndCountsUsageWithoutShowingItUnasked) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n");
  std::vector<std::string> events;
  auto r = client_->Stream("POST", "/v1/chat/completions", Chat("fast", true), {},
                           [&](std::string_view data) {
                             events.emplace_back(data);
                             return true;
                           });
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  EXPECT_EQ(r.Header("x-orchestra-provider"), "up");
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    json::value chunk = json::parse(events[i]);
    ASSERT_FALSE(chunk.at("choices").as_array().empty()) << "an unasked-for usage chunk";
    const auto& delta = chunk.at("choices").at(0).at("delta").as_object();
    if (delta.contains("content")) text += delta.at("content").as_string();
  }
  EXPECT_EQ(text, "echo: hello brave new world");
  json::value sent = json::parse(upstream_->LastRequest().at("body").as_string());
  EXPECT_EQ(sent.at("stream_options").at("include_usage"), true);
  EXPECT_EQ(
      Metric(Metrics(),
             R"(orchestra_tokens_total{model="fast",provider="up",key="default",kind="output"})"),
      5);

  // Asked for, the usage chunk comes through.
  events.clear();
  client_->Stream("POST", "/v1/chat/completions",
                  Chat("fast", true, R"(,"stream_options":{"include_usage":true})"), {},
                  [&](std::string_view data) {
                    events.emplace_back(data);
                    return true;
                  });
  ASSERT_GE(events.size(), 2u);
  json::value usage = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("completion_tokens"), 5);
}

TEST_F(GatewayTest, KeepsTheClientsOtherStreamOptions) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n");
  client_->Stream("POST", "/v1/chat/completions",
                  Chat("fast", true, R"(,"stream_options":{"include_obfuscation":true})"), {},
                  [](std::string_view) { return true; });
  json::value sent = json::parse(upstream_->LastRequest().at("body").as_string());
  EXPECT_EQ(sent.at("stream_options").at("include_usage"), true);
  EXPECT_EQ(sent.at("stream_options").at("include_obfuscation"), true);
}

TEST_F(GatewayTest, AStreamMayOutliveTheAttemptTimeoutOnceItHasStarted) {
  Start(
      "  - name: long\n"
      "    targets: [{provider: up, model: 'x+chunks=8+chunk_delay=100ms'}]\n"
      "    timeout: 300ms\n");
  std::vector<std::string> events;
  auto r = client_->Stream("POST", "/v1/chat/completions", Chat("long", true), {},
                           [&](std::string_view data) {
                             events.emplace_back(data);
                             return true;
                           });
  EXPECT_EQ(r.status, 200);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST_F(GatewayTest, RetriesA429AndSucceeds) {
  Start(
      "  - name: flaky\n"
      "    targets: [{provider: up, model: 'x+status=429+times=1'}]\n"
      "    retry: {attempts: 3, backoff: 10ms}\n");
  auto r = client_->Request("POST", "/v1/chat/completions", Chat("flaky"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(upstream_->Stats().at("requests_total"), 2);
  EXPECT_EQ(Metric(Metrics(), R"(orchestra_retries_total{cause="status_429"})"), 1);
}

TEST_F(GatewayTest, FallsBackWhenThePrimaryFails) {
  Start(
      "  - name: primary\n"
      "    targets: [{provider: up, model: 'x+status=500'}]\n"
      "    retry: {attempts: 2, backoff: 5ms}\n"
      "    fallbacks: [secondary]\n"
      "  - {name: secondary, targets: [{provider: up, model: echo-2}]}\n");
  auto r = client_->Request("POST", "/v1/chat/completions", Chat("primary"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("x-orchestra-model"), "echo-2");
  std::string metrics = Metrics();
  EXPECT_EQ(Metric(metrics, R"(orchestra_fallbacks_total{cause="status_5xx"})"), 1);
  EXPECT_EQ(
      Metric(
          metrics,
          R"(orchestra_upstream_requests_total{provider="up",model="x+status=500",outcome="error"})"),
      2);
}

TEST_F(GatewayTest, ClientErrorsAreNotRetriedAndKeepTheirStatus) {
  Start(
      "  - name: strict\n"
      "    targets: [{provider: up, model: 'x+status=400'}]\n"
      "    retry: {attempts: 3, backoff: 5ms}\n"
      "    fallbacks: [local-extractive]\n"
      "    allow_local_fallback: true\n");
  auto r = client_->Request("POST", "/v1/chat/completions", Chat("strict"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(upstream_->Stats().at("requests_total"), 1);
}

TEST_F(GatewayTest, AllFailuresEndInABadGatewayInTheErrorShape) {
  Start(
      "  - name: broken\n"
      "    targets: [{provider: up, model: 'x+status=503'}]\n"
      "    retry: {attempts: 2, backoff: 5ms}\n");
  auto r = client_->Request("POST", "/v1/chat/completions", Chat("broken"));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(ErrorCodeOf(r), "upstream_error");
}

TEST_F(GatewayTest, AStreamCutMidwayEndsWithAnErrorEventAndCountsAsAnError) {
  Start("  - {name: cut, targets: [{provider: up, model: 'x+cut=2+chunks=6'}]}\n");
  std::vector<std::string> events;
  auto r = client_->Stream("POST", "/v1/chat/completions", Chat("cut", true), {},
                           [&](std::string_view data) {
                             events.emplace_back(data);
                             return true;
                           });
  EXPECT_EQ(r.status, 200);
  ASSERT_GE(events.size(), 3u);
  EXPECT_NE(events.back(), "[DONE]");
  EXPECT_TRUE(json::parse(events.back()).as_object().contains("error")) << events.back();
  std::string metrics = Metrics();
  EXPECT_EQ(
      Metric(
          metrics,
          R"(orchestra_upstream_requests_total{provider="up",model="x+cut=2+chunks=6",outcome="error"})"),
      1);
  EXPECT_EQ(
      Metric(
          metrics,
          R"(orchestra_upstream_requests_total{provider="up",model="x+cut=2+chunks=6",outcome="success"})"),
      0);
}

TEST_F(GatewayTest, AStreamThatFailsBeforeItsFirstByteFallsBack) {
  Start(
      "  - name: s\n"
      "    targets: [{provider: up, model: 'x+status=502'}]\n"
      "    retry: {attempts: 1}\n"
      "    fallbacks: [local-extractive]\n"
      "    allow_local_fallback: true\n");
  std::vector<std::string> events;
  // A conversation the local provider can answer from (it cannot generate text).
  const std::string body =
      R"({"model":"s","stream":true,"messages":[{"role":"system","content":"Cats purr."},)"
      R"({"role":"user","content":"What do cats do?"}]})";
  auto r = client_->Stream("POST", "/v1/chat/completions", body, {}, [&](std::string_view data) {
    events.emplace_back(data);
    return true;
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("x-orchestra-provider"), "local");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST_F(GatewayTest, AStalledUpstreamHitsTheTimeout) {
  Start(
      "  - name: stuck\n"
      "    targets: [{provider: up, model: 'x+stall'}]\n"
      "    timeout: 300ms\n"
      "    retry: {attempts: 1}\n");
  const auto start = std::chrono::steady_clock::now();
  auto r = client_->Request("POST", "/v1/chat/completions", Chat("stuck"));
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(ErrorCodeOf(r), "upstream_timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(
      Metric(
          Metrics(),
          R"(orchestra_upstream_requests_total{provider="up",model="x+stall",outcome="timeout"})"),
      1);
}

TEST_F(GatewayTest, TheServersRequestDeadlineAnswers504) {
  Start("  - {name: stuck, targets: [{provider: up, model: 'x+stall'}], timeout: 60s}\n",
        "max_inflight: 50, request_timeout: 500ms");
  const auto start = std::chrono::steady_clock::now();
  auto r = client_->Request("POST", "/v1/chat/completions", Chat("stuck"));
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(ErrorCodeOf(r), "deadline_exceeded");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  // The upstream request was abandoned, not left running.
  bool aborted = false;
  for (int i = 0; i < 100 && !aborted; ++i) {
    aborted = upstream_->Stats().at("streams_aborted").as_int64() >= 1;
    if (!aborted) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(aborted);
}

TEST_F(GatewayTest, AClientDisconnectCancelsTheUpstreamRequest) {
  Start("  - {name: slow, targets: [{provider: up, model: 'x+stall'}], timeout: 60s}\n");
  {
    auto c = orchestra_->Client();
    std::string body = Chat("slow");
    c->SendRaw(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body);
    // Wait until the request reached the upstream, then hang up.
    for (int i = 0; i < 100 && upstream_->Stats().at("stalls").as_int64() == 0; ++i) {
      std::this_thread::sleep_for(20ms);
    }
    c->Close();
  }
  bool aborted = false;
  for (int i = 0; i < 100 && !aborted; ++i) {
    aborted = upstream_->Stats().at("streams_aborted").as_int64() >= 1;
    if (!aborted) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(aborted) << json::serialize(upstream_->Stats());
  EXPECT_EQ(
      Metric(
          Metrics(),
          R"(orchestra_upstream_requests_total{provider="up",model="x+stall",outcome="cancelled"})"),
      1);
}

TEST_F(GatewayTest, AClientThatStopsReadingAStreamCancelsIt) {
  Start("  - {name: slow, targets: [{provider: up, model: 'x+chunks=200+chunk_delay=50ms'}]}\n");
  int seen = 0;
  auto r = client_->Stream("POST", "/v1/chat/completions", Chat("slow", true), {},
                           [&](std::string_view) { return ++seen < 3; });
  EXPECT_EQ(r.status, 200);
  bool aborted = false;
  for (int i = 0; i < 100 && !aborted; ++i) {
    aborted = upstream_->Stats().at("streams_aborted").as_int64() >= 1;
    if (!aborted) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(aborted) << json::serialize(upstream_->Stats());
}

TEST_F(GatewayTest, ACircuitOpensAfterConsecutiveFailuresAndSparesTheUpstream) {
  Start(
      "  - name: dying\n"
      "    targets: [{provider: up, model: 'x+status=500'}]\n"
      "    retry: {attempts: 1}\n"
      "    circuit_breaker: {failures: 2, cooldown: 60s}\n");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(client_->Request("POST", "/v1/chat/completions", Chat("dying")).status, 502);
  }
  auto refused = client_->Request("POST", "/v1/chat/completions", Chat("dying"));
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(upstream_->Stats().at("requests_total"), 2);
  std::string metrics = Metrics();
  EXPECT_EQ(Metric(metrics, R"(orchestra_circuit_open{target="up/x+status=500"})"), 1);
  EXPECT_EQ(
      Metric(
          metrics,
          R"(orchestra_upstream_requests_total{provider="up",model="x+status=500",outcome="rejected"})"),
      1);
}

TEST_F(GatewayTest, ShedsLoadOverCapacityWhileProbesStillAnswer) {
  Start("  - {name: slow, targets: [{provider: up, model: 'x+latency=1500ms'}]}\n",
        "max_inflight: 1");
  std::thread busy([&] {
    HttpClient c("127.0.0.1", orchestra_->port());
    EXPECT_EQ(c.Request("POST", "/v1/chat/completions", Chat("slow")).status, 200);
  });
  for (int i = 0; i < 100 && upstream_->Stats().at("requests_total").as_int64() == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  auto shed = client_->Request("POST", "/v1/chat/completions", Chat("slow"));
  EXPECT_EQ(shed.status, 503);
  EXPECT_EQ(ErrorCodeOf(shed), "overloaded");
  EXPECT_EQ(shed.Header("retry-after"), "1");
  EXPECT_EQ(client_->Request("GET", "/healthz").status, 200);
  busy.join();
  EXPECT_EQ(Metric(Metrics(), R"(orchestra_http_rejected_total{reason="overload"})"), 1);
}

TEST_F(GatewayTest, SigtermLetsInFlightRequestsFinish) {
  Start("  - {name: slow, targets: [{provider: up, model: 'x+latency=1s'}]}\n");
  std::atomic<int> status{0};
  std::thread request([&] {
    HttpClient c("127.0.0.1", orchestra_->port());
    status = c.Request("POST", "/v1/chat/completions", Chat("slow")).status;
  });
  for (int i = 0; i < 100 && upstream_->Stats().at("requests_total").as_int64() == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  orchestra_->process().Signal(SIGTERM);
  request.join();
  EXPECT_EQ(status.load(), 200);
  EXPECT_EQ(orchestra_->process().Wait(10s), 0);
}

TEST_F(GatewayTest, RejectsBadInputWithTheErrorShape) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n");
  struct Case {
    std::string body;
    int status;
    const char* param;
  };
  const Case cases[] = {
      {"{not json", 400, nullptr},
      {R"({"messages":[{"role":"user","content":"x"}]})", 400, "model"},
      {R"({"model":"fast"})", 400, "messages"},
      {R"({"model":"fast","messages":[]})", 400, "messages"},
      {R"({"model":"fast","messages":[{"role":"user","content":"x"}],"stream":"yes"})", 400,
       "stream"},
      {R"({"model":"nope","messages":[{"role":"user","content":"x"}]})", 404, "model"},
  };
  for (const Case& c : cases) {
    auto r = client_->Request("POST", "/v1/chat/completions", c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " → " << r.body;
    json::value e = r.Json().at("error");
    if (c.param != nullptr) {
      EXPECT_EQ(e.at("param"), c.param) << r.body;
    }
  }
  EXPECT_EQ(upstream_->Stats().at("requests_total"), 0);
}

TEST_F(GatewayTest, ListsModelsAndReachesProvidersDirectly) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n");
  auto models = client_->Request("GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.Json().at("object"), "list");
  EXPECT_EQ(models.Json().at("data").at(0).at("id"), "fast");
  auto direct = client_->Request("POST", "/v1/chat/completions", Chat("up/echo-direct"));
  ASSERT_EQ(direct.status, 200) << direct.body;
  EXPECT_EQ(json::parse(upstream_->LastRequest().at("body").as_string()).at("model"),
            "echo-direct");
}

TEST_F(GatewayTest, EmbeddingsPassThroughAndRunLocally) {
  Start("  - {name: emb, targets: [{provider: up, model: embed-1}]}\n");
  auto r = client_->Request("POST", "/v1/embeddings",
                            R"({"model":"emb","input":["a b","c"],"encoding_format":"float"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json().at("data").as_array().size(), 2u);
  auto local =
      client_->Request("POST", "/v1/embeddings",
                       R"({"model":"local-embed","input":"hello","encoding_format":"base64"})");
  ASSERT_EQ(local.status, 200) << local.body;
  EXPECT_TRUE(local.Json().at("data").at(0).at("embedding").is_string());
}

TEST_F(GatewayTest, CachesIdenticalRequestsWhenConfigured) {
  Start("  - {name: cached, targets: [{provider: up, model: echo-1}], cache_ttl: 60s}\n");
  auto first = client_->Request("POST", "/v1/chat/completions", Chat("cached"));
  auto second = client_->Request("POST", "/v1/chat/completions", Chat("cached"));
  EXPECT_EQ(first.body, second.body);
  EXPECT_EQ(second.Header("x-orchestra-cache"), "hit");
  EXPECT_EQ(upstream_->Stats().at("requests_total"), 1);
}

// "Not found in the context" is not in the OpenAI body a cache keeps: the cache keeps it beside
// the body, so a cached answer is still found: false (issue 12).
TEST_F(GatewayTest, ACachedNotFoundAnswerStaysNotFound) {
  Start(
      "  - {name: answers, targets: [{provider: local, model: local-extractive}], "
      "cache_ttl: 60s}\n");
  const std::string body =
      R"({"model":"answers","question":"Who approved the migration?",)"
      R"("context":"The migration took four hours. No customer data was lost."})";
  for (int i = 0; i < 2; ++i) {
    auto r = client_->Request("POST", "/answer-question", body);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Json().at("found"), false) << r.body;
    EXPECT_EQ(r.Json().at("answer"), "") << r.body;
    EXPECT_EQ(r.Header("x-orchestra-cache"), i == 0 ? "miss" : "hit");
  }
  EXPECT_EQ(Metric(Metrics(), R"(orchestra_cache_requests_total{result="hit"})"), 1);
}

TEST_F(GatewayTest, WarmupOpensUpstreamConnections) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n");
  auto r = client_->Request("POST", "/warmup");
  ASSERT_EQ(r.status, 200);
  bool provider = false;
  const json::value body = r.Json();
  for (const auto& item : body.at("warmed").as_array()) {
    if (item.at("name") == "provider up") provider = item.at("ok").as_bool();
  }
  EXPECT_TRUE(provider) << r.body;
  EXPECT_GE(upstream_->Stats().at("connections_total").as_int64(), 1);
}

TEST(GatewayTls, VerifiesTheUpstreamWithItsCa) {
  TempDir dir;
  TestCertificates certs = MakeTestCertificates(dir.path());
  TestUpstream upstream({"--tls-cert", certs.server_cert, "--tls-key", certs.server_key});
  auto config = [&](bool with_ca) {
    OrchestraOptions o;
    o.config_yaml = "providers:\n  - {name: tls, type: openai, base_url: '" + upstream.base_url() +
                    "/v1'" + (with_ca ? ", ca_file: '" + certs.ca_cert + "'" : std::string()) +
                    "}\nmodels:\n  - {name: m, targets: [{provider: tls, model: echo}], retry: "
                    "{attempts: 1}}\n";
    return o;
  };
  {
    Orchestra trusted(config(true));
    auto r = trusted.Client()->Request("POST", "/v1/chat/completions", Chat("m"));
    EXPECT_EQ(r.status, 200) << r.body;
  }
  {
    Orchestra untrusted(config(false));
    auto r = untrusted.Client()->Request("POST", "/v1/chat/completions", Chat("m"));
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_NE(r.body.find("TLS"), std::string::npos) << r.body;
  }
}

// Gemini and Anthropic through the test upstream, which speaks both natively.
class TranslationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = std::make_unique<TestUpstream>();
    OrchestraOptions o;
    o.config_yaml =
        "providers:\n"
        "  - {name: g, type: gemini, base_url: '" +
        upstream_->base_url() +
        "/v1beta', api_key_env: TEST_GEMINI_KEY}\n"
        "  - {name: a, type: anthropic, base_url: '" +
        upstream_->base_url() + "/v1', api_key_env: TEST_ANTHROPIC_KEY}\n";
    o.env = {{"TEST_GEMINI_KEY", "g-key"}, {"TEST_ANTHROPIC_KEY", "a-key"}};
    orchestra_ = std::make_unique<Orchestra>(o);
    client_ = orchestra_->Client();
  }
  std::unique_ptr<TestUpstream> upstream_;
  std::unique_ptr<Orchestra> orchestra_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(TranslationTest, GeminiRoundTrips) {
  auto r = client_->Request("POST", "/v1/chat/completions", Chat("g/gemini-test"));
  ASSERT_EQ(r.status, 200) << r.body;
  json::value v = r.Json();
  EXPECT_EQ(v.at("object"), "chat.completion");
  EXPECT_EQ(v.at("choices").at(0).at("message").at("content"), "echo: hello brave new world");
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), 4);
  json::value last = upstream_->LastRequest();
  EXPECT_NE(std::string(last.at("target").as_string()).find("/models/gemini-test:generateContent"),
            std::string::npos);
  EXPECT_EQ(last.at("headers").at("x-goog-api-key"), "g-key");

  std::string text;
  std::vector<std::string> events;
  auto s = client_->Stream("POST", "/v1/chat/completions", Chat("g/gemini-test", true), {},
                           [&](std::string_view data) {
                             events.emplace_back(data);
                             return true;
                           });
  ASSERT_EQ(s.status, 200);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    const json::value chunk = json::parse(events[i]);
    const auto& choices = chunk.at("choices").as_array();
    if (choices.empty()) continue;
    const auto& delta = choices.at(0).at("delta").as_object();
    if (delta.contains("content") && delta.at("content").is_string())
      text += delta.at("content").as_string();
  }
  EXPECT_EQ(text, "echo: hello brave new world");
}

// A translated stream whose provider reports no usage (a Gemini stream without usageMetadata)
// is counted with Orchestra's tokenizer: the client that asked for usage gets it, and the
// token metrics count it.
TEST_F(TranslationTest, AStreamWithoutUsageIsCountedByTheTokenizer) {
  std::vector<std::string> events;
  auto s = client_->Stream(
      "POST", "/v1/chat/completions",
      Chat("g/gemini-test+no_usage", true, R"(,"stream_options":{"include_usage":true})"), {},
      [&](std::string_view data) {
        events.emplace_back(data);
        return true;
      });
  ASSERT_EQ(s.status, 200);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  const json::value usage_chunk = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage_chunk.at("choices").as_array().empty()) << events[events.size() - 2];
  const json::value& usage = usage_chunk.at("usage");
  EXPECT_EQ(usage.at("completion_tokens"), 6);  // "echo" ":" " hello" " brave" " new" " world"
  EXPECT_GT(usage.at("prompt_tokens").as_int64(), 4);
  EXPECT_EQ(usage.at("total_tokens").as_int64(),
            usage.at("prompt_tokens").as_int64() + usage.at("completion_tokens").as_int64());
}

// Vertex AI: the bearer token comes from the metadata server ($GCE_METADATA_HOST; the test
// upstream plays it), goes upstream as `Authorization`, and is fetched once while it is valid.
TEST(VertexTest, AuthorisesWithTheMetadataServersTokenAndCachesIt) {
  TestUpstream upstream;
  OrchestraOptions o;
  o.config_yaml =
      "providers:\n"
      "  - {name: v, type: gemini, vertex: true, project: test-project, location: europe-west4,\n"
      "     base_url: '" +
      upstream.base_url() +
      "/v1/projects/test-project/locations/europe-west4/publishers/google'}\n"
      "models:\n"
      "  - {name: flash, targets: [{provider: v, model: gemini-test}]}\n";
  o.env = {{"GCE_METADATA_HOST", "127.0.0.1:" + std::to_string(upstream.port())}};
  Orchestra orchestra(o);
  auto client = orchestra.Client();

  for (int i = 0; i < 2; ++i) {
    auto r = client->Request("POST", "/v1/chat/completions", Chat("flash"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Json().at("choices").at(0).at("message").at("content"),
              "echo: hello brave new world");
  }
  json::value last = upstream.LastRequest();
  EXPECT_EQ(last.at("target"),
            "/v1/projects/test-project/locations/europe-west4/publishers/google/models/"
            "gemini-test:generateContent");
  EXPECT_EQ(last.at("headers").at("authorization"), "Bearer vertex-test-token");
  EXPECT_FALSE(last.at("headers").as_object().contains("x-goog-api-key"));
  EXPECT_EQ(upstream.Stats().at("metadata_tokens"), 1);  // cached for the second request
}

// Without a metadata server the attempt fails like a connect failure, with a clear message.
TEST(VertexTest, NoMetadataServerIsABadGatewayThatSaysWhy) {
  TestUpstream upstream;
  OrchestraOptions o;
  o.config_yaml =
      "providers:\n"
      "  - {name: v, type: gemini, vertex: true, project: p, base_url: '" +
      upstream.base_url() + "/v1/projects/p/locations/us-central1/publishers/google'}\n";
  // A port nothing listens on (the test upstream's, once it has stopped).
  TestUpstream gone;
  const std::uint16_t dead_port = gone.port();
  gone.process().Signal(SIGKILL);
  gone.process().Wait(std::chrono::seconds(5));
  o.env = {{"GCE_METADATA_HOST", "127.0.0.1:" + std::to_string(dead_port)}};
  Orchestra orchestra(o);
  auto r = orchestra.Client()->Request("POST", "/v1/chat/completions", Chat("v/gemini-test"));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(r.body.find("metadata server"), std::string::npos) << r.body;
  EXPECT_EQ(upstream.Stats().at("requests_total"), 0);
}

TEST_F(TranslationTest, AnthropicRoundTrips) {
  auto r = client_->Request("POST", "/v1/chat/completions", Chat("a/claude-test"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json().at("choices").at(0).at("message").at("content"),
            "echo: hello brave new world");
  json::value last = upstream_->LastRequest();
  EXPECT_EQ(last.at("headers").at("x-api-key"), "a-key");
  EXPECT_TRUE(last.at("headers").as_object().contains("anthropic-version"));
  EXPECT_TRUE(json::parse(last.at("body").as_string()).as_object().contains("max_tokens"));

  std::string text;
  std::vector<std::string> events;
  auto s = client_->Stream("POST", "/v1/chat/completions", Chat("a/claude-test", true), {},
                           [&](std::string_view data) {
                             events.emplace_back(data);
                             return true;
                           });
  ASSERT_EQ(s.status, 200);
  EXPECT_EQ(events.back(), "[DONE]");
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    const json::value chunk = json::parse(events[i]);
    const auto& choices = chunk.at("choices").as_array();
    if (choices.empty()) continue;
    const auto& delta = choices.at(0).at("delta").as_object();
    if (delta.contains("content") && delta.at("content").is_string())
      text += delta.at("content").as_string();
  }
  EXPECT_EQ(text, "echo: hello brave new world");
}

}  // namespace
}  // namespace orchestra::testing

namespace orchestra::testing {
namespace {

TEST(TaskApi, RunsOnTheLocalModelsWithoutAnyProvider) {
  Orchestra server;
  auto c = server.Client();
  auto answer = c->Request(
      "POST", "/answer-question",
      R"({"question":"What colour is the sky","context":"The sky is blue. Grass is green."})");
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.Json().at("answer"), "The sky is blue.");
  auto summary = c->Request(
      "POST", "/summarize-text",
      R"({"text":"Orchestra routes requests. Orchestra keeps memory. It rains.","max_words":10})");
  ASSERT_EQ(summary.status, 200) << summary.body;
  EXPECT_NE(std::string(summary.Json().at("summary").as_string()).find("Orchestra"),
            std::string::npos);
  auto generated =
      c->Request("POST", "/generate-text", R"({"prompt":"Cats purr. What do cats do?"})");
  ASSERT_EQ(generated.status, 200);
  EXPECT_EQ(generated.Json().at("text"), "Cats purr.");
  auto classified = c->Request(
      "POST", "/classify-text",
      R"({"text":"my invoice shows a double charge","labels":["invoice question","shipping"]})");
  ASSERT_EQ(classified.status, 200) << classified.body;
  EXPECT_EQ(classified.Json().at("label"), "invoice question");
  auto embeddings = c->Request("POST", "/generate-embeddings", R"({"texts":["one","two"]})");
  ASSERT_EQ(embeddings.status, 200);
  EXPECT_EQ(embeddings.Json().at("embeddings").as_array().size(), 2u);
  auto models = c->Request("GET", "/models");
  EXPECT_EQ(models.Json().at("tasks").at("summarize-text"), "local-extractive");
  auto bad = c->Request("POST", "/classify-text", R"({"text":"x","labels":["only-one"]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.Json().at("error").at("param"), "labels");
  auto missing = c->Request("POST", "/answer-question", R"({"context":"c"})");
  EXPECT_EQ(missing.status, 400);
}

// The local provider generates no text, and says so in the one error shape.
TEST(LocalProviderApi, RefusesWhatItCannotDo) {
  Orchestra server;
  auto c = server.Client();
  auto haiku = c->Request(
      "POST", "/v1/chat/completions",
      R"({"model":"local-extractive","messages":[{"role":"user","content":"Write a haiku about autumn."}]})");
  EXPECT_EQ(haiku.status, 422) << haiku.body;
  const json::object error = haiku.Json().at("error").as_object();
  EXPECT_EQ(error.at("type"), "invalid_request_error");
  EXPECT_EQ(error.at("code"), "unprocessable");
  EXPECT_EQ(error.at("param"), "messages");
  const std::string message(error.at("message").as_string());
  for (std::string_view provider : {"OpenAI", "Anthropic", "Gemini"})
    EXPECT_NE(message.find(provider), std::string::npos) << message;
  auto streamed = c->Request(
      "POST", "/v1/chat/completions",
      R"({"model":"local-extractive","stream":true,"messages":[{"role":"user","content":"hello"}]})");
  EXPECT_EQ(streamed.status, 422) << streamed.body;
  auto tools = c->Request(
      "POST", "/v1/chat/completions",
      R"({"model":"local-extractive","messages":[{"role":"system","content":"Cats purr."},)"
      R"({"role":"user","content":"What do cats do?"}],)"
      R"("tools":[{"type":"function","function":{"name":"f","parameters":{}}}]})");
  EXPECT_EQ(tools.status, 400) << tools.body;
  EXPECT_EQ(tools.Json().at("error").at("param"), "tools");
  auto answered = c->Request(
      "POST", "/v1/chat/completions",
      R"({"model":"local-extractive","messages":[{"role":"system","content":"Cats purr."},)"
      R"({"role":"user","content":"What do cats do?"}]})");
  ASSERT_EQ(answered.status, 200) << answered.body;
  EXPECT_EQ(answered.Json().at("choices").at(0).at("message").at("content"), "Cats purr.");
}

// An answer the context does not hold is said so out of band: an empty `answer` and
// `found: false`, never the not-found sentence as if it were the answer (issue 12).
TEST(TaskApi, AnAnswerNotInTheContextIsFoundFalseWithAnEmptyAnswer) {
  Orchestra server;
  auto c = server.Client();
  const std::string context =
      "Orchestra routes requests to model providers. It keeps agent memory and checkpoints.";
  auto found =
      c->Request("POST", "/answer-question",
                 R"({"question":"What does Orchestra keep?","context":")" + context + R"("})");
  ASSERT_EQ(found.status, 200) << found.body;
  EXPECT_EQ(found.Json().at("found"), true);
  EXPECT_EQ(found.Json().at("answer"), "It keeps agent memory and checkpoints.");
  auto missing = c->Request(
      "POST", "/answer-question",
      R"({"question":"Who won the football world cup in 1998?","context":")" + context + R"("})");
  ASSERT_EQ(missing.status, 200) << missing.body;
  EXPECT_EQ(missing.Json().at("found"), false) << missing.body;
  EXPECT_EQ(missing.Json().at("answer"), "") << missing.body;
  EXPECT_EQ(missing.Json().at("provider"), "local");
  // No context at all: nothing to extract from, the local provider's refusal.
  auto nothing =
      c->Request("POST", "/answer-question", R"({"question":"Who won the world cup in 1998?"})");
  EXPECT_EQ(nothing.status, 422) << nothing.body;
  // The chat API keeps saying it in words: a chat client has no `found` to read.
  auto chat = c->Request(
      "POST", "/v1/chat/completions",
      R"({"model":"local-extractive","messages":[{"role":"system","content":")" + context +
          R"("},{"role":"user","content":"Who won the football world cup in 1998?"}]})");
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_NE(std::string(chat.Json().at("choices").at(0).at("message").at("content").as_string()),
            "");
}

// Classification says when no category has any signal instead of picking the first label.
TEST(TaskApi, ClassificationCarriesConfident) {
  Orchestra server;
  auto c = server.Client();
  // The local classifier (providers/local/classifier.hpp) with one-word labels.
  auto clear = c->Request(
      "POST", "/classify-text",
      R"({"text":"The striker scored twice in the second half.","categories":["sports","politics","technology","food","health"]})");
  ASSERT_EQ(clear.status, 200) << clear.body;
  EXPECT_EQ(clear.Json().at("confident"), true) << clear.body;
  EXPECT_EQ(clear.Json().at("label"), "sports") << clear.body;
  auto noise = c->Request("POST", "/classify-text",
                          R"({"text":"zxqv blorft qwpl","categories":["sports","weather"]})");
  ASSERT_EQ(noise.status, 200) << noise.body;
  EXPECT_EQ(noise.Json().at("confident"), false) << noise.body;
  EXPECT_TRUE(noise.Json().at("label").is_null()) << noise.body;
  EXPECT_DOUBLE_EQ(noise.Json().at("scores").at("sports").to_number<double>(), 0.5);
}

// /generate-text on the local model: a request to write new text is refused with 422 in the one
// error shape, naming the providers that can, and the field the client sent.
TEST(TaskApi, GenerateTextWithNothingToExtractFromIs422) {
  Orchestra server;
  auto c = server.Client();
  auto haiku = c->Request("POST", "/generate-text", R"({"prompt":"Write a haiku about autumn."})");
  ASSERT_EQ(haiku.status, 422) << haiku.body;
  const json::object error = haiku.Json().at("error").as_object();
  EXPECT_EQ(error.at("code"), "unprocessable");
  EXPECT_EQ(error.at("param"), "prompt");
  const std::string message(error.at("message").as_string());
  for (std::string_view provider : {"OpenAI", "Anthropic", "Gemini"})
    EXPECT_NE(message.find(provider), std::string::npos) << message;
  auto hello = c->Request("POST", "/generate-text", R"({"prompt":"hello"})");
  EXPECT_EQ(hello.status, 422) << hello.body;
}

// POST /utils/token_counter: exact counts and ids, the encoding from the model's route, and
// every bad input a 4xx naming the field (issue 12).
TEST(TokenCounterApi, CountsWithTheEncodingOfTheModelOrTheOneNamed) {
  TestUpstream upstream;
  OrchestraOptions o;
  o.config_yaml = "providers:\n  - {name: up, type: openai, base_url: '" + upstream.base_url() +
                  "/v1'}\n  - {name: claude, type: anthropic, base_url: '" + upstream.base_url() +
                  "'}\nmodels:\n  - {name: fast, targets: [{provider: up, model: gpt-4o-mini}]}\n"
                  "  - {name: old, targets: [{provider: up, model: gpt-4}]}\n"
                  "  - {name: sonnet, targets: [{provider: claude, model: claude-sonnet-4}]}\n";
  Orchestra server(o);
  // The rank files load in the background after start (slowly in the ASan build).
  server.process().WaitForLine("model files loaded", std::chrono::seconds(60));
  auto c = server.Client();
  auto count = [&](std::string_view body) {
    return c->Request("POST", "/utils/token_counter", body);
  };
  // js-tiktoken: "hello world" is [24912, 2375] in o200k_base and [15339, 1917] in cl100k_base.
  auto ids = count(R"({"encoding":"o200k_base","prompt":"hello world","return_tokens":true})");
  ASSERT_EQ(ids.status, 200) << ids.body;
  EXPECT_EQ(ids.Json().at("total_tokens"), 2);
  EXPECT_EQ(ids.Json().at("tokens"), (json::array{24912, 2375}));
  EXPECT_EQ(ids.Json().at("encoding"), "o200k_base");
  EXPECT_EQ(ids.Json().at("exact"), true);
  auto cl = count(R"({"encoding":"cl100k_base","prompt":"hello world","return_tokens":true})");
  EXPECT_EQ(cl.Json().at("tokens"), (json::array{15339, 1917})) << cl.body;
  EXPECT_FALSE(count(R"({"encoding":"o200k_base","prompt":"hello world"})")
                   .Json()
                   .as_object()
                   .contains("tokens"));

  struct ByModel {
    std::string_view model;
    std::string_view encoding;
    bool exact;
  };
  for (const ByModel& m :
       {ByModel{"fast", "o200k_base", true}, ByModel{"old", "cl100k_base", true},
        ByModel{"up/gpt-4.1", "o200k_base", true},
        ByModel{"up/some-new-model", "o200k_base", false}, ByModel{"sonnet", "cl100k_base", false},
        ByModel{"local-extractive", "cl100k_base", false}}) {
    SCOPED_TRACE(m.model);
    auto r = count(R"({"model":")" + std::string(m.model) + R"(","prompt":"hello world"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Json().at("encoding"), json::value(m.encoding));
    EXPECT_EQ(r.Json().at("exact"), m.exact);
    EXPECT_EQ(r.Json().at("total_tokens"), 2);
  }
  // Chat messages as OpenAI bills them: 3 per message + role + content (+ 1 per name), and 3
  // to prime the reply: 3 + 1 ("user") + 2 ("hello world") + 3.
  auto chat = count(R"({"model":"fast","messages":[{"role":"user","content":"hello world"}]})");
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_EQ(chat.Json().at("total_tokens"), 9);
  auto named = count(
      R"({"model":"fast","messages":[{"role":"user","name":"ann","content":"hello world"}]})");
  EXPECT_EQ(named.Json().at("total_tokens"), 11) << named.body;  // + "ann" + 1

  struct Bad {
    std::string_view body;
    int status;
    std::string_view param;
  };
  const Bad bad[] = {
      {R"({"prompt":"x"})", 400, "model"},
      {R"({"model":"fast","encoding":"o200k_base","prompt":"x"})", 400, "encoding"},
      {R"({"encoding":"p50k_base","prompt":"x"})", 400, "encoding"},
      {R"({"encoding":"o200k_base"})", 400, "prompt"},
      {R"({"encoding":"o200k_base","prompt":7})", 400, "prompt"},
      {R"({"encoding":"o200k_base","prompt":"x","messages":[]})", 400, "messages"},
      {R"({"encoding":"o200k_base","messages":[]})", 400, "messages"},
      {R"({"encoding":"o200k_base","messages":[{"content":"x"}]})", 400, "messages[0].role"},
      {R"({"encoding":"o200k_base","messages":[{"role":"user","content":"x"}],"return_tokens":true})",
       400, "return_tokens"},
      {R"({"encoding":"o200k_base","prompt":"x","return_tokens":"yes"})", 400, "return_tokens"},
      {R"({"encoding":"o200k_base","text":"x"})", 400, "text"},
      {R"({"model":"no-such-model","prompt":"x"})", 404, "model"},
      {R"({"encoding":"o200k_base","prompt":)", 400, ""},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.body);
    auto r = count(b.body);
    EXPECT_EQ(r.status, b.status) << r.body;
    const json::value param = r.Json().at("error").at("param");
    if (b.param.empty()) {
      EXPECT_TRUE(param.is_null()) << r.body;
    } else {
      EXPECT_EQ(param, json::value(b.param)) << r.body;
    }
  }
  // Over the cap of text counted: 413 naming the field.
  const std::string big((1u << 20) + 1, 'a');
  auto large = count(R"({"encoding":"o200k_base","prompt":")" + big + R"("})");
  EXPECT_EQ(large.status, 413) << large.body.substr(0, 200);
  EXPECT_EQ(large.Json().at("error").at("param"), "prompt");
}

TEST(TaskApi, PromptsAConfiguredModel) {
  TestUpstream upstream;
  OrchestraOptions o;
  o.config_yaml = "providers:\n  - {name: up, type: openai, base_url: '" + upstream.base_url() +
                  "/v1'}\nmodels:\n  - {name: llm, targets: [{provider: up, model: echo}]}\n"
                  "tasks: {default_model: llm}\n";
  Orchestra server(o);
  auto c = server.Client();
  auto r = c->Request("POST", "/generate-text", R"({"prompt":"hello there","system":"be brief"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json().at("text"), "echo: hello there");
  EXPECT_EQ(r.Json().at("provider"), "up");
  json::value sent = json::parse(upstream.LastRequest().at("body").as_string());
  EXPECT_EQ(sent.at("model"), "echo");
  EXPECT_EQ(sent.at("messages").at(0).at("role"), "system");
  auto classified = c->Request("POST", "/classify-text",
                               R"({"text":"positive","labels":["negative","positive"]})");
  ASSERT_EQ(classified.status, 200) << classified.body;
  // The echo upstream answers "echo: positive": the label mentioned is found.
  EXPECT_EQ(classified.Json().at("label"), "positive");
}

}  // namespace
}  // namespace orchestra::testing
