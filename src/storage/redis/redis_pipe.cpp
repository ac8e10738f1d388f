#include "storage/redis/redis_pipe.hpp"

#include <charconv>
#include <optional>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <hiredis/hiredis.h>

#include "common/text.hpp"

namespace orchestra::storage {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

RedisValue Convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::kInteger;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      v.type = RedisValue::Type::kString;
      v.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RedisValue::Type::kStatus;
      v.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = RedisValue::Type::kError;
      v.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::kArray;
      v.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i)
        v.elements.push_back(Convert(r->element[i]));
      break;
    default:
      break;  // nil
  }
  return v;
}

Error Unavailable(std::string message) {
  return Error(ErrorCode::kUnavailable, "redis: " + std::move(message));
}

}  // namespace

void AppendCommand(std::string& wire, std::span<const std::string_view> args) {
  char number[24];
  auto put_number = [&](char prefix, std::size_t n) {
    wire.push_back(prefix);
    wire.append(number, std::to_chars(number, number + sizeof number, n).ptr);
    wire.append("\r\n", 2);
  };
  put_number('*', args.size());
  for (std::string_view a : args) {
    put_number('$', a.size());
    wire.append(a);
    wire.append("\r\n", 2);
  }
}

// One call waiting for its replies.
struct Waiter {
  explicit Waiter(const asio::any_io_executor& ex, std::size_t n) : expected(n), timer(ex) {}
  std::size_t expected;
  RedisPipe::Replies replies;
  std::optional<Error> error;
  bool done = false;
  bool abandoned = false;  // its caller timed out
  RedisPipe::Late late;
  asio::steady_timer timer;
};

struct RedisPipe::State : std::enable_shared_from_this<RedisPipe::State> {
  enum class Phase : std::uint8_t { kDisconnected, kConnecting, kReady };

  State(asio::any_io_executor ex, RedisEndpoint ep, Options opts)
      : executor(std::move(ex)), endpoint(std::move(ep)), options(opts) {}

  asio::any_io_executor executor;
  RedisEndpoint endpoint;
  Options options;
  Phase phase = Phase::kDisconnected;
  std::uint64_t generation = 0;  // of the current connection
  std::shared_ptr<tcp::socket> socket;
  SteadyClock::time_point failed_at{};
  bool failed_once = false;
  bool closed = false;
  bool writing = false;
  std::string out;  // to write
  std::deque<std::shared_ptr<Waiter>> pending;

  void Complete(const std::shared_ptr<Waiter>& w) {
    w->done = true;
    if (w->abandoned) {
      if (w->late && !w->error) w->late(w->replies);
      w->late = nullptr;
    } else {
      w->timer.cancel();
    }
  }

  void Fail(std::uint64_t gen, const std::string& why) {
    if (gen != generation || phase == Phase::kDisconnected) return;
    phase = Phase::kDisconnected;
    ++generation;
    failed_at = SteadyClock::now();
    failed_once = true;
    if (socket) {
      boost::system::error_code ignored;
      socket->close(ignored);
      socket.reset();
    }
    out.clear();
    writing = false;
    std::deque<std::shared_ptr<Waiter>> failed;
    failed.swap(pending);
    for (auto& w : failed) {
      w->error = Unavailable(why);
      Complete(w);
    }
  }

  void Kick() {
    if (phase == Phase::kDisconnected) {
      phase = Phase::kConnecting;
      const std::uint64_t gen = ++generation;
      asio::co_spawn(executor, Connect(shared_from_this(), gen), asio::detached);
    } else if (phase == Phase::kReady && !writing && !out.empty()) {
      writing = true;
      asio::co_spawn(executor, Write(shared_from_this(), generation), asio::detached);
    }
  }

  static asio::awaitable<void> Connect(std::shared_ptr<State> self, std::uint64_t gen) {
    tcp::resolver resolver(self->executor);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(self->endpoint.host, std::to_string(self->endpoint.port),
                                        tcp::resolver::numeric_service, kAsTuple);
    if (gen != self->generation) co_return;
    if (rec) {
      self->Fail(gen, "cannot resolve " + self->endpoint.host + ": " + rec.message());
      co_return;
    }
    auto socket = std::make_shared<tcp::socket>(self->executor);
    self->socket = socket;
    // A server that never answers the SYN must not hold the connection in kConnecting.
    auto timer = std::make_shared<asio::steady_timer>(self->executor);
    timer->expires_after(self->options.connect_timeout);
    timer->async_wait([socket](boost::system::error_code ec) {
      if (!ec) {
        boost::system::error_code ignored;
        socket->close(ignored);
      }
    });
    auto [cec, ignored_endpoint] = co_await asio::async_connect(*socket, endpoints, kAsTuple);
    timer->cancel();
    if (gen != self->generation) co_return;
    if (cec) {
      self->Fail(gen, "cannot connect to " + self->endpoint.host + ":" +
                          std::to_string(self->endpoint.port) + ": " + cec.message());
      co_return;
    }
    boost::system::error_code ignored;
    socket->set_option(tcp::no_delay(true), ignored);
    // AUTH and SELECT go first; their replies are checked by a waiter nobody awaits.
    std::string prefix;
    std::size_t n = 0;
    if (!self->endpoint.password.empty()) {
      if (self->endpoint.user.empty()) {
        const std::string_view args[] = {"AUTH", self->endpoint.password};
        AppendCommand(prefix, args);
      } else {
        const std::string_view args[] = {"AUTH", self->endpoint.user, self->endpoint.password};
        AppendCommand(prefix, args);
      }
      ++n;
    }
    if (self->endpoint.db != 0) {
      const std::string db = std::to_string(self->endpoint.db);
      const std::string_view args[] = {"SELECT", db};
      AppendCommand(prefix, args);
      ++n;
    }
    if (n > 0) {
      auto w = std::make_shared<Waiter>(self->executor, n);
      w->abandoned = true;
      std::weak_ptr<State> weak = self;
      w->late = [weak, gen](Replies& replies) {
        auto s = weak.lock();
        if (!s) return;
        for (const RedisValue& r : replies) {
          if (r.is_error()) s->Fail(gen, "AUTH or SELECT refused: " + r.text);
        }
      };
      self->pending.push_front(std::move(w));
      self->out.insert(0, prefix);
    }
    self->phase = Phase::kReady;
    asio::co_spawn(self->executor, Read(self, gen), asio::detached);
    self->Kick();
  }

  static asio::awaitable<void> Write(std::shared_ptr<State> self, std::uint64_t gen) {
    std::string chunk;
    while (gen == self->generation && !self->out.empty()) {
      chunk.clear();
      chunk.swap(self->out);
      auto socket = self->socket;
      auto [ec, n] = co_await asio::async_write(*socket, asio::buffer(chunk), kAsTuple);
      if (ec) {
        self->Fail(gen, "write: " + ec.message());
        co_return;
      }
    }
    if (gen == self->generation) self->writing = false;
  }

  static asio::awaitable<void> Read(std::shared_ptr<State> self, std::uint64_t gen) {
    struct FreeReader {
      void operator()(redisReader* r) const { redisReaderFree(r); }
    };
    std::unique_ptr<redisReader, FreeReader> reader(redisReaderCreate());
    std::vector<char> buffer(16 * 1024);
    auto socket = self->socket;
    while (gen == self->generation) {
      auto [ec, n] = co_await socket->async_read_some(asio::buffer(buffer), kAsTuple);
      if (gen != self->generation) co_return;
      if (ec) {
        self->Fail(gen, ec == asio::error::eof ? "the server closed the connection"
                                               : "read: " + ec.message());
        co_return;
      }
      if (redisReaderFeed(reader.get(), buffer.data(), n) != REDIS_OK) {
        self->Fail(gen, "protocol error");
        co_return;
      }
      for (;;) {
        void* raw = nullptr;
        if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK) {
          self->Fail(gen, "protocol error");
          co_return;
        }
        if (raw == nullptr) break;
        auto* reply = static_cast<redisReply*>(raw);
        RedisValue value = Convert(reply);
        freeReplyObject(reply);
        if (self->pending.empty()) {
          self->Fail(gen, "a reply nobody asked for");
          co_return;
        }
        std::shared_ptr<Waiter> w = self->pending.front();
        w->replies.push_back(std::move(value));
        if (w->replies.size() == w->expected) {
          self->pending.pop_front();
          self->Complete(w);
          if (gen != self->generation) co_return;  // a late handler failed the connection
        }
      }
    }
  }
};

RedisPipe::RedisPipe(asio::any_io_executor executor, RedisEndpoint endpoint, Options options)
    : state_(std::make_shared<State>(std::move(executor), std::move(endpoint), options)) {}

RedisPipe::~RedisPipe() {
  Close();
}

void RedisPipe::Connect() {
  if (!state_->closed && state_->phase == State::Phase::kDisconnected) state_->Kick();
}

void RedisPipe::Close() {
  state_->closed = true;
  state_->Fail(state_->generation, "closed");
}

bool RedisPipe::closed() const {
  return state_->closed;
}

bool RedisPipe::connected() const {
  return state_->phase == State::Phase::kReady;
}

asio::awaitable<Result<RedisPipe::Replies>> RedisPipe::Call(std::string wire, std::size_t replies,
                                                            std::chrono::microseconds timeout,
                                                            Late late) {
  std::shared_ptr<State> s = state_;
  if (s->closed) co_return Unavailable("closed");
  if (s->phase == State::Phase::kDisconnected && s->failed_once &&
      SteadyClock::now() - s->failed_at < s->options.backoff) {
    co_return Unavailable("not connected (retrying shortly)");
  }
  if (s->pending.size() >= s->options.max_pending) co_return Unavailable("too many calls waiting");
  auto w = std::make_shared<Waiter>(s->executor, replies);
  w->timer.expires_after(timeout);
  s->pending.push_back(w);
  s->out.append(wire);
  s->Kick();
  if (!w->done) co_await w->timer.async_wait(kAsTuple);
  if (!w->done) {
    w->abandoned = true;
    w->late = std::move(late);
    co_return Error(ErrorCode::kDeadlineExceeded, "redis: no answer in time");
  }
  if (w->error) co_return *w->error;
  co_return std::move(w->replies);
}

}  // namespace orchestra::storage
