#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "limits/admission.hpp"
#include "limits/fleet_store.hpp"
#include "limits/rate_limiter.hpp"

namespace orchestra::observability {
class Counter;
class Registry;
}  // namespace orchestra::observability

// Per-key rate limits and budgets shared by every instance through one store (issue 13,
// "fleet-wide when Redis is configured"; "with PostgreSQL, a documented equivalent"): Redis
// (limits/redis_fleet_store.hpp) or PostgreSQL (limits/postgres_fleet_store.hpp).
//
// Admission is one round trip: the store checks and reserves all of the request's buckets at
// once (the key's and the key x model's requests, tokens and in-flight requests) on its server's
// clock, and checks the key's budget. The windows are the in-process RateLimiter's, kept in the
// store: 241 slots of 250 ms per bucket, so decisions, messages and x-ratelimit-* headers do not
// change with the backend. In-flight requests are leases with an expiry (`inflight_lease`), so an
// instance that dies holding some does not hold them forever. A budget is a counter per key x
// budget period in the store, created at its first use from what the SpendLedger knows of the
// period; the persisted per key x model x day counters stay the ledger's.
//
// Settlement (token corrections, in-flight release, spend) never waits on the store: Settle
// queues the call for the worker that admitted the request, and a flush on that worker's event
// loop writes what is queued, one round trip per batch (at most `settle_batch`), as soon as the
// loop is free, so under load corrections are batched and at rest they land within a round trip.
// Spend is written at once, ahead of any batch, so a budget stops within one request on a fleet.
// A batch that fails on a broken connection is re-queued (at least once; at most
// `max_queued_settles` wait, beyond which they are dropped and counted); a batch with no answer
// in time is counted and not re-sent, as the store may have applied it.
//
// When the store cannot answer within `timeout` (down, paused, slow): `on_error` allow admits the
// request under this instance's in-process limits (a RateLimiter of its own: per-instance
// limits, as on SQLite), deny refuses 503; either way counted in
// orchestra_limits_backend_errors_total{op} and logged at most once a minute. A reservation whose
// answer came too late is given back.
//
// Threading: one FleetStore per worker event loop (StartWorker on each worker's thread);
// AdmitAsync runs on the request's worker; Settle may run anywhere (a mutex guards the queue).
namespace orchestra::limits {

class FleetLimiter final : public Stage {
 public:
  enum class OnError : std::uint8_t { kAllow, kDeny };
  struct Options {
    FleetStoreFactory store;                  // opens each worker's connection
    std::chrono::microseconds timeout{5000};  // the longest admission waits on the store
    OnError on_error = OnError::kAllow;
    std::chrono::milliseconds inflight_lease{600'000};
    std::size_t settle_batch = 256;
    std::size_t max_queued_settles = 100'000;
    std::chrono::milliseconds settle_timeout{2000};
    // The spend of `key` in the current `period` as this instance knows it (the SpendLedger's):
    // the starting value of a budget counter the store does not hold yet. Empty: 0.
    std::function<double(std::string_view key, BudgetPeriod period)> period_spend;
    // Unix milliseconds. Empty: the store's server clock decides windows (the only clock every
    // instance shares) and the wall clock names budget periods. Tests inject one; then the
    // store uses it too.
    std::function<std::int64_t()> clock;
  };

  // `workers`: how many event loops will call StartWorker. `registry` may be null.
  FleetLimiter(int workers, Options options, observability::Registry* registry);
  ~FleetLimiter() override;

  // Worker `index`'s store connection, on its event loop; call on that loop's thread before it
  // serves (Server's WorkerInit).
  void StartWorker(int index, boost::asio::any_io_executor executor);
  // Closes the connections; after the workers stopped and before their io_contexts go.
  void StopWorkers();

  std::string_view name() const override { return "rate_limit"; }
  bool asynchronous() const override { return true; }
  // Only reached without a worker connection (StartWorker not called): the in-process limits.
  std::optional<Refusal> Admit(const Request& request, Ticket& ticket) override;
  boost::asio::awaitable<std::optional<Refusal>> AdmitAsync(const Request& request,
                                                            Ticket& ticket) override;
  void Settle(const Request& request, const Ticket& ticket, const Outcome& outcome) override;

  // Settlements queued or on their way, not yet answered by the store (0: every one landed).
  std::size_t queued_settles() const;

  struct Worker;

 private:
  // The budget period `now_ms` falls in, as the store names its counter, and when it ends.
  static std::string BudgetPeriodName(const Request& request, std::int64_t now_ms,
                                      std::int64_t* expires_ms);
  // `urgent`: it carries spend; on the worker's thread it is written at once, not behind a batch.
  void QueueSettle(int worker, FleetSettlement settlement, bool urgent = false);
  void BackendError(std::string_view op, const Error& error);
  std::int64_t NowMs() const;

  Options options_;
  std::string instance_;  // random, names this process's leases
  std::atomic<std::uint64_t> next_lease_{1};
  RateLimiter local_;  // the fallback under on_error allow
  std::vector<std::unique_ptr<Worker>> workers_;
  observability::Counter* admit_errors_ = nullptr;
  observability::Counter* settle_errors_ = nullptr;
  observability::Counter* settle_dropped_ = nullptr;
  std::atomic<std::int64_t> last_log_ms_{0};
  std::atomic<std::uint64_t> unlogged_{0};
};

}  // namespace orchestra::limits
