// Run-time plans of the route table (model versions, blue/green): swapping a route's targets
// while requests resolve it, interning, caps, and the balancer honouring a plan's weights.

#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "orchestration/balancer.hpp"
#include "orchestration/route_table.hpp"
#include "unit/orchestration/fake_provider.hpp"

namespace orchestra::orchestration {
namespace {

using namespace std::chrono_literals;
using testing::FakeProvider;
using PlanTarget = RouteTable::PlanTarget;

config::ModelConfig Model(std::string name, std::vector<config::TargetConfig> targets,
                          std::vector<std::string> fallbacks = {}) {
  config::ModelConfig m;
  m.name = std::move(name);
  m.targets = std::move(targets);
  m.fallbacks = std::move(fallbacks);
  return m;
}

std::vector<std::string> Labels(const TargetPlan& plan) {
  std::vector<std::string> labels;
  for (const RouteTarget& t : plan.targets)
    labels.push_back(t.target->label());
  return labels;
}

// Blue gets 100 - p, green p: what a blue/green deployment asks for.
std::vector<PlanTarget> Split(double green_percent) {
  std::vector<PlanTarget> targets;
  if (green_percent < 100) targets.push_back({"up", "blue-1", 100 - green_percent});
  if (green_percent > 0) targets.push_back({"up", "green-1", green_percent});
  return targets;
}

class RoutePlanTest : public ::testing::Test {
 protected:
  RoutePlanTest() {
    providers_["up"] = &up_;
    providers_["other"] = &other_;
    providers_["local"] = &local_;
    config::ModelConfig chat = Model("chat", {{"up", "configured-1", 1}}, {"backup"});
    chat.strategy = config::Strategy::kLatencyEwma;
    chat.retry.attempts = 5;
    chat.price = {1.5, 6};
    chat.timeout = 9s;
    config_.models = {chat, Model("backup", {{"other", "backup-1", 1}}),
                      Model("front", {{"other", "front-1", 1}}, {"chat"})};
  }

  std::unique_ptr<RouteTable> Build(RouteTable::Options options = {}) {
    options.local_models = {"local-extractive"};
    return std::make_unique<RouteTable>(config_, providers_, metrics_, clock_, options);
  }

  FakeProvider up_{"up"};
  FakeProvider other_{"other"};
  FakeProvider local_{"local", config::ProviderType::kLocal};
  ProviderMap providers_;
  observability::Registry registry_;
  Metrics metrics_{registry_};
  ManualClock clock_;
  config::Config config_;
};

TEST_F(RoutePlanTest, APlanReplacesTheTargetsAndKeepsEverythingElseOfTheRoute) {
  auto table = Build();
  const ModelRoute* chat = *table->Resolve("chat");
  EXPECT_EQ(&chat->plan(), &chat->configured);

  ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, Split(30)).has_value());
  EXPECT_EQ(*table->Resolve("chat"), chat);  // the same route: fallbacks into it see the plan
  const TargetPlan& plan = chat->plan();
  EXPECT_EQ(plan.strategy, config::Strategy::kWeighted);
  EXPECT_EQ(Labels(plan), (std::vector<std::string>{"up/blue-1", "up/green-1"}));
  EXPECT_EQ(plan.targets[0].weight, 70);
  EXPECT_EQ(plan.targets[1].weight, 30);
  EXPECT_EQ(chat->retry.attempts, 5);
  EXPECT_EQ(chat->price.output_per_mtok, 6);
  EXPECT_EQ(chat->timeout, 9s);
  ASSERT_EQ(chat->chain.size(), 2u);
  EXPECT_EQ(chat->chain[1]->name, "backup");
  // The configured targets are kept as the base.
  EXPECT_EQ(Labels(chat->configured), std::vector<std::string>{"up/configured-1"});
  EXPECT_EQ(chat->configured.strategy, config::Strategy::kLatencyEwma);

  // A route that falls back to `chat` reaches the new plan through the same route object.
  const ModelRoute* front = *table->Resolve("front");
  ASSERT_EQ(front->chain.size(), 3u);
  EXPECT_EQ(front->chain[1], chat);
  EXPECT_EQ(&front->chain[1]->plan(), &plan);

  ASSERT_TRUE(table->ResetPlan("chat").has_value());
  EXPECT_EQ(&chat->plan(), &chat->configured);
}

TEST_F(RoutePlanTest, PlanTargetsAreTheSharedTargetsOfProviderSlashModelRoutes) {
  auto table = Build();
  ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, Split(100)).has_value());
  const ModelRoute* chat = *table->Resolve("chat");
  const ModelRoute* direct = *table->Resolve("up/green-1");
  ASSERT_EQ(chat->plan().targets.size(), 1u);
  EXPECT_EQ(chat->plan().targets[0].target, direct->configured.targets[0].target);
  // And a configured target reused by a plan is the configured one (one breaker per upstream).
  std::vector<PlanTarget> configured = {{"up", "configured-1", 1}, {"other", "backup-1", 1}};
  ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, configured).has_value());
  EXPECT_EQ(chat->plan().targets[1].target,
            (*table->Resolve("backup"))->configured.targets[0].target);
}

TEST_F(RoutePlanTest, IdenticalPlansAreReusedSoChangesDoNotAccumulateMemory) {
  auto table = Build();
  const ModelRoute* chat = *table->Resolve("chat");
  ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, Split(10)).has_value());
  const TargetPlan* ten = &chat->plan();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, Split(i % 2 ? 10 : 50)));
  }
  EXPECT_EQ(table->plans(), 2u);
  EXPECT_EQ(&chat->plan(), ten);
  // A plan equal to the configured one is the configured one.
  std::vector<PlanTarget> same = {{"up", "configured-1", 1}};
  ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kLatencyEwma, same).has_value());
  EXPECT_EQ(&chat->plan(), &chat->configured);
  EXPECT_EQ(table->plans(), 2u);
}

TEST_F(RoutePlanTest, OneUpstreamNamedTwiceIsOneTargetWithBothWeights) {
  auto table = Build();
  std::vector<PlanTarget> twice = {{"up", "same-1", 60}, {"up", "same-1", 40}};
  ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, twice).has_value());
  const TargetPlan& plan = (*table->Resolve("chat"))->plan();
  ASSERT_EQ(plan.targets.size(), 1u);
  EXPECT_EQ(plan.targets[0].weight, 100);
}

struct BadPlan {
  const char* name;
  const char* model;
  std::vector<PlanTarget> targets;
  ErrorCode code;
  const char* message_part;
};

TEST_F(RoutePlanTest, BadPlansAreRefusedAndChangeNothing) {
  auto table = Build();
  ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, Split(20)).has_value());
  const ModelRoute* chat = *table->Resolve("chat");
  const TargetPlan* before = &chat->plan();
  std::vector<PlanTarget> too_many;
  for (std::size_t i = 0; i <= kMaxRouteTargets; ++i)
    too_many.push_back({"up", "m", 1});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const BadPlan cases[] = {
      {"unknown model", "nope", Split(50), ErrorCode::kNotFound, "not a configured model"},
      {"synthetic name", "up/blue-1", Split(50), ErrorCode::kNotFound, "not a configured model"},
      {"no targets", "chat", {}, ErrorCode::kInvalidRequest, "needs a target"},
      {"too many", "chat", too_many, ErrorCode::kInvalidRequest, "at most"},
      {"zero weight", "chat", {{"up", "a", 0}}, ErrorCode::kInvalidRequest, "weight"},
      {"negative weight", "chat", {{"up", "a", -1}}, ErrorCode::kInvalidRequest, "weight"},
      {"NaN weight", "chat", {{"up", "a", nan}}, ErrorCode::kInvalidRequest, "weight"},
      {"unknown provider", "chat", {{"u", "a", 1}}, ErrorCode::kNotFound, "no provider named 'u'"},
      {"near provider", "chat", {{"upp", "a", 1}}, ErrorCode::kNotFound, "did you mean 'up'"},
      {"empty model", "chat", {{"up", "", 1}}, ErrorCode::kInvalidRequest, "empty"},
      {"unknown local", "chat", {{"local", "local-x", 1}}, ErrorCode::kNotFound, "local provider"},
      {"one bad of two",
       "chat",
       {{"up", "fine", 1}, {"nobody", "a", 1}},
       ErrorCode::kNotFound,
       "no provider"},
  };
  for (const BadPlan& c : cases) {
    auto check = table->CheckPlan(c.model, config::Strategy::kWeighted, c.targets);
    ASSERT_FALSE(check.has_value()) << c.name;
    EXPECT_EQ(check.error().code, c.code) << c.name;
    auto r = table->SetPlan(c.model, config::Strategy::kWeighted, c.targets);
    ASSERT_FALSE(r.has_value()) << c.name;
    EXPECT_EQ(r.error().code, c.code) << c.name;
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos)
        << c.name << ": " << r.error().message;
    EXPECT_EQ(&chat->plan(), before) << c.name;
  }
  EXPECT_EQ(table->plans(), 1u);
  // No target was made for the refused plans ("fine" came with a bad one).
  EXPECT_EQ(registry_.Render().find("model=\"fine\""), std::string::npos);
  EXPECT_FALSE(table->ResetPlan("nope").has_value());
}

TEST_F(RoutePlanTest, TheCapsOnPlansAndAddedTargetsRefuseRatherThanGrow) {
  RouteTable::Options options;
  options.max_plans = 2;
  options.max_plan_targets = 3;
  auto table = Build(options);
  const ModelRoute* chat = *table->Resolve("chat");
  ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, Split(10)));  // 2 new targets
  ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, Split(20)));
  const TargetPlan* kept = &chat->plan();
  // CheckPlan says so without changing anything, either way.
  auto checked = table->CheckPlan("chat", config::Strategy::kWeighted, Split(30));
  ASSERT_FALSE(checked.has_value());
  EXPECT_EQ(checked.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(table->CheckPlan("chat", config::Strategy::kWeighted, Split(10)).has_value());
  EXPECT_EQ(&chat->plan(), kept);
  auto third = table->SetPlan("chat", config::Strategy::kWeighted, Split(30));
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error().code, ErrorCode::kConflict);
  EXPECT_NE(third.error().message.find("restart"), std::string::npos);
  EXPECT_EQ(&chat->plan(), kept);
  // Plans already kept, and the configured one, stay usable at the cap.
  EXPECT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, Split(10)));
  EXPECT_TRUE(table->ResetPlan("chat"));

  std::vector<PlanTarget> two_new = {{"up", "x-1", 1}, {"up", "x-2", 1}};
  EXPECT_FALSE(table->CheckPlan("chat", config::Strategy::kWeighted, two_new).has_value());
  auto targets = table->SetPlan("chat", config::Strategy::kWeighted, two_new);
  ASSERT_FALSE(targets.has_value());
  EXPECT_EQ(targets.error().code, ErrorCode::kConflict);
  EXPECT_NE(targets.error().message.find("upstream models added"), std::string::npos);
}

// Readers resolve the route and walk its plan (as Orchestrator::Run does, holding the plan
// across many swaps) while a writer swaps plans as fast as it can. Every plan a reader sees must
// be whole (one of the plans written), and a plan held stays readable after any number of swaps.
// The sanitizer build turns any use of a freed plan into a failure.
TEST_F(RoutePlanTest, ConcurrentResolvesSeeWholePlansWhileTheyAreSwapped) {
  auto table = Build();
  const ModelRoute* chat = *table->Resolve("chat");
  const TargetPlan* held = &chat->plan();
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::atomic<int> torn{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      long n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        auto route = table->Resolve("chat");
        if (!route) {
          torn.fetch_add(1);
          continue;
        }
        const TargetPlan& plan = (*route)->plan();
        double total = 0;
        for (const RouteTarget& t : plan.targets) {
          total += t.weight;
          if (t.target->provider_name() != "up") torn.fetch_add(1);
        }
        // Every plan written has weights summing to 100, except the configured one (1).
        if (total != 100 && &plan != &(*route)->configured) torn.fetch_add(1);
        ++n;
      }
      reads.fetch_add(n);
    });
  }
  for (int i = 0; i < 20000; ++i) {
    auto set = i % 7 == 0 ? table->ResetPlan("chat")
                          : table->SetPlan("chat", config::Strategy::kWeighted, Split(i % 101));
    ASSERT_TRUE(set.has_value());
  }
  stop = true;
  for (auto& t : readers)
    t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(Labels(*held), std::vector<std::string>{"up/configured-1"});
  EXPECT_LE(table->plans(), 101u);
}

// The weighted balancer over a blue/green plan sends each side its share.
TEST_F(RoutePlanTest, TheBalancerHonoursAPlansWeights) {
  auto table = Build();
  auto engine = std::make_shared<std::mt19937_64>(11);
  Balancer balancer(clock_,
                    [engine] { return std::uniform_real_distribution<double>(0, 1)(*engine); });
  const ModelRoute* chat = *table->Resolve("chat");
  for (int percent : {0, 10, 30, 50, 90, 100}) {
    ASSERT_TRUE(table->SetPlan("chat", config::Strategy::kWeighted, Split(percent)));
    const TargetPlan& plan = chat->plan();
    constexpr int kPicks = 20000;
    int green = 0;
    for (int i = 0; i < kPicks; ++i) {
      Selection s = balancer.Pick(plan.strategy, plan.targets);
      ASSERT_TRUE(s);
      s.permit.Succeeded();
      if (s.target->upstream_model() == "green-1") ++green;
    }
    // Five standard deviations of a binomial count: never fails by chance in practice, and a
    // split off by a point or more is caught.
    const double expected = kPicks * percent / 100.0;
    const double sd = std::sqrt(kPicks * (percent / 100.0) * (1 - percent / 100.0));
    EXPECT_NEAR(green, expected, 5 * sd + 0.5) << percent << "% green";
  }
}

}  // namespace
}  // namespace orchestra::orchestration
