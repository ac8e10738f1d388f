// One behaviour, four backends: every test here runs against SQLite, Redis, PostgreSQL and
// Firestore (its emulator) through the public Storage interface (real servers, started by
// tests/services).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
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
  RecordStore& records() { return storage_->records(); }

  std::int64_t PutRecord(const std::string& collection, const std::string& id,
                         const std::string& value, Expect expect = Expect::Any(),
                         const std::string& tenant = "") {
    auto r = Await(records().Put(tenant.empty() ? tenant_ : tenant, collection, id, value, expect));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? *r : -1;
  }

  std::optional<Record> GetRecord(const std::string& collection, const std::string& id,
                                  const std::string& tenant = "") {
    auto r = Await(records().Get(tenant.empty() ? tenant_ : tenant, collection, id));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? *r : std::nullopt;
  }

  std::int64_t Latest() {
    auto r = Await(records().LatestSequence());
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? *r : -1;
  }

  // The log after `sequence`, read `limit` at a time, keeping this test's tenants' entries.
  std::vector<Change> ChangesAfter(std::int64_t sequence, int limit = 1000) {
    std::vector<Change> out;
    for (int round = 0; round < 10000; ++round) {
      auto page = Await(records().ChangesSince(sequence, limit));
      EXPECT_TRUE(page.has_value()) << page.error().message;
      if (!page || page->empty()) break;
      EXPECT_LE(page->size(), static_cast<std::size_t>(limit));
      for (Change& c : *page) {
        EXPECT_GT(c.sequence, sequence) << "sequences must increase strictly";
        sequence = c.sequence;
        if (c.tenant.starts_with(tenant_)) out.push_back(std::move(c));
      }
    }
    return out;
  }

  // Every record of a listing, page by page; checks each page's size.
  std::vector<Record> ListRecords(const std::string& collection, const std::string& prefix,
                                  int limit, int* pages = nullptr) {
    std::vector<Record> out;
    std::string cursor;
    int count = 0;
    do {
      auto page = Await(records().List(tenant_, collection, prefix, limit, cursor));
      EXPECT_TRUE(page.has_value()) << page.error().message;
      if (!page) break;
      EXPECT_LE(page->records.size(), static_cast<std::size_t>(limit));
      out.insert(out.end(), page->records.begin(), page->records.end());
      cursor = page->next_cursor;
      EXPECT_LT(++count, 10000) << "the listing does not end";
    } while (!cursor.empty() && count < 10000);
    if (pages != nullptr) *pages = count;
    return out;
  }

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

// --- Records ---------------------------------------------------------------------------------

std::vector<std::string> Ids(const std::vector<Record>& records) {
  std::vector<std::string> ids;
  for (const auto& r : records)
    ids.push_back(r.id);
  return ids;
}

TEST_P(StorageConformance, RecordsKeepValuesAndCountVersions) {
  EXPECT_EQ(GetRecord("keys", "k1"), std::nullopt);
  EXPECT_EQ(PutRecord("keys", "k1", R"({"name":"one"})"), 1);
  EXPECT_EQ(PutRecord("keys", "k1", R"({"name":"two"})"), 2);
  EXPECT_EQ(PutRecord("keys", "k1", R"({"name":"two"})"), 3);  // every write counts
  auto got = GetRecord("keys", "k1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, "k1");
  EXPECT_EQ(got->value, R"({"name":"two"})");
  EXPECT_EQ(got->version, 3);
  // Collections are apart; values byte for byte; the longest id; a value at the limit.
  EXPECT_EQ(GetRecord("documents", "k1"), std::nullopt);
  const std::string unicode = R"({"s":"ü€😀 \" \\ \u0000 \n"})";
  const std::string odd_id = "ü/ключ with spaces:and*stars?\n~";
  EXPECT_EQ(PutRecord("documents", odd_id, unicode), 1);
  EXPECT_EQ(GetRecord("documents", odd_id)->value, unicode);
  const std::string longest(kMaxRecordIdBytes, 'r');
  const std::string big = "\"" + std::string(config_.max_value_bytes - 2, 'x') + "\"";
  EXPECT_EQ(PutRecord("documents", longest, big), 1);
  EXPECT_EQ(GetRecord("documents", longest)->value, big);
  // Deleted and written again: a new record, version 1.
  EXPECT_TRUE(Await(records().Delete(tenant_, "keys", "k1", Expect::Any())).value());
  EXPECT_EQ(GetRecord("keys", "k1"), std::nullopt);
  EXPECT_EQ(PutRecord("keys", "k1", "{}"), 1);
}

TEST_P(StorageConformance, RecordPreconditionsFailWithConflictAndChangeNothing) {
  auto expect_conflict = [](const auto& result, const std::string& id = "k") {
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, ErrorCode::kConflict) << result.error().message;
    EXPECT_NE(result.error().message.find("'" + id + "'"), std::string::npos)
        << result.error().message;
  };
  EXPECT_EQ(PutRecord("keys", "k", "1", Expect::Absent()), 1);
  expect_conflict(Await(records().Put(tenant_, "keys", "k", "2", Expect::Absent())));
  expect_conflict(Await(records().Put(tenant_, "keys", "k", "2", Expect::Version(2))));
  expect_conflict(Await(records().Put(tenant_, "keys", "absent", "2", Expect::Version(1))),
                  "absent");
  EXPECT_EQ(GetRecord("keys", "absent"), std::nullopt);
  EXPECT_EQ(GetRecord("keys", "k")->value, "1");
  EXPECT_EQ(PutRecord("keys", "k", "2", Expect::Version(1)), 2);

  expect_conflict(Await(records().Delete(tenant_, "keys", "k", Expect::Version(1))));
  expect_conflict(Await(records().Delete(tenant_, "keys", "k", Expect::Absent())));
  EXPECT_EQ(GetRecord("keys", "k")->version, 2);
  EXPECT_TRUE(Await(records().Delete(tenant_, "keys", "k", Expect::Version(2))).value());
  EXPECT_FALSE(Await(records().Delete(tenant_, "keys", "k", Expect::Any())).value());
  EXPECT_FALSE(Await(records().Delete(tenant_, "keys", "k", Expect::Absent())).value());
  expect_conflict(Await(records().Delete(tenant_, "keys", "k", Expect::Version(2))));
  const std::string text = metrics_->Render();
  EXPECT_NE(text.find("op=\"record_put\",outcome=\"conflict\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("op=\"record_delete\",outcome=\"not_found\"} 2"), std::string::npos);
}

TEST_P(StorageConformance, RecordListingPagesByPrefixInByteOrder) {
  std::vector<std::string> all;
  for (int i = 0; i < 23; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "doc/%02d", i);
    all.emplace_back(id);
  }
  for (const char* id : {"doc", "doc0", "doc/", "doc.x", "doc~", "dod", "a", "ü", "z"}) {
    all.emplace_back(id);
  }
  for (const auto& id : all)
    PutRecord("documents", id, "\"" + id + "\"");
  PutRecord("chunks", "doc/99", "1");  // another collection
  std::sort(all.begin(), all.end());   // byte order

  std::vector<std::string> with_prefix;
  for (const auto& id : all) {
    if (id.starts_with("doc/")) with_prefix.push_back(id);
  }
  for (int limit : {1, 7, 24, 1000}) {
    int pages = 0;
    const auto listed = ListRecords("documents", "doc/", limit, &pages);
    EXPECT_EQ(Ids(listed), with_prefix) << "limit " << limit;
    EXPECT_EQ(pages, (static_cast<int>(with_prefix.size()) + limit - 1) / limit)
        << "limit " << limit;
    for (const auto& r : listed) {
      EXPECT_EQ(r.value, "\"" + r.id + "\"");
      EXPECT_EQ(r.version, 1);
    }
  }
  EXPECT_EQ(Ids(ListRecords("documents", "", 5)), all);
  EXPECT_EQ(Ids(ListRecords("documents", "doc", 1000)).size(), 28U);
  EXPECT_EQ(Ids(ListRecords("documents", "ü", 10)), std::vector<std::string>{"ü"});
  EXPECT_TRUE(ListRecords("documents", "nothing", 10).empty());
  EXPECT_EQ(Ids(ListRecords("chunks", "", 10)), std::vector<std::string>{"doc/99"});
  // A record deleted between pages is not returned; the rest still are, once.
  auto first = Await(records().List(tenant_, "documents", "doc/", 5, "")).value();
  ASSERT_FALSE(first.next_cursor.empty());
  Await(records().Delete(tenant_, "documents", "doc/07", Expect::Any())).value();
  std::vector<std::string> rest = Ids(first.records);
  std::string cursor = first.next_cursor;
  while (!cursor.empty()) {
    auto page = Await(records().List(tenant_, "documents", "doc/", 5, cursor)).value();
    for (const auto& r : page.records)
      rest.push_back(r.id);
    cursor = page.next_cursor;
  }
  with_prefix.erase(std::find(with_prefix.begin(), with_prefix.end(), "doc/07"));
  EXPECT_EQ(rest, with_prefix);
}

TEST_P(StorageConformance, ApplyWritesAllOrNothingAcrossCollections) {
  EXPECT_EQ(PutRecord("documents", "d1", R"({"v":1})"), 1);
  EXPECT_EQ(PutRecord("chunks", "d1/0", R"({"c":0})"), 1);
  EXPECT_EQ(PutRecord("chunks", "d1/1", R"({"c":1})"), 1);
  const std::int64_t before = Latest();

  using Op = RecordWrite::Op;
  // The last write's precondition fails: nothing at all is written, nothing logged.
  std::vector<RecordWrite> failing{
      {Op::kPut, "documents", "d1", R"({"v":2})", Expect::Version(1)},
      {Op::kPut, "chunks", "d1/2", R"({"c":2})", Expect::Absent()},
      {Op::kDelete, "chunks", "d1/0", "", Expect::Any()},
      {Op::kPut, "chunks", "d1/1", R"({"c":"x"})", Expect::Version(7)},
  };
  auto failed = Await(records().Apply(tenant_, failing));
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, ErrorCode::kConflict);
  EXPECT_NE(failed.error().message.find("'d1/1'"), std::string::npos) << failed.error().message;
  EXPECT_EQ(GetRecord("documents", "d1")->value, R"({"v":1})");
  EXPECT_EQ(GetRecord("chunks", "d1/2"), std::nullopt);
  EXPECT_TRUE(GetRecord("chunks", "d1/0").has_value());
  EXPECT_EQ(GetRecord("chunks", "d1/1")->version, 1);
  EXPECT_EQ(Latest(), before);

  failing[3].expect = Expect::Version(1);
  ASSERT_TRUE(Await(records().Apply(tenant_, failing)).has_value());
  EXPECT_EQ(GetRecord("documents", "d1")->version, 2);
  EXPECT_EQ(GetRecord("chunks", "d1/2")->value, R"({"c":2})");
  EXPECT_EQ(GetRecord("chunks", "d1/0"), std::nullopt);
  EXPECT_EQ(GetRecord("chunks", "d1/1")->value, R"({"c":"x"})");
  // An empty batch is nothing; a batch of the largest size works.
  ASSERT_TRUE(Await(records().Apply(tenant_, {})).has_value());
  std::vector<RecordWrite> many;
  for (std::size_t i = 0; i < kMaxApplyWrites; ++i)
    many.push_back({Op::kPut, "chunks", "many/" + std::to_string(i), "{}", Expect::Absent()});
  auto big = Await(records().Apply(tenant_, many));
  ASSERT_TRUE(big.has_value()) << big.error().message;
  EXPECT_EQ(ListRecords("chunks", "many/", 1000).size(), kMaxApplyWrites);
}

TEST_P(StorageConformance, ChangeLogHasEveryWriteOnceInOrder) {
  const std::int64_t start = Latest();
  using Op = RecordWrite::Op;
  PutRecord("keys", "a", "1");
  PutRecord("keys", "a", "2");
  EXPECT_TRUE(Await(records().Delete(tenant_, "keys", "a", Expect::Any())).value());
  EXPECT_FALSE(Await(records().Delete(tenant_, "keys", "a", Expect::Any())).value());  // no-op
  ASSERT_TRUE(Await(records().Apply(tenant_, {{Op::kPut, "documents", "d", "{}", Expect::Any()},
                                              {Op::kPut, "chunks", "d/0", "{}", Expect::Any()},
                                              {Op::kDelete, "chunks", "none", "", Expect::Any()}}))
                  .has_value());
  // Conflicts and counters are not changes.
  EXPECT_FALSE(Await(records().Put(tenant_, "keys", "d", "1", Expect::Version(3))).has_value());
  ASSERT_TRUE(Await(records().Add(tenant_, "spend", "day", {{"usd", 1.5}})).has_value());
  PutRecord("models", "m", "{}", Expect::Any(), other_tenant_);

  const auto changes = ChangesAfter(start);
  struct Want {
    std::string tenant, collection, id;
    bool deleted;
  };
  const std::vector<Want> want{
      {tenant_, "keys", "a", false},     {tenant_, "keys", "a", false},
      {tenant_, "keys", "a", true},      {tenant_, "documents", "d", false},
      {tenant_, "chunks", "d/0", false}, {other_tenant_, "models", "m", false}};
  ASSERT_EQ(changes.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(changes[i].tenant, want[i].tenant) << i;
    EXPECT_EQ(changes[i].collection, want[i].collection) << i;
    EXPECT_EQ(changes[i].id, want[i].id) << i;
    EXPECT_EQ(changes[i].deleted, want[i].deleted) << i;
  }
  EXPECT_EQ(Latest(), changes.back().sequence);
  // Paged two at a time: the same entries.
  const auto paged = ChangesAfter(start, 2);
  ASSERT_EQ(paged.size(), changes.size());
  for (std::size_t i = 0; i < paged.size(); ++i)
    EXPECT_EQ(paged[i].sequence, changes[i].sequence);
  // From the middle; and nothing after the newest.
  const auto tail = Await(records().ChangesSince(changes[2].sequence, 2)).value();
  ASSERT_EQ(tail.size(), 2U);
  EXPECT_EQ(tail[0].sequence, changes[3].sequence);
  EXPECT_TRUE(Await(records().ChangesSince(Latest(), 10)).value().empty());
  // 0 reads from the oldest kept entry.
  EXPECT_FALSE(Await(records().ChangesSince(0, 1)).value().empty());
  // A sequence this log never handed out is a reader that must reload.
  auto ahead = Await(records().ChangesSince(Latest() + 1000, 10));
  ASSERT_FALSE(ahead.has_value());
  EXPECT_EQ(ahead.error().code, ErrorCode::kConflict);
}

TEST_P(StorageConformance, ChangeLogRetentionPrunesButKeepsTheNewest) {
  config_.sweep_interval = 100ms;
  config_.change_log_retention = 1s;
  Reopen();
  PutRecord("keys", "a", "1");
  const std::int64_t first = Latest();
  PutRecord("keys", "b", "1");
  PutRecord("keys", "c", "1");
  const std::int64_t newest = Latest();
  ASSERT_GT(newest, first);
  // Wait (bounded) for the sweeper to prune the entries older than a second.
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  Result<std::vector<Change>> behind = std::vector<Change>();
  while (std::chrono::steady_clock::now() < deadline) {
    behind = Await(records().ChangesSince(first, 10));
    if (!behind) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(behind.has_value()) << "the entries were not pruned";
  EXPECT_EQ(behind.error().code, ErrorCode::kConflict);
  EXPECT_NE(behind.error().message.find("reload"), std::string::npos);
  // The newest is kept: sequences never go backwards, and its reader goes on.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(Latest(), newest);
  EXPECT_TRUE(Await(records().ChangesSince(newest, 10)).value().empty());
  const auto oldest = Await(records().ChangesSince(0, 10)).value();
  ASSERT_EQ(oldest.size(), 1U);
  EXPECT_EQ(oldest[0].sequence, newest);
  PutRecord("keys", "d", "1");
  // Read from the start: once "d" is in, the sweeper may prune `newest` at any moment, so a read
  // from `newest` could race it; the log must end with "d", after `newest`.
  const auto next = Await(records().ChangesSince(0, 10)).value();
  ASSERT_FALSE(next.empty());
  EXPECT_GT(next.back().sequence, newest);
  EXPECT_EQ(next.back().id, "d");
  const std::string text = metrics_->Render();
  EXPECT_NE(text.find("op=\"prune_changes\",outcome=\"ok\"} "), std::string::npos) << text;
}

TEST_P(StorageConformance, CountersAddExactlyFromManyThreadsAndPage) {
  const std::int64_t before = Latest();
  asio::io_context io;
  constexpr int kWorkers = 8;
  constexpr int kEach = 25;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWorkers; ++w) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (int i = 0; i < kEach; ++i) {
            std::vector<std::pair<std::string, double>> deltas;
            deltas.emplace_back("requests", 1);
            deltas.emplace_back("usd", 0.25);
            auto r = co_await records().Add(tenant_, "spend", "key/day", std::move(deltas));
            if (!r || r->size() != 2) ++failures;
          }
        },
        asio::detached);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  // Values come back in the order given.
  auto last = Await(records().Add(tenant_, "spend", "key/day", {{"usd", 0.5}, {"requests", 0}}));
  ASSERT_TRUE(last.has_value()) << last.error().message;
  EXPECT_EQ(*last, (std::vector<double>{kWorkers * kEach * 0.25 + 0.5, kWorkers * kEach}));
  EXPECT_EQ(Latest(), before);  // counters are not logged

  for (int i = 0; i < 12; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "day/%02d", i);
    ASSERT_TRUE(Await(records().Add(tenant_, "spend", id, {{"b", i}, {"a", -i}})).has_value());
  }
  std::vector<Counter> listed;
  std::string cursor;
  int pages = 0;
  do {
    auto page = Await(records().Counters(tenant_, "spend", "day/", 5, cursor));
    ASSERT_TRUE(page.has_value()) << page.error().message;
    EXPECT_LE(page->counters.size(), 5U);
    listed.insert(listed.end(), page->counters.begin(), page->counters.end());
    cursor = page->next_cursor;
    ASSERT_LT(++pages, 10);
  } while (!cursor.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(listed.size(), 12U);
  for (int i = 0; i < 12; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "day/%02d", i);
    EXPECT_EQ(listed[i].id, id);
    using F = std::vector<std::pair<std::string, double>>;
    EXPECT_EQ(listed[i].fields, (F{{"a", -i}, {"b", i}}));
  }
  auto all = Await(records().Counters(tenant_, "spend", "", 100, "")).value();
  EXPECT_EQ(all.counters.size(), 13U);
  EXPECT_TRUE(all.next_cursor.empty());
  EXPECT_TRUE(
      Await(records().Counters(other_tenant_, "spend", "", 100, "")).value().counters.empty());
}

TEST_P(StorageConformance, RecordTenantsNeverSeeEachOther) {
  PutRecord("keys", "shared", "\"mine\"");
  PutRecord("keys", "shared", "\"theirs\"", Expect::Any(), other_tenant_);
  PutRecord("keys", "only-theirs", "1", Expect::Any(), other_tenant_);
  EXPECT_EQ(GetRecord("keys", "shared")->value, "\"mine\"");
  EXPECT_EQ(GetRecord("keys", "shared", other_tenant_)->value, "\"theirs\"");
  EXPECT_EQ(GetRecord("keys", "only-theirs"), std::nullopt);
  EXPECT_EQ(Ids(ListRecords("keys", "", 10)), std::vector<std::string>{"shared"});
  EXPECT_FALSE(Await(records().Delete(tenant_, "keys", "only-theirs", Expect::Any())).value());
  EXPECT_EQ(GetRecord("keys", "only-theirs", other_tenant_)->version, 1);
  // Names built to collide with a naive "tenant/collection/id" layout.
  const std::string t = tenant_ + "t";
  PutRecord("keys", "1/x", "\"a\"", Expect::Any(), t);
  PutRecord("keys", "x", "\"b\"", Expect::Any(), t + "/keys/1");
  EXPECT_EQ(GetRecord("keys", "1/x", t)->value, "\"a\"");
  EXPECT_EQ(GetRecord("keys", "x", t + "/keys/1")->value, "\"b\"");
  EXPECT_EQ(GetRecord("keys", "x", t), std::nullopt);
  ASSERT_TRUE(Await(records().Add(other_tenant_, "spend", "c", {{"n", 1}})).has_value());
  EXPECT_TRUE(Await(records().Counters(tenant_, "spend", "", 10, "")).value().counters.empty());
  EXPECT_EQ(Await(records().Add(tenant_, "spend", "c", {{"n", 1}})).value(),
            std::vector<double>{1});
}

TEST_P(StorageConformance, RecordsRejectInvalidInputWithThePreciseError) {
  auto expect_error = [](const auto& result, ErrorCode code, const std::string& param) {
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, code) << result.error().message;
    EXPECT_EQ(result.error().param, param) << result.error().message;
  };
  const auto kInvalid = ErrorCode::kInvalidRequest;
  const std::int64_t before = Latest();
  for (const std::string& bad :
       std::vector<std::string>{"", "Keys", "a-b", "a/b", "ü", std::string(65, 'c')}) {
    expect_error(Await(records().Put(tenant_, bad, "k", "1", Expect::Any())), kInvalid,
                 "collection");
  }
  expect_error(Await(records().Get(tenant_, "keys", "")), kInvalid, "id");
  expect_error(Await(records().Put(tenant_, "keys", std::string(kMaxRecordIdBytes + 1, 'k'), "1",
                                   Expect::Any())),
               kInvalid, "id");
  expect_error(Await(records().Put(tenant_, "keys", std::string("a\0b", 3), "1", Expect::Any())),
               kInvalid, "id");
  expect_error(Await(records().Delete(tenant_, "keys", "\xff", Expect::Any())), kInvalid, "id");
  expect_error(Await(records().Put(tenant_, "keys", "k",
                                   std::string(config_.max_value_bytes + 1, 'x'), Expect::Any())),
               ErrorCode::kPayloadTooLarge, "value");
  expect_error(Await(records().Put("", "keys", "k", "1", Expect::Any())), kInvalid, "tenant");
  expect_error(Await(records().List(tenant_, "keys", "", 0, "")), kInvalid, "limit");
  expect_error(Await(records().List(tenant_, "keys", "", kMaxRecordListLimit + 1, "")), kInvalid,
               "limit");
  expect_error(Await(records().List(tenant_, "keys", "\xff", 10, "")), kInvalid, "prefix");
  for (const char* cursor : {"garbage", "k", "kzz", "x123"}) {
    expect_error(Await(records().List(tenant_, "keys", "", 10, cursor)), kInvalid, "cursor");
    expect_error(Await(records().Counters(tenant_, "spend", "", 10, cursor)), kInvalid, "cursor");
  }
  using Op = RecordWrite::Op;
  std::vector<RecordWrite> too_many(kMaxApplyWrites + 1);
  for (std::size_t i = 0; i < too_many.size(); ++i)
    too_many[i] = {Op::kPut, "keys", "k" + std::to_string(i), "1", Expect::Any()};
  expect_error(Await(records().Apply(tenant_, too_many)), kInvalid, "writes");
  expect_error(Await(records().Apply(tenant_, {{Op::kPut, "keys", "k", "1", Expect::Any()},
                                               {Op::kDelete, "keys", "k", "", Expect::Any()}})),
               kInvalid, "writes");
  expect_error(Await(records().Apply(tenant_, {{Op::kPut, "keys", "ok", "1", Expect::Any()},
                                               {Op::kPut, "Bad", "k", "1", Expect::Any()}})),
               kInvalid, "collection");
  expect_error(Await(records().Add(tenant_, "spend", "c", {{"n", 1}, {"n", 2}})), kInvalid,
               "field");
  expect_error(Await(records().Add(tenant_, "spend", "c", {{"", 1}})), kInvalid, "field");
  expect_error(Await(records().Add(tenant_, "spend", "c", {{"n", std::nan("")}})), kInvalid,
               "deltas");
  expect_error(Await(records().ChangesSince(-1, 10)), kInvalid, "sequence");
  expect_error(Await(records().ChangesSince(0, 0)), kInvalid, "limit");
  // Nothing was written by any of them.
  EXPECT_TRUE(ListRecords("keys", "", 10).empty());
  EXPECT_TRUE(Await(records().Counters(tenant_, "spend", "", 10, "")).value().counters.empty());
  EXPECT_EQ(Latest(), before);
  EXPECT_NE(metrics_->Render().find("op=\"record_put\",outcome=\"rejected\"} 10"),
            std::string::npos);
}

// Read-modify-write with Expect::Version from many threads: every version is won exactly once,
// and no increment is lost.
TEST_P(StorageConformance, RacingVersionedWritesHaveOneWinnerPerVersion) {
  ASSERT_EQ(PutRecord("models", "counter", "0", Expect::Absent()), 1);
  asio::io_context io;
  constexpr int kWorkers = 6;
  constexpr int kEach = 8;
  std::mutex mutex;
  std::vector<std::int64_t> won;  // the versions each success produced
  std::atomic<int> errors{0};
  std::atomic<int> absent_wins{0};
  for (int w = 0; w < kWorkers; ++w) {
    asio::co_spawn(
        io,
        [&, w]() -> asio::awaitable<void> {
          // Everyone also races to create one record: one creation only.
          auto created = co_await records().Put(tenant_, "models", "once", std::to_string(w),
                                                Expect::Absent());
          if (created) {
            ++absent_wins;
          } else if (created.error().code != ErrorCode::kConflict) {
            ++errors;
          }
          for (int done = 0; done < kEach;) {
            auto read = co_await records().Get(tenant_, "models", "counter");
            if (!read || !*read) {
              ++errors;
              co_return;
            }
            const std::string next = std::to_string(std::stoi((*read)->value) + 1);
            auto put = co_await records().Put(tenant_, "models", "counter", next,
                                              Expect::Version((*read)->version));
            if (put) {
              std::lock_guard lock(mutex);
              won.push_back(*put);
              ++done;
            } else if (put.error().code != ErrorCode::kConflict) {
              ++errors;
              co_return;
            }
          }
        },
        asio::detached);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(absent_wins.load(), 1);
  std::sort(won.begin(), won.end());
  std::vector<std::int64_t> expected;
  for (int v = 2; v <= kWorkers * kEach + 1; ++v)
    expected.push_back(v);
  EXPECT_EQ(won, expected);
  auto final = GetRecord("models", "counter");
  ASSERT_TRUE(final.has_value());
  EXPECT_EQ(final->value, std::to_string(kWorkers * kEach));
  EXPECT_EQ(final->version, kWorkers * kEach + 1);
}

// Writers on many threads while a reader polls the log: the reader sees every write exactly
// once, in strictly increasing order, although writes commit concurrently.
TEST_P(StorageConformance, ConcurrentWritesReachAPollingReaderOnceInOrder) {
  const std::int64_t start = Latest();
  asio::io_context io;
  constexpr int kWriters = 6;
  constexpr int kEach = 10;
  std::atomic<int> writing{kWriters};
  std::atomic<int> errors{0};
  for (int w = 0; w < kWriters; ++w) {
    asio::co_spawn(
        io,
        [&, w]() -> asio::awaitable<void> {
          for (int i = 0; i < kEach; ++i) {
            const std::string id = "w" + std::to_string(w) + "-" + std::to_string(i);
            Result<void> r{};
            if (i % 2 == 0) {
              auto put = co_await records().Put(tenant_, "documents", id, "{}", Expect::Absent());
              if (!put) r = put.error();
            } else {
              std::vector<RecordWrite> writes(1);
              writes[0] = {RecordWrite::Op::kPut, "documents", id, "{}", Expect::Absent()};
              r = co_await records().Apply(tenant_, std::move(writes));
            }
            if (!r) ++errors;
          }
          --writing;
        },
        asio::detached);
  }
  std::vector<Change> seen;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::int64_t sequence = start;
        for (;;) {
          const bool last_round = writing.load() == 0;
          auto page = co_await records().ChangesSince(sequence, 7);
          if (!page) {
            ++errors;
            co_return;
          }
          for (const Change& c : *page) {
            if (c.sequence <= sequence) ++errors;
            sequence = c.sequence;
            if (c.tenant == tenant_) seen.push_back(c);
          }
          if (last_round && page->empty()) co_return;
        }
      },
      asio::detached);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(errors.load(), 0);
  std::set<std::string> ids;
  for (const Change& c : seen)
    ids.insert(c.id);
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kWriters * kEach));
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kWriters * kEach));
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
