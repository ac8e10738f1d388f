#include "net/redis_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "services/redis_server.hpp"

namespace orchestra::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::services::RedisServer;

RedisClient::Options For(const RedisServer& redis, int max_connections = 8) {
  RedisClient::Options o;
  o.address = ParseRedisUrl(redis.url(), "test");
  o.max_connections = max_connections;
  return o;
}

// Runs `body` as a coroutine on a fresh io_context until it ends, then closes the client's
// connections (they belong to that io_context).
template <class F>
void RunCoroutine(RedisClient& client, F body) {
  asio::io_context io;
  asio::co_spawn(io, body(), asio::detached);
  io.run();
  client.ReleaseConnections();
}

TEST(RedisClient, SetsAndGetsBytesAsTheyAre) {
  RedisServer& redis = RedisServer::Shared();
  RedisClient client(For(redis));
  const std::string value("binary\r\n\0value$-1\r\n", 20);
  RunCoroutine(client, [&]() -> asio::awaitable<void> {
    auto set = co_await client.Set(0, "rc-test:bytes", value, 60s, 1s);
    EXPECT_TRUE(set) << set.error().message;
    auto got = co_await client.Get(0, "rc-test:bytes", 1s);
    EXPECT_TRUE(got && *got && **got == value);
    auto missing = co_await client.Get(0, "rc-test:missing", 1s);
    EXPECT_TRUE(missing && !*missing);
  });
}

TEST(RedisClient, ValuesExpireWithTheirTtl) {
  RedisServer& redis = RedisServer::Shared();
  RedisClient client(For(redis));
  RunCoroutine(client, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await client.Set(0, "rc-test:ttl", "v", 30ms, 1s));
    asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
    co_await t.async_wait(asio::use_awaitable);
    auto got = co_await client.Get(0, "rc-test:ttl", 1s);
    EXPECT_TRUE(got && !*got);
  });
}

// A command that times out closes its connection: the reply that comes later must not answer
// the next command.
TEST(RedisClient, AStalledRedisTimesOutAndItsLateReplyAnswersNothingElse) {
  RedisServer redis;
  RedisClient client(For(redis));
  RunCoroutine(client, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await client.Set(0, "a", "value of a", 60s, 1s));
    EXPECT_TRUE(co_await client.Set(0, "b", "value of b", 60s, 1s));
    redis.Pause();
    auto stalled = co_await client.Get(0, "a", 20ms);
    EXPECT_FALSE(stalled);
    if (!stalled) {
      EXPECT_EQ(stalled.error().code, ErrorCode::kDeadlineExceeded);
    }
    redis.Resume();
    auto b = co_await client.Get(0, "b", 1s);
    EXPECT_TRUE(b && *b) << (b ? "nil" : b.error().message);
    if (b && *b) {
      EXPECT_EQ(**b, "value of b");
    }
  });
}

TEST(RedisClient, AnUnreachableRedisIsUnavailable) {
  RedisServer redis;
  RedisClient client(For(redis));
  redis.Stop();
  RunCoroutine(client, [&]() -> asio::awaitable<void> {
    auto got = co_await client.Get(0, "a", 1s);
    EXPECT_FALSE(got);
    if (!got) {
      EXPECT_EQ(got.error().code, ErrorCode::kUnavailable);
    }
    auto warmed = co_await client.Warm(0, 1s);
    EXPECT_FALSE(warmed);
  });
}

TEST(RedisClient, ACommandFindingEveryConnectionBusyDoesNotWait) {
  RedisServer redis;
  RedisClient client(For(redis, 1));
  asio::io_context io;
  Result<std::optional<std::string>> first = Error(ErrorCode::kInternal, "not run");
  Result<std::optional<std::string>> second = Error(ErrorCode::kInternal, "not run");
  redis.Pause();
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { first = co_await client.Get(0, "a", 300ms); },
      asio::detached);
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { second = co_await client.Get(0, "a", 300ms); },
      asio::detached);
  io.run();
  client.ReleaseConnections();
  redis.Resume();
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, ErrorCode::kDeadlineExceeded);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message.find("busy"), std::string::npos) << second.error().message;
}

TEST(RedisClient, AReplyLargerThanAllowedIsRefused) {
  RedisServer& redis = RedisServer::Shared();
  RedisClient::Options o = For(redis);
  o.max_reply_bytes = 64 * 1024;
  RedisClient client(std::move(o));
  RunCoroutine(client, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await client.Set(0, "rc-test:large", std::string(100'000, 'x'), 60s, 1s));
    EXPECT_TRUE(co_await client.Set(0, "rc-test:small", "small", 60s, 1s));
    auto large = co_await client.Get(0, "rc-test:large", 1s);
    EXPECT_FALSE(large);
    auto small = co_await client.Get(0, "rc-test:small", 1s);  // on a new connection
    EXPECT_TRUE(small && *small && **small == "small");
  });
}

TEST(RedisClient, FormatsRespArraysOfBulkStrings) {
  EXPECT_EQ(FormatRedisCommand({"GET", "k"}), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  EXPECT_EQ(FormatRedisCommand({"SET", ""}), "*2\r\n$3\r\nSET\r\n$0\r\n\r\n");
}

}  // namespace
}  // namespace orchestra::net
