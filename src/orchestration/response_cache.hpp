#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "observability/metrics.hpp"
#include "orchestration/clock.hpp"

// Answers identical non-streaming requests of models with `cache_ttl > 0` from memory.
//
// The key is SHA-256 over the route name, a partition and the request body text: identical bytes
// only (no JSON normalisation, which would cost a parse on the hot path). The partition keeps
// tenants apart when the caller passes one (the API key's name): otherwise one tenant could tell
// from the latency of a hit that another tenant sent exactly the same prompt.
//
// Bounded: at most Options::max_entries entries and max_bytes bytes (bodies plus a fixed
// per-entry overhead), least recently used evicted first, split evenly over the shards; an entry
// larger than a shard's byte budget is not stored. Expiry is checked on read. Concurrent misses
// of one key are not coalesced: each goes upstream and the last Put wins.
//
// Thread-safety: every method may be called from any thread. The cache is split into shards by
// key, each with its own mutex held for a hash lookup and a list splice, never for I/O or a copy
// of a body: a hit hands out a shared_ptr (shared by the cache and the requests reading the entry
// at that moment). Sharded locks rather than a lock-free structure because an LRU needs its
// order updated on every hit; with 16 shards, event-loop threads rarely meet on one mutex, and
// only requests for cached models come here at all.
namespace orchestra::orchestration {

using CacheKey = std::array<std::uint8_t, 32>;

// SHA-256 of (route, partition, body), each length-prefixed so that no two different triples
// hash the same bytes.
CacheKey MakeCacheKey(std::string_view route, std::string_view partition, std::string_view body);

struct CachedResponse {
  std::string body;  // the response body as sent to the client
  // x-orchestra-provider and x-orchestra-model of the original answer: views into the route
  // table's targets, which outlive the cache.
  std::string_view provider;
  std::string_view upstream_model;
  bool answer_not_found = false;  // wire::ChatResponse::answer_not_found of the original answer
};

class ResponseCache {
 public:
  struct Options {
    std::size_t max_entries = 10'000;
    std::size_t max_bytes = 64ULL << 20;
    std::size_t shards = 16;
  };
  // Accounted per entry besides its strings: key, list and map nodes, control block.
  static constexpr std::size_t kEntryOverhead = 192;

  // `clock` must outlive the cache; the counters (orchestra_cache_requests_total{result}) may be
  // null.
  explicit ResponseCache(const Clock& clock = RealClock(), observability::Counter* hits = nullptr,
                         observability::Counter* misses = nullptr);
  ResponseCache(Options options, const Clock& clock, observability::Counter* hits = nullptr,
                observability::Counter* misses = nullptr);
  ~ResponseCache();
  ResponseCache(const ResponseCache&) = delete;
  ResponseCache& operator=(const ResponseCache&) = delete;

  // The live entry for `key`, or null (a miss; an expired entry is dropped).
  std::shared_ptr<const CachedResponse> Get(const CacheKey& key);
  // Stores `response` for `ttl` (nothing when ttl <= 0 or the entry is too large), replacing any
  // entry of the same key.
  void Put(const CacheKey& key, std::shared_ptr<const CachedResponse> response, Duration ttl);

  std::size_t entries() const;
  std::size_t bytes() const;

 private:
  struct KeyHash {
    std::size_t operator()(const CacheKey& k) const;
  };
  struct Entry {
    CacheKey key;
    std::shared_ptr<const CachedResponse> response;
    SteadyTime expires;
    std::size_t bytes;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::list<Entry> lru;  // most recently used first
    std::unordered_map<CacheKey, std::list<Entry>::iterator, KeyHash> index;
    std::size_t bytes = 0;
  };

  Shard& ShardFor(const CacheKey& key);
  static void Erase(Shard& shard, std::list<Entry>::iterator it);

  const Clock& clock_;
  observability::Counter* hits_;
  observability::Counter* misses_;
  std::size_t max_entries_per_shard_;
  std::size_t max_bytes_per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace orchestra::orchestration
