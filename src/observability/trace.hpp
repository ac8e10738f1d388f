#pragma once

#include <array>
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

}  // namespace orchestra::observability
