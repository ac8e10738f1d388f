// Sampling, the OTLP encodings (decoded by the test collector's own decoder) and the tracer's
// bounded queue, batching, drop counting and shutdown flush.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/random.hpp"
#include "observability/metrics.hpp"
#include "observability/otlp.hpp"
#include "observability/tracer.hpp"
#include "support/otlp_collector.hpp"

namespace orchestra::observability {
namespace {

using namespace std::chrono_literals;
using testing::CollectedSpan;

TraceContext Trace(std::string_view trace_id, bool remote = false, bool sampled = false) {
  TraceContext t;
  std::copy(trace_id.begin(), trace_id.end(), t.trace_id.begin());
  t.span_id.fill('1');
  t.parent_span_id.fill('0');
  t.remote = remote;
  t.sampled = sampled;
  return t;
}

TEST(Sampler, RatioOneKeepsEveryTraceAndZeroNone) {
  const Sampler all(false, Sampler::Root::kTraceIdRatio, 1.0);
  const Sampler none(false, Sampler::Root::kTraceIdRatio, 0.0);
  for (std::string_view id :
       {"00000000000000000000000000000000", "ffffffffffffffffffffffffffffffff",
        "4bf92f3577b34da6a3ce929d0e0e4736"}) {
    EXPECT_TRUE(all.ShouldSample(Trace(id))) << id;
    EXPECT_FALSE(none.ShouldSample(Trace(id))) << id;
  }
}

TEST(Sampler, RatioComparesTheTraceIdsLast56BitsWithTheThreshold) {
  // ratio 0.5: threshold 2^55; R is the last 14 hex digits.
  const Sampler half(false, Sampler::Root::kTraceIdRatio, 0.5);
  EXPECT_TRUE(half.ShouldSample(Trace("ffffffffffffffffff80000000000000")));
  EXPECT_FALSE(half.ShouldSample(Trace("ffffffffffffffffff7fffffffffffff")));
  EXPECT_EQ(Sampler::RandomnessOf("000000000000000000000000000000ff"), 255u);
  // The first 18 digits do not count.
  EXPECT_FALSE(half.ShouldSample(Trace("ffffffffffffffffff00000000000001")));
}

TEST(Sampler, RatioKeepsAboutThatShareOfRandomTraces) {
  const Sampler quarter(false, Sampler::Root::kTraceIdRatio, 0.25);
  int kept = 0;
  constexpr int kTraces = 20000;
  for (int i = 0; i < kTraces; ++i) {
    TraceContext t = Trace(RandomHex(16));
    kept += quarter.ShouldSample(t) ? 1 : 0;
  }
  EXPECT_GT(kept, kTraces * 22 / 100);
  EXPECT_LT(kept, kTraces * 28 / 100);
}

TEST(Sampler, ParentBasedFollowsARemoteParentAndDecidesForItsOwnTraces) {
  const Sampler on(true, Sampler::Root::kAlwaysOn, 1.0);
  const Sampler off(true, Sampler::Root::kAlwaysOff, 1.0);
  const std::string id = "4bf92f3577b34da6a3ce929d0e0e4736";
  EXPECT_FALSE(on.ShouldSample(Trace(id, /*remote=*/true, /*sampled=*/false)));
  EXPECT_TRUE(off.ShouldSample(Trace(id, true, true)));
  EXPECT_TRUE(on.ShouldSample(Trace(id, false)));
  EXPECT_FALSE(off.ShouldSample(Trace(id, false)));
  // Not parent-based: the caller's flag is ignored.
  const Sampler always(false, Sampler::Root::kAlwaysOn, 1.0);
  EXPECT_TRUE(always.ShouldSample(Trace(id, true, false)));
}

TEST(Sampler, DecideSetsTheContextsSampledFlagThatUpstreamCallsCarry) {
  const Sampler off(true, Sampler::Root::kAlwaysOff, 1.0);
  TraceContext t = ContinueTrace("", "");
  off.Decide(t);
  EXPECT_FALSE(t.sampled);
  EXPECT_TRUE(t.Traceparent().ends_with("-00"));
  t = ContinueTrace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "");
  EXPECT_TRUE(t.remote);
  off.Decide(t);
  EXPECT_TRUE(t.sampled);
  EXPECT_TRUE(t.Traceparent().ends_with("-01"));
}

// --- encoding ---------------------------------------------------------------------------------

constexpr std::string_view kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

std::vector<CollectedSpan> RoundTrip(otlp::Protocol protocol, const SpanRecord& span) {
  std::string encoded;
  otlp::AppendSpan(protocol, span, encoded);
  const otlp::RequestEncoder encoder(protocol, {{"service.name", "orchestra-test"}}, "orchestra",
                                     "1.2.3");
  const std::string_view spans[] = {encoded};
  std::string body;
  encoder.Encode(spans, body);
  return protocol == otlp::Protocol::kProtobuf ? testing::DecodeOtlpProtobuf(body)
                                               : testing::DecodeOtlpJson(body);
}

class Encoding : public ::testing::TestWithParam<otlp::Protocol> {};

TEST_P(Encoding, RoundTripsEverythingASpanSays) {
  const std::string long_value(300, 'x');  // a KeyValue longer than 127 bytes
  const std::string_view reasons[] = {"stop", "length"};
  const Attribute ttft("orchestra.time_to_first_token_s", 0.25);
  const Attribute attributes[] = {{"gen_ai.request.model", "gpt-test"},
                                  {"gen_ai.usage.input_tokens", std::int64_t{-7}},
                                  {"orchestra.cache_hit", true},
                                  {"orchestra.cost_usd", 1.5},
                                  {"gen_ai.response.finish_reasons", std::span(reasons)},
                                  {"long", std::string_view(long_value)}};
  const SpanEvent event{"gen_ai.first_token", 1'700'000'000'500'000'000, {&ttft, 1}};
  SpanRecord s;
  s.trace_id = kTraceId;
  s.span_id = "00f067aa0ba902b7";
  s.parent_span_id = "b7ad6b7169203331";
  s.name = "chat gpt-test";
  s.kind = SpanKind::kClient;
  s.start_unix_nano = 1'700'000'000'000'000'000;
  s.end_unix_nano = 1'700'000'001'000'000'000;
  s.attributes = attributes;
  s.events = {&event, 1};
  s.status = SpanStatus::kError;
  s.status_message = "upstream 503";

  const auto spans = RoundTrip(GetParam(), s);
  ASSERT_EQ(spans.size(), 1u);
  const CollectedSpan& c = spans[0];
  EXPECT_EQ(c.trace_id, kTraceId);
  EXPECT_EQ(c.span_id, "00f067aa0ba902b7");
  EXPECT_EQ(c.parent_span_id, "b7ad6b7169203331");
  EXPECT_EQ(c.name, "chat gpt-test");
  EXPECT_EQ(c.kind, 3);
  EXPECT_EQ(c.flags, 1u);
  EXPECT_EQ(c.start_unix_nano, 1'700'000'000'000'000'000u);
  EXPECT_EQ(c.end_unix_nano, 1'700'000'001'000'000'000u);
  EXPECT_EQ(c.Attribute("gen_ai.request.model"), "gpt-test");
  EXPECT_EQ(c.Attribute("gen_ai.usage.input_tokens"), "-7");
  EXPECT_EQ(c.Attribute("orchestra.cache_hit"), "true");
  EXPECT_EQ(c.Attribute("orchestra.cost_usd"), "1.500000");
  EXPECT_EQ(c.Attribute("gen_ai.response.finish_reasons"), "stop,length");
  EXPECT_EQ(c.Attribute("long"), long_value);
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].name, "gen_ai.first_token");
  EXPECT_EQ(c.events[0].time_unix_nano, 1'700'000'000'500'000'000u);
  EXPECT_EQ(c.events[0].attributes.at("orchestra.time_to_first_token_s"), "0.250000");
  EXPECT_EQ(c.status_code, 2);
  EXPECT_EQ(c.status_message, "upstream 503");
  EXPECT_EQ(c.resource.at("service.name"), "orchestra-test");
  EXPECT_EQ(c.scope_name, "orchestra");
}

TEST_P(Encoding, ARootSpanHasNoParentAndAnUnsetStatusNoStatus) {
  SpanRecord s;
  s.trace_id = kTraceId;
  s.span_id = "00f067aa0ba902b7";
  s.parent_span_id = "0000000000000000";
  s.name = "POST /v1/chat/completions";
  s.kind = SpanKind::kServer;
  const auto spans = RoundTrip(GetParam(), s);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].parent_span_id, "");
  EXPECT_EQ(spans[0].kind, 2);
  EXPECT_EQ(spans[0].status_code, 0);
}

TEST_P(Encoding, MakesTextValidUtf8AndCutsLongValues) {
  const std::string huge(otlp::kMaxValueBytes + 100, 'y');
  const Attribute attributes[] = {{"bad", std::string_view("a\xff\xfe"
                                                           "b")},
                                  {"huge", std::string_view(huge)},
                                  {"quote", "say \"hi\"\n"}};
  SpanRecord s;
  s.trace_id = kTraceId;
  s.span_id = "00f067aa0ba902b7";
  s.name = "x\xc3";  // a cut two-byte sequence
  s.attributes = attributes;
  const auto spans = RoundTrip(GetParam(), s);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].Attribute("bad"),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(spans[0].Attribute("huge").size(), otlp::kMaxValueBytes);
  EXPECT_EQ(spans[0].Attribute("quote"), "say \"hi\"\n");
  EXPECT_EQ(spans[0].name, "x\xEF\xBF\xBD");
}

INSTANTIATE_TEST_SUITE_P(Otlp, Encoding,
                         ::testing::Values(otlp::Protocol::kProtobuf, otlp::Protocol::kJson),
                         [](const auto& param_info) {
                           return param_info.param == otlp::Protocol::kProtobuf ? "Protobuf"
                                                                                : "Json";
                         });

// --- the tracer -------------------------------------------------------------------------------

// Keeps what it is sent (decoded); fails while `fail` is set.
class RecordingSink : public SpanSink {
 public:
  Result<void> Export(std::string_view body, std::string_view content_type,
                      std::chrono::steady_clock::time_point) override {
    std::lock_guard lock(mutex);
    ++calls;
    if (fail) return MakeError(ErrorCode::kUnavailable, "collector down");
    EXPECT_EQ(content_type, "application/x-protobuf");
    auto decoded = testing::DecodeOtlpProtobuf(body);
    batch_sizes.push_back(decoded.size());
    for (auto& s : decoded)
      spans.push_back(std::move(s));
    return {};
  }

  std::mutex mutex;
  int calls = 0;
  bool fail = false;
  std::vector<std::size_t> batch_sizes;
  std::vector<CollectedSpan> spans;
};

TracerOptions Options() {
  TracerOptions o;
  o.resource = {{"service.name", "t"}};
  o.export_interval = 1h;  // exports only when asked (Flush, Shutdown) or a batch is full
  o.queue_size = 100;
  o.batch_size = 10;
  return o;
}

void RecordSpans(Tracer& tracer, int n, std::string_view name = "s") {
  for (int i = 0; i < n; ++i) {
    const SpanIdText id = NewSpanId();
    SpanRecord s;
    s.trace_id = kTraceId;
    s.span_id = View(id);
    s.name = name;
    tracer.Record(s);
  }
}

TEST(Tracer, ExportsWhatWasRecordedInBatchesOfBatchSize) {
  Registry registry;
  RecordingSink sink;
  Tracer tracer(Options(), sink, registry);
  RecordSpans(tracer, 25);
  tracer.Flush();
  std::lock_guard lock(sink.mutex);
  EXPECT_EQ(sink.spans.size(), 25u);
  EXPECT_EQ(tracer.exported(), 25u);
  ASSERT_FALSE(sink.batch_sizes.empty());
  for (std::size_t n : sink.batch_sizes)
    EXPECT_LE(n, 10u);
}

TEST(Tracer, AFullQueueDropsAndCountsInsteadOfGrowing) {
  Registry registry;
  RecordingSink sink;
  TracerOptions o = Options();
  o.queue_size = 4;
  o.batch_size = 100;  // no early wake-up: the queue fills
  Tracer tracer(o, sink, registry);
  RecordSpans(tracer, 10);
  EXPECT_EQ(tracer.dropped_queue_full(), 6u);
  tracer.Flush();
  EXPECT_EQ(tracer.exported(), 4u);
  EXPECT_NE(registry.Render().find(R"(orchestra_trace_spans_dropped_total{reason="queue_full"} 6)"),
            std::string::npos)
      << registry.Render();
  // Room again once exported.
  RecordSpans(tracer, 3);
  tracer.Flush();
  EXPECT_EQ(tracer.exported(), 7u);
}

TEST(Tracer, AQueueBoundedInBytesDropsLargeSpans) {
  Registry registry;
  RecordingSink sink;
  TracerOptions o = Options();
  o.max_queue_bytes = 4096;
  Tracer tracer(o, sink, registry);
  const std::string big(3000, 'n');
  RecordSpans(tracer, 3, big);
  EXPECT_EQ(tracer.dropped_queue_full(), 2u);
}

TEST(Tracer, ACollectorThatIsDownCostsDroppedSpansNotMemory) {
  Registry registry;
  RecordingSink sink;
  sink.fail = true;
  Tracer tracer(Options(), sink, registry);
  RecordSpans(tracer, 30);
  tracer.Flush();
  EXPECT_EQ(tracer.dropped_export_failed(), 30u);
  EXPECT_EQ(tracer.exported(), 0u);
  {
    std::lock_guard lock(sink.mutex);
    // Unreachable: the rest of a round is dropped without trying again (a round is one wake-up,
    // at most one per full batch here).
    EXPECT_LE(sink.calls, 3);
    sink.fail = false;
  }
  RecordSpans(tracer, 2);
  tracer.Flush();
  EXPECT_EQ(tracer.exported(), 2u);
}

TEST(Tracer, ShutdownExportsWhatIsLeftAndDropsLaterSpans) {
  Registry registry;
  RecordingSink sink;
  Tracer tracer(Options(), sink, registry);
  RecordSpans(tracer, 5);
  tracer.Shutdown(5s);
  EXPECT_EQ(tracer.exported(), 5u);
  RecordSpans(tracer, 1);
  EXPECT_NE(registry.Render().find(R"(orchestra_trace_spans_dropped_total{reason="shutdown"} 1)"),
            std::string::npos);
  tracer.Shutdown(5s);  // idempotent
}

TEST(Tracer, RecordsFromManyThreadsIntoTheirOwnBuffers) {
  Registry registry;
  RecordingSink sink;
  TracerOptions o = Options();
  o.queue_size = 1000;
  Tracer tracer(o, sink, registry);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] { RecordSpans(tracer, 200); });
  for (auto& t : threads)
    t.join();
  tracer.Flush();
  EXPECT_EQ(tracer.exported() + tracer.dropped_queue_full(), 800u);
  EXPECT_EQ(tracer.exported(), 800u);
}

TEST(Tracer, TracerForIsNullForAnUnsampledRequestOrWhenNoneIsInstalled) {
  Registry registry;
  RecordingSink sink;
  Tracer tracer(Options(), sink, registry);
  TraceContext t = Trace(kTraceId, false, true);
  EXPECT_EQ(TracerFor(t), nullptr);
  InstallTracer(&tracer);
  EXPECT_EQ(TracerFor(t), &tracer);
  t.sampled = false;
  EXPECT_EQ(TracerFor(t), nullptr);
  InstallTracer(nullptr);
}

}  // namespace
}  // namespace orchestra::observability
