#include "orchestration/circuit_breaker.hpp"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace orchestra::orchestration {
namespace {

using namespace std::chrono_literals;
using providers::FailureKind;
using providers::ProviderError;

config::CircuitBreakerConfig Config(int failures, double rate = 0.5, int min_requests = 1000,
                                    Duration window = 10s, Duration cooldown = 30s) {
  config::CircuitBreakerConfig c;
  c.failures = failures;
  c.failure_rate = rate;
  c.min_requests = min_requests;
  c.window = window;
  c.cooldown = cooldown;
  return c;
}

void Succeed(CircuitBreaker& b, int n = 1) {
  for (int i = 0; i < n; ++i) {
    auto permit = b.TryAcquire();
    ASSERT_TRUE(permit);
    permit.Succeeded();
  }
}

void Fail(CircuitBreaker& b, int n = 1) {
  for (int i = 0; i < n; ++i) {
    auto permit = b.TryAcquire();
    ASSERT_TRUE(permit);
    permit.Failed();
  }
}

struct Transitions {
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};
  CircuitBreaker::Listener Listener() {
    return [this](CircuitState s) { (s == CircuitState::kOpen ? opened : closed)++; };
  }
};

TEST(CircuitBreaker, ClosedAdmitsEveryRequest) {
  ManualClock clock;
  CircuitBreaker b(Config(5), clock);
  for (int i = 0; i < 100; ++i) {
    auto permit = b.TryAcquire();
    EXPECT_TRUE(permit);
    EXPECT_FALSE(permit.probe());
  }
  EXPECT_EQ(b.state(), CircuitState::kClosed);
}

TEST(CircuitBreaker, OpensAfterConsecutiveFailures) {
  ManualClock clock;
  Transitions t;
  CircuitBreaker b(Config(3), clock, t.Listener());
  Fail(b, 2);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  Fail(b, 1);
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  EXPECT_FALSE(b.TryAcquire());
  EXPECT_EQ(t.opened, 1);
}

TEST(CircuitBreaker, SuccessResetsTheConsecutiveCount) {
  ManualClock clock;
  CircuitBreaker b(Config(3), clock);
  Fail(b, 2);
  Succeed(b);
  EXPECT_EQ(b.consecutive_failures(), 0);
  Fail(b, 2);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  Fail(b, 1);
  EXPECT_EQ(b.state(), CircuitState::kOpen);
}

TEST(CircuitBreaker, OpensWhenFailureRateReachedOverMinRequests) {
  ManualClock clock;
  CircuitBreaker b(Config(/*failures=*/1000, /*rate=*/0.5, /*min_requests=*/10), clock);
  // Alternating, so the consecutive rule never fires: 9 requests, 4 failures.
  for (int i = 0; i < 4; ++i) {
    Succeed(b);
    Fail(b);
  }
  Succeed(b);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_EQ(b.window_counts().requests, 9u);
  EXPECT_EQ(b.window_counts().failures, 4u);
  Fail(b);  // 5 of 10
  EXPECT_EQ(b.state(), CircuitState::kOpen);
}

TEST(CircuitBreaker, FailureRateNeedsMinRequests) {
  ManualClock clock;
  CircuitBreaker b(Config(1000, 0.5, 10), clock);
  Succeed(b);
  Fail(b, 8);  // 8 of 9 failed, but fewer than 10 requests
  EXPECT_EQ(b.state(), CircuitState::kClosed);
}

TEST(CircuitBreaker, FailureRateBelowThresholdStaysClosed) {
  ManualClock clock;
  CircuitBreaker b(Config(1000, 0.3, 10), clock);
  for (int i = 0; i < 80; ++i) {
    if (i % 4 == 3) {
      Fail(b);  // every fourth: 25 % whenever a failure is counted
    } else {
      Succeed(b);
    }
  }
  EXPECT_EQ(b.state(), CircuitState::kClosed);
}

TEST(CircuitBreaker, RateExactlyAtThresholdOpensDespiteRounding) {
  ManualClock clock;
  CircuitBreaker b(Config(1000, 0.3, 10), clock);
  Succeed(b, 7);
  Fail(b, 2);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  Fail(b);  // 3 of 10 = 0.3, where 0.3 * 10 is 3.0000000000000004 in doubles
  EXPECT_EQ(b.state(), CircuitState::kOpen);
}

TEST(CircuitBreaker, ResultsOlderThanTheWindowStopCounting) {
  ManualClock clock;
  CircuitBreaker b(Config(1000, 0.5, 10, /*window=*/10s), clock);
  for (int i = 0; i < 4; ++i) {
    Succeed(b);
    Fail(b);
  }
  Succeed(b);
  clock.Advance(11s);
  EXPECT_EQ(b.window_counts().requests, 0u);
  Fail(b);  // alone in the window
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_EQ(b.window_counts().requests, 1u);
}

TEST(CircuitBreaker, WindowSlidesOneBucketAtATime) {
  ManualClock clock;
  CircuitBreaker b(Config(1000, 0.5, 1000, 10s), clock);  // 1 s buckets
  Succeed(b, 3);
  clock.Advance(5s);
  Succeed(b, 2);
  clock.Advance(4500ms);  // 9.5 s after the first results: all still in
  EXPECT_EQ(b.window_counts().requests, 5u);
  clock.Advance(1s);  // 10.5 s: the first bucket has left
  EXPECT_EQ(b.window_counts().requests, 2u);
  clock.Advance(5s);
  EXPECT_EQ(b.window_counts().requests, 0u);
}

TEST(CircuitBreaker, IdleGapOfAWholeTagCycleDoesNotResurrectOldCounts) {
  ManualClock clock;
  CircuitBreaker b(Config(1000, 0.5, 10, 10s), clock);  // 1 s buckets
  for (int i = 0; i < 4; ++i) {
    Succeed(b);
    Fail(b);
  }
  Succeed(b);
  // Exactly 2^24 bucket widths later the 24-bit epoch tags repeat.
  clock.Advance(std::chrono::seconds(1 << 24));
  Fail(b);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_EQ(b.window_counts().requests, 1u);
}

TEST(CircuitBreaker, BecomesHalfOpenAfterCooldownAndAdmitsOneProbe) {
  ManualClock clock;
  CircuitBreaker b(Config(1, 0.5, 1000, 10s, /*cooldown=*/30s), clock);
  Fail(b);
  clock.Advance(30s - 1ns);
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  EXPECT_FALSE(b.TryAcquire());
  clock.Advance(1ns);
  EXPECT_EQ(b.state(), CircuitState::kHalfOpen);
  auto probe = b.TryAcquire();
  ASSERT_TRUE(probe);
  EXPECT_TRUE(probe.probe());
  EXPECT_FALSE(b.TryAcquire());
  clock.Advance(1h);  // however long the probe takes, it stays the only one
  EXPECT_FALSE(b.TryAcquire());
  EXPECT_EQ(b.state(), CircuitState::kHalfOpen);
}

TEST(CircuitBreaker, ProbeSuccessClosesAndClearsCounters) {
  ManualClock clock;
  Transitions t;
  CircuitBreaker b(Config(3, 0.5, 4), clock, t.Listener());
  Succeed(b);
  Fail(b, 3);
  ASSERT_EQ(b.state(), CircuitState::kOpen);
  clock.Advance(30s);
  auto probe = b.TryAcquire();
  ASSERT_TRUE(probe.probe());
  probe.Succeeded();
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_EQ(t.closed, 1);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_EQ(b.window_counts().requests, 0u);
  Fail(b, 2);  // a fresh start: two failures are not three
  EXPECT_EQ(b.state(), CircuitState::kClosed);
}

TEST(CircuitBreaker, ProbeFailureReopensForAnotherCooldown) {
  ManualClock clock;
  Transitions t;
  CircuitBreaker b(Config(1, 0.5, 1000, 10s, 30s), clock, t.Listener());
  Fail(b);
  clock.Advance(30s);
  auto probe = b.TryAcquire();
  ASSERT_TRUE(probe.probe());
  clock.Advance(2s);
  probe.Failed();
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  EXPECT_EQ(t.opened, 2);
  clock.Advance(30s - 1ns);  // the new cooldown counts from the probe's failure
  EXPECT_FALSE(b.TryAcquire());
  clock.Advance(1ns);
  EXPECT_TRUE(b.TryAcquire().probe());
}

TEST(CircuitBreaker, AbandonedProbeReleasesTheSlot) {
  ManualClock clock;
  CircuitBreaker b(Config(1), clock);
  Fail(b);
  clock.Advance(30s);
  auto probe = b.TryAcquire();
  ASSERT_TRUE(probe.probe());
  probe.Abandon();
  EXPECT_EQ(b.state(), CircuitState::kHalfOpen);
  auto next = b.TryAcquire();
  EXPECT_TRUE(next.probe());
}

TEST(CircuitBreaker, DestroyedPermitAbandonsItsProbe) {
  ManualClock clock;
  CircuitBreaker b(Config(1), clock);
  Fail(b);
  clock.Advance(30s);
  {
    auto probe = b.TryAcquire();
    ASSERT_TRUE(probe.probe());
  }  // e.g. a coroutine frame destroyed by cancellation
  EXPECT_TRUE(b.TryAcquire().probe());
}

TEST(CircuitBreaker, MovedPermitReportsOnce) {
  ManualClock clock;
  Transitions t;
  CircuitBreaker b(Config(1), clock, t.Listener());
  Fail(b);
  clock.Advance(30s);
  auto probe = b.TryAcquire();
  CircuitBreaker::Permit moved = std::move(probe);
  EXPECT_TRUE(moved.probe());
  EXPECT_TRUE(probe.settled());  // NOLINT(bugprone-use-after-move): the moved-from state
  probe.Failed();                // NOLINT(bugprone-use-after-move): does nothing
  EXPECT_EQ(b.state(), CircuitState::kHalfOpen);
  moved.Succeeded();
  moved.Failed();  // already settled
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_EQ(t.opened, 1);
  EXPECT_EQ(t.closed, 1);
}

TEST(CircuitBreaker, StragglerResultsDoNotDecideAnOpenCircuit) {
  ManualClock clock;
  CircuitBreaker b(Config(2), clock);
  auto straggler = b.TryAcquire();  // admitted while closed, answers late
  auto straggler2 = b.TryAcquire();
  Fail(b, 2);
  ASSERT_EQ(b.state(), CircuitState::kOpen);
  straggler.Succeeded();
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  clock.Advance(30s);
  auto probe = b.TryAcquire();
  ASSERT_TRUE(probe.probe());
  straggler2.Abandon();  // not the probe: must not free the probe's slot
  EXPECT_FALSE(b.TryAcquire());
  probe.Succeeded();
  EXPECT_EQ(b.state(), CircuitState::kClosed);
}

TEST(CircuitBreaker, ConcurrentFailuresOpenTheCircuitExactlyOnce) {
  ManualClock clock;
  Transitions t;
  CircuitBreaker b(Config(5, 0.5, 10), clock, t.Listener());
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&b] {
      for (int n = 0; n < 1000; ++n) {
        if (auto p = b.TryAcquire()) p.Failed();
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  EXPECT_EQ(t.opened, 1);
}

TEST(CircuitBreaker, ConcurrentAcquisitionInHalfOpenAdmitsOneProbe) {
  ManualClock clock;
  CircuitBreaker b(Config(1), clock);
  Fail(b);
  clock.Advance(30s);
  std::atomic<int> probes{0};
  std::vector<std::thread> threads;
  std::vector<CircuitBreaker::Permit> kept(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < 1000; ++n) {
        auto p = b.TryAcquire();
        if (p) {
          probes++;
          kept[static_cast<std::size_t>(i)] = std::move(p);  // held: the slot stays taken
        }
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(probes, 1);
}

struct VerdictCase {
  FailureKind kind;
  int status;
  Verdict verdict;
};

TEST(CircuitBreaker, VerdictOfEachFailure) {
  const VerdictCase cases[] = {
      {FailureKind::kConnect, 0, Verdict::kFailure},
      {FailureKind::kTimeout, 0, Verdict::kFailure},
      {FailureKind::kProtocol, 0, Verdict::kFailure},
      {FailureKind::kCancelled, 0, Verdict::kAbandon},
      {FailureKind::kStatus, 500, Verdict::kFailure},
      {FailureKind::kStatus, 503, Verdict::kFailure},
      {FailureKind::kStatus, 429, Verdict::kFailure},
      {FailureKind::kStatus, 408, Verdict::kFailure},
      {FailureKind::kStatus, 401, Verdict::kFailure},
      {FailureKind::kStatus, 403, Verdict::kFailure},
      {FailureKind::kStatus, 404, Verdict::kFailure},
      {FailureKind::kStatus, 400, Verdict::kSuccess},
      {FailureKind::kStatus, 413, Verdict::kSuccess},
      {FailureKind::kStatus, 422, Verdict::kSuccess},
  };
  for (const auto& c : cases) {
    ProviderError e;
    e.kind = c.kind;
    e.status = c.status;
    EXPECT_EQ(BreakerVerdict(e), c.verdict)
        << "kind " << static_cast<int>(c.kind) << " status " << c.status;
  }
}

}  // namespace
}  // namespace orchestra::orchestration
