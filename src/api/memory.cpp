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

// A query-string component (form encoding: '+' is a space); false on a broken escape.
bool DecodeQueryComponent(std::string_view in, std::string& out) {
  auto decoded = PercentDecode(in, PlusSign::kSpace);
  if (!decoded) return false;
  out = std::move(*decoded);
  return true;
}

struct KeysQuery {
  std::string pattern;
  bool pattern_given = false;
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
      const std::string shown(ShownName(name));
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
      q.pattern_given = true;
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
  out += R"(,"success":true})";
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
  // AI Orchestra's `success`: the delete completed (deleting is idempotent, so it is true whether
  // or not there was an entry); `deleted` says whether there was one.
  out += R"(,"success":true})";
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
  // AI Orchestra echoes the pattern it listed with, "*" when none was given.
  out += R"(,"pattern":)";
  AppendJsonString(out, query->pattern_given ? std::string_view(query->pattern) : "*");
  out += '}';
  ctx.Json(std::move(out));
}

}  // namespace

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
