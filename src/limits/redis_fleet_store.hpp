#pragma once

#include <string>

#include "limits/fleet_store.hpp"
#include "storage/redis/redis_pipe.hpp"

// The fleet-wide limits' windows, leases and budgets in Redis (limits/fleet_store.hpp): an
// admission is one Lua script (EVALSHA; EVAL when the server answers NOSCRIPT) on the Redis
// server's clock (TIME) unless a clock is injected; a settlement batch is pipelined script calls.
//
// Keys, all under `prefix` and in one cluster hash slot per API key ({<length>:<name>}): a hash of
// the key's windows (fields per bucket: 'k:' for the key's own, 'm:<model>:' per model), a sorted
// set of in-flight leases per bucket scored by their expiry, and a budget counter per period
// (INCRBYFLOAT; created at its first use with the seed the admission brings).
namespace orchestra::limits {

class RedisFleetStore final : public FleetStore {
 public:
  RedisFleetStore(boost::asio::any_io_executor executor, storage::RedisEndpoint endpoint,
                  std::string prefix);

  // Stores of every worker on `endpoint`, keys under `prefix` ("o:lim:" in production).
  static FleetStoreFactory Factory(storage::RedisEndpoint endpoint, std::string prefix = "o:lim:");

  void Connect() override { pipe_.Connect(); }
  void Close() override { pipe_.Close(); }
  bool closed() const override { return pipe_.closed(); }
  boost::asio::awaitable<Result<FleetAdmissionReply>> Admit(const FleetAdmission& admission,
                                                            std::chrono::microseconds timeout,
                                                            Late late) override;
  boost::asio::awaitable<Result<std::size_t>> Settle(std::span<const FleetSettlement> batch,
                                                     std::chrono::milliseconds timeout) override;

 private:
  storage::RedisPipe pipe_;
  std::string prefix_;
};

}  // namespace orchestra::limits
