#include "upstream/directives.hpp"

#include <charconv>
#include <string>

#include "common/text.hpp"

namespace orchestra::testing::upstream {
namespace {

// Keys compare with '-' and '_' as equals, so `--chunk-delay` and `chunk_delay` both work.
bool SameKey(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] == '-' ? '_' : a[i];
    char y = b[i] == '-' ? '_' : b[i];
    if (x != y) return false;
  }
  return true;
}

Error Invalid(std::string message) {
  return MakeError(ErrorCode::kInvalidRequest, std::move(message), "model");
}

Result<int> ParseCount(std::string_view key, std::string_view value, int min, int max) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size() || v < min || v > max) {
    return Invalid("test upstream: directive '" + std::string(key) + "' needs an integer in [" +
                   std::to_string(min) + ", " + std::to_string(max) + "], got '" +
                   std::string(value) + "'");
  }
  return v;
}

Result<std::chrono::nanoseconds> ParseDelay(std::string_view key, std::string_view value) {
  auto d = ParseDuration(value);
  if (!d || *d > std::chrono::hours(1)) {
    return Invalid("test upstream: directive '" + std::string(key) +
                   "' needs a duration such as 20ms, got '" + std::string(value) + "'");
  }
  return *d;
}

Result<FaultPoint> ParsePoint(std::string_view key, std::string_view value) {
  if (value == "head") return FaultPoint::kHead;
  if (value == "body") return FaultPoint::kBody;
  return Invalid("test upstream: directive '" + std::string(key) + "' needs head or body, got '" +
                 std::string(value) + "'");
}

constexpr std::string_view kContentTypes[] = {"text/plain", "text/html", "application/json",
                                              "application/octet-stream"};

constexpr std::string_view kFlagKeys[] = {"stall",  "reset", "append",  "bad_chunk",
                                          "http09", "html",  "no_usage"};
constexpr std::string_view kValueKeys[] = {
    "latency",      "first_byte_delay", "chunk_delay",  "chunks",   "cut",
    "status",       "retry_after",      "times",        "dims",     "interim",
    "length_delta", "append_delay",     "encoding",     "reset_at", "stall_at",
    "drip",         "header_bytes",     "content_type", "body_mib"};

}  // namespace

bool IsDirectiveKey(std::string_view key, bool& takes_value) {
  for (std::string_view k : kFlagKeys) {
    if (SameKey(key, k)) {
      takes_value = false;
      return true;
    }
  }
  for (std::string_view k : kValueKeys) {
    if (SameKey(key, k)) {
      takes_value = true;
      return true;
    }
  }
  return false;
}

Result<void> ApplyDirective(std::string_view key, std::string_view value, bool has_value,
                            Directives& out) {
  bool takes_value = false;
  if (!IsDirectiveKey(key, takes_value)) {
    return Invalid("test upstream: unknown directive '" + std::string(key) + "'");
  }
  if (takes_value != has_value) {
    return Invalid("test upstream: directive '" + std::string(key) +
                   (takes_value ? "' needs a value (key=value)" : "' takes no value"));
  }
  auto assign_delay = [&](std::chrono::nanoseconds& field) -> Result<void> {
    auto d = ParseDelay(key, value);
    if (!d) return d.error();
    field = *d;
    return {};
  };
  auto assign_count = [&](int& field, int min, int max) -> Result<void> {
    auto v = ParseCount(key, value, min, max);
    if (!v) return v.error();
    field = *v;
    return {};
  };
  if (SameKey(key, "stall")) {
    out.stall = true;
    return {};
  }
  if (SameKey(key, "reset")) {
    out.reset = true;
    return {};
  }
  if (SameKey(key, "append")) {
    out.append = true;
    return {};
  }
  if (SameKey(key, "bad_chunk")) {
    out.bad_chunk = true;
    return {};
  }
  if (SameKey(key, "http09")) {
    out.http09 = true;
    return {};
  }
  if (SameKey(key, "html")) {
    out.html = true;
    return {};
  }
  if (SameKey(key, "no_usage")) {
    out.no_usage = true;
    return {};
  }
  if (SameKey(key, "interim")) return assign_count(out.interim, 100, 199);
  if (SameKey(key, "length_delta")) return assign_count(out.length_delta, -1'000'000, 1'000'000);
  if (SameKey(key, "append_delay")) return assign_delay(out.append_delay);
  if (SameKey(key, "drip")) return assign_delay(out.drip);
  if (SameKey(key, "header_bytes")) return assign_count(out.header_bytes, 1, 1'000'000);
  if (SameKey(key, "body_mib")) return assign_count(out.body_mib, 1, 16'384);
  if (SameKey(key, "reset_at") || SameKey(key, "stall_at")) {
    auto point = ParsePoint(key, value);
    if (!point) return point.error();
    (SameKey(key, "reset_at") ? out.reset_at : out.stall_at) = *point;
    return {};
  }
  if (SameKey(key, "encoding")) {
    if (value == "gzip") {
      out.encoding = Encoding::kGzip;
    } else if (value == "deflate") {
      out.encoding = Encoding::kDeflate;
    } else if (value == "br") {
      out.encoding = Encoding::kBrotli;
    } else {
      return Invalid("test upstream: directive 'encoding' needs gzip, deflate or br, got '" +
                     std::string(value) + "'");
    }
    return {};
  }
  if (SameKey(key, "content_type")) {
    for (std::string_view t : kContentTypes) {
      if (value == t) {
        out.content_type = t;
        return {};
      }
    }
    return Invalid(
        "test upstream: directive 'content_type' needs one of text/plain, "
        "text/html, application/json, application/octet-stream, got '" +
        std::string(value) + "'");
  }
  if (SameKey(key, "latency")) return assign_delay(out.latency);
  if (SameKey(key, "first_byte_delay")) return assign_delay(out.first_byte_delay);
  if (SameKey(key, "chunk_delay")) return assign_delay(out.chunk_delay);
  if (SameKey(key, "chunks")) return assign_count(out.chunks, 1, 1'000'000);
  if (SameKey(key, "cut")) return assign_count(out.cut, 0, 1'000'000);
  if (SameKey(key, "status")) return assign_count(out.status, 200, 599);
  if (SameKey(key, "retry_after")) return assign_count(out.retry_after, 0, 86'400);
  if (SameKey(key, "times")) return assign_count(out.times, 1, 1'000'000'000);
  return assign_count(out.dims, 1, 65'536);  // the last value key: dims
}

Result<Directives> ParseModelDirectives(std::string_view model, const Directives& defaults) {
  Directives out = defaults;
  std::size_t plus = model.find('+');
  while (plus != std::string_view::npos) {
    std::size_t next = model.find('+', plus + 1);
    std::string_view item = model.substr(
        plus + 1, next == std::string_view::npos ? std::string_view::npos : next - plus - 1);
    std::size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    auto applied = ApplyDirective(key, value, eq != std::string_view::npos, out);
    if (!applied) return applied.error();
    plus = next;
  }
  return out;
}

}  // namespace orchestra::testing::upstream
