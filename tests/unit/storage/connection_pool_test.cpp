// The pooled-connection acquire and call loop shared by the Redis, PostgreSQL and Firestore
// backends, with a connection that only counts.
#include "storage/connection_pool.hpp"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace orchestra::storage {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct FakeConnection {
  int id = 0;
  bool broken = false;
};

class ConnectionPoolTest : public ::testing::Test {
 protected:
  ConnectionPool<FakeConnection> MakePool(std::size_t capacity) {
    return ConnectionPool<FakeConnection>(
        "fake", capacity,
        {.open = [this](Deadline) -> Result<std::unique_ptr<FakeConnection>> {
           if (refuse_.load()) return MakeError(ErrorCode::kUnavailable, "refused");
           return std::make_unique<FakeConnection>(FakeConnection{++opened_, false});
         },
         .reusable = [](const FakeConnection& c) { return !c.broken; }});
  }

  static Deadline Soon(std::chrono::milliseconds d = 1s) { return Clock::now() + d; }

  std::atomic<int> opened_{0};
  std::atomic<bool> refuse_{false};
};

TEST_F(ConnectionPoolTest, ReusesAReturnedConnection) {
  auto pool = MakePool(2);
  int first = 0;
  {
    auto lease = pool.Acquire(Soon());
    ASSERT_TRUE(lease.has_value());
    EXPECT_FALSE(lease->reused());
    first = (*lease)->id;
  }
  EXPECT_EQ(pool.idle_connections(), 1U);
  auto again = pool.Acquire(Soon());
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->reused());
  EXPECT_EQ((*again)->id, first);
  EXPECT_EQ(opened_.load(), 1);
}

TEST_F(ConnectionPoolTest, DropsAConnectionThatComesBackBroken) {
  auto pool = MakePool(2);
  {
    auto lease = pool.Acquire(Soon());
    ASSERT_TRUE(lease.has_value());
    (*lease)->broken = true;
  }
  EXPECT_EQ(pool.open_connections(), 0U);
  EXPECT_EQ(pool.idle_connections(), 0U);
  auto next = pool.Acquire(Soon());
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->reused());
  EXPECT_EQ(opened_.load(), 2);
}

TEST_F(ConnectionPoolTest, WaitsForAConnectionWhenFullAndTimesOutAsUnavailable) {
  auto pool = MakePool(1);
  auto held = pool.Acquire(Soon());
  ASSERT_TRUE(held.has_value());
  const auto start = Clock::now();
  auto waited = pool.Acquire(Soon(100ms));
  ASSERT_FALSE(waited.has_value());
  EXPECT_EQ(waited.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(waited.error().message.find("fake: timed out waiting for a pooled connection"),
            std::string::npos);
  EXPECT_GE(Clock::now() - start, 100ms);

  // A connection given back wakes a waiter.
  std::thread giver([&] {
    std::this_thread::sleep_for(50ms);
    auto released = std::move(*held);
  });
  auto woken = pool.Acquire(Soon(5s));
  giver.join();
  ASSERT_TRUE(woken.has_value());
  EXPECT_TRUE(woken->reused());
}

TEST_F(ConnectionPoolTest, AFailedOpenGivesItsSlotBack) {
  auto pool = MakePool(1);
  refuse_ = true;
  auto refused = pool.Acquire(Soon());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().message, "refused");
  EXPECT_EQ(pool.open_connections(), 0U);
  refuse_ = false;
  EXPECT_TRUE(pool.Acquire(Soon(100ms)).has_value());
}

TEST_F(ConnectionPoolTest, AFreshConnectionTakesTheSlotOfAnIdleOneWhenFull) {
  auto pool = MakePool(1);
  { ASSERT_TRUE(pool.Acquire(Soon()).has_value()); }
  auto fresh = pool.Acquire(Soon(100ms), /*fresh=*/true);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_FALSE(fresh->reused());
  EXPECT_EQ((*fresh)->id, 2);
  EXPECT_EQ(pool.open_connections(), 1U);
}

// The call loop: a failure that broke a reused connection (an idle connection the server
// closed) is retried once, on a new connection, and only for idempotent calls.
TEST_F(ConnectionPoolTest, RetriesAnIdempotentCallOnceOnAFreshConnection) {
  auto pool = MakePool(2);
  { ASSERT_TRUE(pool.Acquire(Soon()).has_value()); }  // one idle connection, id 1
  std::vector<std::pair<int, bool>> seen;             // connection id, broke it
  auto call = [&](FakeConnection& c) -> Result<int> {
    const bool fail = c.id == 1;
    seen.emplace_back(c.id, fail);
    if (fail) {
      c.broken = true;
      return MakeError(ErrorCode::kUnavailable, "connection reset");
    }
    return c.id;
  };
  auto r = pool.Run(Soon(), /*idempotent=*/true, call);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, 2);
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(pool.open_connections(), 1U);  // the broken one was dropped
}

TEST_F(ConnectionPoolTest, DoesNotRetryWhatCouldHaveBeenApplied) {
  auto pool = MakePool(2);
  { ASSERT_TRUE(pool.Acquire(Soon()).has_value()); }
  int calls = 0;
  auto breaking = [&](FakeConnection& c) -> Result<int> {
    ++calls;
    c.broken = true;
    return MakeError(ErrorCode::kUnavailable, "connection reset");
  };
  EXPECT_FALSE(pool.Run(Soon(), /*idempotent=*/false, breaking).has_value());
  EXPECT_EQ(calls, 1);  // not idempotent
  calls = 0;
  EXPECT_FALSE(pool.Run(Soon(), /*idempotent=*/true, breaking).has_value());
  EXPECT_EQ(calls, 1);  // a fresh connection failing is the server's answer
  { ASSERT_TRUE(pool.Acquire(Soon()).has_value()); }
  calls = 0;
  auto refusing = [&](FakeConnection&) -> Result<int> {
    ++calls;
    return MakeError(ErrorCode::kInternal, "the server said no");  // the connection is fine
  };
  EXPECT_FALSE(pool.Run(Soon(), /*idempotent=*/true, refusing).has_value());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(pool.idle_connections(), 1U);
}

TEST_F(ConnectionPoolTest, APassedDeadlineIsUnavailableWithoutACall) {
  auto pool = MakePool(1);
  int calls = 0;
  auto r = pool.Run(Clock::now() - 1ms, true, [&](FakeConnection&) -> Result<void> {
    ++calls;
    return {};
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(calls, 0);
}

TEST_F(ConnectionPoolTest, ManyThreadsNeverHoldMoreThanTheCapacity) {
  auto pool = MakePool(3);
  std::atomic<int> holding{0};
  std::atomic<int> most{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto r = pool.Run(Soon(5s), true, [&](FakeConnection& c) -> Result<void> {
          const int now = ++holding;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          if ((i + t) % 17 == 0) c.broken = true;  // some calls break their connection
          --holding;
          return {};
        });
        if (!r) ++failures;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(most.load(), 3);
  EXPECT_LE(pool.open_connections(), 3U);
}

}  // namespace
}  // namespace orchestra::storage
