#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>

// A finished span as the code that made it describes it to the Tracer (tracer.hpp): the
// OpenTelemetry trace data model (opentelemetry-proto's trace.proto), by view. Nothing here owns
// memory: a SpanRecord and what it points at need only live for the Tracer::Record call, which
// encodes it at once.
namespace orchestra::observability {

enum class SpanKind : std::uint8_t { kInternal = 1, kServer = 2, kClient = 3 };
enum class SpanStatus : std::uint8_t { kUnset = 0, kOk = 1, kError = 2 };

// An attribute's value: OTLP's AnyValue, as far as spans here need it (a string array is
// gen_ai.response.finish_reasons).
using AttributeValue =
    std::variant<std::string_view, std::int64_t, double, bool, std::span<const std::string_view>>;

struct Attribute {
  Attribute() = default;
  Attribute(std::string_view k, std::string_view v) : key(k), value(v) {}
  Attribute(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Attribute(std::string_view k, std::int64_t v) : key(k), value(v) {}
  Attribute(std::string_view k, int v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Attribute(std::string_view k, unsigned v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Attribute(std::string_view k, std::uint64_t v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Attribute(std::string_view k, double v) : key(k), value(v) {}
  Attribute(std::string_view k, bool v) : key(k), value(v) {}
  Attribute(std::string_view k, std::span<const std::string_view> v) : key(k), value(v) {}
  std::string_view key;
  AttributeValue value;
};

struct SpanEvent {
  std::string_view name;
  std::uint64_t time_unix_nano = 0;
  std::span<const Attribute> attributes;
};

struct SpanRecord {
  std::string_view trace_id;        // 32 lower-case hex digits
  std::string_view span_id;         // 16 lower-case hex digits
  std::string_view parent_span_id;  // 16 hex digits; empty or all '0' for a root span
  bool sampled = true;              // the W3C trace flags' sampled bit
  std::string_view name;
  SpanKind kind = SpanKind::kInternal;
  std::uint64_t start_unix_nano = 0;
  std::uint64_t end_unix_nano = 0;
  std::span<const Attribute> attributes;
  std::span<const SpanEvent> events;
  SpanStatus status = SpanStatus::kUnset;
  std::string_view status_message;  // with kError only
};

// A span id of 16 random hex digits (never all zero).
using SpanIdText = std::array<char, 16>;
SpanIdText NewSpanId();
inline std::string_view View(const SpanIdText& id) {
  return {id.data(), id.size()};
}

// Converts steady-clock times (what the request path measures with) to Unix nanoseconds by one
// reading of both clocks, so the spans of a request line up with each other exactly and with
// wall time as well as the system clock allows.
class UnixTime {
 public:
  UnixTime();
  std::uint64_t Of(std::chrono::steady_clock::time_point t) const;
  std::uint64_t now() const { return Of(steady_now_); }

 private:
  std::chrono::steady_clock::time_point steady_now_;
  std::int64_t unix_now_ns_;
};

}  // namespace orchestra::observability
