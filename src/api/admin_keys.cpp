#include "api/admin_keys.hpp"

#include <charconv>

#include "api/context.hpp"
#include "api/json_body.hpp"
#include "api/query.hpp"
#include "common/text.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;

constexpr int kDefaultListLimit = 20;
constexpr int kMaxListLimit = 100;

template <class T>
bool Failed(RequestContext& ctx, const Result<T>& r) {
  if (r) return false;
  ctx.Fail(r.error());
  return true;
}

Error Invalid(std::string message, std::string param) {
  return Error(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
}

struct ListQuery {
  int limit = kDefaultListLimit;
  std::string cursor;
};

// limit (1..100, default 20) and cursor; anything else is refused.
Result<ListQuery> ParseListQuery(std::string_view query) {
  static constexpr std::string_view kNames[] = {"limit", "cursor"};
  auto params = QueryParams::Parse(query, kNames);
  if (!params) return params.error();
  auto limit = params->Integer("limit", kDefaultListLimit, 1, kMaxListLimit);
  if (!limit) return limit.error();
  ListQuery q;
  q.limit = static_cast<int>(*limit);
  if (const std::string* cursor = params->Get("cursor")) q.cursor = *cursor;
  return q;
}

asio::awaitable<void> Create(auth::KeyService& service, RequestContext& ctx) {
  auto issued = co_await service.Create(ctx.request.body());
  if (Failed(ctx, issued)) co_return;
  ctx.Json(auth::RenderKey(issued->record, issued->secret));
  ctx.response.AddHeader("Cache-Control", "no-store");
}

asio::awaitable<void> List(auth::KeyService& service, RequestContext& ctx) {
  auto query = ParseListQuery(ctx.request.query);
  if (Failed(ctx, query)) co_return;
  auto page = co_await service.List(query->limit, query->cursor);
  if (!page && page.error().code == ErrorCode::kInvalidRequest) {
    // The backend refused the cursor: it did not come from a previous page.
    ctx.Fail(Invalid("cursor is not one this server returned", "cursor"));
    co_return;
  }
  if (Failed(ctx, page)) co_return;
  std::string out = R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < page->keys.size(); ++i) {
    if (i > 0) out += ',';
    out += auth::RenderKey(page->keys[i]);
  }
  out += R"(],"has_more":)";
  out += page->next_cursor.empty() ? "false" : "true";
  out += R"(,"next_cursor":)";
  if (page->next_cursor.empty()) {
    out += "null";
  } else {
    out += '"';
    AppendJsonEscaped(out, page->next_cursor);
    out += '"';
  }
  out += '}';
  ctx.Json(std::move(out));
}

asio::awaitable<void> Get(auth::KeyService& service, RequestContext& ctx) {
  auto key = co_await service.Get(ctx.Param("id"));
  if (Failed(ctx, key)) co_return;
  ctx.Json(auth::RenderKey(*key));
}

asio::awaitable<void> Patch(auth::KeyService& service, RequestContext& ctx) {
  auto key = co_await service.Patch(ctx.Param("id"), ctx.request.body());
  if (Failed(ctx, key)) co_return;
  ctx.Json(auth::RenderKey(*key));
}

asio::awaitable<void> Revoke(auth::KeyService& service, RequestContext& ctx) {
  const std::string_view id = ctx.Param("id");
  auto done = co_await service.Revoke(id);
  if (Failed(ctx, done)) co_return;
  std::string out = R"({"id":")";
  AppendJsonEscaped(out, id);
  out += R"(","object":"api_key","deleted":true})";
  ctx.Json(std::move(out));
}

asio::awaitable<void> Rotate(auth::KeyService& service, RequestContext& ctx) {
  auto issued = co_await service.Rotate(ctx.Param("id"), ctx.request.body());
  if (Failed(ctx, issued)) co_return;
  ctx.Json(auth::RenderKey(issued->record, issued->secret));
  ctx.response.AddHeader("Cache-Control", "no-store");
}

}  // namespace

void AddAdminKeyRoutes(Router& router, auth::KeyService& service) {
  router.Add(
      http::verb::post, "/admin/keys",
      [&service](RequestContext& ctx) { return Create(service, ctx); }, Access::kAdmin);
  router.Add(
      http::verb::get, "/admin/keys",
      [&service](RequestContext& ctx) { return List(service, ctx); }, Access::kAdmin);
  router.Add(
      http::verb::get, "/admin/keys/{id}",
      [&service](RequestContext& ctx) { return Get(service, ctx); }, Access::kAdmin);
  router.Add(
      http::verb::patch, "/admin/keys/{id}",
      [&service](RequestContext& ctx) { return Patch(service, ctx); }, Access::kAdmin);
  router.Add(
      http::verb::delete_, "/admin/keys/{id}",
      [&service](RequestContext& ctx) { return Revoke(service, ctx); }, Access::kAdmin);
  router.Add(
      http::verb::post, "/admin/keys/{id}/rotate",
      [&service](RequestContext& ctx) { return Rotate(service, ctx); }, Access::kAdmin);
}

}  // namespace orchestra::api
