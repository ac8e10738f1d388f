#pragma once

#include <chrono>
#include <vector>

#include "net/redis_client.hpp"
#include "orchestration/response_cache.hpp"
#include "orchestration/usage.hpp"

// The response cache's shared tier on Redis (docs/OPERATIONS.md#response-cache): GET with a
// bounded wait (a lookup that takes longer is a miss, counted as an error), and SET … PX with the
// entry's TTL as Redis's expiry, written off the request's critical path by a detached coroutine
// on the caller's event loop. At most `max_pending_writes` writes per worker are in flight; more
// are dropped and counted (a Redis that is slow or down must not pile up memory).
//
// Thread-safety: as net::RedisClient — each worker's state only on its own event loop.
// Lifetime: `client` and `metrics` must outlive the tier, and the tier every event loop.
namespace orchestra::orchestration {

class RedisCacheTier final : public SharedCacheTier {
 public:
  struct Options {
    std::chrono::nanoseconds lookup_timeout = std::chrono::milliseconds(5);
    std::chrono::nanoseconds write_timeout = std::chrono::seconds(1);
    int max_pending_writes = 64;  // per worker
  };
  RedisCacheTier(net::RedisClient& client, const Metrics& metrics, Options options);

  boost::asio::awaitable<Result<std::optional<std::string>>> Get(int worker,
                                                                 std::string key) override;
  void Put(const boost::asio::any_io_executor& executor, int worker, std::string key,
           std::string value, std::chrono::milliseconds ttl) override;

 private:
  boost::asio::awaitable<void> Write(int worker, std::string key, std::string value,
                                     std::chrono::milliseconds ttl);

  net::RedisClient& client_;
  const Metrics& metrics_;
  Options options_;
  std::vector<int> pending_;  // writes in flight, per worker
};

}  // namespace orchestra::orchestration
