#include "net/redis_client.hpp"

#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <hiredis/hiredis.h>

namespace orchestra::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

Error Unavailable(std::string what) {
  return Error(ErrorCode::kUnavailable, "redis: " + std::move(what));
}

}  // namespace

std::string FormatRedisCommand(const std::vector<std::string_view>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view a : args) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

struct RedisClient::Reply {
  enum class Kind : std::uint8_t { kNil, kString, kStatus, kError, kInteger, kOther };
  Kind kind = Kind::kOther;
  std::string text;  // string, status or error text
};

struct RedisClient::Connection {
  explicit Connection(const asio::any_io_executor& ex) : socket(ex), reader(redisReaderCreate()) {}
  ~Connection() {
    if (reader != nullptr) redisReaderFree(reader);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Reads one whole reply of at most `max_bytes` bytes.
  asio::awaitable<Result<Reply>> Read(std::size_t max_bytes) {
    std::size_t read = 0;
    while (true) {
      void* raw = nullptr;
      if (reader == nullptr || redisReaderGetReply(reader, &raw) != REDIS_OK) {
        co_return Error(ErrorCode::kInternal, "redis: malformed reply");
      }
      if (raw != nullptr) {
        auto* r = static_cast<redisReply*>(raw);
        Reply reply;
        switch (r->type) {
          case REDIS_REPLY_NIL:
            reply.kind = Reply::Kind::kNil;
            break;
          case REDIS_REPLY_STRING:
            reply.kind = Reply::Kind::kString;
            break;
          case REDIS_REPLY_STATUS:
            reply.kind = Reply::Kind::kStatus;
            break;
          case REDIS_REPLY_ERROR:
            reply.kind = Reply::Kind::kError;
            break;
          case REDIS_REPLY_INTEGER:
            reply.kind = Reply::Kind::kInteger;
            break;
          default:
            break;
        }
        if (r->str != nullptr) reply.text.assign(r->str, r->len);
        freeReplyObject(r);
        co_return reply;
      }
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), kAsTuple);
      if (ec) co_return Unavailable("read failed: " + ec.message());
      read += n;
      if (read > max_bytes) co_return Error(ErrorCode::kInternal, "redis: reply too large");
      if (redisReaderFeed(reader, buffer.data(), n) != REDIS_OK) {
        co_return Error(ErrorCode::kInternal, "redis: malformed reply");
      }
    }
  }

  tcp::socket socket;
  redisReader* reader;
  std::array<char, 4096> buffer{};
};

struct RedisClient::Worker {
  std::vector<std::unique_ptr<Connection>> idle;  // most recently used last
  int open = 0;                                   // idle, in use and being opened
};

RedisClient::RedisClient(Options options) : options_(std::move(options)) {
  const RedisAddress& a = options_.address;
  if (!a.password.empty()) {
    setup_ += a.user.empty() ? FormatRedisCommand({"AUTH", a.password})
                             : FormatRedisCommand({"AUTH", a.user, a.password});
    ++setup_replies_;
  }
  if (a.db != 0) {
    setup_ += FormatRedisCommand({"SELECT", std::to_string(a.db)});
    ++setup_replies_;
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i)
    workers_.push_back(std::make_unique<Worker>());
}

RedisClient::~RedisClient() = default;

void RedisClient::ReleaseConnections() {
  for (auto& w : workers_) {
    w->open -= static_cast<int>(w->idle.size());
    w->idle.clear();
  }
}

asio::awaitable<Result<std::unique_ptr<RedisClient::Connection>>> RedisClient::Connect() {
  const asio::any_io_executor ex = co_await asio::this_coro::executor;
  const RedisAddress& a = options_.address;
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code parse_error;
  const auto ip = asio::ip::make_address(a.host, parse_error);
  if (!parse_error) {
    endpoints.emplace_back(ip, static_cast<std::uint16_t>(a.port));
  } else {
    tcp::resolver resolver(ex);
    auto [ec, results] = co_await resolver.async_resolve(a.host, std::to_string(a.port), kAsTuple);
    if (ec) co_return Unavailable("cannot resolve " + a.host + ": " + ec.message());
    for (const auto& entry : results)
      endpoints.push_back(entry.endpoint());
  }
  auto conn = std::make_unique<Connection>(ex);
  if (conn->reader == nullptr) co_return Unavailable("cannot allocate a reply reader");
  auto [ec, endpoint] = co_await asio::async_connect(conn->socket, endpoints, kAsTuple);
  if (ec) {
    co_return Unavailable("cannot connect to " + a.host + ":" + std::to_string(a.port) + ": " +
                          ec.message());
  }
  conn->socket.set_option(tcp::no_delay(true), ec);
  if (setup_replies_ > 0) {
    auto [wec, n] = co_await asio::async_write(conn->socket, asio::buffer(setup_), kAsTuple);
    if (wec) co_return Unavailable("write failed: " + wec.message());
    for (int i = 0; i < setup_replies_; ++i) {
      auto reply = co_await conn->Read(options_.max_reply_bytes);
      if (!reply) co_return reply.error();
      if (reply->kind != Reply::Kind::kStatus) {
        co_return Unavailable("AUTH or SELECT refused: " + reply->text);
      }
    }
  }
  co_return conn;
}

asio::awaitable<Result<RedisClient::Reply>> RedisClient::Exchange(Worker& /*w*/,
                                                                  std::unique_ptr<Connection>& conn,
                                                                  const std::string& request) {
  if (!conn) {
    auto opened = co_await Connect();
    if (!opened) co_return opened.error();
    conn = std::move(*opened);
  }
  auto [ec, n] = co_await asio::async_write(conn->socket, asio::buffer(request), kAsTuple);
  if (ec) co_return Unavailable("write failed: " + ec.message());
  co_return co_await conn->Read(options_.max_reply_bytes);
}

asio::awaitable<Result<RedisClient::Reply>> RedisClient::Command(int worker, std::string request,
                                                                 std::chrono::nanoseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  Worker& w = *workers_.at(static_cast<std::size_t>(worker));
  std::unique_ptr<Connection> conn;
  if (!w.idle.empty()) {
    conn = std::move(w.idle.back());
    w.idle.pop_back();
  } else if (w.open >= options_.max_connections) {
    co_return Unavailable("every connection of this worker is busy");
  } else {
    ++w.open;
  }
  // The command races the timer: whichever ends first cancels the other. A connection whose
  // command did not finish is closed, so a late reply can never answer the next command.
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(timeout);
  auto outcome = co_await (Exchange(w, conn, request) || timer.async_wait(kAsTuple));
  if (outcome.index() == 1) {
    --w.open;
    co_return Error(ErrorCode::kDeadlineExceeded, "redis: no answer within the time allowed");
  }
  auto& reply = std::get<0>(outcome);
  if (!reply) {
    --w.open;
    co_return reply.error();
  }
  w.idle.push_back(std::move(conn));
  co_return std::move(*reply);
}

asio::awaitable<Result<std::optional<std::string>>> RedisClient::Get(
    int worker, std::string_view key, std::chrono::nanoseconds timeout) {
  // Formatted before the co_await: g++ 12 cannot keep a braced list's temporaries in a frame.
  std::string request = FormatRedisCommand({"GET", key});
  auto reply = co_await Command(worker, std::move(request), timeout);
  if (!reply) co_return reply.error();
  if (reply->kind == Reply::Kind::kNil) co_return std::optional<std::string>{};
  if (reply->kind != Reply::Kind::kString) {
    co_return Error(ErrorCode::kInternal, "redis: GET answered " + reply->text);
  }
  co_return std::optional<std::string>(std::move(reply->text));
}

asio::awaitable<Result<void>> RedisClient::Set(int worker, std::string_view key,
                                               std::string_view value,
                                               std::chrono::milliseconds ttl,
                                               std::chrono::nanoseconds timeout) {
  const std::string ms = std::to_string(std::max<std::int64_t>(1, ttl.count()));
  std::string request = FormatRedisCommand({"SET", key, value, "PX", ms});
  auto reply = co_await Command(worker, std::move(request), timeout);
  if (!reply) co_return reply.error();
  if (reply->kind != Reply::Kind::kStatus) {
    co_return Error(ErrorCode::kInternal, "redis: SET answered " + reply->text);
  }
  co_return Result<void>{};
}

asio::awaitable<Result<void>> RedisClient::Warm(int worker, std::chrono::nanoseconds timeout) {
  if (!workers_.at(static_cast<std::size_t>(worker))->idle.empty()) co_return Result<void>{};
  std::string request = FormatRedisCommand({"PING"});
  auto reply = co_await Command(worker, std::move(request), timeout);
  if (!reply) co_return reply.error();
  co_return Result<void>{};
}

}  // namespace orchestra::net
