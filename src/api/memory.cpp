#include "api/memory.hpp"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>

#include "api/context.hpp"
#include "common/text.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;

constexpr int kDefaultListLimit = 100;
// The longest TTL the storage accepts (100 years), in seconds.
constexpr double kMaxTtlSeconds = 100.0 * 365 * 24 * 3600;
// Member names echoed in errors are cut to this many bytes.
constexpr std::size_t kMaxEchoedName = 64;

Error Invalid(std::string message, std::string_view param = {}) {
  return {ErrorCode::kInvalidRequest, std::move(message), std::string(param)};
}

// Answers the error and returns true when `r` failed.
template <class T>
bool Failed(RequestContext& ctx, const Result<T>& r) {
  if (r) return false;
  ctx.Fail(r.error());
  return true;
}

// At most `max` bytes of valid UTF-8 `text`, cut at a character boundary.
std::string_view Truncated(std::string_view text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
    --end;
  return text.substr(0, end);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A query-string component: %XX escapes and '+' for a space (form encoding, as curl -G
// --data-urlencode, Python's urlencode and URLSearchParams write it). False on a broken escape.
bool DecodeQueryComponent(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexDigit(in[i + 1]);
      const int lo = HexDigit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>((hi << 4) | lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return true;
}

struct KeysQuery {
  std::string pattern;
  int limit = kDefaultListLimit;
  std::string cursor;
};

// pattern (glob, default every key), limit (1..kMaxListLimit, default 100), cursor (default the
// start). Unknown or repeated parameters are refused, so that a typo cannot widen a listing.
Result<KeysQuery> ParseKeysQuery(std::string_view query) {
  KeysQuery q;
  bool seen[3] = {false, false, false};
  std::string name;
  std::string value;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const std::size_t eq = part.find('=');
    if (!DecodeQueryComponent(part.substr(0, eq), name)) {
      return Invalid("malformed percent-encoding in the query string");
    }
    int index = -1;
    if (name == "pattern") {
      index = 0;
    } else if (name == "limit") {
      index = 1;
    } else if (name == "cursor") {
      index = 2;
    }
    if (index < 0) {
      const std::string shown(IsUtf8(name) ? Truncated(name, kMaxEchoedName) : "?");
      return Invalid("unknown query parameter '" + shown + "' (expected pattern, limit, cursor)",
                     shown);
    }
    if (seen[index]) return Invalid(name + " is given more than once", name);
    seen[index] = true;
    const std::string_view raw = eq == std::string_view::npos ? "" : part.substr(eq + 1);
    if (!DecodeQueryComponent(raw, value)) {
      return Invalid("malformed percent-encoding in " + name, name);
    }
    if (index == 0) {
      q.pattern = std::move(value);
    } else if (index == 2) {
      q.cursor = std::move(value);
    } else {
      int limit = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() || limit < 1 ||
          limit > storage::kMaxListLimit) {
        return Invalid(
            "limit must be an integer from 1 to " + std::to_string(storage::kMaxListLimit),
            "limit");
      }
      q.limit = limit;
    }
  }
  return q;
}

// ttl: seconds, a positive JSON number (fractions allowed, rounded up to the millisecond); absent
// or null means the entry never expires.
Result<std::optional<std::chrono::milliseconds>> ReadTtl(const JsonBody& body) {
  auto seconds = body.OptionalNumber("ttl");
  if (!seconds) return seconds.error();
  if (!*seconds) return std::optional<std::chrono::milliseconds>();
  const double s = **seconds;
  if (!(s > 0) || s > kMaxTtlSeconds) {
    return Invalid("ttl must be a number of seconds greater than 0 and at most 100 years", "ttl");
  }
  return std::optional<std::chrono::milliseconds>(
      std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(s * 1000))));
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  AppendJsonEscaped(out, text);
  out += '"';
}

asio::awaitable<void> Store(storage::KvStore& kv, RequestContext& ctx) {
  auto body = JsonBody::Parse(ctx.request.body(), {"key", "value", "ttl"});
  if (Failed(ctx, body)) co_return;
  auto key = body->RequiredString("key");
  if (Failed(ctx, key)) co_return;
  auto value = body->RequiredValue("value");
  if (Failed(ctx, value)) co_return;
  auto ttl = ReadTtl(*body);
  if (Failed(ctx, ttl)) co_return;
  auto stored = co_await kv.Store(ctx.tenant(), *key, *value, *ttl);
  if (Failed(ctx, stored)) co_return;
  std::string out = R"({"stored":true,"key":)";
  AppendJsonString(out, *key);
  out += '}';
  ctx.Json(std::move(out));
}

asio::awaitable<void> Retrieve(storage::KvStore& kv, RequestContext& ctx) {
  auto body = JsonBody::Parse(ctx.request.body(), {"key"});
  if (Failed(ctx, body)) co_return;
  auto key = body->RequiredString("key");
  if (Failed(ctx, key)) co_return;
  auto value = co_await kv.Retrieve(ctx.tenant(), *key);
  if (Failed(ctx, value)) co_return;
  const std::optional<std::string>& found = *value;
  std::string out;
  out.reserve(48 + key->size() + (found ? found->size() : 0));
  out += R"({"key":)";
  AppendJsonString(out, *key);
  out += R"(,"value":)";
  // Stored values are JSON text validated when they were stored: inlined as they are.
  out += found ? std::string_view(*found) : std::string_view("null");
  out += found ? R"(,"exists":true})" : R"(,"exists":false})";
  ctx.Json(std::move(out));
}

asio::awaitable<void> Delete(storage::KvStore& kv, RequestContext& ctx) {
  const std::string_view key = ctx.Param("key");
  auto deleted = co_await kv.Delete(ctx.tenant(), key);
  if (Failed(ctx, deleted)) co_return;
  std::string out = *deleted ? R"({"deleted":true,"key":)" : R"({"deleted":false,"key":)";
  AppendJsonString(out, key);
  out += '}';
  ctx.Json(std::move(out));
}

asio::awaitable<void> ListKeys(storage::KvStore& kv, RequestContext& ctx) {
  auto query = ParseKeysQuery(ctx.request.query);
  if (Failed(ctx, query)) co_return;
  auto page = co_await kv.ListKeys(ctx.tenant(), query->pattern, query->limit, query->cursor);
  if (Failed(ctx, page)) co_return;
  std::string out = R"({"keys":[)";
  for (std::size_t i = 0; i < page->keys.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(out, page->keys[i]);
  }
  out += R"(],"next_cursor":)";
  if (page->next_cursor.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, page->next_cursor);
  }
  out += '}';
  ctx.Json(std::move(out));
}

}  // namespace

// --- JsonBody ----------------------------------------------------------------------------------

Result<JsonBody> JsonBody::Parse(std::string_view body,
                                 std::initializer_list<std::string_view> names) {
  if (!IsUtf8(body)) return Invalid("request body is not valid UTF-8");
  JsonBody out;
  out.body_ = body;
  for (std::string_view name : names) {
    if (out.count_ < kMaxMembers) out.members_[out.count_++].name = name;
  }
  std::optional<Error> member_error;
  JsonScanError scan_error;
  const auto kind = ScanJson(
      body,
      [&](std::string_view raw_name, const JsonSpan& value) {
        if (member_error) return;
        for (std::size_t i = 0; i < out.count_; ++i) {
          Member& m = out.members_[i];
          if (m.name != raw_name) continue;
          if (m.span.present) {
            member_error = Invalid(std::string(raw_name) + " is given more than once", raw_name);
          } else {
            m.span = value;
          }
          return;
        }
        std::string expected;
        for (std::size_t i = 0; i < out.count_; ++i) {
          expected += i == 0 ? "" : ", ";
          expected += out.members_[i].name;
        }
        const std::string_view shown = Truncated(raw_name, kMaxEchoedName);
        member_error = Invalid(
            "unknown field '" + std::string(shown) + "' (expected " + expected + ")", shown);
      },
      &scan_error);
  if (!kind) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      return Invalid("request body is empty; expected a JSON object");
    }
    return Invalid("request body is not valid JSON: " + std::string(scan_error.what) + " at byte " +
                   std::to_string(scan_error.offset));
  }
  if (*kind != JsonKind::kObject) return Invalid("request body must be a JSON object");
  if (member_error) return *member_error;
  return out;
}

const JsonBody::Member* JsonBody::Find(std::string_view name) const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (members_[i].name == name) return members_[i].span.present ? &members_[i] : nullptr;
  }
  return nullptr;
}

std::optional<std::string_view> JsonBody::Raw(std::string_view name) const {
  const Member* m = Find(name);
  if (m == nullptr) return std::nullopt;
  return m->span.In(body_);
}

Result<std::string> JsonBody::RequiredString(std::string_view name) const {
  auto s = OptionalString(name);
  if (!s) return s.error();
  if (!*s) {
    const Member* m = Find(name);
    const bool null = m != nullptr && m->span.kind == JsonKind::kNull;
    return Invalid(std::string(name) + (null ? " must be a string" : " is required"), name);
  }
  return std::move(**s);
}

Result<std::optional<std::string>> JsonBody::OptionalString(std::string_view name) const {
  const Member* m = Find(name);
  if (m == nullptr || m->span.kind == JsonKind::kNull) return std::optional<std::string>();
  if (m->span.kind != JsonKind::kString) {
    return Invalid(std::string(name) + " must be a string", name);
  }
  auto text = DecodeJsonString(m->span.In(body_));
  if (!text) return Invalid(std::string(name) + " is not a valid JSON string", name);
  return std::optional<std::string>(std::move(*text));
}

Result<std::string_view> JsonBody::RequiredValue(std::string_view name) const {
  const Member* m = Find(name);
  if (m == nullptr) return Invalid(std::string(name) + " is required", name);
  return m->span.In(body_);
}

Result<std::optional<std::string_view>> JsonBody::OptionalObject(std::string_view name) const {
  const Member* m = Find(name);
  if (m == nullptr || m->span.kind == JsonKind::kNull) return std::optional<std::string_view>();
  if (m->span.kind != JsonKind::kObject) {
    return Invalid(std::string(name) + " must be a JSON object", name);
  }
  return std::optional<std::string_view>(m->span.In(body_));
}

Result<std::optional<double>> JsonBody::OptionalNumber(std::string_view name) const {
  const Member* m = Find(name);
  if (m == nullptr || m->span.kind == JsonKind::kNull) return std::optional<double>();
  if (m->span.kind != JsonKind::kNumber) {
    return Invalid(std::string(name) + " must be a number", name);
  }
  const std::string_view raw = m->span.In(body_);
  double v = 0;
  const auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
  // Out of double's range (1e400) is refused rather than taken as infinity.
  if (ec != std::errc() || end != raw.data() + raw.size() || !std::isfinite(v)) {
    return Invalid(std::string(name) + " is out of range", name);
  }
  return std::optional<double>(v);
}

bool IsUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;  // bounds of the second byte (overlongs, surrogates, > U+10FFFF)
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < len) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (std::size_t i = 2; i < len; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
    }
    p += len;
  }
  return true;
}

void AddMemoryRoutes(Router& router, storage::KvStore& kv) {
  router.Add(http::verb::post, "/memory/store",
             [&kv](RequestContext& ctx) { return Store(kv, ctx); });
  router.Add(http::verb::post, "/memory/retrieve",
             [&kv](RequestContext& ctx) { return Retrieve(kv, ctx); });
  router.Add(http::verb::delete_, "/memory/{key}",
             [&kv](RequestContext& ctx) { return Delete(kv, ctx); });
  router.Add(http::verb::get, "/memory/keys",
             [&kv](RequestContext& ctx) { return ListKeys(kv, ctx); });
}

}  // namespace orchestra::api
