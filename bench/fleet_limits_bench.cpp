// Latency of the fleet-wide limits at one connection (issue 13's budget: admission + settlement
// ≤ one loopback Redis round trip, ~50 µs, p50), against a throwaway redis-server on loopback, or
// with `postgres` a throwaway PostgreSQL 15 (the plpgsql functions of postgres_fleet_store.cpp):
//
//   ping      one PING (PostgreSQL: a prepared SELECT 1) through the same kind of non-blocking
//             connection: the round trip itself
//   rate limits: FleetLimiter::AdmitAsync + Settle for a key with rpm + tpm + max_parallel and a
//             per-model limit (two buckets, two leases), one request at a time: back to back
//             (so each admission waits behind the previous settlement in Redis), split into its
//             parts, and with the previous settlement landed first (as when an upstream call
//             separates them)
//   + budget  the same with a budget as well
//
// Each runs `iterations` times in one coroutine on one event loop (as a worker serves one
// connection) and prints p50, p90 and p99 in microseconds.
//
//   build/release/bench/orchestra_bench_fleet_limits [iterations] [redis|postgres]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "limits/fleet_limiter.hpp"
#include "limits/postgres_fleet_store.hpp"
#include "limits/redis_fleet_store.hpp"
#include "services/postgres_server.hpp"
#include "services/redis_server.hpp"
#include "storage/postgres/pg_pipe.hpp"

namespace {

namespace asio = boost::asio;
using namespace orchestra;
using Clock = std::chrono::steady_clock;

void Report(const char* name, std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[static_cast<std::size_t>(q * (us.size() - 1))]; };
  std::printf("%-34s n=%zu  p50 %.1f us  p90 %.1f us  p99 %.1f us\n", name, us.size(), at(0.5),
              at(0.9), at(0.99));
}

// One round trip to the store's server, on a connection like the limiter's (Redis: `redis`;
// PostgreSQL: `postgres`).
asio::awaitable<bool> Ping(storage::RedisPipe* redis, storage::PgPipe* postgres) {
  if (redis != nullptr) {
    std::string wire;
    const std::string_view args[] = {"PING"};
    storage::AppendCommand(wire, args);
    auto r = co_await redis->Call(wire, 1, std::chrono::seconds(1));
    co_return static_cast<bool>(r);
  }
  std::vector<storage::PgPipe::Query> q(1);
  auto r = co_await postgres->Call(std::move(q), std::chrono::seconds(1));
  co_return r && (*r)[0].ok;
}

asio::awaitable<void> Run(limits::FleetLimiter& limiter, storage::RedisPipe* redis,
                          storage::PgPipe* postgres, int n) {
  std::vector<double> ping;
  for (int i = 0; i < n + 100; ++i) {
    const auto t0 = Clock::now();
    const bool ok = co_await Ping(redis, postgres);
    const auto t1 = Clock::now();
    if (!ok) std::printf("ping failed\n");
    if (i >= 100) ping.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  Report("ping", ping);

  limits::KeyPolicy policy;
  policy.limits = {1'000'000'000, 1'000'000'000'000, 1'000'000};
  policy.per_model.push_back({"gpt-4o-mini", {1'000'000'000, 1'000'000'000'000, 1'000'000}});
  limits::Outcome outcome;
  outcome.status = 200;
  outcome.model = "gpt-4o-mini";
  outcome.usage_known = true;
  outcome.prompt_tokens = 120;
  outcome.completion_tokens = 40;
  outcome.cost_usd = 0.0001;
  for (const bool with_budget : {false, true}) {
    if (with_budget) policy.budget = limits::Budget{1e12, limits::BudgetPeriod::kMonth};
    limits::RateHeaders headers;
    limits::Request request;
    request.principal = "bench";
    request.model = "gpt-4o-mini";
    request.estimated_tokens = 200;
    request.policy = &policy;
    request.rate_headers = &headers;
    std::vector<double> both;
    std::vector<double> admit;
    std::vector<double> settle;
    std::vector<double> apart;
    for (int i = 0; i < n + 100; ++i) {
      limits::Ticket ticket;
      const auto t0 = Clock::now();
      auto refused = co_await limiter.AdmitAsync(request, ticket);
      const auto t1 = Clock::now();
      limiter.Settle(request, ticket, outcome);
      const auto t2 = Clock::now();
      if (refused) std::printf("refused: %s\n", refused->error.message.c_str());
      if (i >= 100) {
        both.push_back(std::chrono::duration<double, std::micro>(t2 - t0).count());
        admit.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        settle.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
      }
    }
    // The same with the previous settlement landed first (an upstream call in between, as in a
    // real request): what admission adds when Redis is not busy with the settlement.
    asio::steady_timer pause(co_await asio::this_coro::executor);
    for (int i = 0; i < n / 4 + 100; ++i) {
      while (limiter.queued_settles() > 0) {
        pause.expires_after(std::chrono::microseconds(20));
        co_await pause.async_wait(asio::use_awaitable);
      }
      limits::Ticket ticket;
      const auto t0 = Clock::now();
      auto refused = co_await limiter.AdmitAsync(request, ticket);
      limiter.Settle(request, ticket, outcome);
      const auto t2 = Clock::now();
      if (refused) std::printf("refused: %s\n", refused->error.message.c_str());
      if (i >= 100) apart.push_back(std::chrono::duration<double, std::micro>(t2 - t0).count());
    }
    std::printf("%s:\n", with_budget ? "rate limits + budget" : "rate limits");
    Report("  admit+settle back to back", both);
    Report("  of which admit", admit);
    Report("  of which Settle()", settle);
    Report("  admit+settle, previous settled", apart);
  }
  if (redis == nullptr) co_return;
  // Where the time goes on the server: microseconds per call of each command.
  std::string info;
  const std::string_view info_args[] = {"INFO", "commandstats"};
  storage::AppendCommand(info, info_args);
  auto stats = co_await redis->Call(info, 1, std::chrono::seconds(1));
  if (stats) std::printf("%s\n", (*stats)[0].text.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::max(100, std::atoi(argv[1])) : 20'000;
  const bool on_postgres = argc > 2 && std::string_view(argv[2]) == "postgres";
  std::unique_ptr<testing::services::RedisServer> redis_server;
  std::unique_ptr<testing::services::PostgresServer> postgres_server;
  asio::io_context io;
  limits::FleetLimiter::Options options;
  std::unique_ptr<storage::RedisPipe> redis;
  std::unique_ptr<storage::PgPipe> postgres;
  if (on_postgres) {
    postgres_server = std::make_unique<testing::services::PostgresServer>();
    limits::PostgresFleetStore::Options store;
    store.url = postgres_server->url();
    options.store = limits::PostgresFleetStore::Factory(store);
    storage::PgPipe::Options pipe;
    pipe.url = postgres_server->url();
    pipe.statements = {{"ping", "SELECT 1"}};
    postgres = std::make_unique<storage::PgPipe>(io.get_executor(), pipe);
  } else {
    redis_server = std::make_unique<testing::services::RedisServer>();
    storage::RedisEndpoint endpoint;
    endpoint.port = static_cast<std::uint16_t>(redis_server->port());
    options.store = limits::RedisFleetStore::Factory(endpoint);
    redis = std::make_unique<storage::RedisPipe>(io.get_executor(), endpoint);
  }
  options.timeout = std::chrono::seconds(1);
  limits::FleetLimiter limiter(1, options, nullptr);
  limiter.StartWorker(0, io.get_executor());
  asio::co_spawn(io, Run(limiter, redis.get(), postgres.get(), n), [&](std::exception_ptr) {
    limiter.StopWorkers();
    if (redis) redis->Close();
    if (postgres) postgres->Close();
  });
  io.run();
  return 0;
}
