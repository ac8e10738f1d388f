#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "api/context.hpp"
#include "api/router.hpp"
#include "auth/api_keys.hpp"
#include "limits/admission.hpp"
#include "net/exchange.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include "observability/trace.hpp"

// What every request goes through around its handler (DESIGN.md §1), in this order:
//
//   1. identify     request id (the client's X-Request-Id when plain, else a fresh one) and W3C
//                   trace context
//   2. route        method + path → route: 501 for a method HTTP does not define, 404, 405 +
//                   Allow, 400 for a malformed path parameter
//   3. authenticate API key → principal and scope: 401, 403 (public routes skip 3 and 4)
//   4. admit        the admission stages (limits/admission.hpp) in order: load shedding, and
//                   whatever else main configures; a refusal is answered in the one error shape.
//                   A model route admits from its handler once the body is decoded
//                   (RequestContext::Admit), so that admission knows the model and the token
//                   estimate; every other route is admitted here
//   5. handle       the route's handler
//   6. settle       every stage that admitted, exactly once, with the outcome: status, who
//                   served, tokens, cost, latency — at the end of a stream too, on an upstream
//                   cut, or when the client went away (a guard settles if the handler is torn
//                   down)
//   7. record       X-Request-Id, metrics by route pattern and the access log line
namespace orchestra::api {

struct PipelineOptions {
  bool access_log = true;
  bool log_probes = false;
};

class Pipeline {
 public:
  // `router`, `keys`, the stages, `registry` and `logger` must outlive the pipeline. At most
  // AdmissionState::kMaxStages stages.
  Pipeline(const Router& router, const auth::ApiKeys& keys, std::vector<limits::Stage*> stages,
           observability::Registry& registry, observability::Logger& logger,
           PipelineOptions options);
  ~Pipeline();

  // The net::Handler.
  boost::asio::awaitable<void> Handle(net::Exchange& exchange);

  // Step 4 for `ctx` (RequestContext::Admit): runs the stages from the first until one refuses
  // (false; the response is set) or one needs a round trip (AdmissionState::pending; the
  // caller co_awaits Resume).
  bool Admit(RequestContext& ctx, const RequestFacts& facts);
  boost::asio::awaitable<bool> Resume(RequestContext& ctx);
  // Step 6: the admitted stages settle with what was served (RequestContext::Settle, or after
  // the handler).
  void Settle(RequestContext& ctx);

 private:
  struct RouteMetrics;
  struct SettleGuard;
  // What steps 1-3 leave for the rest: it lives in Handle's frame (the request id and the trace
  // are referenced until the response is recorded).
  struct FrontState {
    std::array<char, 32> id_storage;
    std::string_view request_id;
    observability::TraceContext trace;
    std::vector<PathParam> params;
    const auth::Principal* principal = nullptr;
  };
  const Route* Front(net::Exchange& exchange, FrontState& front);
  // Runs the synchronous stages from `a.admitted` on; see Admit.
  bool AdmitFrom(RequestContext& ctx);
  void Refuse(RequestContext& ctx, limits::Refusal& refusal);
  // OpenAI's x-ratelimit-* headers from what the rate-limit stage reported.
  static void WriteRateHeaders(const limits::RateHeaders& h, net::Response& response);
  // `ctx` is null for a request answered before its context existed.
  void Record(const Route* route, net::Exchange& exchange, std::string_view request_id,
              const observability::TraceContext& trace, bool log_line,
              const RequestContext* ctx = nullptr);

  const Router& router_;
  const auth::ApiKeys& keys_;
  std::vector<limits::Stage*> stages_;
  observability::Logger& logger_;
  PipelineOptions options_;
  observability::Family<observability::Counter>& requests_;
  observability::Family<observability::Histogram>& duration_;
  observability::Family<observability::Counter>& rejected_;
  observability::Counter& rejected_unauthenticated_;
  observability::Counter& rejected_forbidden_;
  std::vector<std::unique_ptr<RouteMetrics>> route_metrics_;  // by Route::index
  std::unique_ptr<RouteMetrics> unmatched_metrics_;
};

}  // namespace orchestra::api
