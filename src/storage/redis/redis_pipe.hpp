#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"
#include "common/redis_url.hpp"

// A non-blocking Redis connection on one event loop: commands are written pipelined on one TCP
// connection and their replies matched in order (RESP2, parsed by hiredis's reader), so a caller
// co_awaits one round trip and never occupies a thread. Made for the admission path (the
// fleet-wide rate limiter, limits/fleet_limiter.hpp), where a call must never wait longer than a
// few milliseconds: every call has a timeout, and after a connection failure the pipe refuses at
// once for a short back-off instead of reconnecting on every call.
//
// Thread-safety: none. A pipe belongs to one io_context and is used only on its thread (one pipe
// per worker). Lifetime: the coroutines it spawns share its state, so destroying the pipe (call
// Close first, on the loop's thread or after the loop stopped) leaves them to finish with the
// io_context.
namespace orchestra::storage {

// Where a pipe connects: common/redis_url.hpp's ParseRedisUrl reads it from a redis:// URL.
using RedisEndpoint = RedisAddress;

// A reply, converted from hiredis's.
struct RedisValue {
  enum class Type : std::uint8_t { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  std::int64_t integer = 0;
  std::string text;  // kString, kStatus, kError
  std::vector<RedisValue> elements;

  bool is_error() const { return type == Type::kError; }
};

// Appends one command in RESP form to `wire`.
void AppendCommand(std::string& wire, std::span<const std::string_view> args);

class RedisPipe {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{1000};
    // After a failed connection, calls fail at once for this long.
    std::chrono::milliseconds backoff{250};
    // Calls waiting for a reply at once; beyond: refused (a stalled server must not grow memory).
    std::size_t max_pending = 100'000;
  };
  using Replies = std::vector<RedisValue>;
  // Called on the loop's thread with the replies of a call that had already timed out.
  using Late = std::function<void(Replies&)>;

  RedisPipe(boost::asio::any_io_executor executor, RedisEndpoint endpoint, Options options);
  RedisPipe(boost::asio::any_io_executor executor, RedisEndpoint endpoint)
      : RedisPipe(std::move(executor), std::move(endpoint), Options{}) {}
  ~RedisPipe();
  RedisPipe(const RedisPipe&) = delete;
  RedisPipe& operator=(const RedisPipe&) = delete;

  // Sends `wire` (`replies` commands made with AppendCommand) and waits at most `timeout` for
  // all their replies. kUnavailable when not connected (or in back-off) or the connection
  // failed; kDeadlineExceeded on the timeout (then `late`, when given, gets the replies should
  // they come). A Redis error reply is a RedisValue of kError, not an Error.
  boost::asio::awaitable<Result<Replies>> Call(std::string wire, std::size_t replies,
                                               std::chrono::microseconds timeout, Late late = {});

  // Starts connecting now (when not connected), so that the first call does not wait for it.
  void Connect();
  // Closes the connection; pending calls fail.
  void Close();
  bool connected() const;
  bool closed() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace orchestra::storage
