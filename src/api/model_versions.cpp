#include "api/model_versions.hpp"

#include <charconv>
#include <cmath>

#include <boost/json.hpp>

#include "api/context.hpp"
#include "api/json_body.hpp"
#include "common/text.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr std::string_view kPercent = "green_traffic_percentage";

template <class T>
bool Failed(RequestContext& ctx, const Result<T>& r) {
  if (r) return false;
  ctx.Fail(r.error());
  return true;
}

Error Invalid(std::string message, std::string_view param) {
  return Error(ErrorCode::kInvalidRequest, std::move(message), std::string(param));
}

Error BadPercent() {
  return Invalid("green_traffic_percentage must be an integer from 0 to 100", kPercent);
}

// AI Orchestra's field is an int: a JSON number without a fraction, 0 when absent.
Result<int> PercentFromBody(const JsonBody& body) {
  auto number = body.OptionalNumber(kPercent);
  if (!number) return number.error();
  if (!*number) return 0;
  const double p = **number;
  if (!(p >= 0 && p <= 100) || std::floor(p) != p) return BadPercent();
  return static_cast<int>(p);
}

// The query of traffic-shift: green_traffic_percentage, required, and nothing else (a typo must
// not pass for a shift to 0).
Result<int> PercentFromQuery(std::string_view query) {
  std::optional<int> percent;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const std::size_t eq = part.find('=');
    auto name = PercentDecode(part.substr(0, eq), PlusSign::kSpace);
    if (!name) return Invalid("malformed percent-encoding in the query string", "");
    if (*name != kPercent) {
      const std::string shown(ShownName(*name));
      return Invalid("unknown query parameter '" + shown + "' (expected green_traffic_percentage)",
                     shown);
    }
    if (percent) return Invalid("green_traffic_percentage is given more than once", kPercent);
    auto value =
        PercentDecode(eq == std::string_view::npos ? "" : part.substr(eq + 1), PlusSign::kSpace);
    if (!value) return BadPercent();
    int p = -1;
    const auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), p);
    if (value->empty() || ec != std::errc() || end != value->data() + value->size() || p < 0 ||
        p > 100) {
      return BadPercent();
    }
    percent = p;
  }
  if (!percent) return Invalid("green_traffic_percentage is required in the query", kPercent);
  return *percent;
}

json::object VersionJson(std::string_view model_id, const versions::Version& v) {
  json::array capabilities;
  for (const std::string& c : v.capabilities)
    capabilities.emplace_back(c);
  return json::object{{"model_id", model_id},
                      {"version", v.version},
                      {"endpoint", v.endpoint},
                      {"capabilities", std::move(capabilities)},
                      {"created_at", v.created_at}};
}

void Success(RequestContext& ctx) {
  ctx.Json(R"({"success":true})");
}

asio::awaitable<void> Register(versions::Service& service, RequestContext& ctx) {
  auto body =
      JsonBody::Parse(ctx.request.body(), {"model_id", "version", "endpoint", "capabilities"});
  if (Failed(ctx, body)) co_return;
  versions::RegisterRequest request;
  auto model_id = body->RequiredString("model_id");
  if (Failed(ctx, model_id)) co_return;
  auto version = body->RequiredString("version");
  if (Failed(ctx, version)) co_return;
  auto endpoint = body->RequiredString("endpoint");
  if (Failed(ctx, endpoint)) co_return;
  auto capabilities = body->OptionalStringArray("capabilities");
  if (Failed(ctx, capabilities)) co_return;
  request.model_id = std::move(*model_id);
  request.version = std::move(*version);
  request.endpoint = std::move(*endpoint);
  if (*capabilities) request.capabilities = std::move(**capabilities);
  const std::string id = request.model_id;
  auto registered = co_await service.Register(std::move(request));
  if (Failed(ctx, registered)) co_return;
  ctx.Json(json::serialize(VersionJson(id, *registered)));
}

asio::awaitable<void> List(versions::Service& service, RequestContext& ctx) {
  const std::string_view model_id = ctx.Param("model_id");
  auto record = co_await service.Versions(model_id);
  if (Failed(ctx, record)) co_return;
  json::array list;
  for (const versions::Version& v : record->versions)
    list.emplace_back(VersionJson(model_id, v));
  json::object out{{"model_id", model_id}, {"versions", std::move(list)}};
  const versions::Deployment& d = record->deployment;
  if (d.state == versions::DeploymentState::kNone) {
    out["deployment"] = nullptr;
  } else {
    out["deployment"] = json::object{{"state", versions::ToString(d.state)},
                                     {"blue_version", d.blue},
                                     {"green_version", d.green},
                                     {kPercent, d.green_percent}};
  }
  ctx.Json(json::serialize(out));
}

asio::awaitable<void> BlueGreen(versions::Service& service, RequestContext& ctx) {
  auto body =
      JsonBody::Parse(ctx.request.body(), {"model_id", "blue_version", "green_version", kPercent});
  if (Failed(ctx, body)) co_return;
  auto model_id = body->RequiredString("model_id");
  if (Failed(ctx, model_id)) co_return;
  auto blue = body->RequiredString("blue_version");
  if (Failed(ctx, blue)) co_return;
  auto green = body->RequiredString("green_version");
  if (Failed(ctx, green)) co_return;
  auto percent = PercentFromBody(*body);
  if (Failed(ctx, percent)) co_return;
  auto done = co_await service.DeployBlueGreen(*model_id, *blue, *green, *percent);
  if (Failed(ctx, done)) co_return;
  Success(ctx);
}

asio::awaitable<void> Shift(versions::Service& service, RequestContext& ctx) {
  auto percent = PercentFromQuery(ctx.request.query);
  if (Failed(ctx, percent)) co_return;
  auto done = co_await service.ShiftTraffic(ctx.Param("model_id"), *percent);
  if (Failed(ctx, done)) co_return;
  Success(ctx);
}

asio::awaitable<void> Promote(versions::Service& service, RequestContext& ctx) {
  auto done = co_await service.PromoteGreen(ctx.Param("model_id"));
  if (Failed(ctx, done)) co_return;
  Success(ctx);
}

asio::awaitable<void> Rollback(versions::Service& service, RequestContext& ctx) {
  auto done = co_await service.Rollback(ctx.Param("model_id"));
  if (Failed(ctx, done)) co_return;
  Success(ctx);
}

}  // namespace

void AddModelVersionRoutes(Router& router, versions::Service& service) {
  router.Add(
      http::verb::post, "/models/versions/register",
      [&service](RequestContext& ctx) { return Register(service, ctx); }, Access::kAdmin);
  router.Add(
      http::verb::get, "/models/{model_id}/versions",
      [&service](RequestContext& ctx) { return List(service, ctx); }, Access::kAdmin);
  router.Add(
      http::verb::post, "/models/deployments/blue-green",
      [&service](RequestContext& ctx) { return BlueGreen(service, ctx); }, Access::kAdmin);
  router.Add(
      http::verb::post, "/models/{model_id}/traffic-shift",
      [&service](RequestContext& ctx) { return Shift(service, ctx); }, Access::kAdmin);
  router.Add(
      http::verb::post, "/models/{model_id}/promote-green",
      [&service](RequestContext& ctx) { return Promote(service, ctx); }, Access::kAdmin);
  router.Add(
      http::verb::post, "/models/{model_id}/rollback",
      [&service](RequestContext& ctx) { return Rollback(service, ctx); }, Access::kAdmin);
}

}  // namespace orchestra::api
