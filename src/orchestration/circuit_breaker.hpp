#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string_view>

#include "config/config.hpp"
#include "orchestration/clock.hpp"
#include "providers/provider.hpp"

// A per-target circuit breaker (config::CircuitBreakerConfig, docs/CONFIG.md).
//
// Closed: every request goes. The circuit opens after `failures` consecutive failures, or when
// at least `min_requests` requests ended in the sliding `window` and the share of failures among
// them reached `failure_rate`. Open: nothing goes for `cooldown`. Then half-open: exactly one
// request at a time (the probe) goes; its success closes the circuit and clears the counters,
// its failure opens it for another cooldown, and a probe that ends without a verdict (the client
// went away) frees the slot for the next request.
//
// Admission is a Permit, not a bool: the permit knows whether it holds the probe slot, so a slow
// request admitted before the circuit opened can never be mistaken for the probe, and a permit
// destroyed without a verdict (a coroutine frame torn down by cancellation) releases the probe
// slot by itself.
//
// Thread-safety: one breaker is shared by every event-loop thread. No locks: the state and the
// open-until time are one atomic word changed by compare-and-swap (exactly one thread wins each
// transition and calls the listener), the consecutive-failure count is an atomic, and the window
// is kBuckets fixed-width time buckets, each one atomic word {epoch tag, requests, failures}.
// Closed-state admission is a single load; recording a result is a few relaxed atomic operations
// and one clock read. Lifetime: permits must not outlive their breaker (breakers live in the
// RouteTable for the life of the process).
namespace orchestra::orchestration {

enum class CircuitState : std::uint8_t {
  kClosed,    // requests go
  kOpen,      // requests are refused until the cooldown ends
  kHalfOpen,  // one probe at a time may go
};
std::string_view ToString(CircuitState s);

// How an attempt's outcome counts for its target's breaker.
enum class Verdict : std::uint8_t {
  kSuccess,  // the upstream is healthy (it answered, even if it refused the request itself)
  kFailure,  // the upstream failed
  kAbandon,  // no verdict: the attempt ended for a reason that says nothing about the upstream
};

// kCancelled → kAbandon. kConnect, kTimeout, kProtocol (and kNone) → kFailure. kStatus: 5xx,
// 408, 429, and 401/403/404 (a misconfigured target: bad key, unknown upstream model) →
// kFailure; any other 4xx is the request's own fault and the upstream answered → kSuccess, so
// that a client sending bad requests cannot open circuits for everyone.
Verdict BreakerVerdict(const providers::ProviderError& error);

class CircuitBreaker {
 public:
  // Called after each transition by the thread that made it, with the new state: kOpen when the
  // circuit opens (from closed, or a failed probe), kClosed when a probe closes it. Half-open is
  // reached by time alone and not reported. Must be cheap and thread-safe.
  using Listener = std::function<void(CircuitState)>;

  // Buckets in the window: failure-rate counts move in steps of window / kBuckets (at least
  // kMinBucket).
  static constexpr int kBuckets = 10;
  static constexpr Duration kMinBucket = std::chrono::milliseconds(1);

  // `clock` must outlive the breaker.
  CircuitBreaker(const config::CircuitBreakerConfig& config, const Clock& clock,
                 Listener listener = {});
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // The right to send one request, and the duty to report how it went. Move-only. Destroying a
  // permit without a verdict is Abandon().
  class Permit {
   public:
    Permit() = default;  // refused
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { Abandon(); }

    // The request may go.
    explicit operator bool() const { return kind_ != Kind::kRefused; }
    // This request is the half-open probe.
    bool probe() const { return kind_ == Kind::kProbe; }
    // A verdict was given (or the permit was refused): later calls do nothing.
    bool settled() const { return breaker_ == nullptr; }

    void Succeeded() { Settle(Verdict::kSuccess); }
    void Failed() { Settle(Verdict::kFailure); }
    void Abandon() { Settle(Verdict::kAbandon); }
    void Settle(Verdict verdict);

   private:
    friend class CircuitBreaker;
    enum class Kind : std::uint8_t { kRefused, kNormal, kProbe };
    Permit(CircuitBreaker* breaker, Kind kind) : breaker_(breaker), kind_(kind) {}

    CircuitBreaker* breaker_ = nullptr;  // null once settled
    Kind kind_ = Kind::kRefused;
  };

  // May a request go now? In half-open this reserves the single probe slot.
  Permit TryAcquire();

  CircuitState state() const;

  // Introspection for tests and diagnostics.
  struct WindowCounts {
    std::uint64_t requests = 0;
    std::uint64_t failures = 0;
  };
  WindowCounts window_counts() const;
  int consecutive_failures() const { return consecutive_.load(std::memory_order_relaxed); }
  const config::CircuitBreakerConfig& config() const { return config_; }

 private:
  // status_: bits 0-1 the phase, bits 2-63 a time in nanoseconds (kOpen: open until then).
  enum Phase : std::uint64_t { kPhaseClosed = 0, kPhaseOpen = 1, kPhaseProbing = 2 };

  void OnSuccess(bool probe);
  void OnFailure(bool probe);
  void OnAbandon(bool probe);

  // Counts one result in the window; returns the window's totals including it.
  WindowCounts Record(std::int64_t now_ns, bool failed);
  WindowCounts Sum(std::int64_t epoch) const;
  void AdvanceHead(std::int64_t epoch);
  void ClearCounters();
  void Open(std::uint64_t expected_status, std::int64_t now_ns);
  void Notify(CircuitState s) const;
  std::int64_t NowNs() const;

  config::CircuitBreakerConfig config_;
  const Clock& clock_;
  Listener listener_;
  std::int64_t bucket_ns_;
  std::int64_t cooldown_ns_;

  // Read on every admission, written on transitions only: its own cache line, apart from the
  // counters below that every result writes.
  alignas(64) std::atomic<std::uint64_t> status_{kPhaseClosed};
  alignas(64) std::atomic<int> consecutive_{0};
  // The newest bucket epoch recorded; when it moves, buckets that fell out of the window are
  // zeroed (all of them after an idle gap longer than the window), so the 24-bit epoch tags in
  // the buckets never alias an old bucket as current.
  std::atomic<std::int64_t> head_epoch_{0};
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
};

}  // namespace orchestra::orchestration
