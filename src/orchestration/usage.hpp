#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.hpp"
#include "observability/metrics.hpp"
#include "providers/provider.hpp"

// Usage and cost accounting, and the orchestration metric families (issue 3 §7).
//
// The families are registered once (Metrics, built in main); each Target and ModelRoute keeps
// pointers to its own labelled children (TargetMetrics, ModelMetrics), made when the route table
// is built, so the request path never calls Family::With. Updates are the registry's relaxed
// per-thread-shard atomics.
namespace orchestra::orchestration {

// How one upstream attempt ended: the `outcome` label of orchestra_upstream_requests_total.
enum class Outcome : std::uint8_t {
  kSuccess,
  kError,      // the upstream failed or answered with an error status
  kTimeout,    // FailureKind::kTimeout
  kRejected,   // not sent: the target's circuit breaker refused it
  kCancelled,  // the client went away
};
inline constexpr std::size_t kOutcomeCount = 5;
std::string_view ToString(Outcome o);
// kTimeout → kTimeout, kCancelled → kCancelled, anything else → kError.
Outcome OutcomeOf(const providers::ProviderError& error);

// USD for `usage` at `price` (USD per million input / output tokens). Zero when the provider
// did not report usage.
double CostUsd(const wire::Usage& usage, const config::PriceConfig& price);

// One target's (provider, upstream model) children. Default-constructed: records nothing
// (tests that do not look at metrics).
struct TargetMetrics {
  std::array<observability::Counter*, kOutcomeCount> requests{};  // by Outcome
  observability::Histogram* duration = nullptr;                   // seconds, per attempt
  observability::Gauge* circuit_open = nullptr;                   // 1 open/half-open, 0 closed

  void Count(Outcome o) const {
    if (auto* c = requests[static_cast<std::size_t>(o)]) c->Inc();
  }
  void ObserveDuration(double seconds) const {
    if (duration != nullptr) duration->Observe(seconds);
  }
};

class Metrics;

// One public model's (route's) children.
struct ModelMetrics {
  observability::Histogram* time_to_first_token = nullptr;  // seconds
  void ObserveTimeToFirstToken(double seconds) const {
    if (time_to_first_token != nullptr) time_to_first_token->Observe(seconds);
  }
};

// The orchestration metric families. Create exactly one per Registry (a second would register
// the same names twice); it must outlive everything holding its children.
//   orchestra_upstream_requests_total{provider,model,outcome}   counter
//   orchestra_upstream_duration_seconds{provider,model}         histogram
//   orchestra_time_to_first_token_seconds{model}                histogram
//   orchestra_retries_total{cause}, orchestra_fallbacks_total{cause}   counters (cause:
//       status_429|status_5xx|status_4xx|connect|timeout|protocol|circuit_open)
//   orchestra_circuit_open{target}                              gauge (target: provider/model)
//   orchestra_cache_requests_total{result}                      counter (result: hit|miss)
//   orchestra_cache_tier_requests_total{tier,result}            counter (tier: memory|redis;
//       result: hit|miss|error — error: the shared tier did not answer in time or failed)
//   orchestra_cache_shared_writes_total{result}                 counter (ok|error|dropped)
// Tokens and cost are counted at settlement (limits/usage_recorder.hpp), where the API key is
// known. ForTarget and ForModel take the families' locks: start-up, or when a synthetic route is
// made.
class Metrics {
 public:
  explicit Metrics(observability::Registry& registry);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  TargetMetrics ForTarget(std::string_view provider, std::string_view model,
                          std::string_view label);
  ModelMetrics ForModel(std::string_view model);

  // Why an attempt was retried or a request moved on to its next fallback: the failure of the
  // attempt before (a bounded set of label values).
  enum class Cause : std::uint8_t {
    kStatus429,
    kStatus5xx,
    kStatus4xx,
    kConnect,
    kTimeout,
    kProtocol,
    kCircuitOpen,
  };
  static constexpr std::size_t kCauseCount = 7;
  static Cause CauseOf(const providers::ProviderError& error);
  observability::Counter& retries(Cause cause) const {
    return *retries_[static_cast<std::size_t>(cause)];
  }
  observability::Counter& fallbacks(Cause cause) const {
    return *fallbacks_[static_cast<std::size_t>(cause)];
  }
  observability::Counter& cache_hits() const { return cache_hits_; }
  observability::Counter& cache_misses() const { return cache_misses_; }
  enum class CacheResult : std::uint8_t { kHit, kMiss, kError };
  // kHit or kMiss (the in-process tier has no errors).
  observability::Counter& memory_cache(CacheResult r) const {
    return *memory_cache_[static_cast<std::size_t>(r)];
  }
  observability::Counter& shared_cache(CacheResult r) const {
    return *shared_cache_[static_cast<std::size_t>(r)];
  }
  enum class WriteResult : std::uint8_t { kOk, kError, kDropped };
  observability::Counter& shared_cache_writes(WriteResult r) const {
    return *shared_writes_[static_cast<std::size_t>(r)];
  }

 private:
  observability::Family<observability::Counter>& upstream_requests_;
  observability::Family<observability::Histogram>& upstream_duration_;
  observability::Family<observability::Histogram>& time_to_first_token_;
  observability::Family<observability::Gauge>& circuit_open_;
  std::array<observability::Counter*, kCauseCount> retries_{};
  std::array<observability::Counter*, kCauseCount> fallbacks_{};
  observability::Family<observability::Counter>& cache_requests_;
  observability::Counter& cache_hits_;
  observability::Counter& cache_misses_;
  std::array<observability::Counter*, 3> memory_cache_{};
  std::array<observability::Counter*, 3> shared_cache_{};
  std::array<observability::Counter*, 3> shared_writes_{};
};

}  // namespace orchestra::orchestration
