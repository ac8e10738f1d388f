#include "observability/trace.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "common/random.hpp"

namespace orchestra::observability {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

// X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS (span id in decimal).
bool ParseCloudTrace(std::string_view header, TraceContext& out) {
  auto slash = header.find('/');
  std::string_view trace = header.substr(0, slash);
  if (trace.size() != 32 || !IsLowerHex(trace) || AllZero(trace)) return false;
  std::memcpy(out.trace_id.data(), trace.data(), 32);
  out.parent_span_id.fill('0');
  out.sampled = header.find(";o=1") != std::string_view::npos;
  if (slash != std::string_view::npos) {
    std::string_view rest = header.substr(slash + 1);
    std::string_view span = rest.substr(0, rest.find(';'));
    std::uint64_t id = 0;
    auto [ptr, ec] = std::from_chars(span.data(), span.data() + span.size(), id);
    if (ec == std::errc() && ptr == span.data() + span.size() && id != 0) {
      static constexpr char kDigits[] = "0123456789abcdef";
      for (int i = 15; i >= 0; --i) {
        out.parent_span_id[static_cast<std::size_t>(i)] = kDigits[id & 0xF];
        id >>= 4;
      }
    }
  }
  return true;
}

}  // namespace

bool ParseTraceparent(std::string_view h, TraceContext& out) {
  // version "-" trace-id "-" parent-id "-" flags; future versions may append "-..." fields.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return false;
  std::string_view version = h.substr(0, 2);
  std::string_view trace = h.substr(3, 32);
  std::string_view parent = h.substr(36, 16);
  std::string_view flags = h.substr(53, 2);
  if (!IsLowerHex(version) || version == "ff") return false;
  if (version == "00" && h.size() != 55) return false;
  if (h.size() > 55 && h[55] != '-') return false;
  if (!IsLowerHex(trace) || AllZero(trace) || !IsLowerHex(parent) || AllZero(parent)) return false;
  if (!IsLowerHex(flags)) return false;
  std::memcpy(out.trace_id.data(), trace.data(), 32);
  std::memcpy(out.parent_span_id.data(), parent.data(), 16);
  int f = 0;
  std::from_chars(flags.data(), flags.data() + 2, f, 16);
  out.sampled = (f & 1) != 0;
  return true;
}

TraceContext ContinueTrace(std::string_view traceparent, std::string_view cloud_trace) {
  TraceContext t;
  bool continued = (!traceparent.empty() && ParseTraceparent(traceparent, t)) ||
                   (!cloud_trace.empty() && ParseCloudTrace(cloud_trace, t));
  t.remote = continued;
  if (!continued) {
    FillRandomHex(t.trace_id.data(), 16);
    t.parent_span_id.fill('0');
    t.sampled = false;
  }
  do {
    FillRandomHex(t.span_id.data(), 8);
  } while (AllZero(t.SpanId()));
  return t;
}

std::string_view TraceContext::Traceparent(std::array<char, 55>& out) const {
  char* p = out.data();
  std::memcpy(p, "00-", 3);
  std::memcpy(p + 3, trace_id.data(), 32);
  p[35] = '-';
  std::memcpy(p + 36, span_id.data(), 16);
  std::memcpy(p + 52, sampled ? "-01" : "-00", 3);
  return {out.data(), out.size()};
}

namespace {
constexpr std::uint64_t kRandomnessRange = std::uint64_t{1} << 56;
}  // namespace

Sampler::Sampler(bool parent_based, Root root, double ratio)
    : parent_based_(parent_based), root_(root) {
  ratio = std::clamp(ratio, 0.0, 1.0);
  // (1 - ratio) * 2^56, exact at both ends: 1 keeps every trace, 0 none.
  threshold_ = ratio >= 1.0   ? 0
               : ratio <= 0.0 ? kRandomnessRange
                              : static_cast<std::uint64_t>(std::ceil(
                                    (1.0 - ratio) * static_cast<double>(kRandomnessRange)));
}

std::uint64_t Sampler::RandomnessOf(std::string_view trace_id) {
  if (trace_id.size() != 32) return 0;
  std::uint64_t r = 0;
  std::from_chars(trace_id.data() + 18, trace_id.data() + 32, r, 16);
  return r;
}

bool Sampler::ShouldSample(const TraceContext& trace) const {
  if (parent_based_ && trace.remote) return trace.sampled;
  switch (root_) {
    case Root::kAlwaysOn:
      return true;
    case Root::kAlwaysOff:
      return false;
    case Root::kTraceIdRatio:
      return RandomnessOf(trace.TraceId()) >= threshold_;
  }
  return false;
}

std::string TraceContext::Traceparent() const {
  std::array<char, 55> buffer;
  return std::string(Traceparent(buffer));
}

}  // namespace orchestra::observability
