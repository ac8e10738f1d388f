#include "orchestration/balancer.hpp"

#include <array>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "unit/orchestration/fake_provider.hpp"

namespace orchestra::orchestration {
namespace {

using namespace std::chrono_literals;
using config::Strategy;
using testing::FakeProvider;

// A deterministic uniform source.
UnitRandom Seeded(std::uint64_t seed) {
  auto engine = std::make_shared<std::mt19937_64>(seed);
  return [engine] { return std::uniform_real_distribution<double>(0, 1)(*engine); };
}

// Returns the given values in turn, forever.
UnitRandom Sequence(std::vector<double> values) {
  auto i = std::make_shared<std::size_t>(0);
  return [values = std::move(values), i] { return values[(*i)++ % values.size()]; };
}

class BalancerTest : public ::testing::Test {
 protected:
  // Adds a target of `weight` to the route under test.
  Target& Add(double weight) {
    providers_.push_back(std::make_unique<FakeProvider>("p" + std::to_string(providers_.size())));
    config::CircuitBreakerConfig breaker;
    breaker.failures = 1;
    breaker.cooldown = 30s;
    targets_.push_back(std::make_unique<Target>(*providers_.back(), "m", breaker, clock_));
    route_.push_back(RouteTarget{targets_.back().get(), weight});
    return *targets_.back();
  }

  static void Open(Target& t) {
    auto p = t.breaker().TryAcquire();
    p.Failed();
    ASSERT_EQ(t.breaker().state(), CircuitState::kOpen);
  }

  // Picks `n` times and returns the count per target index.
  std::vector<int> Histogram(const Balancer& balancer, Strategy strategy, int n,
                             TargetSet exclude = {}) {
    std::vector<int> counts(route_.size(), 0);
    for (int i = 0; i < n; ++i) {
      Selection s = balancer.Pick(strategy, route_, exclude);
      if (s) counts[s.index]++;
    }
    return counts;
  }

  ManualClock clock_;
  std::vector<std::unique_ptr<FakeProvider>> providers_;
  std::vector<std::unique_ptr<Target>> targets_;
  std::vector<RouteTarget> route_;
};

TEST_F(BalancerTest, WeightedPicksFollowWeightsWithinThreePercent) {
  Add(1);
  Add(2);
  Add(7);
  Balancer balancer(clock_, Seeded(42));
  constexpr int kPicks = 10'000;
  std::vector<int> counts = Histogram(balancer, Strategy::kWeighted, kPicks);
  const double expected[] = {0.1, 0.2, 0.7};
  for (std::size_t i = 0; i < counts.size(); ++i) {
    EXPECT_NEAR(static_cast<double>(counts[i]) / kPicks, expected[i], 0.03) << "target " << i;
  }
}

TEST_F(BalancerTest, WeightedPickMapsTheRandomPointOntoCumulativeWeights) {
  Add(1);
  Add(3);
  struct Case {
    double random;
    std::size_t index;
  };
  for (Case c : {Case{0.0, 0}, Case{0.2499, 0}, Case{0.25, 1}, Case{0.9999, 1}}) {
    Balancer balancer(clock_, Sequence({c.random}));
    EXPECT_EQ(balancer.Pick(Strategy::kWeighted, route_).index, c.index) << c.random;
  }
}

TEST_F(BalancerTest, ExcludedTargetsAreNeverPicked) {
  Add(1);
  Add(1);
  Add(1);
  Balancer balancer(clock_, Seeded(1));
  TargetSet tried;
  tried.insert(0);
  tried.insert(2);
  for (Strategy s : {Strategy::kWeighted, Strategy::kLeastInflight, Strategy::kLatencyEwma}) {
    std::vector<int> counts = Histogram(balancer, s, 200, tried);
    EXPECT_EQ(counts[0], 0);
    EXPECT_EQ(counts[1], 200);
    EXPECT_EQ(counts[2], 0);
  }
}

TEST_F(BalancerTest, EveryTargetExcludedYieldsNoSelection) {
  Add(1);
  Add(1);
  Balancer balancer(clock_, Seeded(1));
  TargetSet all;
  all.insert(0);
  all.insert(1);
  Selection s = balancer.Pick(Strategy::kWeighted, route_, all);
  EXPECT_FALSE(s);
  EXPECT_TRUE(s.refused.empty());
}

TEST_F(BalancerTest, TargetWhoseCircuitIsOpenIsSkippedAndReported) {
  Target& broken = Add(100);
  Add(1);
  Open(broken);
  // 0.0 would choose the heavy target first: it is refused, and the other one is chosen.
  Balancer balancer(clock_, Sequence({0.0}));
  for (Strategy s : {Strategy::kWeighted, Strategy::kLeastInflight, Strategy::kLatencyEwma}) {
    Selection selection = balancer.Pick(s, route_);
    ASSERT_TRUE(selection);
    EXPECT_EQ(selection.index, 1u);
    EXPECT_TRUE(selection.permit);
    EXPECT_TRUE(selection.refused.contains(0));
  }
}

TEST_F(BalancerTest, AllCircuitsOpenYieldsNoSelectionWithEveryTargetRefused) {
  Open(Add(1));
  Open(Add(1));
  Balancer balancer(clock_, Seeded(3));
  Selection s = balancer.Pick(Strategy::kWeighted, route_);
  EXPECT_FALSE(s);
  EXPECT_EQ(s.refused.size(), 2);
}

TEST_F(BalancerTest, HalfOpenProbeSlotIsTakenOnlyByTheChosenTarget) {
  Target& recovering = Add(1);
  Add(1);
  Open(recovering);
  clock_.Advance(30s);
  ASSERT_EQ(recovering.breaker().state(), CircuitState::kHalfOpen);
  Balancer balancer(clock_, Sequence({0.9}));  // chooses the healthy target
  Selection s = balancer.Pick(Strategy::kWeighted, route_);
  ASSERT_EQ(s.index, 1u);
  // The recovering target's probe slot is still free for whoever picks it.
  auto probe = recovering.breaker().TryAcquire();
  EXPECT_TRUE(probe.probe());
}

TEST_F(BalancerTest, ProbePermitTravelsWithTheSelection) {
  Target& recovering = Add(1);
  Open(recovering);
  clock_.Advance(30s);
  Balancer balancer(clock_, Seeded(5));
  Selection s = balancer.Pick(Strategy::kWeighted, route_);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s.permit.probe());
  EXPECT_FALSE(balancer.Pick(Strategy::kWeighted, route_));  // one probe at a time
  s.permit.Succeeded();
  EXPECT_EQ(recovering.breaker().state(), CircuitState::kClosed);
}

TEST_F(BalancerTest, ZeroWeightTargetIsAStandby) {
  Add(1);
  Add(0);
  Balancer balancer(clock_, Seeded(9));
  for (Strategy s : {Strategy::kWeighted, Strategy::kLeastInflight, Strategy::kLatencyEwma}) {
    EXPECT_EQ(Histogram(balancer, s, 500)[1], 0);
    TargetSet tried;
    tried.insert(0);
    EXPECT_EQ(balancer.Pick(s, route_, tried).index, 1u);
  }
}

TEST_F(BalancerTest, LeastInflightPicksTheTargetWithFewestInFlight) {
  Target& a = Add(1);
  Target& b = Add(1);
  Target& c = Add(1);
  auto a1 = a.StartRequest();
  auto a2 = a.StartRequest();
  auto b1 = b.StartRequest();
  auto c1 = c.StartRequest();
  auto c2 = c.StartRequest();
  auto c3 = c.StartRequest();
  Balancer balancer(clock_, Seeded(2));
  EXPECT_EQ(balancer.Pick(Strategy::kLeastInflight, route_).index, 1u);
  b1.Release();
  auto a3 = a.StartRequest();
  EXPECT_EQ(b.inflight(), 0);
  EXPECT_EQ(a.inflight(), 3);
  EXPECT_EQ(balancer.Pick(Strategy::kLeastInflight, route_).index, 1u);
}

TEST_F(BalancerTest, LeastInflightBreaksTiesInProportionToWeight) {
  Add(1);
  Add(3);
  Target& busy = Add(100);
  auto held = busy.StartRequest();
  Balancer balancer(clock_, Seeded(11));
  constexpr int kPicks = 10'000;
  std::vector<int> counts = Histogram(balancer, Strategy::kLeastInflight, kPicks);
  EXPECT_EQ(counts[2], 0);
  EXPECT_NEAR(static_cast<double>(counts[0]) / kPicks, 0.25, 0.03);
  EXPECT_NEAR(static_cast<double>(counts[1]) / kPicks, 0.75, 0.03);
}

TEST_F(BalancerTest, EwmaPicksAnUnmeasuredIdleTargetFirst) {
  Target& measured = Add(1);
  Add(1);
  measured.RecordLatency(1ms);
  Balancer balancer(clock_, Seeded(4));
  EXPECT_EQ(balancer.Pick(Strategy::kLatencyEwma, route_).index, 1u);
}

TEST_F(BalancerTest, EwmaPrefersTheLowerLatency) {
  Target& fast = Add(1);
  Target& slow = Add(1);
  fast.RecordLatency(10ms);
  slow.RecordLatency(100ms);
  Balancer balancer(clock_, Seeded(6));
  EXPECT_EQ(Histogram(balancer, Strategy::kLatencyEwma, 200)[0], 200);
}

TEST_F(BalancerTest, EwmaMovesLoadOffAFastTargetAsItQueues) {
  Target& fast = Add(1);
  Target& slow = Add(1);
  fast.RecordLatency(10ms);
  slow.RecordLatency(100ms);
  std::vector<Target::InFlight> queued;
  for (int i = 0; i < 10; ++i)
    queued.push_back(fast.StartRequest());  // cost 10 ms × 11 > 100 ms × 1
  Balancer balancer(clock_, Seeded(6));
  EXPECT_EQ(balancer.Pick(Strategy::kLatencyEwma, route_).index, 1u);
}

TEST_F(BalancerTest, EwmaPowerOfTwoChoicesNeverPicksTheWorstAndSpreadsTheRest) {
  Add(1).RecordLatency(10ms);
  Add(1).RecordLatency(20ms);
  Add(1).RecordLatency(30ms);
  Balancer balancer(clock_, Seeded(8));
  constexpr int kPicks = 9'000;
  std::vector<int> counts = Histogram(balancer, Strategy::kLatencyEwma, kPicks);
  // Of the three equally likely pairs, the best wins two and the middle one wins one.
  EXPECT_EQ(counts[2], 0);
  EXPECT_NEAR(static_cast<double>(counts[0]) / kPicks, 2.0 / 3, 0.03);
  EXPECT_NEAR(static_cast<double>(counts[1]) / kPicks, 1.0 / 3, 0.03);
}

TEST_F(BalancerTest, EwmaTargetBeingMeasuredCostsTheBestKnownEstimate) {
  Target& measured = Add(1);
  Target& first_request_pending = Add(1);
  measured.RecordLatency(10ms);
  auto pending = first_request_pending.StartRequest();  // unmeasured, 1 in flight: 10 ms × 2
  std::vector<Target::InFlight> queued;
  for (int i = 0; i < 2; ++i)
    queued.push_back(measured.StartRequest());  // 10 ms × 3
  Balancer balancer(clock_, Seeded(8));
  EXPECT_EQ(balancer.Pick(Strategy::kLatencyEwma, route_).index, 1u);
}

TEST(TargetLatency, EstimateBlendsSamplesAndDecaysWhileIdle) {
  ManualClock clock;
  FakeProvider provider("p");
  Target t(provider, "m", config::CircuitBreakerConfig{}, clock);
  EXPECT_FALSE(t.LatencyEstimateUs(clock.Now()));
  t.RecordLatency(100ms);
  EXPECT_DOUBLE_EQ(*t.LatencyEstimateUs(clock.Now()), 100'000);
  t.RecordLatency(200ms);
  EXPECT_DOUBLE_EQ(*t.LatencyEstimateUs(clock.Now()), 130'000);  // 0.7 × 100 + 0.3 × 200
  clock.Advance(Target::kLatencyHalfLife);
  EXPECT_DOUBLE_EQ(*t.LatencyEstimateUs(clock.Now()), 65'000);
  t.RecordLatency(65ms);  // blends with the decayed value
  EXPECT_DOUBLE_EQ(*t.LatencyEstimateUs(clock.Now()), 65'000);
}

TEST(TargetLatency, LabelIsProviderSlashModel) {
  ManualClock clock;
  FakeProvider provider("openai");
  Target t(provider, "gpt-4o-mini", config::CircuitBreakerConfig{}, clock);
  EXPECT_EQ(t.label(), "openai/gpt-4o-mini");
  EXPECT_EQ(t.provider_name(), "openai");
}

TEST(TargetSetTest, HoldsIndicesUpToTheRouteLimit) {
  TargetSet s;
  EXPECT_TRUE(s.empty());
  s.insert(0);
  s.insert(63);
  s.insert(64);  // beyond the limit: ignored
  EXPECT_TRUE(s.contains(0));
  EXPECT_TRUE(s.contains(63));
  EXPECT_FALSE(s.contains(64));
  EXPECT_EQ(s.size(), 2);
}

}  // namespace
}  // namespace orchestra::orchestration
