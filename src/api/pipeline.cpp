#include "api/pipeline.hpp"

#include <array>
#include <chrono>
#include <optional>

#include "api/context.hpp"
#include "api/errors.hpp"
#include "common/random.hpp"
#include "observability/trace.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
using observability::Counter;

// An incoming X-Request-Id is kept when it is short and plain; anything else is replaced so
// that logs and headers never carry a client's arbitrary bytes.
bool UsableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=';
    if (!ok) return false;
  }
  return true;
}

std::string StatusLabel(unsigned status) {
  return std::to_string(status);
}

}  // namespace

// Counters for one route, cached by method slot and status so the hot path never takes the
// family's mutex after the first request with a given status.
struct Pipeline::RouteMetrics {
  RouteMetrics(std::string label, std::string method, observability::Histogram& hist)
      : route(std::move(label)), primary_method(std::move(method)), duration(hist) {}

  Counter& For(observability::Family<Counter>& family, std::string_view method, unsigned status) {
    if (status < 100 || status > 599) status = 599;
    const std::size_t slot = method == primary_method ? 0 : (method == "HEAD" ? 1 : 2);
    if (slot == 2) return family.With({route, method, StatusLabel(status)});
    auto& cell = counters[slot][status - 100];
    Counter* c = cell.load(std::memory_order_acquire);
    if (c == nullptr) {
      c = &family.With(
          {route, slot == 0 ? std::string_view(primary_method) : "HEAD", StatusLabel(status)});
      cell.store(c, std::memory_order_release);
    }
    return *c;
  }

  std::string route;
  std::string primary_method;
  observability::Histogram& duration;
  std::array<std::array<std::atomic<Counter*>, 500>, 2> counters{};
};

Pipeline::Pipeline(const Router& router, const auth::ApiKeys& keys,
                   observability::Registry& registry, observability::Logger& logger,
                   PipelineOptions options)
    : router_(router),
      keys_(keys),
      logger_(logger),
      options_(options),
      requests_(registry.AddCounter("orchestra_http_requests_total",
                                    "HTTP requests answered, by route pattern, method and status.",
                                    {"route", "method", "code"})),
      duration_(registry.AddHistogram("orchestra_http_request_duration_seconds",
                                      "Time from a complete request head to the handler's end, by "
                                      "route pattern.",
                                      {"route"}, observability::LatencyBuckets())),
      rejected_(registry.AddCounter("orchestra_http_rejected_total",
                                    "Requests refused before their handler, by reason.",
                                    {"reason"})),
      rejected_overload_(rejected_.With({"overload"})),
      rejected_unauthenticated_(rejected_.With({"unauthenticated"})),
      rejected_forbidden_(rejected_.With({"forbidden"})) {
  registry.AddCallback("orchestra_http_inflight_requests",
                       "Requests admitted and not yet answered (load shedding counts these).",
                       observability::MetricType::kGauge,
                       [this] { return static_cast<double>(inflight()); });
  for (const auto& r : router_.routes()) {
    route_metrics_.push_back(std::make_unique<RouteMetrics>(
        r->pattern, std::string(http::to_string(r->method)), duration_.With({r->pattern})));
  }
  unmatched_metrics_ =
      std::make_unique<RouteMetrics>("unmatched", "GET", duration_.With({"unmatched"}));
}

Pipeline::~Pipeline() = default;

asio::awaitable<void> Pipeline::Handle(net::Exchange& exchange) {
  const net::Request& req = exchange.request();
  net::Response& res = exchange.response();

  // Request identity: kept from the client when usable, else generated; echoed back.
  std::array<char, 128> id_storage;
  std::string_view request_id = req.Header("x-request-id");
  if (!UsableRequestId(request_id)) {
    FillRandomHex(id_storage.data(), 16);
    request_id = std::string_view(id_storage.data(), 32);
  }
  RouteMatch match = router_.Match(req.method, req.path);
  // A probe that is not logged calls nothing and logs nothing: it needs no trace context.
  const bool untraced = match.route != nullptr && match.route->probe && !options_.log_probes;
  const observability::TraceContext trace =
      untraced ? observability::TraceContext{}
               : observability::ContinueTrace(req.Header("traceparent"),
                                              req.Header("x-cloud-trace-context"));
  if (match.kind != RouteMatch::Kind::kFound) {
    if (match.kind == RouteMatch::Kind::kMethodNotAllowed) {
      RenderError(Error(ErrorCode::kMethodNotAllowed,
                        std::string(req.method_name) + " is not allowed on " +
                            std::string(req.path) + "; allowed: " + match.allow),
                  res);
      res.AddHeader("Allow", std::move(match.allow));
    } else {
      RenderError(Error(ErrorCode::kNotFound, "no route for " + std::string(req.path)), res);
    }
    res.AddHeader("X-Request-Id", request_id);
    Record(nullptr, exchange, request_id, trace, true);
    co_return;
  }
  const Route& route = *match.route;

  // Load shedding before any work; probes are never shed so that an overloaded instance
  // still reports itself alive.
  struct Admission {
    std::atomic<int>* counter = nullptr;
    ~Admission() {
      if (counter != nullptr) counter->fetch_sub(1, std::memory_order_relaxed);
    }
  } admission;
  const auth::Principal* principal = &keys_.anonymous();
  if (route.access != Access::kPublic) {
    if (inflight_.fetch_add(1, std::memory_order_relaxed) >= options_.max_inflight) {
      inflight_.fetch_sub(1, std::memory_order_relaxed);
      rejected_overload_.Inc();
      Error e(ErrorCode::kOverloaded, "server is over capacity; retry shortly");
      e.retry_after_s = options_.retry_after_s;
      RenderError(e, res, options_.retry_after_s);
      res.AddHeader("X-Request-Id", request_id);
      Record(&route, exchange, request_id, trace, true);
      co_return;
    }
    admission.counter = &inflight_;

    if (keys_.enabled()) {
      auto who = keys_.Authenticate(req.Header(http::field::authorization));
      if (!who) {
        rejected_unauthenticated_.Inc();
        RenderError(who.error(), res);
        res.AddHeader("WWW-Authenticate", "Bearer");
      } else if ((route.access == Access::kAdmin && !(*who)->admin) ||
                 (route.access == Access::kUser && !(*who)->user && !(*who)->admin)) {
        rejected_forbidden_.Inc();
        RenderError(Error(ErrorCode::kPermissionDenied,
                          std::string("this API key lacks the '") +
                              (route.access == Access::kAdmin ? "admin" : "user") +
                              "' scope required by " + route.pattern),
                    res);
      } else {
        principal = *who;
      }
      if (principal == &keys_.anonymous()) {
        res.AddHeader("X-Request-Id", request_id);
        Record(&route, exchange, request_id, trace, true);
        co_return;
      }
    }
  }

  RequestContext ctx(exchange, route, std::move(match.params), request_id, trace, *principal);
  co_await route.handler(ctx);
  res.AddHeader("X-Request-Id", request_id);
  Record(&route, exchange, request_id, trace, !route.probe || options_.log_probes);
}

void Pipeline::Record(const Route* route, net::Exchange& exchange, std::string_view request_id,
                      const observability::TraceContext& trace, bool log_line) {
  const net::Request& req = exchange.request();
  const net::Response& res = exchange.response();
  const double seconds = std::chrono::duration<double>(net::Clock::now() - req.start).count();
  RouteMetrics& m = route != nullptr ? *route_metrics_[route->index] : *unmatched_metrics_;
  m.For(requests_, req.method_name, res.status).Inc();
  m.duration.Observe(seconds);
  if (!log_line || !options_.access_log) return;
  observability::AccessRecord record;
  record.method = req.method_name;
  record.url = req.target;
  record.status = static_cast<int>(res.status);
  record.latency_seconds = seconds;
  record.user_agent = req.Header(http::field::user_agent);
  record.remote_ip = req.remote_ip;
  record.request_size = req.wire_size;
  // Streams report what they wrote; plain responses are written after this line.
  record.response_size = exchange.streaming() ? exchange.bytes_written() : res.body.size();
  record.route = route != nullptr ? std::string_view(route->pattern) : "unmatched";
  logger_.Access(record, {request_id, trace.TraceId(), trace.SpanId(), trace.sampled});
}

}  // namespace orchestra::api
