#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"
#include "observability/metrics.hpp"
#include "orchestration/clock.hpp"
#include "wire/types.hpp"

// Answers identical requests of models with `cache_ttl > 0` from memory (this class), and from
// a tier shared by every instance when one is configured (SharedCacheTier, below; Redis).
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

// One server-sent event of a streamed answer, as the client received it (its `data:` payload).
struct CachedChunk {
  std::string payload;
  bool usage_only = false;  // the usage chunk: replayed only to a client that asked for usage
};

struct CachedResponse {
  std::string body;  // the response body as sent to the client (a non-streamed answer)
  // x-orchestra-provider and x-orchestra-model of the original answer: views into the route
  // table's targets, which outlive the cache.
  std::string_view provider;
  std::string_view upstream_model;
  bool answer_not_found = false;  // wire::ChatResponse::answer_not_found of the original answer
  // Which form the answer has: a JSON body (a non-streamed request) or the chunks of a stream (a
  // streamed request; their keys differ, since the body says "stream":true).
  bool stream = false;
  std::vector<CachedChunk> chunks;  // the stream's events in order, without [DONE] (stream)
  wire::Usage usage;                // the original answer's usage (a hit is charged nothing)

  // The bytes of its strings (the cache's accounting).
  std::size_t payload_bytes() const;
};

// --- The shared tier's value format -----------------------------------------------------------
// A compact binary record, so that a hit costs no JSON parse:
//   "OrC1"                                   magic and version
//   u8 form (0 body, 1 stream) · u8 flags (1 answer_not_found, 2 usage known, 4 estimated)
//   u64 expires (Unix ms, little-endian)
//   varint prompt, completion, total tokens
//   string provider · string upstream model  (string = varint length, bytes)
//   form 0: string body | form 1: varint n, then n × (u8 usage_only, string payload)
// Anything else (another magic or version, a length past the end, bytes left over, a form or
// flag unknown) is not ours or is damaged: a miss.
struct StoredResponse {
  CachedResponse response;  // provider and upstream_model are views into the two strings below
  std::string provider;
  std::string upstream_model;
  std::int64_t expires_unix_ms = 0;
};
std::string EncodeCachedResponse(const CachedResponse& response, std::int64_t expires_unix_ms);
// Null when `value` is not a well-formed record. The result's views point into itself (it is
// returned on the heap so that they stay valid).
std::unique_ptr<StoredResponse> DecodeCachedResponse(std::string_view value);

// The key of an entry in the shared tier: "o:rc:" and the key's 64 hex digits. The tenant is
// hashed into the key, so two tenants never share an entry there either.
std::string SharedCacheKey(const CacheKey& key);

// --- Cache-Control from the client ------------------------------------------------------------
struct CacheDirectives {
  bool read = true;   // may be answered from the cache
  bool write = true;  // its answer may be stored
};
// `no-store`: neither read nor written; `no-cache` (or `max-age=0`): not read, but the fresh
// answer is stored. Other directives are ignored; names are case-insensitive, and a malformed
// header reads as no directive.
CacheDirectives ParseCacheControl(std::string_view header);

// A cache shared by every instance (Redis), behind the in-process one. Values are opaque bytes
// (EncodeCachedResponse). Called on a worker's event loop with that worker's index.
class SharedCacheTier {
 public:
  virtual ~SharedCacheTier() = default;
  // The value under `key`, nullopt when there is none. Bounded in time by the implementation;
  // an error (timeout, unreachable) is returned, and the caller treats it as a miss.
  virtual boost::asio::awaitable<Result<std::optional<std::string>>> Get(int worker,
                                                                         std::string key) = 0;
  // Stores `value` for `ttl` without the caller waiting: the write runs on `executor` (the
  // calling worker's event loop) after Put returns. May drop it (too many writes in flight);
  // counts what happens.
  virtual void Put(const boost::asio::any_io_executor& executor, int worker, std::string key,
                   std::string value, std::chrono::milliseconds ttl) = 0;
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
  // The largest entry Put keeps (bytes of its strings): larger ones are not stored, in the
  // shared tier either.
  std::size_t max_entry_bytes() const {
    return max_bytes_per_shard_ > kEntryOverhead ? max_bytes_per_shard_ - kEntryOverhead : 0;
  }

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
