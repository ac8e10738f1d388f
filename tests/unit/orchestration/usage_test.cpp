#include "orchestration/usage.hpp"

#include <gtest/gtest.h>

#include "orchestration/default_prices.hpp"

namespace orchestra::orchestration {
namespace {

wire::Usage Usage(std::int64_t prompt, std::int64_t completion, bool known = true) {
  return wire::Usage{prompt, completion, prompt + completion, known};
}

struct CostCase {
  wire::Usage usage;
  config::PriceConfig price;
  double usd;
};

TEST(Cost, IsTokensTimesPricePerMillion) {
  const CostCase cases[] = {
      {Usage(1'000'000, 0), {0.15, 0.60}, 0.15},
      {Usage(0, 1'000'000), {0.15, 0.60}, 0.60},
      {Usage(1200, 350), {0.15, 0.60}, (1200 * 0.15 + 350 * 0.60) / 1e6},
      {Usage(2'000'000, 500'000), {2.5, 10}, 10.0},
      {Usage(1200, 350), {0, 0}, 0},
      {Usage(1200, 350, /*known=*/false), {0.15, 0.60}, 0},  // nothing reported, nothing billed
      {Usage(-5, 100), {1, 1}, 100 / 1e6},                   // nonsense counts do not refund
  };
  for (const CostCase& c : cases) {
    EXPECT_NEAR(CostUsd(c.usage, c.price), c.usd, 1e-12)
        << c.usage.prompt_tokens << "/" << c.usage.completion_tokens;
  }
}

TEST(Outcome, FollowsTheFailureKind) {
  providers::ProviderError e;
  e.kind = providers::FailureKind::kTimeout;
  EXPECT_EQ(OutcomeOf(e), Outcome::kTimeout);
  e.kind = providers::FailureKind::kCancelled;
  EXPECT_EQ(OutcomeOf(e), Outcome::kCancelled);
  e.kind = providers::FailureKind::kStatus;
  EXPECT_EQ(OutcomeOf(e), Outcome::kError);
  e.kind = providers::FailureKind::kConnect;
  EXPECT_EQ(OutcomeOf(e), Outcome::kError);
  EXPECT_EQ(ToString(Outcome::kRejected), "rejected");
}

TEST(Metrics, RecordsUpstreamAttemptsRetriesFallbacksAndTheCache) {
  observability::Registry registry;
  Metrics metrics(registry);
  ModelMetrics model = metrics.ForModel("mini");
  EXPECT_DOUBLE_EQ(CostUsd(Usage(1000, 2000), {1, 2}), 0.005);
  EXPECT_DOUBLE_EQ(CostUsd(Usage(1000, 2000, false), {1, 2}), 0);  // unknown usage: no cost
  model.ObserveTimeToFirstToken(0.2);

  TargetMetrics target = metrics.ForTarget("openai", "gpt-4o-mini", "openai/gpt-4o-mini");
  target.Count(Outcome::kSuccess);
  target.Count(Outcome::kSuccess);
  target.Count(Outcome::kTimeout);
  target.ObserveDuration(0.3);
  providers::ProviderError limited;
  limited.kind = providers::FailureKind::kStatus;
  limited.status = 429;
  metrics.retries(Metrics::CauseOf(limited)).Inc();
  metrics.fallbacks(Metrics::Cause::kCircuitOpen).Inc(2);
  metrics.cache_hits().Inc();

  std::string text = registry.Render();
  for (const char* line : {
           "orchestra_upstream_requests_total{provider=\"openai\",model=\"gpt-4o-mini\","
           "outcome=\"success\"} 2\n",
           "orchestra_upstream_requests_total{provider=\"openai\",model=\"gpt-4o-mini\","
           "outcome=\"timeout\"} 1\n",
           "orchestra_upstream_requests_total{provider=\"openai\",model=\"gpt-4o-mini\","
           "outcome=\"cancelled\"} 0\n",
           "orchestra_upstream_duration_seconds_count{provider=\"openai\",model=\"gpt-4o-mini\"} "
           "1\n",
           "orchestra_time_to_first_token_seconds_count{model=\"mini\"} 1\n",
           "orchestra_retries_total{cause=\"status_429\"} 1\n",
           "orchestra_retries_total{cause=\"timeout\"} 0\n",
           "orchestra_fallbacks_total{cause=\"circuit_open\"} 2\n",
           "orchestra_circuit_open{target=\"openai/gpt-4o-mini\"} 0\n",
           "orchestra_cache_requests_total{result=\"hit\"} 1\n",
           "orchestra_cache_requests_total{result=\"miss\"} 0\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST(Metrics, DefaultChildrenRecordNothingAndDoNotCrash) {
  TargetMetrics target;
  target.Count(Outcome::kError);
  target.ObserveDuration(1);
  ModelMetrics model;
  EXPECT_DOUBLE_EQ(CostUsd(Usage(1'000'000, 0), {3, 0}), 3.0);
  model.ObserveTimeToFirstToken(1);
}

}  // namespace
}  // namespace orchestra::orchestration

namespace orchestra::orchestration {
namespace {

TEST(DefaultPrice, ListPricesOfCommonModelsByTheLongestKnownName) {
  auto mini = DefaultPrice("gpt-4o-mini-2024-07-18");
  ASSERT_TRUE(mini);
  EXPECT_DOUBLE_EQ(mini->input_per_mtok, 0.15);
  EXPECT_DOUBLE_EQ(mini->output_per_mtok, 0.60);
  EXPECT_DOUBLE_EQ(DefaultPrice("gpt-4o")->input_per_mtok, 2.50);
  EXPECT_DOUBLE_EQ(DefaultPrice("claude-3-5-haiku-20241022")->output_per_mtok, 4.00);
  EXPECT_DOUBLE_EQ(DefaultPrice("models/gemini-2.0-flash-lite")->input_per_mtok, 0.075);
  EXPECT_FALSE(DefaultPrice("x"));
  EXPECT_FALSE(DefaultPrice("local-extractive"));
}

}  // namespace
}  // namespace orchestra::orchestration
