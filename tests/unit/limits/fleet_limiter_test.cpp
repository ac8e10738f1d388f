// The fleet-wide limiter against a real Redis and a real PostgreSQL (tests/services), each test
// on both stores where it applies: the same decisions, messages and headers as the in-process
// RateLimiter on the same clock, shared by several instances, budgets in the store, NOSCRIPT,
// and what happens when the store is down or stalls.

#include "limits/fleet_limiter.hpp"

#include <atomic>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "limits/postgres_fleet_store.hpp"
#include "limits/redis_fleet_store.hpp"
#include "services/postgres_server.hpp"
#include "services/redis_server.hpp"

namespace orchestra::limits {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::services::PostgresServer;
using testing::services::RedisServer;

std::string UniquePrefix() {
  static std::atomic<int> n{0};
  return "t" + std::to_string(::getpid()) + "_" + std::to_string(n++) + "_";
}

// Where a test's limiter keeps its state: the store's kind, and a prefix of its own so that
// tests sharing a server do not see each other's counts.
enum class Kind : std::uint8_t { kRedis, kPostgres };

std::string KindName(const ::testing::TestParamInfo<Kind>& info) {
  return info.param == Kind::kRedis ? "Redis" : "Postgres";
}

FleetStoreFactory StoreOn(Kind kind, int port, const std::string& prefix) {
  if (kind == Kind::kRedis) {
    storage::RedisEndpoint endpoint;
    endpoint.host = "127.0.0.1";
    endpoint.port = static_cast<std::uint16_t>(port);
    return RedisFleetStore::Factory(endpoint, prefix);
  }
  PostgresFleetStore::Options o;
  o.url = "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/orchestra_test";
  o.prefix = prefix;
  o.connect_timeout = std::chrono::seconds(5);
  return PostgresFleetStore::Factory(o);
}

// The store of the process's shared server.
FleetStoreFactory SharedStore(Kind kind, const std::string& prefix) {
  return StoreOn(
      kind, kind == Kind::kRedis ? RedisServer::Shared().port() : PostgresServer::Shared().port(),
      prefix);
}

// A limiter with one worker loop on its own thread, like one Orchestra instance.
class Instance {
 public:
  Instance(FleetStoreFactory store, FleetLimiter::Options options)
      : work_(asio::make_work_guard(io_)),
        limiter_(1, WithStore(std::move(options), std::move(store)), nullptr),
        thread_([this] { io_.run(); }) {
    limiter_.StartWorker(0, io_.get_executor());
  }
  ~Instance() {
    asio::post(io_, [this] { limiter_.StopWorkers(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  std::optional<Refusal> Admit(const Request& request, Ticket& ticket) {
    return asio::co_spawn(io_, limiter_.AdmitAsync(request, ticket), asio::use_future).get();
  }
  void Settle(const Request& request, const Ticket& ticket, const Outcome& outcome) {
    limiter_.Settle(request, ticket, outcome);
  }
  // Until every settlement was answered by Redis.
  void Drain() {
    for (int i = 0; i < 2000 && limiter_.queued_settles() > 0; ++i)
      std::this_thread::sleep_for(1ms);
    ASSERT_EQ(limiter_.queued_settles(), 0u);
  }
  FleetLimiter& limiter() { return limiter_; }

 private:
  static FleetLimiter::Options WithStore(FleetLimiter::Options o, FleetStoreFactory store) {
    o.store = std::move(store);
    return o;
  }
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  FleetLimiter limiter_;
  std::thread thread_;
};

FleetLimiter::Options Clocked(std::int64_t* now_ms) {
  FleetLimiter::Options o;
  o.timeout = 2s;  // a loaded test machine; the timeout tests set their own
  o.inflight_lease = std::chrono::hours(24);
  o.clock = [now_ms] { return *now_ms; };
  return o;
}

Request Make(const KeyPolicy& policy, RateHeaders& headers, std::string_view model,
             std::int64_t estimate) {
  Request r;
  r.principal = "app";
  r.model = model;
  r.estimated_tokens = estimate;
  r.policy = &policy;
  r.rate_headers = &headers;
  return r;
}

Outcome Used(std::int64_t prompt, std::int64_t completion, double cost = 0) {
  Outcome o;
  o.status = 200;
  o.usage_known = true;
  o.prompt_tokens = prompt;
  o.completion_tokens = completion;
  o.model = "m";
  o.cost_usd = cost;
  return o;
}

// Random admissions and settlements on both limiters, on one hand-moved clock: every decision,
// message, Retry-After and header must be the same.
class FleetLimiterOn : public ::testing::TestWithParam<Kind> {};

TEST_P(FleetLimiterOn, DecidesAndReportsExactlyAsTheInProcessLimiter) {
  std::int64_t now_ms = 1'900'000'000'000;
  RateLimiter local([&now_ms] { return now_ms; });
  Instance fleet(SharedStore(GetParam(), UniquePrefix()), Clocked(&now_ms));
  KeyPolicy policy;
  policy.limits = {.rpm = 12, .tpm = 3000, .max_parallel = 4};
  policy.per_model.push_back({"m", {.rpm = 7, .tpm = 0, .max_parallel = 0}});
  std::mt19937 random(13);
  struct Open {
    Ticket local;
    Ticket fleet;
    std::string model;
    std::int64_t estimate;
  };
  std::vector<Open> open;
  int admitted = 0;
  int refused = 0;
  for (int step = 0; step < 400; ++step) {
    now_ms += std::uniform_int_distribution<int>(0, 3)(random) == 0
                  ? std::uniform_int_distribution<int>(0, 20'000)(random)
                  : std::uniform_int_distribution<int>(0, 300)(random);
    if (!open.empty() && std::uniform_int_distribution<int>(0, 2)(random) == 0) {
      const std::size_t i = std::uniform_int_distribution<std::size_t>(0, open.size() - 1)(random);
      Open o = open[i];
      open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
      Outcome outcome = Used(std::uniform_int_distribution<int>(0, 400)(random),
                             std::uniform_int_distribution<int>(0, 400)(random));
      outcome.refused = std::uniform_int_distribution<int>(0, 5)(random) == 0;
      RateHeaders h;
      local.Settle(Make(policy, h, o.model, o.estimate), o.local, outcome);
      fleet.Settle(Make(policy, h, o.model, o.estimate), o.fleet, outcome);
      fleet.Drain();
      continue;
    }
    const std::string model = std::uniform_int_distribution<int>(0, 1)(random) == 0 ? "m" : "n";
    const std::int64_t estimate = std::uniform_int_distribution<int>(0, 900)(random);
    RateHeaders local_headers;
    RateHeaders fleet_headers;
    Open o{{}, {}, model, estimate};
    auto a = local.Admit(Make(policy, local_headers, model, estimate), o.local);
    auto b = fleet.Admit(Make(policy, fleet_headers, model, estimate), o.fleet);
    ASSERT_EQ(a.has_value(), b.has_value()) << "step " << step;
    if (a) {
      ++refused;
      EXPECT_EQ(a->error.message, b->error.message) << "step " << step;
      EXPECT_EQ(a->error.retry_after_s, b->error.retry_after_s) << "step " << step;
      EXPECT_EQ(a->reason, b->reason);
    } else {
      ++admitted;
      EXPECT_NE(o.fleet.lease, 0u) << "step " << step << ": decided without the store";
      open.push_back(o);
    }
    EXPECT_EQ(local_headers.limit_requests, fleet_headers.limit_requests) << "step " << step;
    EXPECT_EQ(local_headers.remaining_requests, fleet_headers.remaining_requests)
        << "step " << step;
    EXPECT_EQ(local_headers.reset_requests_ms, fleet_headers.reset_requests_ms) << "step " << step;
    EXPECT_EQ(local_headers.limit_tokens, fleet_headers.limit_tokens) << "step " << step;
    EXPECT_EQ(local_headers.remaining_tokens, fleet_headers.remaining_tokens) << "step " << step;
    EXPECT_EQ(local_headers.reset_tokens_ms, fleet_headers.reset_tokens_ms) << "step " << step;
    if (::testing::Test::HasFailure()) return;
  }
  // The sequence exercised both outcomes.
  EXPECT_GT(admitted, 50);
  EXPECT_GT(refused, 50);
}

// Two instances hammering one key together from several threads admit the limit, not more.
TEST_P(FleetLimiterOn, InstancesSharingTheStoreAdmitTheLimitTogether) {
  FleetLimiter::Options options;
  options.timeout = 2s;
  const std::string prefix = UniquePrefix();
  Instance a(SharedStore(GetParam(), prefix), options);
  Instance b(SharedStore(GetParam(), prefix), options);
  KeyPolicy policy;
  policy.limits.rpm = 50;
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Instance& instance = t % 2 == 0 ? a : b;
      for (int i = 0; i < 40; ++i) {
        RateHeaders h;
        Ticket ticket;
        if (!instance.Admit(Make(policy, h, "m", 0), ticket)) {
          ++admitted;
          instance.Settle(Make(policy, h, "m", 0), ticket, Used(1, 1));
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(admitted.load(), 50);
}

TEST(FleetLimiter, AFlushedScriptCacheIsReloaded) {
  RedisServer redis;
  std::int64_t now_ms = 1'900'000'000'000;
  Instance instance(StoreOn(Kind::kRedis, redis.port(), UniquePrefix()), Clocked(&now_ms));
  KeyPolicy policy;
  policy.limits.rpm = 2;
  RateHeaders h;
  Ticket ticket;
  ASSERT_FALSE(instance.Admit(Make(policy, h, "m", 0), ticket));
  instance.Settle(Make(policy, h, "m", 0), ticket, Used(1, 1));
  instance.Drain();
  ASSERT_EQ(
      std::system(
          ("redis-cli -p " + std::to_string(redis.port()) + " SCRIPT FLUSH >/dev/null").c_str()),
      0);
  ASSERT_FALSE(instance.Admit(Make(policy, h, "m", 0), ticket));
  EXPECT_EQ(h.remaining_requests, 0);
  instance.Settle(Make(policy, h, "m", 0), ticket, Used(1, 1));
  instance.Drain();
  auto refused = instance.Admit(Make(policy, h, "m", 0), ticket);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->reason, "rate_limit");
}

// A budget is checked and spent in the store: two instances stop within one request of it, and
// a counter the store does not hold starts from what the ledger knows.
TEST_P(FleetLimiterOn, ABudgetStopsWithinOneRequestAcrossInstances) {
  std::int64_t now_ms = 1'900'000'000'000;
  FleetLimiter::Options options = Clocked(&now_ms);
  options.period_spend = [](std::string_view, BudgetPeriod) { return 0.25; };
  const std::string prefix = UniquePrefix();
  Instance a(SharedStore(GetParam(), prefix), options);
  Instance b(SharedStore(GetParam(), prefix), options);
  KeyPolicy policy;
  policy.budget = Budget{1.0, BudgetPeriod::kDay};
  int served = 0;
  for (int i = 0; i < 10; ++i) {
    Instance& instance = i % 2 == 0 ? a : b;
    RateHeaders h;
    Ticket ticket;
    auto refused = instance.Admit(Make(policy, h, "m", 0), ticket);
    if (refused) {
      EXPECT_EQ(refused->error.code, ErrorCode::kInsufficientQuota);
      EXPECT_EQ(refused->reason, "budget");
      EXPECT_NE(refused->error.message.find("1.0000 of its 1.0000 USD"), std::string::npos)
          << refused->error.message;
      break;
    }
    ++served;
    instance.Settle(Make(policy, h, "m", 0), ticket, Used(10, 10, 0.25));
    instance.Drain();
  }
  // 0.25 known before, then three of 0.25 each reach 1.0.
  EXPECT_EQ(served, 3);
  // Requests without a model spend nothing and are not held to the budget.
  RateHeaders h;
  Ticket ticket;
  EXPECT_FALSE(a.Admit(Make(policy, h, "", 0), ticket));
}

// The store down: allow admits under this instance's own limits, deny refuses 503; neither waits.
TEST_P(FleetLimiterOn, AStoreDownFallsBackAsConfiguredWithoutWaiting) {
  int port = 0;
  std::unique_ptr<RedisServer> redis;
  std::unique_ptr<PostgresServer> postgres;
  if (GetParam() == Kind::kRedis) {
    redis = std::make_unique<RedisServer>();
    redis->Stop();
    port = redis->port();
  } else {
    postgres = std::make_unique<PostgresServer>();
    postgres->Stop();
    port = postgres->port();
  }
  KeyPolicy policy;
  policy.limits.rpm = 2;
  for (auto mode : {FleetLimiter::OnError::kAllow, FleetLimiter::OnError::kDeny}) {
    FleetLimiter::Options options;
    options.timeout = 5ms;
    options.on_error = mode;
    Instance instance(StoreOn(GetParam(), port, UniquePrefix()), options);
    int admitted = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i) {
      RateHeaders h;
      Ticket ticket;
      auto refused = instance.Admit(Make(policy, h, "m", 0), ticket);
      if (!refused) {
        ++admitted;
        instance.Settle(Make(policy, h, "m", 0), ticket, Used(1, 1));
      } else if (mode == FleetLimiter::OnError::kDeny) {
        EXPECT_EQ(refused->error.code, ErrorCode::kUnavailable);
        EXPECT_EQ(refused->reason, "limits_backend");
      } else {
        EXPECT_EQ(refused->reason, "rate_limit");  // the local limit
      }
    }
    // Not a performance figure: a hang would be seconds (the connect timeout) per call.
    EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms);
    EXPECT_EQ(admitted, mode == FleetLimiter::OnError::kAllow ? 2 : 0);
  }
}

// A stalled Redis: admission gives up after the timeout, and the reservation the script made
// when Redis came back is given back, so nothing stays charged.
TEST(FleetLimiter, AStalledRedisTimesOutAndALateReservationIsGivenBack) {
  RedisServer redis;
  std::int64_t now_ms = 1'900'000'000'000;
  FleetLimiter::Options options = Clocked(&now_ms);
  options.timeout = 20ms;
  Instance instance(StoreOn(Kind::kRedis, redis.port(), UniquePrefix()), options);
  KeyPolicy policy;
  policy.limits = {.rpm = 5, .tpm = 0, .max_parallel = 1};
  RateHeaders h;
  Ticket warm;
  ASSERT_FALSE(instance.Admit(Make(policy, h, "m", 0), warm));  // connected, script loaded
  instance.Settle(Make(policy, h, "m", 0), warm, Used(1, 1));
  instance.Drain();
  redis.Pause();
  Ticket ticket;
  const auto start = std::chrono::steady_clock::now();
  auto during = instance.Admit(Make(policy, h, "m", 0), ticket);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms);
  EXPECT_FALSE(during);  // allowed, under the local limits
  EXPECT_EQ(ticket.lease, 0u);
  instance.Settle(Make(policy, h, "m", 0), ticket, Used(1, 1));
  redis.Resume();
  std::this_thread::sleep_for(100ms);
  instance.Drain();
  // Only the first request counts; the stalled one's reservation (and in-flight lease) is back.
  Ticket next;
  ASSERT_FALSE(instance.Admit(Make(policy, h, "m", 0), next));
  EXPECT_EQ(h.remaining_requests, 3);
}

// A key locked by another transaction (a stalled or contended database): admission gives up after
// the timeout, and the reservation the function made once the lock was free is given back.
TEST(FleetLimiter, AStalledDatabaseTimesOutAndALateReservationIsGivenBack) {
  PostgresServer& postgres = PostgresServer::Shared();
  std::int64_t now_ms = 1'900'000'000'000;
  FleetLimiter::Options options = Clocked(&now_ms);
  options.timeout = 50ms;
  Instance instance(SharedStore(Kind::kPostgres, UniquePrefix()), options);
  KeyPolicy policy;
  policy.limits = {.rpm = 5, .tpm = 0, .max_parallel = 1};
  RateHeaders h;
  // Connected and the schema made: the first admission the database answered in time (those
  // before were decided by the instance alone and do not count there).
  for (int i = 0; i < 100; ++i) {
    Ticket warm;
    ASSERT_FALSE(instance.Admit(Make(policy, h, "m", 0), warm));
    instance.Settle(Make(policy, h, "m", 0), warm, Used(1, 1));
    if (warm.lease != 0) break;
    std::this_thread::sleep_for(50ms);
  }
  instance.Drain();
  // Another session holds the key's lock for 1 s (the one every admission of "app" takes).
  const std::string hold = "psql -q -h 127.0.0.1 -p " + std::to_string(postgres.port()) +
                           " -U postgres -d orchestra_test -c \"SELECT pg_advisory_lock(4243, "
                           "hashtext('app')), pg_sleep(1)\" >/dev/null 2>&1";
  std::thread holder([&hold] { EXPECT_EQ(std::system(hold.c_str()), 0); });
  std::this_thread::sleep_for(300ms);  // psql connected and holds the lock
  Ticket ticket;
  const auto start = std::chrono::steady_clock::now();
  auto during = instance.Admit(Make(policy, h, "m", 0), ticket);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms);
  EXPECT_FALSE(during);  // allowed, under the local limits
  EXPECT_EQ(ticket.lease, 0u);
  instance.Settle(Make(policy, h, "m", 0), ticket, Used(1, 1));
  holder.join();
  std::this_thread::sleep_for(100ms);
  instance.Drain();
  // Only the first request counts; the stalled one's reservation (and in-flight lease) is back.
  Ticket next;
  ASSERT_FALSE(instance.Admit(Make(policy, h, "m", 0), next));
  EXPECT_EQ(h.remaining_requests, 3);
}

INSTANTIATE_TEST_SUITE_P(Stores, FleetLimiterOn, ::testing::Values(Kind::kRedis, Kind::kPostgres),
                         KindName);

}  // namespace
}  // namespace orchestra::limits
