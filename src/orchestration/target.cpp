#include "orchestration/target.hpp"

#include <algorithm>
#include <cmath>

#include "common/text.hpp"
#include "observability/log.hpp"

namespace orchestra::orchestration {

Target::Target(providers::Provider& provider, std::string upstream_model,
               const config::CircuitBreakerConfig& breaker, const Clock& clock,
               TargetMetrics metrics)
    : provider_(provider),
      upstream_model_(std::move(upstream_model)),
      upstream_model_json_(JsonQuoted(upstream_model_)),
      label_(provider.name() + "/" + upstream_model_),
      clock_(clock),
      metrics_(metrics),
      breaker_(breaker, clock, [this](CircuitState s) {
        bool open = s != CircuitState::kClosed;
        if (metrics_.circuit_open != nullptr) metrics_.circuit_open->Set(open ? 1 : 0);
        observability::Log(
            open ? observability::Severity::kWarning : observability::Severity::kInfo,
            open ? "circuit opened" : "circuit closed", {{"target", label_}});
      }) {
  if (metrics_.circuit_open != nullptr) metrics_.circuit_open->Set(0);
}

void Target::RecordLatency(Duration latency) {
  const std::int64_t now = clock_.Now().time_since_epoch().count();
  const double sample = std::max(0.0, static_cast<double>(latency.count()) / 1e3);
  const std::int64_t at = latency_at_ns_.load(std::memory_order_relaxed);
  const double decay = std::exp2(-static_cast<double>(std::max<std::int64_t>(now - at, 0)) /
                                 static_cast<double>(kLatencyHalfLife.count()));
  double old = latency_us_.load(std::memory_order_relaxed);
  for (;;) {
    double next = old < 0 ? sample : old * decay + kLatencyAlpha * (sample - old * decay);
    if (latency_us_.compare_exchange_weak(old, next, std::memory_order_relaxed)) break;
  }
  // Racing writers may pair a value with a neighbouring timestamp: a few microseconds of decay,
  // which no balancing decision can notice.
  latency_at_ns_.store(now, std::memory_order_relaxed);
}

std::optional<double> Target::LatencyEstimateUs(SteadyTime now) const {
  double v = latency_us_.load(std::memory_order_relaxed);
  if (v < 0) return std::nullopt;
  std::int64_t age =
      now.time_since_epoch().count() - latency_at_ns_.load(std::memory_order_relaxed);
  if (age <= 0) return v;
  return v * std::exp2(-static_cast<double>(age) / static_cast<double>(kLatencyHalfLife.count()));
}

}  // namespace orchestra::orchestration
