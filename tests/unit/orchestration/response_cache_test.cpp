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

// --- The shared tier's value format -----------------------------------------------------------

CachedResponse BodyAnswer() {
  CachedResponse r;
  r.body = R"({"id":"chatcmpl-1","choices":[{"message":{"content":"hi"}}]})";
  r.provider = "openai";
  r.upstream_model = "gpt-4o-mini";
  r.answer_not_found = true;
  r.usage = {12, 3, 15, true, false};
  return r;
}

CachedResponse StreamAnswer() {
  CachedResponse r;
  r.stream = true;
  r.chunks = {{R"({"choices":[{"delta":{"content":"a"}}]})", false},
              {R"({"choices":[{"delta":{"content":"b"}}]})", false},
              {R"({"choices":[],"usage":{"prompt_tokens":1}})", true}};
  r.provider = "up";
  r.upstream_model = "echo-1";
  r.usage = {1, 2, 3, true, true};
  return r;
}

TEST(SharedCacheFormat, ABodyAnswerRoundTrips) {
  const std::string value = EncodeCachedResponse(BodyAnswer(), 1'700'000'000'123);
  auto decoded = DecodeCachedResponse(value);
  ASSERT_NE(decoded, nullptr);
  const CachedResponse& r = decoded->response;
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.body, BodyAnswer().body);
  EXPECT_EQ(r.provider, "openai");
  EXPECT_EQ(r.upstream_model, "gpt-4o-mini");
  EXPECT_TRUE(r.answer_not_found);
  EXPECT_EQ(r.usage.prompt_tokens, 12);
  EXPECT_EQ(r.usage.completion_tokens, 3);
  EXPECT_EQ(r.usage.total_tokens, 15);
  EXPECT_TRUE(r.usage.known);
  EXPECT_FALSE(r.usage.estimated);
  EXPECT_EQ(decoded->expires_unix_ms, 1'700'000'000'123);
  // The views point into the decoded record itself.
  EXPECT_EQ(r.provider.data(), decoded->provider.data());
}

TEST(SharedCacheFormat, AStreamAnswerRoundTripsChunkByChunk) {
  auto decoded = DecodeCachedResponse(EncodeCachedResponse(StreamAnswer(), 42));
  ASSERT_NE(decoded, nullptr);
  const CachedResponse& r = decoded->response;
  ASSERT_TRUE(r.stream);
  ASSERT_EQ(r.chunks.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.chunks[i].payload, StreamAnswer().chunks[i].payload);
    EXPECT_EQ(r.chunks[i].usage_only, i == 2);
  }
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(r.usage.estimated);
}

TEST(SharedCacheFormat, IsCompact) {
  const CachedResponse r = BodyAnswer();
  const std::string value = EncodeCachedResponse(r, 42);
  // Magic, form, flags, expiry, three one-byte counts, three one-byte lengths.
  EXPECT_EQ(value.size(),
            4 + 2 + 8 + 3 + 3 + r.body.size() + r.provider.size() + r.upstream_model.size());
}

TEST(SharedCacheFormat, EveryTruncationIsAMiss) {
  for (const CachedResponse& r : {BodyAnswer(), StreamAnswer()}) {
    const std::string value = EncodeCachedResponse(r, 42);
    for (std::size_t n = 0; n < value.size(); ++n)
      EXPECT_EQ(DecodeCachedResponse(std::string_view(value).substr(0, n)), nullptr) << n;
  }
}

TEST(SharedCacheFormat, ForeignOrDamagedValuesAreMisses) {
  const std::string good = EncodeCachedResponse(BodyAnswer(), 42);
  ASSERT_NE(DecodeCachedResponse(good), nullptr);
  EXPECT_EQ(DecodeCachedResponse(""), nullptr);
  EXPECT_EQ(DecodeCachedResponse(R"({"id":"chatcmpl-1"})"), nullptr);  // not ours
  EXPECT_EQ(DecodeCachedResponse(good + "x"), nullptr);                // bytes left over
  std::string other_version = good;
  other_version[3] = '2';
  EXPECT_EQ(DecodeCachedResponse(other_version), nullptr);
  std::string bad_form = good;
  bad_form[4] = 2;
  EXPECT_EQ(DecodeCachedResponse(bad_form), nullptr);
  std::string bad_flags = good;
  bad_flags[5] = static_cast<char>(0x80);
  EXPECT_EQ(DecodeCachedResponse(bad_flags), nullptr);
  // A stream claiming more chunks than its bytes could hold reserves nothing and is refused.
  std::string huge = EncodeCachedResponse(CachedResponse{.provider = "p", .stream = true}, 42);
  huge.pop_back();  // the chunk count (0)
  huge += "\xff\xff\xff\xff\x0f";
  EXPECT_EQ(DecodeCachedResponse(huge), nullptr);
  // An over-long varint.
  std::string endless = good.substr(0, 14) + std::string(11, '\x80');
  EXPECT_EQ(DecodeCachedResponse(endless), nullptr);
}

TEST(SharedCacheFormat, KeysAreHexAndApartPerTenant) {
  const std::string a = SharedCacheKey(MakeCacheKey("m", "alice", "{}"));
  const std::string b = SharedCacheKey(MakeCacheKey("m", "bob", "{}"));
  EXPECT_EQ(a.size(), 5u + 64u);
  EXPECT_TRUE(a.starts_with("o:rc:"));
  EXPECT_NE(a, b);
}

TEST(ResponseCache, StreamChunksCountAgainstTheByteBudget) {
  ManualClock clock;
  ResponseCache cache(OneShard(100, 4096), clock);
  auto big = std::make_shared<CachedResponse>(StreamAnswer());
  big->chunks.assign(100, {std::string(100, 'x'), false});
  cache.Put(Key(1), big, 60s);
  EXPECT_EQ(cache.Get(Key(1)), nullptr);
  EXPECT_LT(cache.max_entry_bytes(), big->payload_bytes());
}

// --- Cache-Control ----------------------------------------------------------------------------

TEST(CacheControl, DirectivesFromTheClient) {
  struct Case {
    std::string_view header;
    bool read;
    bool write;
  };
  const Case cases[] = {
      {"", true, true},
      {"no-store", false, false},
      {"No-Store", false, false},
      {"no-cache", false, true},
      {" max-age=60 , no-cache ", false, true},
      {"max-age=0", false, true},
      {"max-age=\"0\"", false, true},
      {"max-age=60", true, true},
      {"no-cache, no-store", false, false},
      {"private, must-revalidate", true, true},
      {"no-storex", true, true},
      {",,,=", true, true},
  };
  for (const Case& c : cases) {
    const CacheDirectives d = ParseCacheControl(c.header);
    EXPECT_EQ(d.read, c.read) << c.header;
    EXPECT_EQ(d.write, c.write) << c.header;
  }
}

}  // namespace
}  // namespace orchestra::orchestration
