// One behaviour, four backends: every test here runs against SQLite, Redis, PostgreSQL and
// Firestore (its emulator) through the public Storage interface (real servers, started by
// tests/services).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "common/random.hpp"
#include "observability/metrics.hpp"
#include "services/child.hpp"
#include "storage/checkpoint_id.hpp"
#include "storage/firestore/firestore_backend.hpp"
#include "storage/postgres/postgres_backend.hpp"
#include "storage/redis/redis_backend.hpp"
#include "storage/sqlite/sqlite_backend.hpp"
#include "storage/storage.hpp"
#include "unit/storage/storage_test_support.hpp"

namespace orchestra::storage {
namespace {

namespace asio = boost::asio;
using testing::Await;
using testing::BackendKind;
using namespace std::chrono_literals;

class StorageConformance : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::kFirestore && !testing::FirestoreEmulatorAvailable(&why)) {
      GTEST_SKIP() << why;
    }
    config_ = testing::ConfigFor(GetParam(), dir_.path());
    Reopen();
    // The servers are shared by the tests of this process: each test has its own tenants.
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    tenant_ = std::string(info->name()).substr(0, 40) + "-" + RandomHex(4);
    other_tenant_ = tenant_ + "-other";
  }

  void Reopen() {
    storage_.reset();
    metrics_ = std::make_unique<observability::Registry>();
    storage_ = OpenStorage(config_, *metrics_);
  }

  KvStore& kv() { return storage_->kv(); }
  CheckpointStore& checkpoints() { return storage_->checkpoints(); }

  // The backend alone, for what the facade cannot show (clock skew between instances).
  std::unique_ptr<Backend> RawBackend() {
    switch (GetParam()) {
      case BackendKind::kSqlite:
        return SqliteBackend::Open({.path = config_.path});
      case BackendKind::kRedis:
        return RedisBackend::Create({.url = config_.url});
      case BackendKind::kPostgres:
        return PostgresBackend::Create({.url = config_.url});
      case BackendKind::kFirestore:
        return FirestoreBackend::Create({.project = config_.firestore.project,
                                         .emulator_host = config_.firestore.emulator_host});
    }
    return nullptr;
  }

  void Put(const std::string& key, const std::string& value,
           std::optional<std::chrono::milliseconds> ttl = std::nullopt) {
    auto r = Await(kv().Store(tenant_, key, value, ttl));
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }

  std::optional<std::string> Get(const std::string& key, const std::string& tenant = "") {
    auto r = Await(kv().Retrieve(tenant.empty() ? tenant_ : tenant, key));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? *r : std::nullopt;
  }

  // Every key of a listing, page by page; checks each page's size.
  std::vector<std::string> ListAll(const std::string& tenant, const std::string& pattern, int limit,
                                   int* pages = nullptr) {
    std::vector<std::string> keys;
    std::string cursor;
    int count = 0;
    do {
      auto page = Await(kv().ListKeys(tenant, pattern, limit, cursor));
      EXPECT_TRUE(page.has_value()) << page.error().message;
      if (!page) break;
      EXPECT_LE(page->keys.size(), static_cast<std::size_t>(limit));
      keys.insert(keys.end(), page->keys.begin(), page->keys.end());
      cursor = page->next_cursor;
      EXPECT_LT(++count, 10000) << "the listing does not end";
    } while (!cursor.empty() && count < 10000);
    if (pages != nullptr) *pages = count;
    return keys;
  }

  std::vector<std::string> Sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  orchestra::testing::services::ScratchDir dir_{"orchestra-storage-test"};
  config::StorageConfig config_;
  std::unique_ptr<observability::Registry> metrics_;
  std::unique_ptr<Storage> storage_;
  std::string tenant_;
  std::string other_tenant_;
};

// --- Key/value -------------------------------------------------------------------------------

TEST_P(StorageConformance, StoresRetrievesAndDeletes) {
  Put("greeting", R"({"text":"hello","n":1})");
  EXPECT_EQ(Get("greeting"), R"({"text":"hello","n":1})");
  EXPECT_TRUE(Await(kv().Exists(tenant_, "greeting")).value());
  EXPECT_FALSE(Await(kv().Exists(tenant_, "missing")).value());
  EXPECT_EQ(Get("missing"), std::nullopt);

  EXPECT_TRUE(Await(kv().Delete(tenant_, "greeting")).value());
  EXPECT_FALSE(Await(kv().Delete(tenant_, "greeting")).value());
  EXPECT_EQ(Get("greeting"), std::nullopt);
  EXPECT_FALSE(Await(kv().Exists(tenant_, "greeting")).value());
}

TEST_P(StorageConformance, OverwriteReplacesValueAndLifetime) {
  Put("k", "1", 1s);
  Put("k", "2");  // no TTL any more
  EXPECT_EQ(Get("k"), "2");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(Get("k"), "2");
}

TEST_P(StorageConformance, StoresValuesByteForByte) {
  const std::string unicode = R"({"s":"ü€😀 \" \\ \u0000 \n","a":[1,2.5,null,true]})";
  Put("unicode", unicode);
  EXPECT_EQ(Get("unicode"), unicode);
  std::string big = "\"" + std::string(config_.max_value_bytes - 2, 'x') + "\"";
  Put("big", big);  // exactly at the limit
  EXPECT_EQ(Get("big"), big);
  Put("ü/ключ with spaces:and*stars?", "1");
  EXPECT_EQ(Get("ü/ключ with spaces:and*stars?"), "1");
  const std::string longest(kMaxKeyBytes, 'k');
  Put(longest, "2");
  EXPECT_EQ(Get(longest), "2");
}

TEST_P(StorageConformance, ExpiredEntriesAreInvisibleAtOnce) {
  Put("short", "1", 1s);
  Put("long", "2", 1h);
  Put("forever", "3");
  EXPECT_EQ(Get("short"), "1");
  std::this_thread::sleep_for(1600ms);
  // The sweeper runs every 60 s here: invisibility must not depend on it.
  EXPECT_EQ(Get("short"), std::nullopt);
  EXPECT_FALSE(Await(kv().Exists(tenant_, "short")).value());
  EXPECT_FALSE(Await(kv().Delete(tenant_, "short")).value());
  EXPECT_EQ(Sorted(ListAll(tenant_, "*", 10)), (std::vector<std::string>{"forever", "long"}));
  EXPECT_EQ(Get("long"), "2");
  // An expired key can be stored again.
  Put("short", "again");
  EXPECT_EQ(Get("short"), "again");
}

TEST_P(StorageConformance, SweeperRemovesExpiredEntries) {
  config_.sweep_interval = 200ms;
  Reopen();
  for (int i = 0; i < 20; ++i)
    Put("gone-" + std::to_string(i), "x", 1s);
  Put("kept", "y");
  std::this_thread::sleep_for(2000ms);
  EXPECT_EQ(ListAll(tenant_, "*", 100), std::vector<std::string>{"kept"});
  const std::string text = metrics_->Render();
  EXPECT_NE(text.find("op=\"sweep\",outcome=\"ok\"} "), std::string::npos) << text;
  EXPECT_EQ(text.find("op=\"sweep\",outcome=\"error\"} 1"), std::string::npos);
  EXPECT_EQ(Get("kept"), "y");
}

TEST_P(StorageConformance, ListsKeysMatchingGlobPatterns) {
  for (const char* key : {"user:1", "user:2", "user:10", "admin:1", "ü:x", "a*b", "axb"}) {
    Put(key, "1");
  }
  auto list = [&](const std::string& pattern) { return Sorted(ListAll(tenant_, pattern, 100)); };
  using V = std::vector<std::string>;
  EXPECT_EQ(list("user:*"), (V{"user:1", "user:10", "user:2"}));
  EXPECT_EQ(list("user:?"), (V{"user:1", "user:2"}));
  EXPECT_EQ(list("user:[12]"), (V{"user:1", "user:2"}));
  EXPECT_EQ(list("*:1"), (V{"admin:1", "user:1"}));
  EXPECT_EQ(list("[!u]*"), (V{"a*b", "admin:1", "axb", "ü:x"}));
  EXPECT_EQ(list("a\\*b"), (V{"a*b"}));
  EXPECT_EQ(list("a?b"), (V{"a*b", "axb"}));
  EXPECT_EQ(list("?:x"), (V{"ü:x"}));
  EXPECT_EQ(list("nothing*"), V{});
  EXPECT_EQ(list("").size(), 7U);
  EXPECT_EQ(list("*").size(), 7U);
}

TEST_P(StorageConformance, PagingVisitsEveryKeyExactlyOnce) {
  std::vector<std::string> expected;
  for (int i = 0; i < 137; ++i) {
    expected.push_back("key-" + std::to_string(i));
    Put(expected.back(), std::to_string(i));
  }
  for (int limit : {1, 7, 10, 50, 1000}) {
    int pages = 0;
    const auto keys = ListAll(tenant_, "*", limit, &pages);
    EXPECT_EQ(Sorted(keys), Sorted(expected)) << "limit " << limit;
    EXPECT_GE(pages, (137 + limit - 1) / limit) << "limit " << limit;
  }
}

TEST_P(StorageConformance, PagingWithAPatternSkipsOtherKeys) {
  for (int i = 0; i < 60; ++i) {
    Put("a:" + std::to_string(i), "1");
    Put("b:" + std::to_string(i), "1");
  }
  const auto keys = ListAll(tenant_, "a:*", 7);
  EXPECT_EQ(keys.size(), 60U);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 60U);
  for (const auto& key : keys)
    EXPECT_EQ(key.substr(0, 2), "a:");
}

TEST_P(StorageConformance, TenantsNeverSeeEachOther) {
  Put("shared-name", "mine");
  ASSERT_TRUE(Await(kv().Store(other_tenant_, "shared-name", "theirs", std::nullopt)).has_value());
  ASSERT_TRUE(Await(kv().Store(other_tenant_, "only-theirs", "x", std::nullopt)).has_value());
  EXPECT_EQ(Get("shared-name"), "mine");
  EXPECT_EQ(Get("shared-name", other_tenant_), "theirs");
  EXPECT_EQ(Get("only-theirs"), std::nullopt);
  EXPECT_FALSE(Await(kv().Exists(tenant_, "only-theirs")).value());
  EXPECT_FALSE(Await(kv().Delete(tenant_, "only-theirs")).value());
  EXPECT_EQ(ListAll(tenant_, "*", 10), std::vector<std::string>{"shared-name"});
  EXPECT_EQ(Sorted(ListAll(other_tenant_, "*", 10)),
            (std::vector<std::string>{"only-theirs", "shared-name"}));

  // Names built to collide with a naive "tenant:key" layout, and glob characters in tenants.
  const std::string t = tenant_ + "t";
  ASSERT_TRUE(Await(kv().Store(t, "1:k", "a", std::nullopt)).has_value());
  ASSERT_TRUE(Await(kv().Store(t + ":1", "k", "b", std::nullopt)).has_value());
  EXPECT_EQ(Get("1:k", t), "a");
  EXPECT_EQ(Get("k", t + ":1"), "b");
  EXPECT_EQ(ListAll(t, "*", 10), std::vector<std::string>{"1:k"});
  const std::string star = tenant_ + "*";
  ASSERT_TRUE(Await(kv().Store(star, "s", "c", std::nullopt)).has_value());
  EXPECT_EQ(ListAll(star, "*", 10), std::vector<std::string>{"s"});
  EXPECT_EQ(ListAll(tenant_, "*", 10), std::vector<std::string>{"shared-name"});

  // Checkpoints too.
  auto id = Await(checkpoints().Create(tenant_, "agent", "{}", std::nullopt));
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(Await(checkpoints().Restore(other_tenant_, "agent", std::nullopt)).value(),
            std::nullopt);
  EXPECT_EQ(Await(checkpoints().Restore(other_tenant_, "agent", *id)).value(), std::nullopt);
  EXPECT_TRUE(Await(checkpoints().List(other_tenant_, "agent")).value().empty());
  EXPECT_FALSE(Await(checkpoints().Delete(other_tenant_, "agent", *id)).value());
  EXPECT_TRUE(Await(checkpoints().Restore(tenant_, "agent", *id)).value().has_value());
}

TEST_P(StorageConformance, RejectsInvalidInputWithThePreciseError) {
  auto expect_error = [](const auto& result, ErrorCode code, const std::string& param) {
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, code) << result.error().message;
    EXPECT_EQ(result.error().param, param) << result.error().message;
  };
  const auto kInvalid = ErrorCode::kInvalidRequest;
  expect_error(Await(kv().Store(tenant_, "", "1", std::nullopt)), kInvalid, "key");
  expect_error(Await(kv().Store(tenant_, std::string(kMaxKeyBytes + 1, 'k'), "1", std::nullopt)),
               kInvalid, "key");
  expect_error(Await(kv().Store(tenant_, std::string("a\0b", 3), "1", std::nullopt)), kInvalid,
               "key");
  expect_error(Await(kv().Store(tenant_, "\xff", "1", std::nullopt)), kInvalid, "key");
  expect_error(
      Await(kv().Store(tenant_, "k", std::string(config_.max_value_bytes + 1, 'x'), std::nullopt)),
      ErrorCode::kPayloadTooLarge, "value");
  expect_error(Await(kv().Store(tenant_, "k", "1", 0ms)), kInvalid, "ttl");
  expect_error(Await(kv().Store("", "k", "1", std::nullopt)), kInvalid, "tenant");
  expect_error(Await(kv().Retrieve(tenant_, "")), kInvalid, "key");
  expect_error(Await(kv().Delete(tenant_, "")), kInvalid, "key");
  expect_error(Await(kv().Exists(tenant_, std::string(kMaxKeyBytes + 1, 'k'))), kInvalid, "key");
  expect_error(Await(kv().ListKeys(tenant_, "[abc", 10, "")), kInvalid, "pattern");
  expect_error(Await(kv().ListKeys(tenant_, "*", 0, "")), kInvalid, "limit");
  expect_error(Await(kv().ListKeys(tenant_, "*", kMaxListLimit + 1, "")), kInvalid, "limit");
  for (const char* cursor : {"garbage", "k", "kzz", "r", "rx", "r1.2", "r1.0.1.00", "x123"}) {
    expect_error(Await(kv().ListKeys(tenant_, "*", 10, cursor)), kInvalid, "cursor");
  }
  expect_error(Await(checkpoints().Create(tenant_, "", "{}", std::nullopt)), kInvalid, "agent_id");
  expect_error(Await(checkpoints().Create(
                   tenant_, "a", std::string(config_.max_value_bytes + 1, 'x'), std::nullopt)),
               ErrorCode::kPayloadTooLarge, "state");
  expect_error(Await(checkpoints().Create(tenant_, "a", "{}",
                                          std::string(config_.max_value_bytes + 1, 'x'))),
               ErrorCode::kPayloadTooLarge, "metadata");
  expect_error(Await(checkpoints().Restore(tenant_, "a", "not-an-id")), kInvalid, "checkpoint_id");
  expect_error(Await(checkpoints().Delete(tenant_, "a", "")), kInvalid, "checkpoint_id");
  // Nothing was written by any of them.
  EXPECT_TRUE(ListAll(tenant_, "*", 10).empty());
  EXPECT_NE(metrics_->Render().find("op=\"store\",outcome=\"rejected\"} 7"), std::string::npos);
}

// --- Checkpoints -----------------------------------------------------------------------------

TEST_P(StorageConformance, CheckpointsRestoreLatestOrById) {
  EXPECT_EQ(Await(checkpoints().Restore(tenant_, "agent-1", std::nullopt)).value(), std::nullopt);
  const auto before = std::chrono::system_clock::now();
  const std::string first =
      Await(checkpoints().Create(tenant_, "agent-1", R"({"step":1})", R"({"label":"one"})"))
          .value();
  const std::string second =
      Await(checkpoints().Create(tenant_, "agent-1", R"({"step":2})", std::nullopt)).value();
  EXPECT_TRUE(IsCheckpointId(first));
  EXPECT_LT(first, second);

  auto latest = Await(checkpoints().Restore(tenant_, "agent-1", std::nullopt)).value();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->info.id, second);
  EXPECT_EQ(latest->state, R"({"step":2})");
  EXPECT_EQ(latest->info.metadata, std::nullopt);

  auto by_id = Await(checkpoints().Restore(tenant_, "agent-1", first)).value();
  ASSERT_TRUE(by_id.has_value());
  EXPECT_EQ(by_id->state, R"({"step":1})");
  EXPECT_EQ(by_id->info.metadata, R"({"label":"one"})");
  EXPECT_GE(by_id->info.created_at,
            std::chrono::time_point_cast<std::chrono::milliseconds>(before));
  EXPECT_LE(by_id->info.created_at, std::chrono::system_clock::now());

  // Another agent's checkpoints are separate; an unknown id is not found.
  EXPECT_EQ(Await(checkpoints().Restore(tenant_, "agent-2", std::nullopt)).value(), std::nullopt);
  EXPECT_EQ(Await(checkpoints().Restore(tenant_, "agent-2", first)).value(), std::nullopt);
  EXPECT_EQ(Await(checkpoints().Restore(tenant_, "agent-1", NextCheckpointId(second))).value(),
            std::nullopt);
}

TEST_P(StorageConformance, CheckpointsListInCreationOrderAndDelete) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(Await(checkpoints().Create(tenant_, "agent", "{\"i\":" + std::to_string(i) + "}",
                                             "{\"m\":" + std::to_string(i) + "}"))
                      .value());
  }
  auto list = Await(checkpoints().List(tenant_, "agent")).value();
  ASSERT_EQ(list.size(), 5U);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(list[i].id, ids[i]);
    EXPECT_EQ(list[i].metadata, "{\"m\":" + std::to_string(i) + "}");
  }
  EXPECT_TRUE(Await(checkpoints().Delete(tenant_, "agent", ids[4])).value());
  EXPECT_FALSE(Await(checkpoints().Delete(tenant_, "agent", ids[4])).value());
  EXPECT_TRUE(Await(checkpoints().Delete(tenant_, "agent", ids[1])).value());
  list = Await(checkpoints().List(tenant_, "agent")).value();
  ASSERT_EQ(list.size(), 3U);
  EXPECT_EQ(list[0].id, ids[0]);
  EXPECT_EQ(list[1].id, ids[2]);
  EXPECT_EQ(list[2].id, ids[3]);
  // The latest is now the newest survivor.
  EXPECT_EQ(Await(checkpoints().Restore(tenant_, "agent", std::nullopt)).value()->info.id, ids[3]);
  EXPECT_TRUE(Await(checkpoints().List(tenant_, "nobody")).value().empty());
}

TEST_P(StorageConformance, CheckpointRetentionKeepsTheNewest) {
  config_.checkpoints_keep_last = 3;
  Reopen();
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ids.push_back(
        Await(checkpoints().Create(tenant_, "agent", "{\"i\":" + std::to_string(i) + "}", "{}"))
            .value());
  }
  const auto list = Await(checkpoints().List(tenant_, "agent")).value();
  ASSERT_EQ(list.size(), 3U);
  EXPECT_EQ(list[0].id, ids[4]);
  EXPECT_EQ(list[2].id, ids[6]);
  EXPECT_EQ(Await(checkpoints().Restore(tenant_, "agent", ids[3])).value(), std::nullopt);
  EXPECT_EQ(Await(checkpoints().Restore(tenant_, "agent", ids[4])).value()->state, "{\"i\":4}");
  // Retention is per agent.
  Await(checkpoints().Create(tenant_, "other-agent", "{}", std::nullopt)).value();
  EXPECT_EQ(Await(checkpoints().List(tenant_, "agent")).value().size(), 3U);
}

TEST_P(StorageConformance, CheckpointIdsIncreaseEvenWhenAnotherInstanceClockIsBehind) {
  auto backend = RawBackend();
  const Call call{tenant_, std::chrono::steady_clock::now() + 5s};
  const std::string future = NewCheckpointId(std::chrono::system_clock::now() + 1h);
  auto a = backend->CreateCheckpoint(call, "agent", future, "{\"n\":1}", std::nullopt, 50);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(*a, future);
  // An instance whose clock is an hour behind proposes a smaller id: it is moved after.
  const std::string past = NewCheckpointId(std::chrono::system_clock::now());
  auto b = backend->CreateCheckpoint(call, "agent", past, "{\"n\":2}", std::nullopt, 50);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_GT(*b, future);
  auto latest = Await(checkpoints().Restore(tenant_, "agent", std::nullopt)).value();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->state, "{\"n\":2}");
}

// --- Concurrency -----------------------------------------------------------------------------

TEST_P(StorageConformance, ConcurrentWritersAllLand) {
  asio::io_context io;
  constexpr int kWriters = 8;
  constexpr int kEach = 40;
  // The coroutines resume on any of the four threads below: what they share is synchronised.
  std::atomic<int> failures{0};
  std::mutex ids_mutex;
  std::vector<std::string> ids;
  for (int w = 0; w < kWriters; ++w) {
    asio::co_spawn(
        io,
        [&, w]() -> asio::awaitable<void> {
          for (int i = 0; i < kEach; ++i) {
            const std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
            auto stored = co_await kv().Store(tenant_, key, "\"" + key + "\"", std::nullopt);
            if (!stored) ++failures;
            // Everyone writes the same hot key too.
            auto hot = co_await kv().Store(tenant_, "hot", std::to_string(w), std::nullopt);
            if (!hot) ++failures;
            if (i % 8 == 0) {
              auto id = co_await checkpoints().Create(tenant_, "shared-agent", "{}", std::nullopt);
              if (id) {
                std::lock_guard lock(ids_mutex);
                ids.push_back(*id);
              } else {
                ++failures;
              }
            }
          }
        },
        asio::detached);
  }
  // Several event-loop threads, as in the server.
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  const auto keys = ListAll(tenant_, "w*", 1000);
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kWriters * kEach));
  for (int w = 0; w < kWriters; ++w) {
    const std::string key = "w" + std::to_string(w) + "-" + std::to_string(kEach - 1);
    EXPECT_EQ(Get(key), "\"" + key + "\"");
  }
  EXPECT_TRUE(Get("hot").has_value());
  // Checkpoints created concurrently: distinct ids, listed in id order.
  const auto list = Await(checkpoints().List(tenant_, "shared-agent")).value();
  EXPECT_EQ(list.size(), ids.size());
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  EXPECT_TRUE(std::is_sorted(list.begin(), list.end(),
                             [](const auto& a, const auto& b) { return a.id < b.id; }));
}

// --- Observability ---------------------------------------------------------------------------

TEST_P(StorageConformance, RecordsMetricsAndReportsHealth) {
  Put("k", "v");
  Get("k");
  Get("absent");
  const std::string text = metrics_->Render();
  const std::string backend = testing::Name(GetParam());
  EXPECT_NE(text.find("orchestra_storage_operations_total{backend=\"" + backend +
                      "\",op=\"store\",outcome=\"ok\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("op=\"retrieve\",outcome=\"not_found\"} 1"), std::string::npos);
  EXPECT_NE(text.find("orchestra_storage_duration_seconds_count{backend=\"" + backend +
                      "\",op=\"retrieve\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("orchestra_storage_failover_active 0"), std::string::npos);

  const StorageHealth health = Await(storage_->CheckHealth());
  EXPECT_TRUE(health.ready);
  EXPECT_TRUE(health.primary_reachable);
  EXPECT_FALSE(health.secondary_reachable.has_value());
  EXPECT_FALSE(health.failover_active);
  EXPECT_EQ(health.detail, "primary " + backend + ": ok");
}

INSTANTIATE_TEST_SUITE_P(Backends, StorageConformance,
                         ::testing::Values(BackendKind::kSqlite, BackendKind::kRedis,
                                           BackendKind::kPostgres, BackendKind::kFirestore),
                         [](const auto& param_info) { return testing::Name(param_info.param); });

}  // namespace
}  // namespace orchestra::storage
