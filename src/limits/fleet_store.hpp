#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"
#include "limits/policy.hpp"

// Where the fleet-wide limits (limits/fleet_limiter.hpp) keep their windows, in-flight leases and
// budget counters: a server every instance shares, reached through one connection per worker
// event loop. The FleetLimiter decides what to ask and what the answers mean (and so the
// messages, headers and fallbacks, whatever the store); a store makes each ask one round trip,
// atomic on its server:
//   limits/redis_fleet_store.hpp     Lua scripts in Redis (EVALSHA);
//   limits/postgres_fleet_store.hpp  plpgsql functions in PostgreSQL (pipelined libpq).
// Both keep the windows of the in-process RateLimiter (241 slots of 250 ms per bucket), so a
// decision does not depend on the store.
namespace orchestra::limits {

// One admission: check every bucket of the request at once and reserve them all, or none.
struct FleetAdmission {
  std::string_view principal;
  std::string_view model;
  std::optional<std::int64_t> now_ms;  // an injected clock; nullopt: the server's clock
  std::int64_t estimate = 0;           // tokens
  std::string_view member;             // names this admission's in-flight leases
  std::int64_t lease_ms = 0;           // how long a lease lasts
  RateLimits key;                      // the key's limits (zero when none apply)
  RateLimits model_limits;             // the key x model's
  bool key_bucket = false;             // the key's bucket applies
  bool model_bucket = false;           // the key x model's bucket applies
  std::optional<double> budget_usd;    // the key's budget, when it applies
  double budget_seed = 0;              // a counter the store does not hold starts here
  std::string_view budget_period;      // names the period's counter ("month:2026-12-01")
  std::int64_t budget_expires_ms = 0;  // unix ms after which the counter may go
};

struct FleetAdmissionReply {
  enum Verdict : std::uint8_t { kAdmitted = 0, kRateLimited = 1, kOverBudget = 2 };
  int verdict = kAdmitted;
  int which = 0;  // of a rate limit: 1 the key's, 2 the key x model's
  int what = 0;   // 1 parallel, 2 rpm, 3 tpm, 4 tpm never (the estimate alone exceeds)
  std::int64_t wait_ms = 0;
  std::int64_t slot = 0;  // the admission's slot (its time / 250 ms)
  double spent = 0;       // the period's spend, when a budget applied
  // Per bucket (key, then key x model): requests in the window, ms until another request fits,
  // tokens in the window, ms until more tokens fit.
  std::array<std::int64_t, 8> buckets{};
};

// What a settled (or given back) admission changes.
struct FleetSettlement {
  enum Flag : std::uint8_t {
    kKeyCharged = 1,
    kModelCharged = 2,
    kKeyLeased = 4,
    kModelLeased = 8,
    kSpends = 16,
  };
  std::string principal;
  std::string model;
  std::optional<std::int64_t> now_ms;
  std::int64_t admitted_slot = 0;
  std::int64_t tokens_delta = 0;  // used - estimated
  bool refused = false;           // the request was not served: its request is given back too
  std::string member;
  int flags = 0;
  double cost_usd = 0;
  std::string budget_period;  // the counter spend goes to (only when one exists)
};

// One worker's connection. Used only on its event loop's thread.
class FleetStore {
 public:
  virtual ~FleetStore() = default;

  virtual void Connect() = 0;  // starts connecting, so that the first call does not wait for it
  virtual void Close() = 0;    // pending calls fail
  virtual bool closed() const = 0;

  using Late = std::function<void(const FleetAdmissionReply&)>;
  // One round trip, at most `timeout`: kUnavailable when the store cannot be asked,
  // kDeadlineExceeded on the timeout; then `late` gets the answer should it come (so that a
  // reservation made too late is given back).
  virtual boost::asio::awaitable<Result<FleetAdmissionReply>> Admit(
      const FleetAdmission& admission, std::chrono::microseconds timeout, Late late) = 0;

  // Applies `batch` in one round trip. The value: how many the server refused (errors of ours,
  // each counted). kDeadlineExceeded: maybe applied (not to be sent again); another error: not
  // applied (may be sent again).
  virtual boost::asio::awaitable<Result<std::size_t>> Settle(std::span<const FleetSettlement> batch,
                                                             std::chrono::milliseconds timeout) = 0;
};

// How to open a worker's store.
struct FleetStoreFactory {
  std::string name;  // "Redis", "PostgreSQL": in log lines and messages
  // Opens one on the worker's executor (not connected yet).
  std::function<std::unique_ptr<FleetStore>(boost::asio::any_io_executor)> open;
};

}  // namespace orchestra::limits
