#include "net/server.hpp"

#include <array>
#include <charconv>
#include <cstring>
#include <ctime>
#include <optional>
#include <system_error>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>

#include "common/text.hpp"
#include "net/fd_limit.hpp"
#include "net/http_read.hpp"
#include "net/write.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>

namespace orchestra::net {
namespace {

using namespace std::string_view_literals;

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using observability::Severity;

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kSweepPeriod = std::chrono::milliseconds(250);
// How often a worker measures its loop's queueing delay. Short enough that an overload is seen
// within a few ticks; long enough to cost nothing (a timer turn 50 times a second).
constexpr auto kLoopTick = std::chrono::milliseconds(20);
constexpr std::size_t kReadSize = 16 << 10;
// After a failed accept (out of file descriptors, most likely), accepting pauses this long,
// doubling up to the maximum while it keeps failing.
constexpr auto kAcceptPauseMin = std::chrono::milliseconds(10);
constexpr auto kAcceptPauseMax = std::chrono::milliseconds(500);
constexpr auto kAcceptLogPeriod = std::chrono::seconds(10);
// A watched request is checked for a departed client by the sweep once it has run this long:
// a fast request never pays a syscall for it, a slow one is cancelled within ~half a second.
constexpr auto kWatchAfter = std::chrono::milliseconds(200);

// "Date: <IMF-fixdate>\r\n", formatted once per second per thread.
std::string_view DateHeader() {
  thread_local std::time_t cached = 0;
  thread_local char line[64];
  thread_local std::size_t length = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    length = std::strftime(line, sizeof(line), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    cached = now;
  }
  return {line, length};
}

void AppendUnsigned(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void AppendStatusLine(std::string& out, unsigned status) {
  out += "HTTP/1.1 "sv;
  AppendUnsigned(out, status);
  out += ' ';
  out += beast::http::obsolete_reason(static_cast<http::status>(status));
  out += "\r\nServer: orchestra\r\n"sv;
  out += DateHeader();
}

bool HeaderValueIsSafe(std::string_view v) {
  // Nearly every value has no control character, quote or backslash: one vector scan says so.
  const std::size_t plain = JsonPlainPrefix(v);
  if (plain == v.size()) return true;
  for (char c : v.substr(plain)) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// Whether the raw head has a field line that starts with a space or tab (obs-fold), which
// Beast would silently unfold into the previous field's value (RFC 9112 §5.2 lets a server
// refuse it). The exact scan, for heads that ScanHead below cannot account for.
bool HasObsFold(std::string_view head) {
  const char* const end = head.data() + head.size();
  const char* p = static_cast<const char*>(std::memchr(head.data(), '\n', head.size()));
  while (p != nullptr && ++p < end) {
    if (*p == ' ' || *p == '\t') return true;
    p = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
  }
  return false;
}

// What the server checks in a request head beyond Beast's parser: obs-fold, the Host fields
// (RFC 9112 §3.2), whether any Transfer-Encoding field is present (§6.3: then the parsed
// fields are checked, which only such a rare request pays for).
struct HeadFacts {
  int hosts = 0;
  bool transfer_encoding = false;
  bool obs_fold = false;
};

// Found from the parsed fields and the raw head the parser accepted (every line ends with
// CRLF, every field name is a token). An ordinary head is accounted for byte by byte with the
// fields' lengths, in order, without a search: "METHOD SP target SP HTTP/1.x CRLF", then
// "name: value CRLF" for each field. A folded value (which Beast joins with one space) never
// fits its line; then, or with any other spacing, HasObsFold scans the head.
HeadFacts ScanHead(std::string_view head, const http::request<http::string_body>& msg) {
  HeadFacts facts;
  std::size_t at = msg.method_string().size() + msg.target().size() + 12;  // past the CRLF
  bool accounted = at <= head.size() && head[at - 1] == '\n';
  for (const auto& field : msg.base()) {
    if (field.name() == http::field::host) {
      ++facts.hosts;
    } else if (field.name() == http::field::transfer_encoding) {
      facts.transfer_encoding = true;
    }
    if (!accounted) continue;
    const std::size_t name = field.name_string().size();
    const std::size_t line = name + field.value().size() + 4;  // "name: value\r\n"
    accounted = head.size() - at >= line && head[at + name] == ':' && head[at + name + 1] == ' ' &&
                head[at + line - 2] == '\r' && head[at + line - 1] == '\n';
    at += line;
  }
  if (!accounted || head.size() - at != 2) facts.obs_fold = HasObsFold(head);
  return facts;
}

// RFC 9112 §6.3: the only framing Orchestra reads from Transfer-Encoding is a lone `chunked`.
// Anything else would leave the body's length to guesswork, and a body that is not read as a
// body is read as the next request (request smuggling behind a proxy that reads it otherwise).
// Every Transfer-Encoding field counts, in order, as one list.
std::optional<Error> CheckTransferEncoding(const http::request<http::string_body>& msg) {
  if (msg.version() < 11) {
    return Error(ErrorCode::kInvalidRequest,
                 "Transfer-Encoding is not allowed in an HTTP/1.0 request");
  }
  std::string_view last;
  std::string_view unsupported;
  bool chunked_before_last = false;
  auto [it, fields_end] = msg.base().equal_range(http::field::transfer_encoding);
  for (; it != fields_end; ++it) {
    std::string_view list = it->value();
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      const std::string_view coding = TrimOws(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      if (coding.empty()) continue;
      if (!last.empty()) {
        if (beast::iequals(last, "chunked")) {
          chunked_before_last = true;
        } else if (unsupported.empty()) {
          unsupported = last;
        }
      }
      last = coding;
    }
  }
  if (!beast::iequals(last, "chunked")) {
    return Error(ErrorCode::kInvalidRequest,
                 "Transfer-Encoding must end with chunked, or the body's length is unknown");
  }
  if (chunked_before_last) {
    return Error(ErrorCode::kInvalidRequest, "Transfer-Encoding names chunked more than once");
  }
  if (!unsupported.empty()) {
    return Error(ErrorCode::kNotImplemented, "transfer coding '" +
                                                 std::string(unsupported.substr(0, 64)) +
                                                 "' is not supported (only chunked is)");
  }
  return std::nullopt;
}

// The checks of a request head that Beast's parser leaves to us. `chunked`: the parser reads
// the body as chunked.
std::optional<Error> CheckHead(const http::request<http::string_body>& msg, const HeadFacts& facts,
                               bool chunked) {
  if (facts.obs_fold) {
    return Error(ErrorCode::kInvalidRequest,
                 "obsolete line folding (a header line that starts with whitespace) is not "
                 "allowed");
  }
  if (facts.hosts > 1) {
    return Error(ErrorCode::kInvalidRequest, "a request may have only one Host header");
  }
  if (facts.hosts == 0 && msg.version() >= 11) {
    return Error(ErrorCode::kInvalidRequest, "an HTTP/1.1 request needs a Host header");
  }
  if (facts.transfer_encoding) {
    if (auto refused = CheckTransferEncoding(msg)) return refused;
    // The list is a lone chunked as we read it: the parser must have read it so too.
    if (!chunked) return Error(ErrorCode::kInvalidRequest, "malformed Transfer-Encoding");
  }
  return std::nullopt;
}

}  // namespace

class Connection;

// One event loop, its listener and its connections.
class Server::Worker {
 public:
  Worker(Server& server, int index) : server_(server), index_(index), context_(1) {}

  // `first`: the process's first listener on the address (see the definition).
  void Listen(const tcp::endpoint& endpoint, int backlog, bool first);
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void Start();
  void StopAccepting();
  void Stop();
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  asio::io_context& context() { return context_; }
  Server& server() { return server_; }
  Clock::time_point heartbeat() const {
    return Clock::time_point(Clock::duration(heartbeat_.load(std::memory_order_relaxed)));
  }
  int index() const { return index_; }
  bool draining() const { return draining_; }

  void Add(Connection* c);
  void Remove(Connection* c);

 private:
  asio::awaitable<void> Accept();
  asio::awaitable<void> Sweep();
  asio::awaitable<void> Tick();

  Server& server_;
  int index_;
  asio::io_context context_;
  tcp::acceptor acceptor_{context_};
  asio::steady_timer sweep_timer_{context_};
  asio::steady_timer tick_timer_{context_};
  std::thread thread_;
  bool draining_ = false;
  bool stopping_ = false;
  std::atomic<Clock::rep> heartbeat_{Clock::now().time_since_epoch().count()};
  Connection* head_ = nullptr;  // intrusive list of live connections
};

class Connection final : public Exchange, public std::enable_shared_from_this<Connection> {
 public:
  enum class Phase : std::uint8_t { kIdle, kHead, kBody, kHandling, kWriting, kClosed };

  Connection(Server::Worker& worker, tcp::socket socket, const ServerOptions& options,
             const Handler& handler, const ErrorRenderer& render_error,
             std::shared_ptr<std::atomic<int>> active)
      : worker_(worker),
        socket_(std::move(socket)),
        options_(options),
        handler_(handler),
        render_error_(render_error),
        active_(std::move(active)) {
    beast::error_code ec;
    auto remote = socket_.remote_endpoint(ec);
    if (!ec) remote_ip_ = remote.address().to_string();
  }

  static asio::awaitable<void> Session(std::shared_ptr<Connection> self) {
    self->worker_.Add(self.get());
    try {
      co_await self->Run();
    } catch (const std::exception& e) {
      // Last resort: a bug below us. The connection is dropped, the process carries on.
      observability::Log(Severity::kError, "connection failed", {{"error", e.what()}});
    }
    self->Close();
    self->worker_.Remove(self.get());
  }

  // Called by the worker's sweep (same thread).
  void Sweep(Clock::time_point now) {
    if (phase_ == Phase::kClosed) return;
    if (phase_ == Phase::kHandling && watching_ && !client_gone_ &&
        now - request_.start >= kWatchAfter && PeerClosed()) {
      OnClientGone();
      return;
    }
    if (now < deadline_) return;
    if (phase_ == Phase::kHandling) {
      if (!timed_out_) {
        timed_out_ = true;
        cancel_.emit(asio::cancellation_type::terminal);
      }
      return;
    }
    Close();  // slow or idle client: nothing to answer
  }

  // Graceful shutdown: idle connections close now, busy ones after their response.
  void Drain() {
    if (phase_ == Phase::kIdle && buffer_.size() == 0) Close();
  }

  void Close() {
    if (phase_ == Phase::kClosed && !socket_.is_open()) return;
    phase_ = Phase::kClosed;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  asio::cancellation_slot cancel_slot() { return cancel_.slot(); }

  Connection* prev = nullptr;
  Connection* next = nullptr;

  // Exchange
  const Request& request() const override { return request_; }
  Response& response() override { return response_; }
  std::string TakeBody() override { return std::move(parser_->get().body()); }
  bool streaming() const override { return streaming_; }
  bool client_gone() const override { return client_gone_; }
  std::uint64_t bytes_written() const override { return bytes_written_; }
  int worker_index() const override { return worker_.index(); }

  asio::awaitable<bool> BeginStream(std::string_view content_type) override {
    streaming_ = true;
    chunked_ = parser_->get().version() >= 11;
    head_.clear();
    AppendStatusLine(head_, response_.status);
    head_ += "Content-Type: "sv;
    head_ += content_type;
    head_ += "\r\nCache-Control: no-cache\r\n"sv;
    AppendHeaders();
    if (chunked_) {
      head_ += "Transfer-Encoding: chunked\r\n"sv;
    } else {
      response_.close = true;  // HTTP/1.0: the body ends when the connection does
    }
    if (response_.close || worker_.draining()) head_ += "Connection: close\r\n"sv;
    head_ += "\r\n"sv;
    phase_ = Phase::kHandling;
    auto [ec, n] = co_await WriteAll(socket_, asio::buffer(head_));
    bytes_written_ += n;
    if (ec) client_gone_ = true;
    co_return !ec;
  }

  asio::awaitable<bool> WriteChunk(std::string_view data) override {
    if (client_gone_ || data.empty()) co_return !client_gone_;
    char size_line[24];
    std::size_t len = 0;
    if (chunked_) {
      auto [end, ec] = std::to_chars(size_line, size_line + 16, data.size(), 16);
      end[0] = '\r';
      end[1] = '\n';
      len = static_cast<std::size_t>(end + 2 - size_line);
    }
    std::array<asio::const_buffer, 3> bufs{asio::buffer(size_line, len), asio::buffer(data),
                                           asio::buffer("\r\n", chunked_ ? 2 : 0)};
    auto [ec, n] = co_await WriteAll(socket_, bufs);
    bytes_written_ += n;
    if (ec) client_gone_ = true;
    co_return !ec;
  }

  asio::awaitable<void> EndStream() override {
    if (client_gone_ || !chunked_) co_return;
    // The connection's last write before it reads the next request: see WriteResponse.
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer("0\r\n\r\n", 5), kAsTuple);
    bytes_written_ += n;
    if (ec) client_gone_ = true;
  }

  void WatchClientDisconnect() override { watching_ = true; }

 private:
  asio::awaitable<void> Run() {
    bool first = true;
    while (true) {
      // Wait for the next request's first bytes (the idle keep-alive phase).
      phase_ = Phase::kIdle;
      deadline_ = Clock::now() + (first ? options_.header_timeout : options_.idle_timeout);
      first = false;
      if (worker_.draining() && buffer_.size() == 0) co_return;
      if (buffer_.size() == 0) {
        auto [ec, n] = co_await socket_.async_read_some(buffer_.prepare(kReadSize), kAsTuple);
        if (ec) co_return;  // closed by the client, by a timeout, or by shutdown
        buffer_.commit(n);
      }

      phase_ = Phase::kHead;
      deadline_ = Clock::now() + options_.header_timeout;
      parser_.emplace();
      parser_->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
      parser_->body_limit(options_.max_body_bytes);
      std::size_t head_bytes = 0;
      const HeadObserver scan{[](void* self, std::string_view head) {
                                auto& c = *static_cast<Connection*>(self);
                                c.head_facts_ = ScanHead(head, c.parser_->get());
                              },
                              this};
      head_facts_ = {};
      beast::error_code ec = co_await ReadHttp(socket_, buffer_, *parser_, true, head_bytes, scan);
      if (ec) {
        co_await FailRead(ec);
        co_return;
      }
      if (auto refused = CheckHead(parser_->get(), head_facts_, parser_->chunked())) {
        co_await Refuse(std::move(*refused));
        co_return;
      }
      std::uint64_t wire = head_bytes;

      if (!parser_->is_done()) {
        auto& msg = parser_->get();
        if (beast::iequals(msg[http::field::expect], "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          auto [wec, wn] = co_await WriteAll(socket_, asio::buffer(kContinue));
          if (wec) co_return;
        }
        phase_ = Phase::kBody;
        deadline_ = Clock::now() + options_.body_timeout;
        std::size_t body_bytes = 0;
        beast::error_code bec = co_await ReadHttp(socket_, buffer_, *parser_, false, body_bytes);
        if (bec) {
          co_await FailRead(bec);
          co_return;
        }
        wire += body_bytes;
      }

      const bool keep_alive = co_await Handle(wire);
      if (!keep_alive || phase_ == Phase::kClosed) co_return;
    }
  }

  // Handles one parsed request; returns whether the connection stays open.
  asio::awaitable<bool> Handle(std::uint64_t wire_size) {
    auto& msg = parser_->get();
    request_.method = msg.method();
    request_.method_name = msg.method_string();
    request_.target = msg.target();
    auto q = request_.target.find('?');
    request_.path = request_.target.substr(0, q);
    request_.query =
        q == std::string_view::npos ? std::string_view() : request_.target.substr(q + 1);
    request_.message = &msg;
    request_.remote_ip = remote_ip_;
    request_.wire_size = wire_size;
    request_.start = Clock::now();
    response_.Reset();
    streaming_ = false;
    timed_out_ = false;
    bytes_written_ = 0;

    phase_ = Phase::kHandling;
    deadline_ = request_.start + options_.request_timeout;
    active_->fetch_add(1, std::memory_order_relaxed);
    struct ActiveGuard {
      std::atomic<int>& n;
      ~ActiveGuard() { n.fetch_sub(1, std::memory_order_relaxed); }
    } guard{*active_};

    if (request_.target.empty() || (request_.target.front() != '/' && request_.target != "*")) {
      render_error_(Error(ErrorCode::kInvalidRequest, "request target must be an absolute path"),
                    response_);
      response_.close = true;
    } else {
      bool failed = false;
      try {
        co_await handler_(*this);
      } catch (const boost::system::system_error& e) {
        failed = true;
        if (!timed_out_ && !client_gone_) {
          observability::Log(Severity::kError, "request handler failed", {{"error", e.what()}});
        }
      } catch (const std::exception& e) {
        failed = true;
        observability::Log(Severity::kError, "request handler failed", {{"error", e.what()}});
      }
      watching_ = false;
      // A cancelled handler (deadline, client gone) leaves the coroutine's cancellation state
      // set, which would abort every later operation: clear it so an answer can be written.
      if (timed_out_ || client_gone_) co_await asio::this_coro::reset_cancellation_state();
      // A handler cancelled by the deadline may still have answered (it saw its upstream call
      // cancelled): the client gets the deadline's answer either way.
      if (failed || timed_out_) {
        if (client_gone_) co_return false;
        if (streaming_) co_return false;  // mid-stream: the only honest signal left is closing
        response_.Reset();
        render_error_(timed_out_ ? Error(ErrorCode::kDeadlineExceeded, "request deadline exceeded")
                                 : Error(ErrorCode::kInternal, "internal error"),
                      response_);
        response_.close = true;
      }
    }
    if (client_gone_) co_return false;
    const bool keep_alive = msg.keep_alive() && !response_.close && !worker_.draining();
    if (streaming_) {
      co_return keep_alive&& chunked_ && !client_gone_;
    }
    phase_ = Phase::kWriting;
    co_await WriteResponse(keep_alive);
    co_return keep_alive&& phase_ != Phase::kClosed;
  }

  asio::awaitable<void> WriteResponse(bool keep_alive) {
    head_.clear();
    AppendStatusLine(head_, response_.status);
    head_ += "Content-Type: "sv;
    head_ += response_.content_type;
    head_ += "\r\nContent-Length: "sv;
    AppendUnsigned(head_, response_.body.size());
    head_ += "\r\n"sv;
    AppendHeaders();
    if (!keep_alive) {
      head_ += "Connection: close\r\n"sv;
    } else if (parser_->get().version() < 11) {
      head_ += "Connection: keep-alive\r\n"sv;
    }
    head_ += "\r\n"sv;
    const bool with_body = request_.method != http::verb::head;
    std::array<asio::const_buffer, 2> bufs{
        asio::buffer(head_),
        asio::buffer(response_.body.data(), with_body ? response_.body.size() : 0)};
    // async_write, not WriteAll: the next thing this connection does is read the next request,
    // and right after a direct send Asio's first read is a speculative recv that usually finds
    // nothing yet (strace: ~0.2-0.4 failed recv per request). Side by side the two cost the
    // same CPU per request; this way spares the syscall.
    auto [ec, n] = co_await asio::async_write(socket_, bufs, kAsTuple);
    bytes_written_ += n;
    if (ec) Close();
  }

  void AppendHeaders() {
    for (const Header& h : response_.headers()) {
      if (!HeaderValueIsSafe(h.value)) continue;  // never let a value split the response
      head_ += h.name;
      head_ += ": "sv;
      head_ += h.value;
      head_ += "\r\n"sv;
    }
  }

  // Answers a request that could not be read, when an answer is possible.
  asio::awaitable<void> FailRead(beast::error_code ec) {
    std::optional<Error> error;
    if (ec == http::error::header_limit) {
      error.emplace(
          ErrorCode::kHeadersTooLarge,
          "request headers exceed " + std::to_string(options_.max_header_bytes) + " bytes");
    } else if (ec == http::error::body_limit) {
      error.emplace(ErrorCode::kPayloadTooLarge,
                    "request body exceeds " + std::to_string(options_.max_body_bytes) + " bytes");
    } else if (ec.category() == beast::error_code(http::error::end_of_stream).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      error.emplace(ErrorCode::kInvalidRequest, "malformed HTTP request: " + ec.message());
    }
    if (!error) co_return;
    co_await Refuse(std::move(*error));
  }

  // Answers a request that cannot be served with `error`, then the connection closes: after a
  // request whose framing is in doubt, nothing more on the connection can be trusted.
  asio::awaitable<void> Refuse(Error error) {
    if (phase_ == Phase::kClosed) co_return;
    response_.Reset();
    render_error_(error, response_);
    response_.close = true;
    request_.method = http::verb::unknown;
    phase_ = Phase::kWriting;
    if (parser_) parser_.emplace();  // version() of a fresh parser is 1.1
    co_await WriteResponse(false);
  }

  bool PeerClosed() {
    char byte;
    ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  void OnClientGone() {
    watching_ = false;
    client_gone_ = true;
    cancel_.emit(asio::cancellation_type::terminal);
  }

  Server::Worker& worker_;
  tcp::socket socket_;
  const ServerOptions& options_;
  const Handler& handler_;
  const ErrorRenderer& render_error_;
  std::shared_ptr<std::atomic<int>> active_;
  std::string remote_ip_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HeadFacts head_facts_;  // of the request being read
  Request request_;
  Response response_;
  std::string head_;
  asio::cancellation_signal cancel_;
  Phase phase_ = Phase::kIdle;
  Clock::time_point deadline_{};
  std::uint64_t bytes_written_ = 0;
  bool streaming_ = false;
  bool chunked_ = true;
  bool timed_out_ = false;
  bool watching_ = false;
  bool client_gone_ = false;
};

void Server::Worker::Listen(const tcp::endpoint& endpoint, int backlog, bool first) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  int one = 1;
  auto reuse_port = [&] {
    if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      throw std::system_error(errno, std::generic_category(), "SO_REUSEPORT");
    }
  };
  // The first listener binds WITHOUT SO_REUSEPORT, so the bind fails with EADDRINUSE while any
  // other socket holds the port: another Orchestra process (or anything else) already serving
  // it makes this one fail instead of silently sharing the port and answering every other
  // connection. Only after its bind does it take SO_REUSEPORT, before listen(), which is when
  // Linux forms the reuseport group: the other workers' listeners (SO_REUSEPORT set before
  // their bind, same user) join it and the kernel spreads connections over all of them. A
  // second Orchestra's first listener still fails, since it binds without the option.
  if (!first) reuse_port();
  acceptor_.bind(endpoint);
  if (first) reuse_port();
  acceptor_.listen(backlog);
}

void Server::Worker::Start() {
  thread_ = std::thread([this] {
    std::string name = "orchestra-w" + std::to_string(index_);
    pthread_setname_np(pthread_self(), name.c_str());
    observability::SetThreadShard(index_ + 1);
    if (server_.worker_init_) server_.worker_init_(index_, context_);
    asio::co_spawn(context_, Accept(), asio::detached);
    asio::co_spawn(context_, Sweep(), asio::detached);
    if (server_.options_.loop_load != nullptr) asio::co_spawn(context_, Tick(), asio::detached);
    context_.run();
  });
}

asio::awaitable<void> Server::Worker::Accept() {
  Duration pause = kAcceptPauseMin;
  LogThrottle log_throttle(kAcceptLogPeriod);
  while (acceptor_.is_open()) {
    auto [ec, socket] = co_await acceptor_.async_accept(kAsTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec == asio::error::connection_aborted) continue;  // it left the backlog: nothing to do
      // Out of descriptors (or memory): the connection waits in the backlog while accepting
      // pauses, with a backoff, rather than spin on an accept that keeps failing.
      const bool out_of_fds = IsOutOfDescriptors(ec);
      if (out_of_fds && server_.options_.fd_exhausted != nullptr) {
        server_.options_.fd_exhausted->Inc();
      }
      std::uint64_t held_back = 0;
      if (log_throttle.Allow(Clock::now(), held_back)) {
        observability::Log(Severity::kError,
                           out_of_fds ? "out of file descriptors: accepting paused"
                                      : "accept failed: accepting paused",
                           {{"error", ec.message()},
                            {"pause_ms", std::chrono::duration<double, std::milli>(pause).count()},
                            {"not_logged_since_last", held_back}});
      }
      asio::steady_timer timer(context_, pause);
      co_await timer.async_wait(kAsTuple);
      pause = std::min<Duration>(pause * 2, kAcceptPauseMax);
      continue;
    }
    pause = kAcceptPauseMin;
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto conn =
        std::make_shared<Connection>(*this, std::move(socket), server_.options_, server_.handler_,
                                     server_.render_error_, server_.active_requests_);
    auto slot = conn->cancel_slot();
    asio::co_spawn(context_, Connection::Session(std::move(conn)),
                   asio::bind_cancellation_slot(slot, asio::detached));
  }
}

asio::awaitable<void> Server::Worker::Sweep() {
  while (!stopping_) {
    sweep_timer_.expires_after(kSweepPeriod);
    auto [ec] = co_await sweep_timer_.async_wait(kAsTuple);
    if (ec || stopping_) co_return;
    const auto now = Clock::now();
    heartbeat_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    if (index_ == 0 && server_.options_.loop_load != nullptr) {
      server_.options_.loop_load->SetResidentBytes(ResidentBytes());
    }
    for (Connection* c = head_; c != nullptr;) {
      Connection* next = c->next;  // Sweep may close c, which unlinks it only later
      c->Sweep(now);
      c = next;
    }
  }
}

// The loop's queueing delay: a timer set for now + kLoopTick runs late by however long the loop
// was busy with other work when it fell due. Lateness also comes from the thread not running at
// all (other processes on the machine, a throttled container): shedding requests would not
// help there, so the lateness counts in proportion to how busy the thread itself was over the
// tick (its CPU time over the wall time).
asio::awaitable<void> Server::Worker::Tick() {
  LoopLoad& load = *server_.options_.loop_load;
  auto thread_cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  };
  while (!stopping_) {
    const auto start = Clock::now();
    const auto cpu_start = thread_cpu();
    const auto due = start + kLoopTick;
    tick_timer_.expires_at(due);
    auto [ec] = co_await tick_timer_.async_wait(kAsTuple);
    if (ec || stopping_) co_return;
    const auto now = Clock::now();
    const double wall = std::chrono::duration<double>(now - start).count();
    const double busy =
        wall > 0
            ? std::min(1.0, std::chrono::duration<double>(thread_cpu() - cpu_start).count() / wall)
            : 0;
    load.Record(index_, std::chrono::duration_cast<Duration>((now - due) * busy));
  }
}

void Server::Worker::Add(Connection* c) {
  c->next = head_;
  if (head_ != nullptr) head_->prev = c;
  head_ = c;
}

void Server::Worker::Remove(Connection* c) {
  if (c->prev != nullptr) c->prev->next = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  if (head_ == c) head_ = c->next;
  c->prev = c->next = nullptr;
}

void Server::Worker::StopAccepting() {
  asio::post(context_, [this] {
    draining_ = true;
    beast::error_code ec;
    acceptor_.close(ec);
    for (Connection* c = head_; c != nullptr; c = c->next)
      c->Drain();
  });
}

void Server::Worker::Stop() {
  asio::post(context_, [this] {
    stopping_ = true;
    draining_ = true;
    beast::error_code ec;
    acceptor_.close(ec);
    sweep_timer_.cancel();
    tick_timer_.cancel();
    for (Connection* c = head_; c != nullptr; c = c->next)
      c->Close();
    context_.stop();
  });
}

Server::Server(ServerOptions options, Handler handler, ErrorRenderer render_error,
               WorkerInit worker_init)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      render_error_(std::move(render_error)),
      worker_init_(std::move(worker_init)),
      active_requests_(std::make_shared<std::atomic<int>>(0)) {
  const int n = std::max(1, options_.threads);
  for (int i = 0; i < n; ++i)
    workers_.push_back(std::make_unique<Worker>(*this, i));
}

Server::~Server() {
  Stop();
}

std::uint16_t Server::Listen() {
  auto address = asio::ip::make_address(options_.host);
  std::uint16_t port = options_.port;
  for (auto& w : workers_) {
    try {
      w->Listen(tcp::endpoint(address, port), options_.backlog, w == workers_.front());
    } catch (const boost::system::system_error& e) {
      throw std::system_error(e.code(),
                              "cannot listen on " + options_.host + ":" + std::to_string(port));
    }
    port = w->port();  // with port 0 the first listener picks; the others share it
  }
  return port;
}

void Server::Start() {
  started_ = true;
  for (auto& w : workers_)
    w->Start();
}

void Server::StopAccepting() {
  for (auto& w : workers_)
    w->StopAccepting();
}

bool Server::WaitIdle(Duration timeout) {
  const auto until = Clock::now() + timeout;
  while (active_requests() > 0) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void Server::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!started_) return;
  for (auto& w : workers_)
    w->Stop();
  for (auto& w : workers_)
    w->Join();
}

bool Server::LoopsResponsive(Duration max_lag) const {
  const auto now = Clock::now();
  for (const auto& w : workers_) {
    if (now - w->heartbeat() > max_lag) return false;
  }
  return true;
}

asio::io_context& Server::context(int worker_index) {
  return workers_.at(static_cast<std::size_t>(worker_index))->context();
}

}  // namespace orchestra::net
