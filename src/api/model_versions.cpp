#include "api/model_versions.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "api/context.hpp"
#include "api/json_body.hpp"
#include "api/query.hpp"
#include "common/text.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;

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
  static constexpr std::string_view kNames[] = {kPercent};
  auto params = QueryParams::Parse(query, kNames);
  if (!params) return params.error();
  if (params->Get(kPercent) == nullptr)
    return Invalid("green_traffic_percentage is required in the query", kPercent);
  auto percent = params->Integer(kPercent, 0, 0, 100);
  if (!percent) return BadPercent();
  return static_cast<int>(*percent);
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  AppendJsonEscaped(out, text);
  out += '"';
}

// {model_id, version, endpoint, capabilities, created_at}: AI Orchestra's ModelVersionResponse,
// created_at in seconds with milliseconds (1715000000.250, as Python's time.time() prints).
void AppendVersion(std::string& out, std::string_view model_id, const versions::Version& v) {
  out += R"({"model_id":)";
  AppendJsonString(out, model_id);
  out += R"(,"version":)";
  AppendJsonString(out, v.version);
  out += R"(,"endpoint":)";
  AppendJsonString(out, v.endpoint);
  out += R"(,"capabilities":[)";
  for (std::size_t i = 0; i < v.capabilities.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(out, v.capabilities[i]);
  }
  char seconds[32];
  const int n = std::snprintf(seconds, sizeof seconds, "%.3f", v.created_at);
  out += R"(],"created_at":)";
  out.append(seconds, static_cast<std::size_t>(std::max(n, 0)));
  out += '}';
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
  std::string out;
  AppendVersion(out, id, *registered);
  ctx.Json(std::move(out));
}

asio::awaitable<void> List(versions::Service& service, RequestContext& ctx) {
  const std::string_view model_id = ctx.Param("model_id");
  auto record = co_await service.Versions(model_id);
  if (Failed(ctx, record)) co_return;
  std::string out = R"({"model_id":)";
  AppendJsonString(out, model_id);
  out += R"(,"versions":[)";
  for (std::size_t i = 0; i < record->versions.size(); ++i) {
    if (i > 0) out += ',';
    AppendVersion(out, model_id, record->versions[i]);
  }
  out += R"(],"deployment":)";
  const versions::Deployment& d = record->deployment;
  if (d.state == versions::DeploymentState::kNone) {
    out += "null";
  } else {
    out += R"({"state":)";
    AppendJsonString(out, versions::ToString(d.state));
    out += R"(,"blue_version":)";
    AppendJsonString(out, d.blue);
    out += R"(,"green_version":)";
    AppendJsonString(out, d.green);
    out += R"(,"green_traffic_percentage":)";
    out += std::to_string(d.green_percent);
    out += '}';
  }
  out += '}';
  ctx.Json(std::move(out));
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
