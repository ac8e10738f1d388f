#include "api/ops.hpp"

#include <chrono>

#include "api/context.hpp"
#include "common/text.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto kMaxLoopLag = 5s;
constexpr auto kWarmupReuse = 1s;

// The last /warmup result, reused for a second so that a burst of keep-warm calls (or a
// public caller) costs one round of upstream and storage touches.
struct WarmupCache {
  std::mutex mutex;
  std::chrono::steady_clock::time_point at{};
  std::string body;
};

std::string CheckJson(const NamedCheck& check, const Result<std::string>& r) {
  std::string out = "{\"name\":\"";
  AppendJsonEscaped(out, check.name);
  out += r ? "\",\"ok\":true,\"detail\":\"" : "\",\"ok\":false,\"detail\":\"";
  AppendJsonEscaped(out, r ? *r : r.error().message);
  out += "\"}";
  return out;
}

}  // namespace

void AddMetricsRoute(Router& router, observability::Registry& registry, Access access) {
  router
      .Add(
          http::verb::get, "/metrics",
          [&registry](RequestContext& ctx) -> asio::awaitable<void> {
            ctx.response.content_type = "text/plain; version=0.0.4; charset=utf-8";
            ctx.response.body = registry.Render();
            co_return;
          },
          access)
      .probe = true;
}

void AddOperationsRoutes(Router& router, Health& health, observability::Registry& registry,
                         BuildInfo build) {
  std::string root = "{\"name\":\"orchestra\",\"version\":\"";
  AppendJsonEscaped(root, build.version);
  root += "\",\"commit\":\"";
  AppendJsonEscaped(root, build.commit);
  root += "\"}";
  router.Add(
      http::verb::get, "/",
      [root](RequestContext& ctx) -> asio::awaitable<void> {
        ctx.Json(root);
        co_return;
      },
      Access::kPublic);

  router
      .Add(
          http::verb::get, "/healthz",
          [&health](RequestContext& ctx) -> asio::awaitable<void> {
            if (health.alive()) {
              ctx.Json(R"({"status":"ok"})");
            } else {
              ctx.Fail(Error(ErrorCode::kUnavailable, "an event loop has stopped turning"));
            }
            co_return;
          },
          Access::kPublic)
      .probe = true;

  // AI Orchestra's health check, for its clients and load balancers: liveness, in its shape.
  router
      .Add(
          http::verb::get, "/health",
          [&health](RequestContext& ctx) -> asio::awaitable<void> {
            if (health.alive()) {
              ctx.Json(R"({"status":"healthy"})");
            } else {
              ctx.Fail(Error(ErrorCode::kUnavailable, "an event loop has stopped turning"));
            }
            co_return;
          },
          Access::kPublic)
      .probe = true;

  router
      .Add(
          http::verb::get, "/startupz",
          [&health](RequestContext& ctx) -> asio::awaitable<void> {
            if (health.started()) {
              ctx.Json(R"({"status":"started"})");
            } else {
              ctx.Fail(Error(ErrorCode::kUnavailable, "starting"));
            }
            co_return;
          },
          Access::kPublic)
      .probe = true;

  router
      .Add(
          http::verb::get, "/readyz",
          [&health](RequestContext& ctx) -> asio::awaitable<void> {
            if (!health.started()) {
              ctx.Fail(Error(ErrorCode::kUnavailable, "not ready: starting"));
              co_return;
            }
            if (health.draining()) {
              ctx.Fail(Error(ErrorCode::kUnavailable, "not ready: draining"));
              co_return;
            }
            std::string checks;
            std::string failures;
            for (const NamedCheck& check : health.readiness_checks()) {
              Result<std::string> r = co_await check.run();
              if (!checks.empty()) checks += ',';
              checks += CheckJson(check, r);
              if (!r) {
                if (!failures.empty()) failures += "; ";
                failures += check.name + ": " + r.error().message;
              }
            }
            if (!failures.empty()) {
              ctx.Fail(Error(ErrorCode::kUnavailable, "not ready: " + failures));
            } else {
              ctx.Json("{\"status\":\"ready\",\"checks\":[" + checks + "]}");
            }
          },
          Access::kPublic)
      .probe = true;

  AddMetricsRoute(router, registry, Access::kAdmin);

  auto cache = std::make_shared<WarmupCache>();
  router.Add(
      http::verb::post, "/warmup",
      [&health, cache](RequestContext& ctx) -> asio::awaitable<void> {
        const auto now = std::chrono::steady_clock::now();
        {
          std::lock_guard lock(cache->mutex);
          if (!cache->body.empty() && now - cache->at < kWarmupReuse) {
            ctx.Json(cache->body);
            co_return;
          }
        }
        std::string items;
        for (const NamedCheck& w : health.warmers()) {
          Result<std::string> r = co_await w.run();
          if (!items.empty()) items += ',';
          items += CheckJson(w, r);
        }
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - now)
                .count();
        std::string body =
            "{\"warmed\":[" + items + "],\"duration_ms\":" + std::to_string(ms) + "}";
        {
          std::lock_guard lock(cache->mutex);
          cache->at = now;
          cache->body = body;
        }
        ctx.Json(std::move(body));
      },
      Access::kPublic);
}

}  // namespace orchestra::api
