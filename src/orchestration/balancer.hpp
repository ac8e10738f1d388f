#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "config/config.hpp"
#include "orchestration/circuit_breaker.hpp"
#include "orchestration/clock.hpp"
#include "orchestration/target.hpp"

// Chooses the target of a route for one attempt (config::Strategy, docs/CONFIG.md).
//
// Common to every strategy:
// - Targets in `exclude` (already tried by this request) are skipped.
// - The chosen target's breaker is asked last (CircuitBreaker::TryAcquire): a refusal skips that
//   target and the choice is made again among the rest, so a half-open breaker's probe slot is
//   only ever taken by the request that will use it. Refused targets are reported in
//   Selection::refused (the `rejected` outcome of orchestra_upstream_requests_total).
// - A target of weight 0 is a standby: chosen only when every target of positive weight is
//   excluded or refused.
//
// kWeighted: random, in proportion to weight.
// kLeastInflight: fewest requests in flight; ties are broken at random in proportion to weight.
// kLatencyEwma: a target never measured and idle goes first, so that each gets measured.
//   Otherwise power of two choices: two distinct candidates drawn in proportion to weight, and
//   the one with the lower cost, latency estimate × (in flight + 1), wins (ties at random).
//   Comparing two random candidates instead of taking the global minimum keeps the requests that
//   arrive between two latency updates from herding onto the one fastest target, and the
//   in-flight factor (Finagle's and Linkerd's "peak EWMA" cost) pushes load off a target as it
//   queues. A target already being measured for the first time costs the best known estimate
//   × (in flight + 1); when nothing is measured yet, the cost is the in-flight count alone.
//
// Thread-safety: const and stateless apart from the injected random source, which must be
// callable from every thread that picks (RandomUnit is: it is per thread).
namespace orchestra::orchestration {

// A set of target indices within one route.
class TargetSet {
 public:
  constexpr TargetSet() = default;
  bool contains(std::size_t i) const { return i < kMaxRouteTargets && ((bits_ >> i) & 1) != 0; }
  void insert(std::size_t i) {
    if (i < kMaxRouteTargets) bits_ |= std::uint64_t{1} << i;
  }
  bool empty() const { return bits_ == 0; }
  int size() const { return std::popcount(bits_); }
  std::uint64_t bits() const { return bits_; }

 private:
  std::uint64_t bits_ = 0;
};

// A uniform double in [0, 1). Tests inject a fixed sequence.
using UnitRandom = std::function<double()>;

struct Selection {
  Target* target = nullptr;  // null: every target was excluded or refused
  std::size_t index = 0;     // in the route's targets
  CircuitBreaker::Permit permit;
  TargetSet refused;  // targets whose breaker refused during this pick

  explicit operator bool() const { return target != nullptr; }
};

class Balancer {
 public:
  // `clock` (for latency estimates) must outlive the balancer. `random` defaults to the
  // per-thread generator of common/random.hpp.
  explicit Balancer(const Clock& clock = RealClock(), UnitRandom random = {});

  // At most kMaxRouteTargets targets (RouteTable enforces it); targets beyond are never chosen.
  Selection Pick(config::Strategy strategy, std::span<const RouteTarget> targets,
                 TargetSet exclude = {}) const;

 private:
  // The index of the chosen candidate, or -1 when there is none; does not consult breakers.
  int Choose(config::Strategy strategy, std::span<const RouteTarget> targets, TargetSet skip) const;
  double Random() const;

  const Clock& clock_;
  UnitRandom random_;
};

}  // namespace orchestra::orchestration
