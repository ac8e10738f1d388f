#include "api/pipeline.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <optional>

#include <boost/assert.hpp>

#include "api/errors.hpp"
#include "api/request_spans.hpp"
#include "common/random.hpp"
#include "limits/rate_limiter.hpp"
#include "observability/trace.hpp"
#include "observability/tracer.hpp"

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

// The method as a metric label: Beast's name for a method it knows (a fixed set), "OTHER" for
// anything else — a client's made-up method names must not become label values.
std::string_view MethodLabel(http::verb method) {
  if (method == http::verb::unknown) return "OTHER";
  const auto name = http::to_string(method);
  return {name.data(), name.size()};
}

}  // namespace

// Counters for one route, cached by method slot and status so the hot path never takes the
// family's mutex after the first request with a given status.
struct Pipeline::RouteMetrics {
  RouteMetrics(std::string label, http::verb method, observability::Histogram& hist)
      : route(std::move(label)), primary_method(method), duration(hist) {}

  Counter& For(observability::Family<Counter>& family, http::verb method, unsigned status) {
    if (status < 100 || status > 599) status = 599;
    const std::size_t slot = method == primary_method ? 0 : (method == http::verb::head ? 1 : 2);
    if (slot == 2) return family.With({route, MethodLabel(method), std::to_string(status)});
    auto& cell = counters[slot][status - 100];
    Counter* c = cell.load(std::memory_order_acquire);
    if (c == nullptr) {
      c = &family.With({route, MethodLabel(slot == 0 ? primary_method : http::verb::head),
                        std::to_string(status)});
      cell.store(c, std::memory_order_release);
    }
    return *c;
  }

  std::string route;
  http::verb primary_method;
  observability::Histogram& duration;
  std::array<std::array<std::atomic<Counter*>, 500>, 2> counters{};
};

// Settles an admitted request however the handler ends: normally (Pipeline::Settle is called
// before the response is recorded), or when the handler's frame is torn down by an exception
// or by the server stopping, so that no stage keeps a reservation forever.
struct Pipeline::SettleGuard {
  Pipeline& pipeline;
  RequestContext& ctx;
  ~SettleGuard() {
    if (ctx.admission().admitted > 0 && !ctx.admission().settled) pipeline.Settle(ctx);
  }
};

Pipeline::Pipeline(const Router& router, const auth::ApiKeys& keys,
                   std::vector<limits::Stage*> stages, observability::Registry& registry,
                   observability::Logger& logger, PipelineOptions options)
    : router_(router),
      keys_(keys),
      stages_(std::move(stages)),
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
      rejected_unauthenticated_(rejected_.With({"unauthenticated"})),
      rejected_forbidden_(rejected_.With({"forbidden"})) {
  if (stages_.size() > AdmissionState::kMaxStages) {
    throw std::invalid_argument("too many admission stages");
  }
  for (const auto& r : router_.routes()) {
    route_metrics_.push_back(
        std::make_unique<RouteMetrics>(r->pattern, r->method, duration_.With({r->pattern})));
  }
  unmatched_metrics_ =
      std::make_unique<RouteMetrics>("unmatched", http::verb::get, duration_.With({"unmatched"}));
}

Pipeline::~Pipeline() = default;

// Steps 1-3, out of Handle's coroutine frame: its temporaries (the route match, the errors of
// the refusals) would otherwise each take room in the frame, and a frame over Asio's recycling
// limit costs an aligned malloc and free per request. Returns the route, or null when the
// request was answered here.
const Route* Pipeline::Front(net::Exchange& exchange, FrontState& front) {
  const net::Request& req = exchange.request();
  net::Response& res = exchange.response();

  // 1. Identify: the client's request id when usable, else a fresh one; echoed back.
  front.request_id = req.Header("x-request-id");
  if (!UsableRequestId(front.request_id)) {
    FillRandomHex(front.id_storage.data(), 16);
    front.request_id = std::string_view(front.id_storage.data(), front.id_storage.size());
  }

  // 2. Route.
  RouteMatch match;
  if (req.method != http::verb::unknown) match = router_.Match(req.method, req.path);
  // A probe that is not logged calls nothing and logs nothing: it needs no trace context.
  const bool untraced = match.route != nullptr && match.route->probe && !options_.log_probes;
  if (!untraced) {
    front.trace = observability::ContinueTrace(req.Header("traceparent"),
                                               req.Header("x-cloud-trace-context"));
    if (observability::Tracer* tracer = observability::InstalledTracer()) {
      tracer->sampler().Decide(front.trace);
    }
  }
  if (match.kind != RouteMatch::Kind::kFound) {
    if (req.method == http::verb::unknown) {
      RenderError(Error(ErrorCode::kNotImplemented, "this server does not implement the method"),
                  res);
    } else if (match.kind == RouteMatch::Kind::kMethodNotAllowed) {
      RenderError(Error(ErrorCode::kMethodNotAllowed,
                        std::string(http::to_string(req.method)) + " is not allowed on " +
                            std::string(req.path) + "; allowed: " + match.allow),
                  res);
      res.AddHeader("Allow", std::move(match.allow));
    } else if (match.kind == RouteMatch::Kind::kBadParameter) {
      RenderError(Error(ErrorCode::kInvalidRequest,
                        "malformed percent-encoding in the path parameter '" +
                            std::string(match.bad_param) + "'",
                        std::string(match.bad_param)),
                  res);
    } else {
      RenderError(Error(ErrorCode::kNotFound, "no route for " + std::string(req.path)), res);
    }
    res.AddHeader("X-Request-Id", front.request_id);
    Record(match.kind == RouteMatch::Kind::kBadParameter ? match.route : nullptr, exchange,
           front.request_id, front.trace, true);
    return nullptr;
  }
  const Route& route = *match.route;
  front.params = std::move(match.params);

  // 3. Authenticate (non-public routes, when keys are configured).
  front.principal = &keys_.anonymous();
  if (route.access == Access::kPublic || !keys_.enabled()) return &route;
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
    front.principal = *who;
    return &route;
  }
  res.AddHeader("X-Request-Id", front.request_id);
  Record(&route, exchange, front.request_id, front.trace, true);
  return nullptr;
}

asio::awaitable<void> Pipeline::Handle(net::Exchange& exchange) {
  FrontState front;
  const Route* route = Front(exchange, front);
  if (route == nullptr) co_return;

  RequestContext ctx(this, exchange, *route, std::move(front.params), front.request_id, front.trace,
                     *front.principal);
  SettleGuard guard{*this, ctx};
  // 4. Admit (model routes admit from their handler, once they know the model). 5. Handle.
  bool admitted = route->access == Access::kPublic || route->admits_in_handler;
  if (!admitted) {
    admitted = Admit(ctx, RequestFacts{});
    if (ctx.admission_pending()) admitted = co_await Resume(ctx);
  }
  if (admitted && observability::TracerFor(ctx.trace) != nullptr) {
    co_await HandleTraced(*route, ctx);
  } else if (admitted) {
    co_await route->handler(ctx);
  }
  BOOST_ASSERT_MSG(route->access == Access::kPublic || ctx.admission().decided ||
                       exchange.response().status >= 400,
                   "a model route answered without calling RequestContext::Admit");
  // 6. Settle. 7. Record.
  if (ctx.admission().admitted > 0 && !ctx.admission().settled) Settle(ctx);
  exchange.response().AddHeader("X-Request-Id", front.request_id);
  Record(route, exchange, front.request_id, front.trace, !route->probe || options_.log_probes,
         &ctx);
}

bool Pipeline::Admit(RequestContext& ctx, const RequestFacts& facts) {
  AdmissionState& a = ctx.admission();
  BOOST_ASSERT_MSG(!a.decided, "a request is admitted once");
  a.decided = true;
  a.model.assign(facts.model);
  a.request.principal = ctx.principal.name;
  a.request.route = ctx.route.pattern;
  a.request.model = a.model;
  a.request.estimated_tokens = facts.estimated_tokens;
  a.request.stream = facts.stream;
  a.request.worker = ctx.exchange.worker_index();
  a.request.principal_id = &ctx.principal;
  a.request.policy = &ctx.principal.policy;
  a.rate_headers = {};
  a.request.rate_headers = &a.rate_headers;
  observability::Tracer* tracer = observability::TracerFor(ctx.trace);
  if (tracer != nullptr) a.traced_since = net::Clock::now();
  const bool admitted = AdmitFrom(ctx);
  if (tracer != nullptr && !a.pending) RecordAdmissionSpan(*tracer, ctx);
  return admitted;
}

bool Pipeline::AdmitFrom(RequestContext& ctx) {
  AdmissionState& a = ctx.admission();
  for (std::size_t i = a.admitted; i < stages_.size(); ++i) {
    limits::Stage& stage = *stages_[i];
    if (stage.asynchronous()) {
      a.pending = true;
      return true;
    }
    if (std::optional<limits::Refusal> refused = stage.Admit(a.request, a.tickets[i])) {
      Refuse(ctx, *refused);
      return false;
    }
    a.admitted = i + 1;
  }
  WriteRateHeaders(a.rate_headers, ctx.response);
  return true;
}

asio::awaitable<bool> Pipeline::Resume(RequestContext& ctx) {
  AdmissionState& a = ctx.admission();
  while (a.pending) {
    a.pending = false;
    const std::size_t i = a.admitted;
    std::optional<limits::Refusal> refused =
        co_await stages_[i]->AdmitAsync(a.request, a.tickets[i]);
    if (refused) {
      Refuse(ctx, *refused);
      co_return false;
    }
    a.admitted = i + 1;
    if (!AdmitFrom(ctx)) co_return false;
  }
  if (observability::Tracer* tracer = observability::TracerFor(ctx.trace)) {
    RecordAdmissionSpan(*tracer, ctx);
  }
  co_return true;
}

void Pipeline::Refuse(RequestContext& ctx, limits::Refusal& refusal) {
  AdmissionState& a = ctx.admission();
  rejected_.With({refusal.reason}).Inc();
  a.refused_by = refusal.reason;
  RenderError(refusal.error, ctx.response, refusal.error.retry_after_s);
  WriteRateHeaders(a.rate_headers, ctx.response);
  // The stages that admitted give back what they reserved.
  limits::Outcome outcome;
  outcome.status = ctx.response.status;
  outcome.refused = true;
  for (std::size_t k = 0; k < a.admitted; ++k)
    stages_[k]->Settle(a.request, a.tickets[k], outcome);
  if (observability::Tracer* tracer = observability::TracerFor(ctx.trace)) {
    RecordAdmissionSpan(*tracer, ctx);
  }
  a.admitted = 0;
  a.pending = false;
  a.settled = true;
}

void Pipeline::WriteRateHeaders(const limits::RateHeaders& h, net::Response& response) {
  // Formatted on the stack; AddHeader reuses the connection's header strings, so this does not
  // allocate once a keep-alive connection has answered a request with these headers.
  std::array<char, 32> buffer;
  auto number = [&](std::int64_t v) {
    return std::string_view(buffer.data(),
                            std::to_chars(buffer.data(), buffer.data() + buffer.size(), v).ptr);
  };
  auto reset = [&](std::int64_t ms) {
    return std::string_view(buffer.data(), limits::FormatResetDuration(ms, buffer.data()));
  };
  if (h.limit_requests > 0) {
    response.AddHeader("x-ratelimit-limit-requests", number(h.limit_requests));
    response.AddHeader("x-ratelimit-remaining-requests", number(h.remaining_requests));
    response.AddHeader("x-ratelimit-reset-requests", reset(h.reset_requests_ms));
  }
  if (h.limit_tokens > 0) {
    response.AddHeader("x-ratelimit-limit-tokens", number(h.limit_tokens));
    response.AddHeader("x-ratelimit-remaining-tokens", number(h.remaining_tokens));
    response.AddHeader("x-ratelimit-reset-tokens", reset(h.reset_tokens_ms));
  }
}

void Pipeline::Settle(RequestContext& ctx) {
  AdmissionState& a = ctx.admission();
  a.settled = true;
  const orchestration::Served& s = ctx.served;
  limits::Outcome outcome;
  outcome.status = ctx.response.status;
  outcome.client_gone = ctx.exchange.client_gone();
  outcome.model = s.model;
  outcome.provider = s.provider;
  outcome.upstream_model = s.upstream_model;
  outcome.target_id = s.target;
  outcome.prompt_tokens = s.usage.prompt_tokens;
  outcome.completion_tokens = s.usage.completion_tokens;
  outcome.usage_known = s.usage.known;
  outcome.cost_usd = s.cost_usd;
  outcome.cache_hit = s.cache_hit;
  outcome.latency = net::Clock::now() - ctx.request.start;
  outcome.first_token = s.first_token;
  observability::Tracer* tracer = observability::TracerFor(ctx.trace);
  const net::Clock::time_point settle_start =
      tracer != nullptr ? net::Clock::now() : net::Clock::time_point{};
  for (std::size_t k = 0; k < a.admitted; ++k)
    stages_[k]->Settle(a.request, a.tickets[k], outcome);
  if (tracer != nullptr) RecordSettlementSpan(*tracer, ctx, settle_start, outcome);
}

void Pipeline::Record(const Route* route, net::Exchange& exchange, std::string_view request_id,
                      const observability::TraceContext& trace, bool log_line,
                      const RequestContext* ctx) {
  const net::Request& req = exchange.request();
  const net::Response& res = exchange.response();
  const double seconds = std::chrono::duration<double>(net::Clock::now() - req.start).count();
  RouteMetrics& m = route != nullptr ? *route_metrics_[route->index] : *unmatched_metrics_;
  m.For(requests_, req.method, res.status).Inc();
  m.duration.Observe(seconds);
  if (observability::Tracer* tracer = observability::TracerFor(trace)) {
    RecordServerSpan(*tracer, route, exchange, request_id, trace, ctx);
  }
  if (!log_line || !options_.access_log) return;
  observability::AccessRecord record;
  record.method = MethodLabel(req.method);
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

bool RequestContext::Admit(const RequestFacts& facts) {
  if (pipeline_ == nullptr) {
    admission_.decided = true;
    return true;
  }
  return pipeline_->Admit(*this, facts);
}

asio::awaitable<bool> RequestContext::CompleteAdmission() {
  return pipeline_->Resume(*this);
}

void RequestContext::Settle() {
  if (pipeline_ != nullptr && admission_.admitted > 0 && !admission_.settled)
    pipeline_->Settle(*this);
}

}  // namespace orchestra::api
