#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"
#include "common/redis_url.hpp"

// A small asynchronous Redis client on the event loops, for the few commands the request path
// needs without a trip through the blocking pool (the response cache's shared tier: GET, and
// SET … PX off the request's critical path). The storage backend keeps hiredis's synchronous
// client on its blocking pool; this one formats RESP itself and parses replies with hiredis's
// reader.
//
// Connections: per worker (event-loop thread) a stack of idle connections, at most
// `max_connections` open per worker; a command takes one for itself (no pipelining), and puts it
// back only when the reply came whole within the time allowed. A command that times out or fails
// closes its connection (the reply may still come, and must not answer another command). A
// connection is opened on demand within the command's own time bound, AUTH and SELECT included.
//
// Errors: kDeadlineExceeded (the time allowed passed), kUnavailable (resolve, connect or I/O
// failed, or every connection of the worker is busy), kInternal (Redis answered with an error or
// with a reply of the wrong type). The password never appears in an error.
//
// Thread-safety: each worker's state is touched only on that worker's event loop: call with the
// index of the worker whose loop runs the calling coroutine. Lifetime: the client must outlive
// every event loop that runs its coroutines (the detached writes included), and the loops must
// outlive its connections (ReleaseConnections).
namespace orchestra::net {

class RedisClient {
 public:
  struct Options {
    RedisAddress address;
    int workers = 1;
    int max_connections = 8;  // per worker
    // A reply larger than this is refused (kInternal) and its connection closed: a value that
    // is not ours must not make the process buffer up to Redis's 512 MB.
    std::size_t max_reply_bytes = 64ULL << 20;
  };
  explicit RedisClient(Options options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // GET key: the value, or nullopt when Redis has none.
  boost::asio::awaitable<Result<std::optional<std::string>>> Get(int worker, std::string_view key,
                                                                 std::chrono::nanoseconds timeout);
  // SET key value PX ttl.
  boost::asio::awaitable<Result<void>> Set(int worker, std::string_view key, std::string_view value,
                                           std::chrono::milliseconds ttl,
                                           std::chrono::nanoseconds timeout);
  // Opens a connection on this worker if it has none idle (start-up and POST /warmup).
  boost::asio::awaitable<Result<void>> Warm(int worker, std::chrono::nanoseconds timeout);

  // Closes the idle connections. Call after the workers have stopped and before their
  // io_contexts are destroyed: the sockets belong to them.
  void ReleaseConnections();

  int workers() const { return static_cast<int>(workers_.size()); }
  const RedisAddress& address() const { return options_.address; }

  struct Connection;
  struct Reply;

 private:
  struct Worker;
  boost::asio::awaitable<Result<Reply>> Command(int worker, std::string request,
                                                std::chrono::nanoseconds timeout);
  boost::asio::awaitable<Result<Reply>> Exchange(Worker& w, std::unique_ptr<Connection>& conn,
                                                 const std::string& request);
  boost::asio::awaitable<Result<std::unique_ptr<Connection>>> Connect();

  Options options_;
  std::string setup_;  // AUTH and SELECT, sent first on every new connection ("" if neither)
  int setup_replies_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
};

// RESP, the request side: an array of bulk strings (exposed for tests).
std::string FormatRedisCommand(const std::vector<std::string_view>& args);

}  // namespace orchestra::net
