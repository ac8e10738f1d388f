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
#include "limits/rate_limiter.hpp"
#include "storage/redis/redis_pipe.hpp"

namespace orchestra::observability {
class Counter;
class Registry;
}  // namespace orchestra::observability

// Per-key rate limits and budgets shared by every instance through one Redis (issue 13,
// "fleet-wide when Redis is configured").
//
// Admission is one round trip: one Lua script (EVALSHA; EVAL when the server answers NOSCRIPT)
// checks and reserves all of the request's buckets at once (the key's and the key × model's
// requests, tokens and in-flight requests) on the Redis server's clock (TIME), and checks the
// key's budget. The windows are the in-process RateLimiter's, kept in Redis: 241 slots of 250 ms
// per bucket (a hash with the slot counts, the newest slot and the sums), so decisions, messages
// and x-ratelimit-* headers do not change with the backend. In-flight requests are leases in a
// sorted set scored by their expiry (`inflight_lease`), so an instance that dies holding some
// does not hold them forever. A budget is a counter per key × budget period in Redis
// (INCRBYFLOAT), created at its first use from what the SpendLedger knows of the period; the
// persisted per key × model × day counters stay the ledger's.
//
// Settlement (token corrections, in-flight release, spend) never waits on Redis: Settle queues
// the call for the worker that admitted the request, and a flush on that worker's event loop
// writes what is queued, pipelined (at most `settle_batch` per write), as soon as the loop is
// free, so under load corrections are batched and at rest they land within a round trip. A batch
// that fails on a broken connection is re-queued (at least once; at most `max_queued_settles`
// wait, beyond which they are dropped and counted); a batch with no answer in time is counted
// and not re-sent, as Redis may have applied it.
//
// When Redis cannot answer within `timeout` (down, paused, slow): `on_error` allow admits the
// request under this instance's in-process limits (a RateLimiter of its own: per-instance
// limits, as on SQLite), deny refuses 503; either way counted in
// orchestra_limits_backend_errors_total{op} and logged at most once a minute. A reservation whose
// answer came too late is given back.
//
// Threading: one storage::RedisPipe per worker event loop (StartWorker on each worker's thread);
// AdmitAsync runs on the request's worker; Settle may run anywhere (a mutex guards the queue).
namespace orchestra::limits {

class FleetLimiter final : public Stage {
 public:
  enum class OnError : std::uint8_t { kAllow, kDeny };
  struct Options {
    storage::RedisEndpoint endpoint;
    std::chrono::microseconds timeout{5000};  // the longest admission waits on Redis
    OnError on_error = OnError::kAllow;
    std::chrono::milliseconds inflight_lease{600'000};
    std::size_t settle_batch = 256;
    std::size_t max_queued_settles = 100'000;
    std::chrono::milliseconds settle_timeout{2000};
    std::string prefix = "o:lim:";  // of every key it writes
    // The spend of `key` in the current `period` as this instance knows it (the SpendLedger's):
    // the starting value of a budget counter Redis does not hold yet. Empty: 0.
    std::function<double(std::string_view key, BudgetPeriod period)> period_spend;
    // Unix milliseconds. Empty: the Redis server's TIME decides windows (the only clock every
    // instance shares) and the wall clock names budget periods. Tests inject one; then Redis
    // uses it too.
    std::function<std::int64_t()> clock;
  };

  // `workers`: how many event loops will call StartWorker. `registry` may be null.
  FleetLimiter(int workers, Options options, observability::Registry* registry);
  ~FleetLimiter() override;

  // Worker `index`'s Redis connection, on its event loop; call on that loop's thread before it
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

  // Settlements queued or on their way, not yet answered by Redis (0: every one landed).
  std::size_t queued_settles() const;

  struct Worker;

 private:
  struct Keys;
  Keys KeysFor(const Request& request, std::int64_t now_ms) const;
  // `urgent`: it carries spend; on the worker's thread it is written at once, not behind a batch.
  void QueueSettle(int worker, std::string tail, bool urgent = false);
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
