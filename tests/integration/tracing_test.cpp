// Traces through the real binary (issue 15): the span tree of a request with a retry and a
// fallback as a collector receives it, parent and child ids matching the caller's traceparent
// and the one sent upstream, sampling, the OpenTelemetry environment variables, a collector
// that is down, storage calls and the flush at shutdown.

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "integration/orchestra_process.hpp"
#include "support/otlp_collector.hpp"

namespace orchestra::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

constexpr std::string_view kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kCallerSpan = "00f067aa0ba902b7";

std::string Traceparent(std::string_view trace_id, std::string_view flags = "01") {
  return "00-" + std::string(trace_id) + "-" + std::string(kCallerSpan) + "-" + std::string(flags);
}

std::string Chat(std::string_view model, bool stream = false) {
  std::string body = R"({"model":")" + std::string(model) +
                     R"(","messages":[{"role":"user","content":"hello secret prompt"}])";
  if (stream) body += R"(,"stream":true)";
  return body + "}";
}

// The value of a metric series in /metrics text, or -1 when absent.
double Metric(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

std::vector<CollectedSpan> OfTrace(const std::vector<CollectedSpan>& spans,
                                   std::string_view trace_id) {
  std::vector<CollectedSpan> out;
  for (const CollectedSpan& s : spans) {
    if (s.trace_id == trace_id) out.push_back(s);
  }
  return out;
}

// Spans named `name` (or starting with it, when `prefix`), in start order.
std::vector<CollectedSpan> Named(const std::vector<CollectedSpan>& spans, std::string_view name,
                                 bool prefix = false) {
  std::vector<CollectedSpan> out;
  for (const CollectedSpan& s : spans) {
    if (prefix ? s.name.starts_with(name) : s.name == name) out.push_back(s);
  }
  std::sort(out.begin(), out.end(), [](const CollectedSpan& a, const CollectedSpan& b) {
    return a.start_unix_nano < b.start_unix_nano;
  });
  return out;
}

// Waits until the trace has a span named `name` (the server span ends last).
std::vector<CollectedSpan> WaitForTrace(const OtlpCollector& collector, std::string_view trace_id,
                                        std::string_view name) {
  for (int i = 0; i < 200; ++i) {
    auto spans = OfTrace(collector.Spans(), trace_id);
    if (!Named(spans, name).empty()) return spans;
    std::this_thread::sleep_for(25ms);
  }
  return OfTrace(collector.Spans(), trace_id);
}

class TracingTest : public ::testing::Test {
 protected:
  // An Orchestra in front of the test upstream, exporting to the collector.
  void Start(const std::string& models, const std::string& tracing = "",
             std::map<std::string, std::string> env = {}) {
    upstream_ = std::make_unique<TestUpstream>();
    OrchestraOptions o;
    o.config_yaml =
        "server: {max_inflight: 50}\n"
        "providers:\n"
        "  - {name: up, type: openai, base_url: '" +
        upstream_->base_url() +
        "/v1'}\n"
        "models:\n" +
        models + "tracing:\n" + tracing;
    if (tracing.find("endpoint") == std::string::npos &&
        !env.contains("OTEL_EXPORTER_OTLP_ENDPOINT")) {
      o.config_yaml += "  endpoint: " + collector_.endpoint() + "\n";
    }
    if (tracing.find("export_interval") == std::string::npos) {
      o.config_yaml += "  export_interval: 20ms\n";
    }
    o.env = std::move(env);
    orchestra_ = std::make_unique<Orchestra>(o);
    client_ = orchestra_->Client();
  }

  std::string Metrics() { return orchestra_->Client()->Request("GET", "/metrics").body; }

  OtlpCollector collector_;
  std::unique_ptr<TestUpstream> upstream_;
  std::unique_ptr<Orchestra> orchestra_;
  std::unique_ptr<HttpClient> client_;
};

const std::string kRetryThenFallback =
    "  - name: primary\n"
    "    targets: [{provider: up, model: 'x+status=500'}]\n"
    "    retry: {attempts: 2, backoff: 5ms}\n"
    "    fallbacks: [secondary]\n"
    "  - {name: secondary, targets: [{provider: up, model: echo-2}]}\n";

TEST_F(TracingTest, ARequestWithARetryAndAFallbackIsOneSpanTreeUnderTheCallersSpan) {
  Start(kRetryThenFallback);
  auto r = client_->Request("POST", "/v1/chat/completions", Chat("primary"),
                            {{"traceparent", Traceparent(kTraceId)}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string upstream_traceparent =
      std::string(upstream_->LastRequest().at("headers").at("traceparent").as_string());

  const auto spans = WaitForTrace(collector_, kTraceId, "POST /v1/chat/completions");
  const auto server = Named(spans, "POST /v1/chat/completions");
  ASSERT_EQ(server.size(), 1u) << spans.size() << " spans";
  const CollectedSpan& s = server[0];
  EXPECT_EQ(s.kind, 2);
  EXPECT_EQ(s.parent_span_id, kCallerSpan);
  EXPECT_EQ(s.flags & 1, 1u);
  EXPECT_EQ(s.Attribute("http.request.method"), "POST");
  EXPECT_EQ(s.Attribute("http.route"), "/v1/chat/completions");
  EXPECT_EQ(s.Attribute("http.response.status_code"), "200");
  EXPECT_EQ(s.Attribute("gen_ai.request.model"), "primary");
  EXPECT_EQ(s.Attribute("gen_ai.response.model"), "echo-2");
  EXPECT_EQ(s.Attribute("orchestra.request_id"), r.Header("x-request-id"));
  EXPECT_EQ(s.resource.at("service.name"), "orchestra");
  EXPECT_EQ(s.scope_name, "orchestra");

  const auto admit = Named(spans, "admit");
  ASSERT_EQ(admit.size(), 1u);
  EXPECT_EQ(admit[0].parent_span_id, s.span_id);
  EXPECT_EQ(admit[0].Attribute("orchestra.admission.result"), "admitted");
  const auto settle = Named(spans, "settle");
  ASSERT_EQ(settle.size(), 1u);
  EXPECT_EQ(settle[0].parent_span_id, s.span_id);

  const auto route = Named(spans, "route primary");
  ASSERT_EQ(route.size(), 1u);
  EXPECT_EQ(route[0].parent_span_id, s.span_id);
  EXPECT_EQ(route[0].Attribute("gen_ai.operation.name"), "chat");
  EXPECT_EQ(route[0].Attribute("orchestra.attempts"), "3");
  EXPECT_EQ(route[0].Attribute("orchestra.fallback.step"), "1");
  EXPECT_EQ(route[0].Attribute("orchestra.model"), "secondary");
  EXPECT_EQ(route[0].status_code, 0);

  const auto attempts = Named(spans, "chat ", /*prefix=*/true);
  ASSERT_EQ(attempts.size(), 3u);
  for (const CollectedSpan& a : attempts) {
    EXPECT_EQ(a.parent_span_id, route[0].span_id) << a.name;
    EXPECT_EQ(a.kind, 3) << a.name;
    EXPECT_EQ(a.Attribute("gen_ai.operation.name"), "chat");
    EXPECT_EQ(a.Attribute("gen_ai.provider.name"), "openai");
    EXPECT_EQ(a.Attribute("orchestra.provider"), "up");
    EXPECT_EQ(a.Attribute("orchestra.circuit.state"), "closed");
  }
  EXPECT_EQ(attempts[0].name, "chat x+status=500");
  EXPECT_EQ(attempts[0].Attribute("orchestra.retry"), "0");
  EXPECT_EQ(attempts[0].Attribute("orchestra.fallback.step"), "0");
  EXPECT_EQ(attempts[0].Attribute("error.type"), "500");
  EXPECT_EQ(attempts[0].Attribute("http.response.status_code"), "500");
  EXPECT_EQ(attempts[0].status_code, 2);
  EXPECT_EQ(attempts[1].Attribute("orchestra.retry"), "1");
  EXPECT_EQ(attempts[1].Attribute("orchestra.fallback.step"), "0");
  EXPECT_EQ(attempts[2].name, "chat echo-2");
  EXPECT_EQ(attempts[2].Attribute("orchestra.retry"), "0");
  EXPECT_EQ(attempts[2].Attribute("orchestra.fallback.step"), "1");
  EXPECT_EQ(attempts[2].Attribute("gen_ai.request.model"), "echo-2");
  EXPECT_FALSE(attempts[2].Attribute("gen_ai.usage.input_tokens").empty());
  EXPECT_FALSE(attempts[2].Attribute("gen_ai.usage.output_tokens").empty());
  EXPECT_EQ(attempts[2].status_code, 0);

  // The upstream's parent is the attempt that reached it.
  EXPECT_EQ(upstream_traceparent,
            "00-" + std::string(kTraceId) + "-" + attempts[2].span_id + "-01");
  // No prompt or completion without capture_content.
  for (const CollectedSpan& span : spans) {
    for (const auto& [key, value] : span.attributes)
      EXPECT_EQ(value.find("secret prompt"), std::string::npos) << span.name << " " << key;
  }
}

TEST_F(TracingTest, AStreamsAttemptCarriesItsFirstTokenAsAnEvent) {
  Start("  - {name: fast, targets: [{provider: up, model: 'echo-1+chunks=3'}]}\n");
  auto r = client_->Request("POST", "/v1/chat/completions", Chat("fast", true),
                            {{"traceparent", Traceparent(kTraceId)}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto spans = WaitForTrace(collector_, kTraceId, "POST /v1/chat/completions");
  const auto attempts = Named(spans, "chat ", true);
  ASSERT_EQ(attempts.size(), 1u);
  ASSERT_EQ(attempts[0].events.size(), 1u);
  EXPECT_EQ(attempts[0].events[0].name, "gen_ai.first_token");
  EXPECT_GE(attempts[0].events[0].time_unix_nano, attempts[0].start_unix_nano);
  EXPECT_LE(attempts[0].events[0].time_unix_nano, attempts[0].end_unix_nano);
}

TEST_F(TracingTest, CaptureContentPutsThePromptInTheRoutingSpan) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n",
        "  capture_content: true\n");
  ASSERT_EQ(client_
                ->Request("POST", "/v1/chat/completions", Chat("fast"),
                          {{"traceparent", Traceparent(kTraceId)}})
                .status,
            200);
  const auto spans = WaitForTrace(collector_, kTraceId, "POST /v1/chat/completions");
  const auto route = Named(spans, "route fast");
  ASSERT_EQ(route.size(), 1u);
  EXPECT_NE(route[0].Attribute("gen_ai.input.messages").find("hello secret prompt"),
            std::string::npos);
}

TEST_F(TracingTest, ParentBasedSamplingFollowsTheCallerAndTheRatioDecidesTheRest) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n", "  sampling_ratio: 0\n");
  const std::string unsampled = "11111111111111111111111111111111";
  ASSERT_EQ(client_
                ->Request("POST", "/v1/chat/completions", Chat("fast"),
                          {{"traceparent", Traceparent(unsampled, "00")}})
                .status,
            200);
  // Carried on, still unsampled.
  EXPECT_EQ(std::string(upstream_->LastRequest().at("headers").at("traceparent").as_string())
                .substr(0, 35),
            "00-" + unsampled);
  EXPECT_TRUE(std::string(upstream_->LastRequest().at("headers").at("traceparent").as_string())
                  .ends_with("-00"));
  // No caller trace: ratio 0 keeps none.
  ASSERT_EQ(client_->Request("POST", "/v1/chat/completions", Chat("fast")).status, 200);
  // A sampled caller is followed even at ratio 0.
  ASSERT_EQ(client_
                ->Request("POST", "/v1/chat/completions", Chat("fast"),
                          {{"traceparent", Traceparent(kTraceId)}})
                .status,
            200);
  WaitForTrace(collector_, kTraceId, "POST /v1/chat/completions");
  orchestra_->Stop();  // flushes whatever else there was
  for (const CollectedSpan& s : collector_.Spans())
    EXPECT_EQ(s.trace_id, kTraceId) << s.name;
}

TEST_F(TracingTest, TheOpenTelemetryVariablesConfigureJsonExportHeadersAndTheResource) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n", "",
        {{"OTEL_EXPORTER_OTLP_ENDPOINT", collector_.endpoint()},
         {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
         {"OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=k%20123"},
         {"OTEL_SERVICE_NAME", "gateway"},
         {"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test"},
         {"OTEL_TRACES_SAMPLER", "always_on"}});
  ASSERT_EQ(client_->Request("POST", "/v1/chat/completions", Chat("fast")).status, 200);
  const auto spans = collector_.WaitForSpans(1);
  ASSERT_FALSE(spans.empty());
  EXPECT_EQ(collector_.last_content_type(), "application/json");
  EXPECT_EQ(collector_.last_header("x-collector-key"), "k 123");
  EXPECT_EQ(spans[0].resource.at("service.name"), "gateway");
  EXPECT_EQ(spans[0].resource.at("deployment.environment.name"), "test");
  // The header's value is a secret: not in the log.
  orchestra_->Stop();
  EXPECT_EQ(orchestra_->process().CapturedOutput().find("k 123"), std::string::npos);
}

TEST_F(TracingTest, ACollectorThatIsDownLeavesRequestsAloneAndCountsDroppedSpans) {
  collector_.set_status(503);
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n");
  for (int i = 0; i < 5; ++i) {
    auto r = client_->Request("POST", "/v1/chat/completions", Chat("fast"),
                              {{"traceparent", Traceparent(kTraceId)}});
    ASSERT_EQ(r.status, 200) << r.body;
  }
  double dropped = 0;
  for (int i = 0; i < 200 && dropped <= 0; ++i) {
    std::this_thread::sleep_for(25ms);
    dropped = Metric(Metrics(), R"(orchestra_trace_spans_dropped_total{reason="export_failed"})");
  }
  EXPECT_GT(dropped, 0);
  EXPECT_GT(collector_.requests(), 0);
}

TEST_F(TracingTest, AnUnreachableCollectorLeavesRequestsAlone) {
  // A port nothing listens on: a collector that does not exist.
  std::uint16_t closed_port = 0;
  {
    OtlpCollector gone;
    closed_port = gone.port();
  }
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n",
        "  endpoint: http://127.0.0.1:" + std::to_string(closed_port) + "\n");
  for (int i = 0; i < 5; ++i) {
    auto r = client_->Request("POST", "/v1/chat/completions", Chat("fast"),
                              {{"traceparent", Traceparent(kTraceId)}});
    ASSERT_EQ(r.status, 200) << r.body;
  }
  double dropped = 0;
  for (int i = 0; i < 200 && dropped <= 0; ++i) {
    std::this_thread::sleep_for(25ms);
    dropped = Metric(Metrics(), R"(orchestra_trace_spans_dropped_total{reason="export_failed"})");
  }
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(orchestra_->Stop(), 0);
}

TEST_F(TracingTest, GoogleAuthSendsTheMetadataServersTokenAsCloudTraceWants) {
  // The collector plays Cloud Trace's endpoint and the metadata server both.
  collector_.set_access_token("ya29.test-token");
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n", "  gcp_auth: on\n",
        {{"GCE_METADATA_HOST", "127.0.0.1:" + std::to_string(collector_.port())},
         {"GOOGLE_CLOUD_PROJECT", "proj-1"}});
  ASSERT_EQ(client_
                ->Request("POST", "/v1/chat/completions", Chat("fast"),
                          {{"traceparent", Traceparent(kTraceId)}})
                .status,
            200);
  const auto spans = WaitForTrace(collector_, kTraceId, "POST /v1/chat/completions");
  ASSERT_FALSE(spans.empty());
  EXPECT_EQ(collector_.last_header("authorization"), "Bearer ya29.test-token");
  EXPECT_EQ(spans[0].resource.at("gcp.project_id"), "proj-1");
  EXPECT_GE(collector_.token_requests(), 1);
  // The token is a secret: never logged.
  orchestra_->Stop();
  EXPECT_EQ(orchestra_->process().CapturedOutput().find("ya29"), std::string::npos);
}

TEST_F(TracingTest, StorageCallsAreChildrenOfTheirRequestsSpan) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n");
  auto r = client_->Request("POST", "/memory/store", R"({"key":"k1","value":{"a":1}})",
                            {{"traceparent", Traceparent(kTraceId)}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto spans = WaitForTrace(collector_, kTraceId, "POST /memory/store");
  const auto server = Named(spans, "POST /memory/store");
  ASSERT_EQ(server.size(), 1u);
  const auto storage = Named(spans, "storage ", true);
  ASSERT_FALSE(storage.empty());
  EXPECT_EQ(storage[0].parent_span_id, server[0].span_id);
  EXPECT_EQ(storage[0].Attribute("db.system.name"), "sqlite");
  EXPECT_EQ(storage[0].Attribute("orchestra.storage.outcome"), "ok");
  // Never the key or the value.
  for (const auto& [key, value] : storage[0].attributes)
    EXPECT_EQ(value.find("k1"), std::string::npos) << key;
}

TEST_F(TracingTest, SpansStillBufferedAreExportedAtShutdown) {
  Start("  - {name: fast, targets: [{provider: up, model: echo-1}]}\n", "  export_interval: 1h\n");
  ASSERT_EQ(client_
                ->Request("POST", "/v1/chat/completions", Chat("fast"),
                          {{"traceparent", Traceparent(kTraceId)}})
                .status,
            200);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(collector_.requests(), 0);
  EXPECT_EQ(orchestra_->Stop(), 0);
  const auto spans = OfTrace(collector_.Spans(), kTraceId);
  EXPECT_EQ(Named(spans, "POST /v1/chat/completions").size(), 1u);
  EXPECT_EQ(Named(spans, "route fast").size(), 1u);
}

}  // namespace
}  // namespace orchestra::testing
