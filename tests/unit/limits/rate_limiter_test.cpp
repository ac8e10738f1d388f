#include "limits/rate_limiter.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace orchestra::limits {
namespace {

// A limiter on a hand-moved clock, and requests of one key.
struct Fixture {
  std::int64_t now_ms = 1'000'000'000;
  RateLimiter limiter{[this] { return now_ms; }};
  KeyPolicy policy;
  RateHeaders headers;

  Request Make(std::string_view model = "m", std::int64_t estimate = 0) {
    Request r;
    r.principal = "app";
    r.model = model;
    r.estimated_tokens = estimate;
    r.policy = &policy;
    r.rate_headers = &headers;
    return r;
  }
};

Outcome Used(std::int64_t prompt, std::int64_t completion) {
  Outcome o;
  o.status = 200;
  o.usage_known = true;
  o.prompt_tokens = prompt;
  o.completion_tokens = completion;
  return o;
}

TEST(RateLimiter, RpmAdmitsExactlyTheLimitInAnyMinuteThenRefusesWithRetryAfter) {
  Fixture f;
  f.policy.limits.rpm = 5;
  Ticket t;
  for (int i = 0; i < 5; ++i) {
    ASSERT_FALSE(f.limiter.Admit(f.Make(), t)) << i;
    EXPECT_EQ(f.headers.remaining_requests, 4 - i);
    f.limiter.Settle(f.Make(), t, Used(1, 1));
    f.now_ms += 5'000;  // 25 s in all
  }
  EXPECT_EQ(f.headers.limit_requests, 5);
  auto refused = f.limiter.Admit(f.Make(), t);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->error.code, ErrorCode::kRateLimited);
  EXPECT_EQ(refused->reason, "rate_limit");
  EXPECT_NE(refused->error.message.find("5 requests per minute"), std::string::npos)
      << refused->error.message;
  // The first request (25 s ago) leaves the window 35 to 35.25 s from now.
  EXPECT_GE(refused->error.retry_after_s, 35);
  EXPECT_LE(refused->error.retry_after_s, 36);
  EXPECT_EQ(f.headers.remaining_requests, 0);
  // Still refused just before, admitted just after.
  f.now_ms += 34'000;
  EXPECT_TRUE(f.limiter.Admit(f.Make(), t));
  f.now_ms += 1'500;
  EXPECT_FALSE(f.limiter.Admit(f.Make(), t));
}

TEST(RateLimiter, ABurstAdmitsTheLimitAndNoMore) {
  Fixture f;
  f.policy.limits.rpm = 600;
  int admitted = 0;
  Ticket t;
  for (int i = 0; i < 10'000; ++i) {
    if (!f.limiter.Admit(f.Make(), t)) ++admitted;
    f.now_ms += 3;  // 30 s
  }
  EXPECT_EQ(admitted, 600);
}

TEST(RateLimiter, TpmAdmitsOnTheEstimateAndSettlesOnRealUsage) {
  Fixture f;
  f.policy.limits.tpm = 1000;
  Ticket a;
  ASSERT_FALSE(f.limiter.Admit(f.Make("m", 600), a));
  EXPECT_EQ(f.headers.remaining_tokens, 400);
  Ticket b;
  auto refused = f.limiter.Admit(f.Make("m", 600), b);  // 1200 > 1000 on the estimates
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->error.message.find("1000 tokens per minute"), std::string::npos);
  // The first used only 100: the rest is given back at once.
  f.limiter.Settle(f.Make("m", 600), a, Used(60, 40));
  ASSERT_FALSE(f.limiter.Admit(f.Make("m", 600), b));
  EXPECT_EQ(f.headers.remaining_tokens, 300);
  // The second ran long (a stream): charged what it used, 1500, more than the limit.
  f.limiter.Settle(f.Make("m", 600), b, Used(100, 1400));
  Ticket c;
  EXPECT_TRUE(f.limiter.Admit(f.Make("m", 1), c));
  // A minute later all of it has left the window.
  f.now_ms += 60'500;
  EXPECT_FALSE(f.limiter.Admit(f.Make("m", 1), c));
}

TEST(RateLimiter, UsageBeyondTheEstimateAfterTheWindowMovedIsChargedNow) {
  Fixture f;
  f.policy.limits.tpm = 1000;
  Ticket a;
  ASSERT_FALSE(f.limiter.Admit(f.Make("m", 10), a));
  f.now_ms += 90'000;  // a 90 s stream
  f.limiter.Settle(f.Make("m", 10), a, Used(10, 990));
  Ticket b;
  EXPECT_TRUE(f.limiter.Admit(f.Make("m", 11), b));
  EXPECT_FALSE(f.limiter.Admit(f.Make("m", 10), b));
}

TEST(RateLimiter, ARequestLargerThanTheTpmLimitIsRefusedSayingSo) {
  Fixture f;
  f.policy.limits.tpm = 100;
  Ticket t;
  auto refused = f.limiter.Admit(f.Make("m", 500), t);
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->error.message.find("estimated 500 tokens exceed the limit of 100"),
            std::string::npos)
      << refused->error.message;
}

TEST(RateLimiter, MaxParallelCountsRequestsInFlightUntilSettled) {
  Fixture f;
  f.policy.limits.max_parallel = 2;
  Ticket a;
  Ticket b;
  Ticket c;
  ASSERT_FALSE(f.limiter.Admit(f.Make(), a));
  ASSERT_FALSE(f.limiter.Admit(f.Make(), b));
  auto refused = f.limiter.Admit(f.Make(), c);
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->error.message.find("2 parallel requests"), std::string::npos);
  f.limiter.Settle(f.Make(), a, Used(1, 1));
  EXPECT_FALSE(f.limiter.Admit(f.Make(), c));
}

TEST(RateLimiter, PerModelLimitsApplyToThatModelOnlyAndNameIt) {
  Fixture f;
  f.policy.limits.rpm = 100;
  f.policy.per_model.push_back({"gpt-4o", {2, 0, 0}});
  Ticket t;
  ASSERT_FALSE(f.limiter.Admit(f.Make("gpt-4o"), t));
  ASSERT_FALSE(f.limiter.Admit(f.Make("gpt-4o"), t));
  EXPECT_EQ(f.headers.limit_requests, 2);  // the tightest limit is the one reported
  EXPECT_EQ(f.headers.remaining_requests, 0);
  auto refused = f.limiter.Admit(f.Make("gpt-4o"), t);
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->error.message.find("for model 'gpt-4o'"), std::string::npos);
  // Other models only meet the key's limit (which counted the two admitted).
  ASSERT_FALSE(f.limiter.Admit(f.Make("mini"), t));
  EXPECT_EQ(f.headers.limit_requests, 100);
  EXPECT_EQ(f.headers.remaining_requests, 97);
}

TEST(RateLimiter, ARefusalByALaterStageGivesTheRequestAndItsTokensBack) {
  Fixture f;
  f.policy.limits = {1, 100, 0};
  Ticket t;
  ASSERT_FALSE(f.limiter.Admit(f.Make("m", 100), t));
  Outcome refused;
  refused.refused = true;
  f.limiter.Settle(f.Make("m", 100), t, refused);
  EXPECT_FALSE(f.limiter.Admit(f.Make("m", 100), t));
}

TEST(RateLimiter, CachedAnswersCostNoTokensButCountAsRequests) {
  Fixture f;
  f.policy.limits = {2, 100, 0};
  Ticket t;
  ASSERT_FALSE(f.limiter.Admit(f.Make("m", 100), t));
  Outcome hit = Used(50, 50);
  hit.cache_hit = true;
  f.limiter.Settle(f.Make("m", 100), t, hit);
  EXPECT_FALSE(f.limiter.Admit(f.Make("m", 100), t));
  EXPECT_EQ(f.headers.remaining_requests, 0);
}

TEST(RateLimiter, KeysWithoutLimitsAreNotTracked) {
  Fixture f;
  Ticket t;
  for (int i = 0; i < 1000; ++i)
    ASSERT_FALSE(f.limiter.Admit(f.Make(), t));
  EXPECT_EQ(t.token, 0u);
  EXPECT_EQ(f.headers.limit_requests, 0);
  f.limiter.Settle(f.Make(), t, Used(1, 1));
}

TEST(RateLimiter, ConcurrentAdmissionsNeverExceedTheLimit) {
  Fixture f;
  f.policy.limits.rpm = 5000;
  f.policy.limits.max_parallel = 1'000'000;
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&] {
      for (int i = 0; i < 3000; ++i) {
        Ticket t;
        Request r = f.Make();
        r.rate_headers = nullptr;
        if (!f.limiter.Admit(r, t)) {
          admitted.fetch_add(1);
          f.limiter.Settle(r, t, Used(1, 1));
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(admitted.load(), 5000);
}

TEST(FormatResetDuration, WritesOpenAIsDurations) {
  struct Case {
    std::int64_t ms;
    const char* text;
  };
  for (const Case& c : {Case{0, "0ms"}, Case{250, "250ms"}, Case{1000, "1s"}, Case{1500, "1.5s"},
                        Case{8640, "8.64s"}, Case{60'000, "1m0s"}, Case{61'250, "1m1.25s"}}) {
    char out[32];
    EXPECT_EQ(std::string(out, FormatResetDuration(c.ms, out)), c.text);
  }
}

}  // namespace
}  // namespace orchestra::limits
