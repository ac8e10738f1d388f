#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "config/config.hpp"
#include "orchestration/circuit_breaker.hpp"
#include "orchestration/clock.hpp"
#include "orchestration/usage.hpp"
#include "providers/provider.hpp"

// A routing target: one upstream model at one provider ("openai/gpt-4o-mini"), with what the
// balancer and the breaker know about its health.
//
// A Target is the upstream, not a route's view of it: every route that lists the same provider
// and upstream model (and the `provider/model` route for it) shares one Target, hence one
// circuit breaker, one latency estimate and one in-flight count, as Envoy shares outlier
// detection per host among routes. Weights are per route (RouteTarget).
//
// Thread-safety: the stats are atomics updated from every event-loop thread. Lifetime: owned by
// the RouteTable for the life of the process; the provider must outlive it.
namespace orchestra::orchestration {

class Target {
 public:
  // Latency estimates forget at this half-life while no new sample arrives, so that a target
  // avoided for being slow is tried again (and re-measured) a while later.
  static constexpr Duration kLatencyHalfLife = std::chrono::seconds(10);
  // Weight of a new sample in the latency EWMA.
  static constexpr double kLatencyAlpha = 0.3;

  // `breaker` configures this target's circuit breaker; `clock` must outlive the target.
  Target(providers::Provider& provider, std::string upstream_model,
         const config::CircuitBreakerConfig& breaker, const Clock& clock,
         TargetMetrics metrics = {});
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  providers::Provider& provider() const { return provider_; }
  const std::string& provider_name() const { return provider_.name(); }
  const std::string& upstream_model() const { return upstream_model_; }
  // upstream_model() as a JSON string, quotes included (CallOptions::upstream_model_json).
  const std::string& upstream_model_json() const { return upstream_model_json_; }
  // "provider/model": the `target` label of orchestra_circuit_open and of logs.
  const std::string& label() const { return label_; }
  CircuitBreaker& breaker() { return breaker_; }
  const CircuitBreaker& breaker() const { return breaker_; }
  const TargetMetrics& metrics() const { return metrics_; }

  // Counts a request as in flight for as long as it lives. Move-only.
  class InFlight {
   public:
    InFlight() = default;
    explicit InFlight(Target& t) : target_(&t) {
      target_->inflight_.fetch_add(1, std::memory_order_relaxed);
    }
    InFlight(InFlight&& o) noexcept : target_(std::exchange(o.target_, nullptr)) {}
    InFlight& operator=(InFlight&& o) noexcept {
      if (this != &o) {
        Release();
        target_ = std::exchange(o.target_, nullptr);
      }
      return *this;
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    ~InFlight() { Release(); }
    void Release() {
      if (target_ != nullptr) {
        std::exchange(target_, nullptr)->inflight_.fetch_sub(1, std::memory_order_relaxed);
      }
    }

   private:
    Target* target_ = nullptr;
  };
  InFlight StartRequest() { return InFlight(*this); }
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }

  // Feeds the latency estimate: the time to the first byte of the answer (time to first token
  // for streams, the whole attempt otherwise) of successful attempts, and the elapsed time of
  // attempts that timed out. Fast failures are the breaker's business and are not fed: they
  // would make a broken target look fast.
  void RecordLatency(Duration latency);
  // The estimate in microseconds at `now`, decayed for the time since the last sample; nullopt
  // before the first sample.
  std::optional<double> LatencyEstimateUs(SteadyTime now) const;

 private:
  providers::Provider& provider_;
  std::string upstream_model_;
  std::string upstream_model_json_;
  std::string label_;
  const Clock& clock_;
  TargetMetrics metrics_;
  CircuitBreaker breaker_;
  // Written on every request from every thread: kept off the breaker's read-mostly line.
  alignas(64) std::atomic<int> inflight_{0};
  std::atomic<double> latency_us_{-1};  // < 0: not measured yet
  std::atomic<std::int64_t> latency_at_ns_{0};
};

// The most targets one route may have (the balancer's TargetSet is a 64-bit mask).
inline constexpr std::size_t kMaxRouteTargets = 64;

// A target as one route uses it.
struct RouteTarget {
  Target* target = nullptr;
  double weight = 1;  // share of traffic among the route's targets; 0 = standby (balancer.hpp)
};

}  // namespace orchestra::orchestration
