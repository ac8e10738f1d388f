#include "api/memory.hpp"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>

#include "api/context.hpp"
#include "api/query.hpp"
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

struct KeysQuery {
  std::string pattern;
  bool pattern_given = false;
  int limit = kDefaultListLimit;
  std::string cursor;
};

// pattern (glob, default every key), limit (1..kMaxListLimit, default 100), cursor (default the
// start). Unknown or repeated parameters are refused, so that a typo cannot widen a listing.
Result<KeysQuery> ParseKeysQuery(std::string_view query) {
  static constexpr std::string_view kNames[] = {"pattern", "limit", "cursor"};
  auto params = QueryParams::Parse(query, kNames);
  if (!params) return params.error();
  auto limit = params->Integer("limit", kDefaultListLimit, 1, storage::kMaxListLimit);
  if (!limit) return limit.error();
  KeysQuery q;
  q.limit = static_cast<int>(*limit);
  if (const std::string* pattern = params->Get("pattern")) {
    q.pattern = *pattern;
    q.pattern_given = true;
  }
  if (const std::string* cursor = params->Get("cursor")) q.cursor = *cursor;
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
