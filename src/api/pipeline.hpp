#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "api/router.hpp"
#include "auth/api_keys.hpp"
#include "net/exchange.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include "observability/trace.hpp"

// What every request goes through before and after its handler (DESIGN.md §1 "middleware"):
// request id and trace context, routing (404/405), load shedding (503 + Retry-After),
// authentication and scopes (401/403), then the handler; afterwards the X-Request-Id header,
// metrics by route pattern, and the access log line. Public routes (probes, /warmup) skip
// load shedding and authentication.
namespace orchestra::api {

struct PipelineOptions {
  int max_inflight = 80;
  int retry_after_s = 1;
  bool access_log = true;
  bool log_probes = false;
};

class Pipeline {
 public:
  // `router`, `keys`, `registry` and `logger` must outlive the pipeline.
  Pipeline(const Router& router, const auth::ApiKeys& keys, observability::Registry& registry,
           observability::Logger& logger, PipelineOptions options);
  ~Pipeline();

  // The net::Handler.
  boost::asio::awaitable<void> Handle(net::Exchange& exchange);

  // Requests admitted past load shedding and not yet answered.
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }

 private:
  struct RouteMetrics;
  void Record(const Route* route, net::Exchange& exchange, std::string_view request_id,
              const observability::TraceContext& trace, bool log_line);

  const Router& router_;
  const auth::ApiKeys& keys_;
  observability::Logger& logger_;
  PipelineOptions options_;
  std::atomic<int> inflight_{0};
  observability::Family<observability::Counter>& requests_;
  observability::Family<observability::Histogram>& duration_;
  observability::Family<observability::Counter>& rejected_;
  observability::Counter& rejected_overload_;
  observability::Counter& rejected_unauthenticated_;
  observability::Counter& rejected_forbidden_;
  std::vector<std::unique_ptr<RouteMetrics>> route_metrics_;  // by Route::index
  std::unique_ptr<RouteMetrics> unmatched_metrics_;
};

}  // namespace orchestra::api
