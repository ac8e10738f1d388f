#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

// W3C Trace Context (https://www.w3.org/TR/trace-context/): the trace a request belongs to,
// taken from `traceparent` (or Cloud Run's `X-Cloud-Trace-Context`) or started here, and the
// span id of our own work, which is what upstream calls carry as their parent.
namespace orchestra::observability {

struct TraceContext {
  std::array<char, 32> trace_id{};
  std::array<char, 16> parent_span_id{};  // all '0' when we started the trace
  std::array<char, 16> span_id{};         // ours
  bool sampled = false;
  // The trace came from the caller (traceparent or X-Cloud-Trace-Context), whose sampling
  // decision a parent-based sampler follows.
  bool remote = false;

  // Empty for a default-constructed context (a request that needs no trace, e.g. a probe).
  std::string_view TraceId() const {
    return trace_id[0] == '\0' ? std::string_view() : std::string_view(trace_id.data(), 32);
  }
  std::string_view SpanId() const {
    return span_id[0] == '\0' ? std::string_view() : std::string_view(span_id.data(), 16);
  }
  // "00-<trace>-<our span>-<flags>", for requests we make on this request's behalf.
  std::string Traceparent() const;
  // The same, written into `out` (no allocation); returns the view of it.
  std::string_view Traceparent(std::array<char, 55>& out) const;
};

// Continues the incoming trace when `traceparent` (or else `cloud_trace`) is valid; otherwise
// starts a new one. Always assigns a fresh span id.
TraceContext ContinueTrace(std::string_view traceparent, std::string_view cloud_trace);

// Parses a traceparent header; false when it is malformed (the caller then starts a trace).
bool ParseTraceparent(std::string_view header, TraceContext& out);

// The OpenTelemetry samplers (OTEL_TRACES_SAMPLER): whether a request's spans are recorded and
// exported. The decision is the trace context's `sampled` flag, which upstream calls carry on.
//
// TraceIdRatioBased is consistent across services: it keeps a trace when the trace id's last 56
// bits, read as a number R, are at least (1 - ratio) * 2^56 (the threshold comparison of the
// OpenTelemetry specification's probability sampling), so every service with the same ratio
// keeps the same traces. Parent-based samplers follow a remote parent's sampled flag and apply
// the root sampler only to traces this server starts.
class Sampler {
 public:
  enum class Root : std::uint8_t { kAlwaysOn, kAlwaysOff, kTraceIdRatio };

  Sampler() = default;
  Sampler(bool parent_based, Root root, double ratio);

  bool ShouldSample(const TraceContext& trace) const;
  // Sets trace.sampled to ShouldSample(trace).
  void Decide(TraceContext& trace) const { trace.sampled = ShouldSample(trace); }

  // R for a 32-hex-digit trace id (its last 14 digits); exposed for tests.
  static std::uint64_t RandomnessOf(std::string_view trace_id);

 private:
  bool parent_based_ = true;
  Root root_ = Root::kAlwaysOn;
  std::uint64_t threshold_ = 0;  // sample when R >= threshold_ (2^56: never)
};

}  // namespace orchestra::observability
