#include "orchestration/response_cache.hpp"

#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/text.hpp"

namespace orchestra::orchestration {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const CachedResponse> Response(std::string body) {
  return std::make_shared<const CachedResponse>(
      CachedResponse{std::move(body), "openai", "gpt-4o-mini"});
}

CacheKey Key(int i) {
  return MakeCacheKey("model", "", "{\"n\":" + std::to_string(i) + "}");
}

ResponseCache::Options OneShard(std::size_t entries, std::size_t bytes = 1 << 20) {
  ResponseCache::Options o;
  o.max_entries = entries;
  o.max_bytes = bytes;
  o.shards = 1;
  return o;
}

TEST(CacheKey, IsTheSha256OfLengthPrefixedParts) {
  CacheKey k = MakeCacheKey("", "", "abc");
  // SHA-256 of 16 zero bytes (two empty length prefixes) followed by "abc".
  EXPECT_EQ(HexEncode(k), "277e7ff6d232b9763f4a66e8d05d210da32dac9c6dbce1026ad4cc98acb5fefe");
}

TEST(CacheKey, DiffersWhenAnyPartDiffers) {
  std::set<CacheKey> keys = {
      MakeCacheKey("a", "", "{}"),  MakeCacheKey("b", "", "{}"),
      MakeCacheKey("a", "t", "{}"), MakeCacheKey("a", "", "{ }"),
      MakeCacheKey("ab", "", "c"),  MakeCacheKey("a", "b", "c"),  // no ambiguity at boundaries
      MakeCacheKey("a", "", "bc"),
  };
  EXPECT_EQ(keys.size(), 7u);
  EXPECT_EQ(MakeCacheKey("a", "t", "{}"), MakeCacheKey("a", "t", "{}"));
}

TEST(ResponseCache, MissThenHit) {
  ManualClock clock;
  observability::Counter hits;
  observability::Counter misses;
  ResponseCache cache(clock, &hits, &misses);
  EXPECT_EQ(cache.Get(Key(1)), nullptr);
  cache.Put(Key(1), Response("one"), 60s);
  auto hit = cache.Get(Key(1));
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->body, "one");
  EXPECT_EQ(hit->provider, "openai");
  EXPECT_EQ(cache.Get(Key(2)), nullptr);
  EXPECT_EQ(hits.Value(), 1u);
  EXPECT_EQ(misses.Value(), 2u);
}

TEST(ResponseCache, EntryExpiresAfterItsTtl) {
  ManualClock clock;
  ResponseCache cache(clock);
  cache.Put(Key(1), Response("one"), 10s);
  clock.Advance(10s - 1ns);
  EXPECT_NE(cache.Get(Key(1)), nullptr);
  clock.Advance(1ns);
  EXPECT_EQ(cache.Get(Key(1)), nullptr);
  EXPECT_EQ(cache.entries(), 0u);  // dropped on the read that found it expired
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(ResponseCache, ZeroTtlStoresNothing) {
  ManualClock clock;
  ResponseCache cache(clock);
  cache.Put(Key(1), Response("one"), 0s);
  EXPECT_EQ(cache.entries(), 0u);
}

TEST(ResponseCache, PutReplacesAnEntryAndItsTtl) {
  ManualClock clock;
  ResponseCache cache(clock);
  cache.Put(Key(1), Response("old"), 5s);
  cache.Put(Key(1), Response("new"), 60s);
  clock.Advance(30s);
  auto hit = cache.Get(Key(1));
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->body, "new");
  EXPECT_EQ(cache.entries(), 1u);
}

TEST(ResponseCache, EvictsTheLeastRecentlyUsedBeyondMaxEntries) {
  ManualClock clock;
  ResponseCache cache(OneShard(3), clock);
  cache.Put(Key(1), Response("1"), 60s);
  cache.Put(Key(2), Response("2"), 60s);
  cache.Put(Key(3), Response("3"), 60s);
  ASSERT_NE(cache.Get(Key(1)), nullptr);  // 1 is now the most recent; 2 the least
  cache.Put(Key(4), Response("4"), 60s);
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_EQ(cache.Get(Key(2)), nullptr);
  EXPECT_NE(cache.Get(Key(1)), nullptr);
  EXPECT_NE(cache.Get(Key(3)), nullptr);
  EXPECT_NE(cache.Get(Key(4)), nullptr);
}

TEST(ResponseCache, EvictsToStayWithinMaxBytes) {
  ManualClock clock;
  const std::size_t entry = ResponseCache::kEntryOverhead + 1000 + 6 + 11;  // body + names
  ResponseCache cache(OneShard(100, 2 * entry + 10), clock);
  cache.Put(Key(1), Response(std::string(1000, 'a')), 60s);
  cache.Put(Key(2), Response(std::string(1000, 'b')), 60s);
  EXPECT_EQ(cache.bytes(), 2 * entry);
  cache.Put(Key(3), Response(std::string(1000, 'c')), 60s);
  EXPECT_EQ(cache.entries(), 2u);
  EXPECT_LE(cache.bytes(), 2 * entry + 10);
  EXPECT_EQ(cache.Get(Key(1)), nullptr);
}

TEST(ResponseCache, EntryLargerThanTheBudgetIsNotStored) {
  ManualClock clock;
  ResponseCache cache(OneShard(100, 4096), clock);
  cache.Put(Key(1), Response("small"), 60s);
  cache.Put(Key(2), Response(std::string(8192, 'x')), 60s);
  EXPECT_EQ(cache.Get(Key(2)), nullptr);
  EXPECT_NE(cache.Get(Key(1)), nullptr);  // and nothing was evicted for it
}

TEST(ResponseCache, HitOutlivesEviction) {
  ManualClock clock;
  ResponseCache cache(OneShard(1), clock);
  cache.Put(Key(1), Response("kept by the reader"), 60s);
  auto held = cache.Get(Key(1));
  cache.Put(Key(2), Response("evicts 1"), 60s);
  EXPECT_EQ(cache.Get(Key(1)), nullptr);
  EXPECT_EQ(held->body, "kept by the reader");
}

TEST(ResponseCache, DefaultBoundsHoldAcrossShards) {
  ManualClock clock;
  ResponseCache::Options o;
  o.max_entries = 160;
  o.shards = 16;
  ResponseCache cache(o, clock);
  for (int i = 0; i < 5000; ++i)
    cache.Put(Key(i), Response("x"), 60s);
  EXPECT_LE(cache.entries(), 160u);
  EXPECT_GT(cache.entries(), 100u);  // evenly spread keys fill most shards
}

TEST(ResponseCache, ConcurrentUseKeepsItsBounds) {
  ManualClock clock;
  ResponseCache::Options o;
  o.max_entries = 64;
  ResponseCache cache(o, clock);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        CacheKey k = Key((i * 7 + t) % 300);
        if (auto hit = cache.Get(k)) {
          ASSERT_EQ(hit->body.size(), 3u);
        } else {
          cache.Put(k, Response("abc"), 60s);
        }
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_LE(cache.entries(), 64u);
}

}  // namespace
}  // namespace orchestra::orchestration
