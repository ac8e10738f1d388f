#include "orchestration/balancer.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "common/random.hpp"

namespace orchestra::orchestration {
namespace {

// Candidate indices on the stack: no allocation per pick.
struct Candidates {
  std::array<std::uint8_t, kMaxRouteTargets> index{};
  std::size_t size = 0;

  void Add(std::size_t i) { index[size++] = static_cast<std::uint8_t>(i); }
  void Remove(std::size_t i) {
    auto end = index.begin() + static_cast<std::ptrdiff_t>(size);
    auto it = std::find(index.begin(), end, static_cast<std::uint8_t>(i));
    if (it != end) {
      std::copy(it + 1, end, it);
      --size;
    }
  }
};

// The candidates of the highest tier: targets of positive weight when any is available,
// otherwise the standbys (weight 0).
Candidates Eligible(std::span<const RouteTarget> targets, TargetSet skip) {
  Candidates positive;
  Candidates standby;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (skip.contains(i) || targets[i].target == nullptr) continue;
    if (targets[i].weight > 0) {
      positive.Add(i);
    } else {
      standby.Add(i);
    }
  }
  return positive.size > 0 ? positive : standby;
}

// One of `c` at random in proportion to weight (uniformly when the weights add up to zero).
std::size_t WeightedChoice(std::span<const RouteTarget> targets, const Candidates& c, double r) {
  double total = 0;
  for (std::size_t k = 0; k < c.size; ++k)
    total += std::max(targets[c.index[k]].weight, 0.0);
  if (!(total > 0)) {
    auto k = std::min(c.size - 1, static_cast<std::size_t>(r * static_cast<double>(c.size)));
    return c.index[k];
  }
  double point = r * total;
  for (std::size_t k = 0; k < c.size; ++k) {
    point -= std::max(targets[c.index[k]].weight, 0.0);
    if (point < 0) return c.index[k];
  }
  return c.index[c.size - 1];  // r * total rounded up to total
}

}  // namespace

Balancer::Balancer(const Clock& clock, UnitRandom random)
    : clock_(clock), random_(std::move(random)) {}

double Balancer::Random() const {
  double r = random_ ? random_() : RandomUnit();
  // A misbehaving source must not index out of range.
  if (!(r >= 0)) return 0;
  if (r >= 1) return std::nextafter(1.0, 0.0);
  return r;
}

Selection Balancer::Pick(config::Strategy strategy, std::span<const RouteTarget> targets,
                         TargetSet exclude) const {
  targets = targets.first(std::min(targets.size(), kMaxRouteTargets));
  Selection selection;
  TargetSet skip = exclude;
  for (;;) {
    int i = Choose(strategy, targets, skip);
    if (i < 0) return selection;
    auto index = static_cast<std::size_t>(i);
    Target* target = targets[index].target;
    CircuitBreaker::Permit permit = target->breaker().TryAcquire();
    if (permit) {
      selection.target = target;
      selection.index = index;
      selection.permit = std::move(permit);
      return selection;
    }
    skip.insert(index);
    selection.refused.insert(index);
  }
}

int Balancer::Choose(config::Strategy strategy, std::span<const RouteTarget> targets,
                     TargetSet skip) const {
  Candidates c = Eligible(targets, skip);
  if (c.size == 0) return -1;
  if (c.size == 1) return c.index[0];

  switch (strategy) {
    case config::Strategy::kWeighted:
      return static_cast<int>(WeightedChoice(targets, c, Random()));

    case config::Strategy::kLeastInflight: {
      int least = std::numeric_limits<int>::max();
      Candidates tied;
      for (std::size_t k = 0; k < c.size; ++k) {
        int n = targets[c.index[k]].target->inflight();
        if (n < least) {
          least = n;
          tied.size = 0;
        }
        if (n == least) tied.Add(c.index[k]);
      }
      if (tied.size == 1) return tied.index[0];
      return static_cast<int>(WeightedChoice(targets, tied, Random()));
    }

    case config::Strategy::kLatencyEwma: {
      const SteadyTime now = clock_.Now();
      Candidates fresh;  // never measured and idle
      std::optional<double> best_known;
      for (std::size_t k = 0; k < c.size; ++k) {
        const Target& t = *targets[c.index[k]].target;
        std::optional<double> estimate = t.LatencyEstimateUs(now);
        if (estimate) {
          best_known = best_known ? std::min(*best_known, *estimate) : *estimate;
        } else if (t.inflight() == 0) {
          fresh.Add(c.index[k]);
        }
      }
      if (fresh.size == 1) return fresh.index[0];
      if (fresh.size > 1) return static_cast<int>(WeightedChoice(targets, fresh, Random()));

      auto cost = [&](std::size_t i) {
        const Target& t = *targets[i].target;
        double load = static_cast<double>(t.inflight()) + 1;
        if (auto estimate = t.LatencyEstimateUs(now)) return *estimate * load;
        return best_known ? *best_known * load : load;
      };
      std::size_t a = WeightedChoice(targets, c, Random());
      Candidates rest = c;
      rest.Remove(a);
      std::size_t b = WeightedChoice(targets, rest, Random());
      double cost_a = cost(a);
      double cost_b = cost(b);
      if (cost_a < cost_b) return static_cast<int>(a);
      if (cost_b < cost_a) return static_cast<int>(b);
      return static_cast<int>(Random() < 0.5 ? a : b);
    }
  }
  return static_cast<int>(c.index[0]);
}

}  // namespace orchestra::orchestration
