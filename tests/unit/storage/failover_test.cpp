// storage.secondary: a Redis primary that goes away under load, and comes back.
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "observability/metrics.hpp"
#include "services/redis_server.hpp"
#include "storage/storage.hpp"
#include "unit/storage/storage_test_support.hpp"

namespace orchestra::storage {
namespace {

namespace asio = boost::asio;
using orchestra::testing::services::RedisServer;
using testing::Await;
using namespace std::chrono_literals;

class StorageFailover : public ::testing::Test {
 protected:
  config::StorageConfig Config(bool with_secondary) {
    config::StorageConfig c;
    c.backend = config::StorageBackend::kRedis;
    c.url = primary_.url();
    c.operation_timeout = 2s;
    if (with_secondary) {
      c.secondary = std::make_shared<config::StorageConfig>();
      c.secondary->backend = config::StorageBackend::kRedis;
      c.secondary->url = secondary_.url();
      c.secondary->operation_timeout = 2s;
    }
    return c;
  }

  std::unique_ptr<Storage> Open() {
    StorageOptions options;
    options.probe_interval = 100ms;
    options.failback_after = 2;
    options.on_event = [this](std::string_view message) {
      std::lock_guard lock(events_mutex_);
      events_.emplace_back(message);
    };
    return OpenStorage(Config(true), metrics_, std::move(options));
  }

  bool EventSeen(std::string_view needle) {
    std::lock_guard lock(events_mutex_);
    for (const auto& e : events_) {
      if (e.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  // Waits (bounded) for the storage to return to the primary.
  static bool WaitForFailback(Storage& storage) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (storage.failover_active() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    return !storage.failover_active();
  }

  // What a storage on one server alone sees.
  std::optional<std::string> ReadDirect(const std::string& url, const std::string& key) {
    config::StorageConfig c;
    c.backend = config::StorageBackend::kRedis;
    c.url = url;
    observability::Registry registry;
    auto direct = OpenStorage(c, registry);
    return Await(direct->kv().Retrieve("t", key)).value();
  }

  std::string Gauge() {
    const std::string text = metrics_.Render();
    const auto at = text.find("\norchestra_storage_failover_active ");
    return at == std::string::npos ? "" : text.substr(at + 35, 1);
  }

  RedisServer primary_;
  RedisServer secondary_;
  observability::Registry metrics_;
  std::mutex events_mutex_;
  std::vector<std::string> events_;
};

TEST_F(StorageFailover, KeepsServingFromTheSecondaryWhenThePrimaryStopsAndReturns) {
  auto storage = Open();
  ASSERT_FALSE(storage->failover_active());
  EXPECT_EQ(Gauge(), "0");

  // Load: writers store and read back their keys; the primary is killed part way through.
  asio::io_context io;
  std::atomic<int> done{0};
  std::atomic<int> failures{0};
  std::string first_failure;
  constexpr int kWriters = 6;
  constexpr int kEach = 150;
  for (int w = 0; w < kWriters; ++w) {
    asio::co_spawn(
        io,
        [&, w]() -> asio::awaitable<void> {
          for (int i = 0; i < kEach; ++i) {
            const std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
            auto stored = co_await storage->kv().Store("t", key, "1", std::nullopt);
            auto read = co_await storage->kv().Retrieve("t", key);
            if (!stored || !read) {
              if (failures++ == 0) {
                first_failure = !stored ? stored.error().message : read.error().message;
              }
            }
            if (++done == kWriters * kEach / 3) primary_.Stop();
          }
        },
        asio::detached);
  }
  std::thread helper([&] { io.run(); });
  io.run();
  helper.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;
  EXPECT_FALSE(primary_.running());

  EXPECT_TRUE(storage->failover_active());
  EXPECT_EQ(Gauge(), "1");
  EXPECT_TRUE(EventSeen("failing over to the secondary redis"));
  StorageHealth health = Await(storage->CheckHealth());
  EXPECT_TRUE(health.ready);
  EXPECT_FALSE(health.primary_reachable);
  EXPECT_EQ(health.secondary_reachable, true);
  EXPECT_TRUE(health.failover_active);
  EXPECT_NE(health.detail.find("primary redis: down"), std::string::npos) << health.detail;
  EXPECT_NE(health.detail.find("failover active"), std::string::npos) << health.detail;

  // Writes made during the outage are on the secondary.
  const std::string last = "w0-" + std::to_string(kEach - 1);
  EXPECT_EQ(ReadDirect(secondary_.url(), last), "1");
  ASSERT_TRUE(Await(storage->kv().Store("t", "during", "outage", std::nullopt)).has_value());
  EXPECT_EQ(ReadDirect(secondary_.url(), "during"), "outage");

  // The primary comes back: calls return to it.
  primary_.Start();
  ASSERT_TRUE(WaitForFailback(*storage));
  EXPECT_EQ(Gauge(), "0");
  EXPECT_TRUE(EventSeen("answers again"));
  ASSERT_TRUE(Await(storage->kv().Store("t", "after", "recovery", std::nullopt)).has_value());
  EXPECT_EQ(ReadDirect(primary_.url(), "after"), "recovery");
  EXPECT_EQ(ReadDirect(secondary_.url(), "after"), std::nullopt);
  health = Await(storage->CheckHealth());
  EXPECT_TRUE(health.ready);
  EXPECT_FALSE(health.failover_active);
  EXPECT_EQ(health.detail, "primary redis: ok; secondary redis: ok");

  const std::string text = metrics_.Render();
  EXPECT_NE(text.find("backend=\"redis\",op=\"store\",outcome=\"unavailable\"}"),
            std::string::npos);
  EXPECT_NE(text.find("backend=\"redis_secondary\",op=\"store\",outcome=\"ok\"}"),
            std::string::npos);
}

TEST_F(StorageFailover, HealthCheckFailsOverWithoutTraffic) {
  auto storage = Open();
  primary_.Stop();
  const StorageHealth health = Await(storage->CheckHealth());
  EXPECT_TRUE(health.ready);
  EXPECT_TRUE(health.failover_active);
  EXPECT_TRUE(storage->failover_active());
}

TEST_F(StorageFailover, StartsOnTheSecondaryWhenThePrimaryIsDownAtStartUp) {
  primary_.Stop();
  auto storage = Open();
  EXPECT_TRUE(storage->failover_active());
  EXPECT_EQ(Gauge(), "1");
  ASSERT_TRUE(Await(storage->kv().Store("t", "k", "v", std::nullopt)).has_value());
  auto id = Await(storage->checkpoints().Create("t", "agent", "{}", std::nullopt));
  ASSERT_TRUE(id.has_value()) << id.error().message;
  primary_.Start();
  EXPECT_TRUE(WaitForFailback(*storage));
}

TEST_F(StorageFailover, RefusesToStartWhenNothingCanServe) {
  primary_.Stop();
  observability::Registry registry;
  try {
    OpenStorage(Config(false), registry);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("primary redis is unreachable"), std::string::npos)
        << e.what();
  }
  secondary_.Stop();
  observability::Registry registry2;
  try {
    OpenStorage(Config(true), registry2);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("secondary redis is unreachable"), std::string::npos)
        << e.what();
  }
}

TEST_F(StorageFailover, WithoutASecondaryAnOutageIsUnavailable) {
  observability::Registry registry;
  auto storage = OpenStorage(Config(false), registry);
  primary_.Stop();
  auto r = Await(storage->kv().Store("t", "k", "v", std::nullopt));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  const StorageHealth health = Await(storage->CheckHealth());
  EXPECT_FALSE(health.ready);
  EXPECT_FALSE(health.failover_active);
  primary_.Start();
  // Reconnects by itself.
  EXPECT_TRUE(Await(storage->kv().Store("t", "k", "v", std::nullopt)).has_value());
}

}  // namespace
}  // namespace orchestra::storage
