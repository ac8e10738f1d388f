#include "orchestration/redis_cache_tier.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace orchestra::orchestration {

namespace asio = boost::asio;

RedisCacheTier::RedisCacheTier(net::RedisClient& client, const Metrics& metrics, Options options)
    : client_(client),
      metrics_(metrics),
      options_(options),
      pending_(static_cast<std::size_t>(client.workers()), 0) {}

asio::awaitable<Result<std::optional<std::string>>> RedisCacheTier::Get(int worker,
                                                                        std::string key) {
  co_return co_await client_.Get(worker, key, options_.lookup_timeout);
}

void RedisCacheTier::Put(const asio::any_io_executor& executor, int worker, std::string key,
                         std::string value, std::chrono::milliseconds ttl) {
  int& pending = pending_.at(static_cast<std::size_t>(worker));
  if (pending >= options_.max_pending_writes) {
    metrics_.shared_cache_writes(Metrics::WriteResult::kDropped).Inc();
    return;
  }
  ++pending;
  asio::co_spawn(executor, Write(worker, std::move(key), std::move(value), ttl), asio::detached);
}

asio::awaitable<void> RedisCacheTier::Write(int worker, std::string key, std::string value,
                                            std::chrono::milliseconds ttl) {
  auto written = co_await client_.Set(worker, key, value, ttl, options_.write_timeout);
  --pending_[static_cast<std::size_t>(worker)];
  metrics_.shared_cache_writes(written ? Metrics::WriteResult::kOk : Metrics::WriteResult::kError)
      .Inc();
}

}  // namespace orchestra::orchestration
