#include "orchestration/route_table.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "unit/orchestration/fake_provider.hpp"

namespace orchestra::orchestration {
namespace {

using namespace std::chrono_literals;
using testing::FakeProvider;

config::ModelConfig Model(std::string name, std::vector<config::TargetConfig> targets,
                          std::vector<std::string> fallbacks = {}) {
  config::ModelConfig m;
  m.name = std::move(name);
  m.targets = std::move(targets);
  m.fallbacks = std::move(fallbacks);
  return m;
}

std::vector<std::string> Names(const std::vector<const ModelRoute*>& routes) {
  std::vector<std::string> names;
  for (const ModelRoute* r : routes)
    names.push_back(r->name);
  return names;
}

class RouteTableTest : public ::testing::Test {
 protected:
  RouteTableTest() {
    providers_["openai"] = &openai_;
    providers_["gemini"] = &gemini_;
    providers_["local"] = &local_;
  }

  std::unique_ptr<RouteTable> Build(RouteTable::Options options = RouteTable::Options()) {
    return std::make_unique<RouteTable>(config_, providers_, metrics_, clock_, options);
  }

  FakeProvider openai_{"openai"};
  FakeProvider gemini_{"gemini", config::ProviderType::kGemini};
  FakeProvider local_{"local", config::ProviderType::kLocal};
  ProviderMap providers_;
  observability::Registry registry_;
  Metrics metrics_{registry_};
  ManualClock clock_;
  config::Config config_;
};

TEST_F(RouteTableTest, ResolvesAConfiguredPublicModel) {
  config::ModelConfig m = Model("smart", {{"openai", "gpt-4o", 3}, {"gemini", "gemini-2.0", 1}});
  m.strategy = config::Strategy::kLeastInflight;
  m.retry.attempts = 4;
  m.timeout = 7s;
  m.deadline = 20s;
  m.price = {2.5, 10};
  m.cache_ttl = 1min;
  config_.models.push_back(m);
  auto table = Build();

  auto route = table->Resolve("smart");
  ASSERT_TRUE(route.has_value());
  const ModelRoute& r = **route;
  EXPECT_EQ(r.name, "smart");
  EXPECT_FALSE(r.synthetic);
  EXPECT_EQ(r.configured.strategy, config::Strategy::kLeastInflight);
  ASSERT_EQ(r.configured.targets.size(), 2u);
  EXPECT_EQ(r.configured.targets[0].target->label(), "openai/gpt-4o");
  EXPECT_EQ(&r.configured.targets[0].target->provider(), &openai_);
  EXPECT_EQ(r.configured.targets[0].weight, 3);
  EXPECT_EQ(r.configured.targets[1].target->upstream_model(), "gemini-2.0");
  EXPECT_EQ(r.retry.attempts, 4);
  EXPECT_EQ(r.timeout, 7s);
  EXPECT_EQ(r.deadline, 20s);
  EXPECT_EQ(r.price.output_per_mtok, 10);
  EXPECT_EQ(r.cache_ttl, 1min);
  EXPECT_EQ(Names(r.chain), std::vector<std::string>{"smart"});
}

TEST_F(RouteTableTest, PublicRoutesAreListedInConfigurationOrder) {
  config_.models = {Model("b", {{"openai", "x", 1}}), Model("a", {{"openai", "y", 1}})};
  auto table = Build();
  EXPECT_EQ(Names(table->public_routes()), (std::vector<std::string>{"b", "a"}));
}

TEST_F(RouteTableTest, ProviderSlashModelMakesOneSyntheticRoute) {
  auto table = Build();
  auto first = table->Resolve("openai/gpt-4o");
  auto second = table->Resolve("openai/gpt-4o");
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*first, *second);
  const ModelRoute& r = **first;
  EXPECT_TRUE(r.synthetic);
  EXPECT_EQ(r.name, "openai/gpt-4o");
  ASSERT_EQ(r.configured.targets.size(), 1u);
  EXPECT_EQ(r.configured.targets[0].target->label(), "openai/gpt-4o");
  EXPECT_EQ(r.retry.attempts, config::RetryConfig{}.attempts);
  EXPECT_EQ(r.timeout, config::ModelConfig{}.timeout);
  EXPECT_EQ(r.cache_ttl, 0s);
  EXPECT_EQ(r.chain, std::vector<const ModelRoute*>{&r});
  EXPECT_EQ(table->synthetic_routes(), 1u);
}

TEST_F(RouteTableTest, UpstreamModelNamesKeepTheirSlashes) {
  auto table = Build();
  auto route = table->Resolve("openai/meta-llama/llama-3-8b");
  ASSERT_TRUE(route.has_value());
  EXPECT_EQ((*route)->configured.targets[0].target->upstream_model(), "meta-llama/llama-3-8b");
}

TEST_F(RouteTableTest, SyntheticRouteSharesTheTargetAndPriceOfAConfiguredRoute) {
  config::ModelConfig m = Model("mini", {{"openai", "gpt-4o-mini", 1}});
  m.price = {0.15, 0.6};
  config_.models.push_back(m);
  auto table = Build();
  const ModelRoute* mini = *table->Resolve("mini");
  const ModelRoute* direct = *table->Resolve("openai/gpt-4o-mini");
  EXPECT_NE(mini, direct);
  EXPECT_EQ(mini->configured.targets[0].target,
            direct->configured.targets[0].target);  // one breaker per upstream
  EXPECT_EQ(direct->price.input_per_mtok, 0.15);
  EXPECT_EQ(direct->price.output_per_mtok, 0.6);
}

TEST_F(RouteTableTest, RoutesListingTheSameUpstreamShareOneTarget) {
  config_.models = {Model("a", {{"openai", "gpt-4o", 1}}), Model("b", {{"openai", "gpt-4o", 5}})};
  auto table = Build();
  const ModelRoute* a = *table->Resolve("a");
  const ModelRoute* b = *table->Resolve("b");
  EXPECT_EQ(a->configured.targets[0].target, b->configured.targets[0].target);
  EXPECT_EQ(b->configured.targets[0].weight, 5);  // weights stay per route
}

TEST_F(RouteTableTest, LocalNamesResolveToTheLocalProvider) {
  auto table = Build();
  auto route = table->Resolve("local-extractive");
  ASSERT_TRUE(route.has_value());
  EXPECT_EQ((*route)->name, "local-extractive");
  EXPECT_EQ((*route)->configured.targets[0].target->label(), "local/local-extractive");
  EXPECT_EQ(&(*route)->configured.targets[0].target->provider(), &local_);
  // The same upstream reached as provider/model is the same target.
  EXPECT_EQ((*table->Resolve("local/local-extractive"))->configured.targets[0].target,
            (*route)->configured.targets[0].target);
}

TEST_F(RouteTableTest, UnknownLocalModelsMakeNoRoute) {
  RouteTable::Options options;
  options.local_models = {"local-extractive", "local-embed"};
  auto table = Build(options);
  ASSERT_TRUE(table->Resolve("local-embed").has_value());
  auto typo = table->Resolve("local-extractiv");
  ASSERT_FALSE(typo.has_value());
  EXPECT_EQ(typo.error().code, ErrorCode::kNotFound);
  EXPECT_NE(typo.error().message.find("did you mean 'local-extractive'"), std::string::npos)
      << typo.error().message;
  EXPECT_FALSE(table->Resolve("local/nothing").has_value());
  EXPECT_EQ(table->synthetic_routes(), 1u);
}

TEST_F(RouteTableTest, PublicNameWinsOverProviderSlashModel) {
  config_.models = {Model("openai/gpt-4o", {{"gemini", "gemini-2.0", 1}})};
  auto table = Build();
  const ModelRoute* r = *table->Resolve("openai/gpt-4o");
  EXPECT_FALSE(r->synthetic);
  EXPECT_EQ(r->configured.targets[0].target->label(), "gemini/gemini-2.0");
}

struct UnknownCase {
  const char* model;
  ErrorCode code;
  const char* message_part;
};

TEST_F(RouteTableTest, UnresolvableNamesAreErrorsWithSuggestions) {
  config_.models = {Model("gpt-4o-mini", {{"openai", "gpt-4o-mini", 1}})};
  providers_.erase("local");
  auto table = Build();
  const UnknownCase cases[] = {
      {"gpt-4o-mnii", ErrorCode::kNotFound, "did you mean 'gpt-4o-mini'?"},
      {"opena/gpt-4o", ErrorCode::kNotFound, "did you mean 'openai/gpt-4o'?"},
      {"nobody/gpt-4o", ErrorCode::kNotFound, "no provider named 'nobody'"},
      {"completely-different", ErrorCode::kNotFound, "does not exist"},
      {"local-extractive", ErrorCode::kNotFound, "does not exist"},  // no local provider here
      {"openai/", ErrorCode::kNotFound, "does not exist"},
      {"/gpt-4o", ErrorCode::kNotFound, "does not exist"},
      {"", ErrorCode::kInvalidRequest, "model is required"},
  };
  for (const UnknownCase& c : cases) {
    auto r = table->Resolve(c.model);
    ASSERT_FALSE(r.has_value()) << c.model;
    EXPECT_EQ(r.error().code, c.code) << c.model;
    EXPECT_EQ(r.error().param, "model");
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos)
        << c.model << ": " << r.error().message;
  }
  EXPECT_EQ(table->synthetic_routes(), 0u);
}

TEST_F(RouteTableTest, SyntheticRoutesAreCappedAndExistingOnesStillResolve) {
  RouteTable::Options options;
  options.max_synthetic_routes = 2;
  auto table = Build(options);
  ASSERT_TRUE(table->Resolve("openai/a").has_value());
  ASSERT_TRUE(table->Resolve("openai/b").has_value());
  auto refused = table->Resolve("openai/c");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kNotFound);
  EXPECT_NE(refused.error().message.find("limit of 2"), std::string::npos);
  EXPECT_TRUE(table->Resolve("openai/a").has_value());
  EXPECT_EQ(table->synthetic_routes(), 2u);
}

TEST_F(RouteTableTest, OverlongProviderSlashModelIsRefused) {
  auto table = Build();
  auto r = table->Resolve("openai/" + std::string(300, 'x'));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(table->synthetic_routes(), 0u);
}

TEST_F(RouteTableTest, ConcurrentResolutionMakesOneRoutePerName) {
  auto table = Build();
  constexpr int kNames = 50;
  std::vector<std::vector<const ModelRoute*>> seen(4, std::vector<const ModelRoute*>(kNames));
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < seen.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kNames; ++i) {
        int n = t % 2 == 0 ? i : kNames - 1 - i;  // meet in the middle
        auto r = table->Resolve("openai/m" + std::to_string(n));
        seen[t][static_cast<std::size_t>(n)] = r.has_value() ? *r : nullptr;
      }
    });
  }
  for (auto& th : threads)
    th.join();
  for (int i = 0; i < kNames; ++i) {
    auto n = static_cast<std::size_t>(i);
    ASSERT_NE(seen[0][n], nullptr);
    for (std::size_t t = 1; t < seen.size(); ++t)
      EXPECT_EQ(seen[t][n], seen[0][n]);
  }
  EXPECT_EQ(table->synthetic_routes(), static_cast<std::size_t>(kNames));
}

TEST_F(RouteTableTest, FallbacksResolveToModelsProviderSlashModelAndLocalNames) {
  config_.models = {
      Model("main", {{"openai", "gpt-4o", 1}}, {"backup", "gemini/gemini-2.0", "local-extractive"}),
      Model("backup", {{"openai", "gpt-4o-mini", 1}})};
  auto table = Build();
  const ModelRoute* main = *table->Resolve("main");
  EXPECT_EQ(Names(main->fallbacks),
            (std::vector<std::string>{"backup", "gemini/gemini-2.0", "local-extractive"}));
  EXPECT_EQ(Names(main->chain),
            Names(std::vector<const ModelRoute*>{main, main->fallbacks[0], main->fallbacks[1],
                                                 main->fallbacks[2]}));
  // Made at start-up from the configuration: not counted against the on-demand cap.
  EXPECT_EQ(table->synthetic_routes(), 0u);
  EXPECT_EQ(*table->Resolve("gemini/gemini-2.0"), main->fallbacks[1]);
}

TEST_F(RouteTableTest, FallbackChainIsDepthFirstWithoutCyclesOrDuplicates) {
  config_.models = {
      Model("a", {{"openai", "1", 1}}, {"b", "c"}),
      Model("b", {{"openai", "2", 1}}, {"d", "a", "c"}),  // a: cycle; c: also a's
      Model("c", {{"openai", "3", 1}}, {"b"}),
      Model("d", {{"openai", "4", 1}}),
  };
  auto table = Build();
  EXPECT_EQ(Names((*table->Resolve("a"))->chain), (std::vector<std::string>{"a", "b", "d", "c"}));
  EXPECT_EQ(Names((*table->Resolve("c"))->chain), (std::vector<std::string>{"c", "b", "d", "a"}));
  EXPECT_EQ(Names((*table->Resolve("d"))->chain), (std::vector<std::string>{"d"}));
}

TEST_F(RouteTableTest, FallbackChainIsBounded) {
  for (int i = 0; i < 12; ++i) {
    std::vector<std::string> next;
    if (i < 11) next.push_back("m" + std::to_string(i + 1));
    config_.models.push_back(Model("m" + std::to_string(i), {{"openai", "x", 1}}, next));
  }
  auto table = Build();
  const ModelRoute* first = *table->Resolve("m0");
  ASSERT_EQ(first->chain.size(), kMaxFallbackChain);
  EXPECT_EQ(first->chain.back()->name, "m7");
}

TEST(FallbackChain, FlattensHandBuiltRoutes) {
  ModelRoute a;
  ModelRoute b;
  ModelRoute c;
  a.name = "a";
  b.name = "b";
  c.name = "c";
  a.fallbacks = {&b, &b, &c};
  b.fallbacks = {&b, &a};
  EXPECT_EQ(Names(FallbackChain(a)), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Names(FallbackChain(a, 2)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Names(FallbackChain(a, 0)), (std::vector<std::string>{"a"}));
}

TEST_F(RouteTableTest, StartUpWiringMistakesThrow) {
  {
    config_.models = {Model("x", {{"anthropic", "claude", 1}})};
    EXPECT_THROW(Build(), std::invalid_argument);
  }
  {
    config_.models = {Model("x", {{"openai", "a", 1}}, {"nowhere"})};
    EXPECT_THROW(Build(), std::invalid_argument);
  }
  {
    std::vector<config::TargetConfig> many;
    for (std::size_t i = 0; i <= kMaxRouteTargets; ++i)
      many.push_back({"openai", "m" + std::to_string(i), 1});
    config_.models = {Model("x", many)};
    EXPECT_THROW(Build(), std::invalid_argument);
  }
}

TEST_F(RouteTableTest, CircuitGaugeFollowsTheBreaker) {
  config::ModelConfig m = Model("mini", {{"openai", "gpt-4o-mini", 1}});
  m.circuit_breaker.failures = 1;
  config_.models.push_back(m);
  auto table = Build();
  const ModelRoute* route = *table->Resolve("mini");
  const std::string series = "orchestra_circuit_open{target=\"openai/gpt-4o-mini\"} ";
  EXPECT_NE(registry_.Render().find(series + "0\n"), std::string::npos);
  route->configured.targets[0].target->breaker().TryAcquire().Failed();
  EXPECT_NE(registry_.Render().find(series + "1\n"), std::string::npos);
  clock_.Advance(m.circuit_breaker.cooldown);
  route->configured.targets[0].target->breaker().TryAcquire().Succeeded();
  EXPECT_NE(registry_.Render().find(series + "0\n"), std::string::npos);
}

TEST_F(RouteTableTest, MetricChildrenAreMadeForEveryTargetAndModel) {
  config_.models = {Model("mini", {{"openai", "gpt-4o-mini", 1}})};
  auto table = Build();
  const ModelRoute* route = *table->Resolve("mini");
  route->configured.targets[0].target->metrics().Count(Outcome::kRejected);
  route->metrics.ObserveTimeToFirstToken(0.5);
  std::string text = registry_.Render();
  EXPECT_NE(text.find("orchestra_upstream_requests_total{provider=\"openai\",model=\"gpt-4o-mini\","
                      "outcome=\"rejected\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("orchestra_time_to_first_token_seconds_count{model=\"mini\"} 1"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace orchestra::orchestration
