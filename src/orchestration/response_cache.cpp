#include "orchestration/response_cache.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <openssl/evp.h>

#include "common/text.hpp"

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

constexpr std::string_view kMagic = "OrC1";
constexpr std::uint8_t kFlagNotFound = 1;
constexpr std::uint8_t kFlagUsageKnown = 2;
constexpr std::uint8_t kFlagUsageEstimated = 4;
constexpr std::uint8_t kKnownFlags = 7;
// Accounted per stream chunk besides its payload.
constexpr std::size_t kChunkOverhead = 40;

void PutVarint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out += s;
}

// Reads the record front to back; any read past the end sets `ok` false for good.
struct Reader {
  std::string_view in;
  bool ok = true;

  std::uint8_t Byte() {
    if (in.empty()) {
      ok = false;
      return 0;
    }
    const auto b = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    return b;
  }
  std::uint64_t Varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const std::uint8_t b = Byte();
      if (!ok) return 0;
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok = false;  // longer than 10 bytes
    return 0;
  }
  std::string_view String() {
    const std::uint64_t n = Varint();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string_view s = in.substr(0, n);
    in.remove_prefix(n);
    return s;
  }
};

}  // namespace

std::size_t CachedResponse::payload_bytes() const {
  std::size_t n = body.size() + provider.size() + upstream_model.size();
  for (const CachedChunk& c : chunks)
    n += c.payload.size() + kChunkOverhead;
  return n;
}

std::string EncodeCachedResponse(const CachedResponse& r, std::int64_t expires_unix_ms) {
  std::string out;
  out.reserve(32 + r.payload_bytes());
  out += kMagic;
  out += static_cast<char>(r.stream ? 1 : 0);
  std::uint8_t flags = 0;
  if (r.answer_not_found) flags |= kFlagNotFound;
  if (r.usage.known) flags |= kFlagUsageKnown;
  if (r.usage.estimated) flags |= kFlagUsageEstimated;
  out += static_cast<char>(flags);
  const auto expires = static_cast<std::uint64_t>(expires_unix_ms);
  for (int i = 0; i < 8; ++i)
    out += static_cast<char>((expires >> (8 * i)) & 0xFF);
  PutVarint(out, static_cast<std::uint64_t>(std::max<std::int64_t>(r.usage.prompt_tokens, 0)));
  PutVarint(out, static_cast<std::uint64_t>(std::max<std::int64_t>(r.usage.completion_tokens, 0)));
  PutVarint(out, static_cast<std::uint64_t>(std::max<std::int64_t>(r.usage.total_tokens, 0)));
  PutString(out, r.provider);
  PutString(out, r.upstream_model);
  if (r.stream) {
    PutVarint(out, r.chunks.size());
    for (const CachedChunk& c : r.chunks) {
      out += static_cast<char>(c.usage_only ? 1 : 0);
      PutString(out, c.payload);
    }
  } else {
    PutString(out, r.body);
  }
  return out;
}

std::unique_ptr<StoredResponse> DecodeCachedResponse(std::string_view value) {
  if (value.substr(0, kMagic.size()) != kMagic) return nullptr;
  Reader in{value.substr(kMagic.size())};
  auto out = std::make_unique<StoredResponse>();
  CachedResponse& r = out->response;
  const std::uint8_t form = in.Byte();
  const std::uint8_t flags = in.Byte();
  if (!in.ok || form > 1 || (flags & ~kKnownFlags) != 0) return nullptr;
  r.stream = form == 1;
  r.answer_not_found = (flags & kFlagNotFound) != 0;
  r.usage.known = (flags & kFlagUsageKnown) != 0;
  r.usage.estimated = (flags & kFlagUsageEstimated) != 0;
  std::uint64_t expires = 0;
  for (int i = 0; i < 8; ++i)
    expires |= static_cast<std::uint64_t>(in.Byte()) << (8 * i);
  out->expires_unix_ms = static_cast<std::int64_t>(expires);
  constexpr std::uint64_t kMaxTokens = std::uint64_t{1} << 52;
  const std::uint64_t counts[3] = {in.Varint(), in.Varint(), in.Varint()};
  for (std::uint64_t c : counts) {
    if (c > kMaxTokens) return nullptr;
  }
  r.usage.prompt_tokens = static_cast<std::int64_t>(counts[0]);
  r.usage.completion_tokens = static_cast<std::int64_t>(counts[1]);
  r.usage.total_tokens = static_cast<std::int64_t>(counts[2]);
  out->provider = std::string(in.String());
  out->upstream_model = std::string(in.String());
  if (r.stream) {
    const std::uint64_t n = in.Varint();
    // Every chunk takes at least two bytes: a count beyond that is damage, not a reason to
    // reserve memory.
    if (!in.ok || n > in.in.size() / 2) return nullptr;
    r.chunks.reserve(n);
    for (std::uint64_t i = 0; i < n && in.ok; ++i) {
      const std::uint8_t usage_only = in.Byte();
      if (usage_only > 1) return nullptr;
      r.chunks.push_back({std::string(in.String()), usage_only == 1});
    }
  } else {
    r.body = std::string(in.String());
  }
  if (!in.ok || !in.in.empty() || out->provider.empty()) return nullptr;
  r.provider = out->provider;
  r.upstream_model = out->upstream_model;
  return out;
}

std::string SharedCacheKey(const CacheKey& key) {
  return "o:rc:" + HexEncode(key);
}

CacheDirectives ParseCacheControl(std::string_view header) {
  CacheDirectives d;
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view directive = TrimOws(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    std::string_view value;
    if (const auto eq = directive.find('='); eq != std::string_view::npos) {
      value = TrimOws(directive.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      directive = TrimOws(directive.substr(0, eq));
    }
    if (EqualsIgnoreCase(directive, "no-store")) {
      d.read = false;
      d.write = false;
    } else if (EqualsIgnoreCase(directive, "no-cache") ||
               (EqualsIgnoreCase(directive, "max-age") && value == "0")) {
      d.read = false;
    }
  }
  return d;
}

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
  const std::size_t bytes = kEntryOverhead + response->payload_bytes();
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
