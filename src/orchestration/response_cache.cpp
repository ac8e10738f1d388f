#include "orchestration/response_cache.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <openssl/evp.h>

namespace orchestra::orchestration {
namespace {

struct MdCtxDelete {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// Fetched once: OpenSSL 3 looks an algorithm up by name on every implicit fetch
// (EVP_sha256() in EVP_DigestInit), which costs more than hashing a small body.
const EVP_MD* Sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

void UpdateWithLength(EVP_MD_CTX* ctx, std::string_view part) {
  std::uint64_t n = part.size();
  std::array<unsigned char, 8> length{};
  for (std::size_t i = 0; i < 8; ++i)
    length[i] = static_cast<unsigned char>(n >> (8 * i));
  EVP_DigestUpdate(ctx, length.data(), length.size());
  EVP_DigestUpdate(ctx, part.data(), part.size());
}

std::uint64_t Load64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

CacheKey MakeCacheKey(std::string_view route, std::string_view partition, std::string_view body) {
  // One context per thread, reset by each DigestInit: no allocation per key.
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxDelete> ctx(EVP_MD_CTX_new());
  CacheKey key{};
  unsigned int length = 0;
  if (!ctx || Sha256() == nullptr || EVP_DigestInit_ex(ctx.get(), Sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 is unavailable");  // a broken OpenSSL installation
  }
  UpdateWithLength(ctx.get(), route);
  UpdateWithLength(ctx.get(), partition);
  EVP_DigestUpdate(ctx.get(), body.data(), body.size());
  EVP_DigestFinal_ex(ctx.get(), key.data(), &length);
  return key;
}

std::size_t ResponseCache::KeyHash::operator()(const CacheKey& k) const {
  // The key is already a uniform hash; bytes 8-15 (0-7 pick the shard).
  return static_cast<std::size_t>(Load64(k.data() + 8));
}

ResponseCache::ResponseCache(const Clock& clock, observability::Counter* hits,
                             observability::Counter* misses)
    : ResponseCache(Options{}, clock, hits, misses) {}

ResponseCache::ResponseCache(Options options, const Clock& clock, observability::Counter* hits,
                             observability::Counter* misses)
    : clock_(clock), hits_(hits), misses_(misses) {
  std::size_t shards = std::max<std::size_t>(options.shards, 1);
  max_entries_per_shard_ = std::max<std::size_t>(options.max_entries / shards, 1);
  max_bytes_per_shard_ = options.max_bytes / shards;
  shards_.reserve(shards);
  for (std::size_t i = 0; i < shards; ++i)
    shards_.push_back(std::make_unique<Shard>());
}

ResponseCache::~ResponseCache() = default;

ResponseCache::Shard& ResponseCache::ShardFor(const CacheKey& key) {
  return *shards_[Load64(key.data()) % shards_.size()];
}

void ResponseCache::Erase(Shard& shard, std::list<Entry>::iterator it) {
  shard.bytes -= it->bytes;
  shard.index.erase(it->key);
  shard.lru.erase(it);
}

std::shared_ptr<const CachedResponse> ResponseCache::Get(const CacheKey& key) {
  Shard& shard = ShardFor(key);
  const SteadyTime now = clock_.Now();
  std::shared_ptr<const CachedResponse> found;
  {
    std::lock_guard lock(shard.mutex);
    if (auto it = shard.index.find(key); it != shard.index.end()) {
      if (now < it->second->expires) {
        shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
        found = it->second->response;
      } else {
        Erase(shard, it->second);
      }
    }
  }
  if (observability::Counter* c = found ? hits_ : misses_) c->Inc();
  return found;
}

void ResponseCache::Put(const CacheKey& key, std::shared_ptr<const CachedResponse> response,
                        Duration ttl) {
  if (!response || ttl <= Duration{0}) return;
  const std::size_t bytes = kEntryOverhead + response->body.size() + response->provider.size() +
                            response->upstream_model.size();
  if (bytes > max_bytes_per_shard_) return;
  const SteadyTime expires = clock_.Now() + ttl;
  Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mutex);
  if (auto it = shard.index.find(key); it != shard.index.end()) Erase(shard, it->second);
  while (!shard.lru.empty() && (shard.lru.size() >= max_entries_per_shard_ ||
                                shard.bytes + bytes > max_bytes_per_shard_)) {
    Erase(shard, std::prev(shard.lru.end()));
  }
  shard.lru.push_front(Entry{key, std::move(response), expires, bytes});
  shard.index.emplace(key, shard.lru.begin());
  shard.bytes += bytes;
}

std::size_t ResponseCache::entries() const {
  std::size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    n += shard->lru.size();
  }
  return n;
}

std::size_t ResponseCache::bytes() const {
  std::size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    n += shard->bytes;
  }
  return n;
}

}  // namespace orchestra::orchestration
