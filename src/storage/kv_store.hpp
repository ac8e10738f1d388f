#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"

// Agent memory: a key/value store with optional time-to-live, namespaced by tenant.
namespace orchestra::storage {

// Limits the API layer relies on (issue 4). Longer keys are rejected with kInvalidRequest.
inline constexpr std::size_t kMaxKeyBytes = 512;
inline constexpr std::size_t kMaxTenantBytes = 256;
inline constexpr int kMaxListLimit = 1000;

// One page of ListKeys. `next_cursor` empty means the listing is complete.
struct KeyPage {
  std::vector<std::string> keys;
  std::string next_cursor;
};

// Contract shared by every method:
// - `tenant` is the caller's namespace (the API key's name, "default" without auth); a tenant
//   never sees, overwrites or lists another tenant's entries.
// - Keys are 1..kMaxKeyBytes bytes without NUL; otherwise kInvalidRequest with param "key".
// - Values are JSON text, validated by the caller and stored byte for byte; a value larger than
//   storage.max_value_bytes is kPayloadTooLarge with param "value".
// - An unreachable or timed-out backend is kUnavailable; every call is bounded by
//   storage.operation_timeout.
// - Thread-safe; callable from any io_context thread. The string_view arguments must stay valid
//   until the call completes (they do when the call is co_awaited in the same expression).
class KvStore {
 public:
  virtual ~KvStore() = default;

  // Creates or replaces `key`. With a TTL (> 0, else kInvalidRequest param "ttl") the entry is
  // invisible to every call from the moment it expires; without one it never expires.
  virtual boost::asio::awaitable<Result<void>> Store(
      std::string_view tenant, std::string_view key, std::string_view value,
      std::optional<std::chrono::milliseconds> ttl) = 0;

  // The value, or nullopt when absent or expired.
  virtual boost::asio::awaitable<Result<std::optional<std::string>>> Retrieve(
      std::string_view tenant, std::string_view key) = 0;

  // True when a live entry was removed.
  virtual boost::asio::awaitable<Result<bool>> Delete(std::string_view tenant,
                                                      std::string_view key) = 0;

  virtual boost::asio::awaitable<Result<bool>> Exists(std::string_view tenant,
                                                      std::string_view key) = 0;

  // Live keys matching the glob `pattern` (storage/glob.hpp: `*`, `?`, `[a-z]`, `[!a]`, `\x`;
  // empty means `*`). A bad pattern is kInvalidRequest param "pattern"; `limit` outside
  // 1..kMaxListLimit is kInvalidRequest param "limit"; a cursor this store did not hand out is
  // kInvalidRequest param "cursor". Start with an empty cursor and pass back `next_cursor`
  // until it is empty. A page holds at most `limit` keys and may hold fewer before the end.
  // Every key that exists during the whole listing is returned; SQLite and PostgreSQL return
  // keys in byte order and never twice; Redis returns them in SCAN order and may repeat a key
  // only if the keyspace changes under the listing (see redis/redis_backend.hpp).
  virtual boost::asio::awaitable<Result<KeyPage>> ListKeys(std::string_view tenant,
                                                           std::string_view pattern, int limit,
                                                           std::string_view cursor) = 0;
};

}  // namespace orchestra::storage
