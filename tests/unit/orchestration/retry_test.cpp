#include "orchestration/retry.hpp"

#include <random>

#include <gtest/gtest.h>

namespace orchestra::orchestration {
namespace {

using namespace std::chrono_literals;
using providers::FailureKind;
using providers::ProviderError;

ProviderError Status(int status, int retry_after_ms = -1) {
  ProviderError e;
  e.kind = FailureKind::kStatus;
  e.status = status;
  e.retry_after_ms = retry_after_ms;
  return e;
}

ProviderError Kind(FailureKind kind) {
  ProviderError e;
  e.kind = kind;
  return e;
}

struct Case {
  const char* name;
  ProviderError error;
  RetryAction action;
};

TEST(Retry, DecisionForEachStatusAndFailureKindWithDefaults) {
  const Case cases[] = {
      {"429", Status(429), RetryAction::kRetry},
      {"500", Status(500), RetryAction::kRetry},
      {"502", Status(502), RetryAction::kRetry},
      {"503", Status(503), RetryAction::kRetry},
      {"504", Status(504), RetryAction::kRetry},
      {"501 not listed: another upstream may work", Status(501), RetryAction::kMoveOn},
      {"408 not listed", Status(408), RetryAction::kMoveOn},
      {"401 bad key of this target", Status(401), RetryAction::kMoveOn},
      {"403", Status(403), RetryAction::kMoveOn},
      {"404 unknown upstream model", Status(404), RetryAction::kMoveOn},
      {"400 the request's fault", Status(400), RetryAction::kStop},
      {"413", Status(413), RetryAction::kStop},
      {"422", Status(422), RetryAction::kStop},
      {"connect", Kind(FailureKind::kConnect), RetryAction::kRetry},
      {"timeout", Kind(FailureKind::kTimeout), RetryAction::kRetry},
      {"protocol", Kind(FailureKind::kProtocol), RetryAction::kMoveOn},
      {"cancelled", Kind(FailureKind::kCancelled), RetryAction::kStop},
  };
  const config::RetryConfig defaults;
  for (const Case& c : cases) {
    RetryDecision d = Decide(defaults, 1, c.error, 0.5, 60s);
    EXPECT_EQ(d.action, c.action) << c.name << ": " << d.reason;
  }
}

TEST(Retry, ConfiguredStatusesAndKindsReplaceTheDefaults) {
  config::RetryConfig c;
  c.statuses = {409};
  c.on_connect = false;
  c.on_timeout = false;
  EXPECT_EQ(Decide(c, 1, Status(409), 0.5, 60s).action, RetryAction::kRetry);
  EXPECT_EQ(Decide(c, 1, Status(503), 0.5, 60s).action, RetryAction::kMoveOn);
  EXPECT_EQ(Decide(c, 1, Kind(FailureKind::kConnect), 0.5, 60s).action, RetryAction::kMoveOn);
  EXPECT_EQ(Decide(c, 1, Kind(FailureKind::kTimeout), 0.5, 60s).action, RetryAction::kMoveOn);
}

TEST(Retry, AttemptsCountTheFirstTry) {
  config::RetryConfig c;
  c.attempts = 3;
  int attempts = 1;  // the first try just failed
  while (Decide(c, attempts, Status(503), 0.5, 60s).action == RetryAction::kRetry)
    ++attempts;
  EXPECT_EQ(attempts, 3);
  EXPECT_EQ(Decide(c, 3, Status(503), 0.5, 60s).reason, "attempts exhausted");

  c.attempts = 1;  // no retries at all
  EXPECT_EQ(Decide(c, 1, Status(503), 0.5, 60s).action, RetryAction::kMoveOn);
}

TEST(Retry, BackoffCeilingDoublesUpToTheCap) {
  config::RetryConfig c;
  c.backoff = 100ms;
  c.max_backoff = 2s;
  const std::pair<int, Duration> cases[] = {{1, 100ms}, {2, 200ms},  {3, 400ms},
                                            {4, 800ms}, {5, 1600ms}, {6, 2s},
                                            {7, 2s},    {40, 2s},    {1000, 2s}};
  for (auto [attempt, ceiling] : cases) {
    // Full jitter: random × ceiling.
    EXPECT_EQ(Backoff(c, attempt, 0.0), 0ns) << attempt;
    auto half = Backoff(c, attempt, 0.5);
    EXPECT_NEAR(static_cast<double>(half.count()), static_cast<double>(ceiling.count()) / 2, 1)
        << attempt;
    EXPECT_LE(Backoff(c, attempt, 0.999999), ceiling) << attempt;
  }
}

TEST(Retry, FullJitterDelaysStayWithinBounds) {
  config::RetryConfig c;
  c.attempts = 10;
  std::mt19937_64 engine(7);
  std::uniform_real_distribution<double> unit(0, 1);
  Duration low = 1h;
  Duration high = 0ns;
  for (int i = 0; i < 10'000; ++i) {
    RetryDecision d = Decide(c, 3, Status(503), unit(engine), 60s);
    ASSERT_EQ(d.action, RetryAction::kRetry);
    ASSERT_GE(d.delay, 0ns);
    ASSERT_LT(d.delay, 400ms);
    low = std::min(low, d.delay);
    high = std::max(high, d.delay);
  }
  // Spread over the whole range, not clustered.
  EXPECT_LT(low, 5ms);
  EXPECT_GT(high, 395ms);
}

TEST(Retry, RetryAfterWithinTheCapIsTheDelay) {
  config::RetryConfig c;
  c.retry_after_cap = 5s;
  RetryDecision d = Decide(c, 1, Status(429, 1500), 0.01, 60s);
  EXPECT_EQ(d.action, RetryAction::kRetry);
  EXPECT_EQ(d.delay, 1500ms);
  EXPECT_EQ(Decide(c, 1, Status(429, 5000), 0.01, 60s).delay, 5s);  // at the cap
  EXPECT_EQ(Decide(c, 1, Status(503, 0), 0.9, 60s).delay, 0ns);     // "retry now"
}

TEST(Retry, RetryAfterBeyondTheCapMovesOnInsteadOfWaiting) {
  config::RetryConfig c;
  c.retry_after_cap = 5s;
  RetryDecision d = Decide(c, 1, Status(429, 5001), 0.5, 60s);
  EXPECT_EQ(d.action, RetryAction::kMoveOn);
  EXPECT_EQ(d.reason, "retry-after beyond cap");
}

TEST(Retry, RetryThatWouldPassTheDeadlineIsNotScheduled) {
  config::RetryConfig c;
  c.backoff = 100ms;
  // Delay 0.5 × 100 ms = 50 ms.
  EXPECT_EQ(Decide(c, 1, Status(503), 0.5, 51ms).action, RetryAction::kRetry);
  EXPECT_EQ(Decide(c, 1, Status(503), 0.5, 50ms).action, RetryAction::kMoveOn);
  EXPECT_EQ(Decide(c, 1, Status(429, 2000), 0.5, 1s).action, RetryAction::kMoveOn);
  RetryDecision none_left = Decide(c, 1, Status(503), 0.5, 0ns);
  EXPECT_EQ(none_left.action, RetryAction::kStop);
  EXPECT_EQ(none_left.reason, "deadline exceeded");
}

TEST(Retry, CancelledNeverRetriesEvenWhenEverythingElseWould) {
  config::RetryConfig c;
  c.attempts = 20;
  EXPECT_EQ(Decide(c, 1, Kind(FailureKind::kCancelled), 0.5, 60s).action, RetryAction::kStop);
}

}  // namespace
}  // namespace orchestra::orchestration
