#include "net/client.hpp"

#include <charconv>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "net/http_read.hpp"
#include "net/write.hpp"
#include <sys/socket.h>

namespace orchestra::net {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kDnsTtl = std::chrono::seconds(30);
constexpr auto kReapPeriod = std::chrono::seconds(5);

// A pooled connection could have been closed by the upstream while it sat idle; these are the
// errors that show it, before any byte of the response arrived.
bool IsStaleConnectionError(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == http::error::end_of_stream ||
         ec == asio::ssl::error::stream_truncated;
}

}  // namespace

Result<Origin> Origin::Parse(std::string_view url) {
  Origin o;
  std::string_view rest;
  if (url.rfind("https://", 0) == 0) {
    o.tls = true;
    o.port = 443;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return Error(ErrorCode::kInvalidRequest, "URL must start with http:// or https://");
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  if (authority.empty()) return Error(ErrorCode::kInvalidRequest, "URL has no host");
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return Error(ErrorCode::kInvalidRequest, "bad IPv6 host");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port = authority.substr(close + 2);
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (!port.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
      return Error(ErrorCode::kInvalidRequest, "bad port in URL");
    }
    o.port = static_cast<std::uint16_t>(p);
  }
  o.host = std::string(host);
  o.base_path = std::string(path);
  const bool default_port = o.port == (o.tls ? 443 : 80);
  const bool v6 = o.host.find(':') != std::string::npos;
  o.host_header = v6 ? "[" + o.host + "]" : o.host;
  if (!default_port) o.host_header += ":" + std::to_string(o.port);
  return o;
}

std::string Origin::Key() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

struct Upstreams::Shared {
  struct Entry {
    Origin origin;
    OriginOptions options;
    std::unique_ptr<ssl::context> tls;
    // DNS cache, shared by the workers (resolution is rare and off the request path).
    std::mutex dns_mutex;
    std::vector<tcp::endpoint> endpoints;
    Clock::time_point dns_expiry{};
  };
  std::vector<std::unique_ptr<Entry>> origins;
};

namespace {

using Entry = Upstreams::Shared::Entry;
using Stream = std::variant<tcp::socket, ssl::stream<tcp::socket>>;

// One upstream connection. Shared between its user and its watchdog timer's handler.
struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(asio::io_context& ctx) : stream(std::in_place_index<0>, ctx), watchdog(ctx) {}

  tcp::socket& socket() {
    if (auto* plain = std::get_if<0>(&stream)) return *plain;
    return std::get<1>(stream).next_layer();
  }

  // Closes the connection when `at` passes, aborting whatever operation is pending; the
  // operation then reports a timeout because `timed_out` is set. Arming and disarming only move
  // `deadline`: the timer is touched when the new deadline is earlier than the pending wait
  // (a connection's first arm), so a request on a pooled connection costs no timer-queue work
  // and no cancelled handler through the scheduler. A wait that fires early re-waits for the
  // current deadline.
  void Arm(Clock::time_point at) {
    timed_out = false;
    deadline = at;
    if (waits == 0 || at < watchdog.expiry()) {
      watchdog.expires_at(at);  // a pending wait, if any, completes with operation_aborted
      Wait();
    }
  }
  void Disarm() { deadline = Clock::time_point::max(); }
  void Close() {
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
    watchdog.cancel();  // lets the pending wait release this connection now
  }
  void Wait() {
    ++waits;
    watchdog.async_wait([self = shared_from_this()](beast::error_code ec) {
      // Cancelled (an earlier deadline replaced this wait, or the connection closed), or
      // another wait is pending and covers the deadline.
      if (--self->waits > 0 || ec) return;
      if (self->deadline == Clock::time_point::max()) return;  // disarmed: idle until armed
      if (Clock::now() < self->deadline) {                     // re-armed for later
        self->watchdog.expires_at(self->deadline);
        self->Wait();
        return;
      }
      self->timed_out = true;
      self->Close();
    });
  }
  // An idle pooled connection is reusable if the upstream has not closed it or sent anything.
  bool LooksReusable() {
    if (!socket().is_open()) return false;
    char byte;
    ssize_t n = ::recv(socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  Stream stream;
  beast::flat_buffer buffer;
  std::string head;  // the request head being written
  asio::steady_timer watchdog;
  Clock::time_point deadline = Clock::time_point::max();  // max: disarmed
  int waits = 0;                                          // watchdog waits not yet completed
  bool timed_out = false;
  std::uint64_t uses = 0;
  Clock::time_point idle_since{};
};

Error ErrorFor(const Conn& conn, const beast::error_code& ec, std::string_view what,
               const Origin& origin) {
  if (conn.timed_out) {
    return Error(ErrorCode::kUpstreamTimeout,
                 std::string(what) + " timed out (" + origin.Key() + ")");
  }
  if (ec == asio::error::operation_aborted) {
    return Error(ErrorCode::kCancelled, "request cancelled");
  }
  return Error(ErrorCode::kUpstreamError,
               std::string(what) + " failed (" + origin.Key() + "): " + ec.message());
}

void CopyHead(const http::response_header<>& h, ResponseHead& out) {
  out.status = h.result_int();
  out.fields = h;
}

class ClientImpl;

class StreamImpl final : public ResponseStream {
 public:
  StreamImpl(std::shared_ptr<ClientImpl> client, OriginId origin, std::shared_ptr<Conn> conn,
             std::unique_ptr<http::response_parser<http::buffer_body>> parser,
             Clock::time_point deadline, Duration gap_timeout)
      : client_(client),
        origin_(origin),
        conn_(std::move(conn)),
        parser_(std::move(parser)),
        deadline_(deadline),
        gap_timeout_(gap_timeout) {
    CopyHead(parser_->get().base(), head_);
  }
  ~StreamImpl() override;

  const ResponseHead& head() const override { return head_; }
  asio::awaitable<Result<std::string_view>> Read() override;

 private:
  // Shared: a stream abandoned by a request that the shutdown cut off may outlive Upstreams'
  // own reference to its client (it is destroyed with the io_context's pending work).
  std::shared_ptr<ClientImpl> client_;
  OriginId origin_;
  std::shared_ptr<Conn> conn_;
  std::unique_ptr<http::response_parser<http::buffer_body>> parser_;
  Clock::time_point deadline_;
  Duration gap_timeout_;
  ResponseHead head_;
  char chunk_[16 << 10];
};

class ClientImpl final : public Client, public std::enable_shared_from_this<ClientImpl> {
 public:
  ClientImpl(asio::io_context& ctx, Upstreams::Shared& shared)
      : ctx_(ctx), shared_(shared), pools_(shared.origins.size()) {
    asio::co_spawn(ctx_, Reap(), asio::detached);
  }

  asio::awaitable<Result<IncomingResponse>> Send(OriginId id, const OutgoingRequest& req) override {
    Entry& e = *shared_.origins[id];
    // A reused connection may turn out to have been closed by the upstream; then, and only
    // before any response byte arrived, the request goes again on a fresh connection.
    for (int attempt = 0;; ++attempt) {
      auto acquired = co_await Acquire(id, req.deadline, attempt > 0);
      if (!acquired) co_return acquired.error();
      std::shared_ptr<Conn> conn = std::move(*acquired);
      const bool reused = conn->uses > 0;
      conn->Arm(std::min(req.deadline, Clock::now() + e.options.first_byte_timeout));
      beast::error_code ec = co_await Write(*conn, e.origin, req);
      http::response_parser<http::string_body> parser;
      parser.body_limit(e.options.max_response_bytes);
      if (!ec) {
        std::size_t n = 0;
        ec = co_await std::visit(
            [&](auto& s) { return ReadHttp(s, conn->buffer, parser, true, n); }, conn->stream);
      }
      if (ec) {
        const bool stale = reused && !conn->timed_out && IsStaleConnectionError(ec);
        Error err = ErrorFor(*conn, ec, "upstream request", e.origin);
        Discard(id, conn);
        if (stale && attempt == 0) continue;
        co_return err;
      }
      conn->Arm(std::min(req.deadline, Clock::now() + e.options.first_byte_timeout));
      std::size_t body_bytes = 0;
      const beast::error_code bec = co_await std::visit(
          [&](auto& s) { return ReadHttp(s, conn->buffer, parser, false, body_bytes); },
          conn->stream);
      if (bec) {
        Error err = ErrorFor(*conn, bec, "reading the upstream response", e.origin);
        Discard(id, conn);
        co_return err;
      }
      conn->Disarm();
      IncomingResponse response;
      response.head.status = parser.get().result_int();
      response.body = std::move(parser.get().body());
      const bool keep_alive = parser.keep_alive();
      response.head.fields = std::move(parser.get().base());
      if (keep_alive) {
        Release(id, std::move(conn));
      } else {
        Discard(id, conn);
      }
      co_return response;
    }
  }

  asio::awaitable<Result<std::unique_ptr<ResponseStream>>> Open(
      OriginId id, const OutgoingRequest& req) override {
    Entry& e = *shared_.origins[id];
    for (int attempt = 0;; ++attempt) {
      const Clock::time_point head_by = std::min(req.deadline, req.first_byte_deadline);
      auto acquired = co_await Acquire(id, head_by, attempt > 0);
      if (!acquired) co_return acquired.error();
      std::shared_ptr<Conn> conn = std::move(*acquired);
      const bool reused = conn->uses > 0;
      conn->Arm(std::min(head_by, Clock::now() + e.options.first_byte_timeout));
      beast::error_code ec = co_await Write(*conn, e.origin, req);
      auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
      parser->body_limit(e.options.max_response_bytes);
      if (!ec) {
        std::size_t n = 0;
        ec = co_await std::visit(
            [&](auto& s) { return ReadHttp(s, conn->buffer, *parser, true, n); }, conn->stream);
      }
      if (ec) {
        const bool stale = reused && !conn->timed_out && IsStaleConnectionError(ec);
        Error err = ErrorFor(*conn, ec, "upstream request", e.origin);
        Discard(id, conn);
        if (stale && attempt == 0) continue;
        co_return err;
      }
      conn->Disarm();
      co_return std::unique_ptr<ResponseStream>(
          std::make_unique<StreamImpl>(shared_from_this(), id, std::move(conn), std::move(parser),
                                       req.deadline, e.options.first_byte_timeout));
    }
  }

  asio::awaitable<Result<void>> Warm(OriginId id) override {
    if (!pools_[id].idle.empty()) co_return Result<void>();
    auto acquired =
        co_await Acquire(id, Clock::now() + shared_.origins[id]->options.connect_timeout, true);
    if (!acquired) co_return acquired.error();
    (*acquired)->uses = 1;  // a connection made in advance behaves as a reused one
    Release(id, std::move(*acquired));
    co_return Result<void>();
  }

  std::size_t idle_connections(OriginId id) const override { return pools_[id].idle.size(); }

  void Release(OriginId id, std::shared_ptr<Conn> conn) {
    Pool& pool = pools_[id];
    conn->Disarm();
    conn->idle_since = Clock::now();
    pool.idle.push_back(std::move(conn));
    WakeWaiter(pool);
  }

  void Discard(OriginId id, const std::shared_ptr<Conn>& conn) {
    Pool& pool = pools_[id];
    conn->Disarm();
    conn->Close();
    --pool.open;
    WakeWaiter(pool);
  }

  const Entry& entry(OriginId id) const { return *shared_.origins[id]; }

 private:
  struct Waiter {
    asio::steady_timer* timer;
    bool notified = false;
  };
  struct Pool {
    std::vector<std::shared_ptr<Conn>> idle;  // most recently used at the back
    int open = 0;                             // idle + in use
    std::deque<Waiter*> waiters;
  };

  static void WakeWaiter(Pool& pool) {
    if (pool.waiters.empty()) return;
    Waiter* w = pool.waiters.front();
    pool.waiters.pop_front();
    w->notified = true;
    w->timer->cancel();
  }

  // A pooled connection, or a new one when none is idle and the cap allows; otherwise waits
  // for one to be released.
  asio::awaitable<Result<std::shared_ptr<Conn>>> Acquire(OriginId id, Clock::time_point deadline,
                                                         bool fresh) {
    Pool& pool = pools_[id];
    Entry& e = *shared_.origins[id];
    while (true) {
      while (!fresh && !pool.idle.empty()) {
        std::shared_ptr<Conn> conn = std::move(pool.idle.back());
        pool.idle.pop_back();
        // Not probed with a syscall here: a connection the upstream closed meanwhile fails
        // before any response byte and the request goes again on a fresh one (Send/Open).
        if (Clock::now() - conn->idle_since < e.options.idle_timeout && conn->socket().is_open()) {
          ++conn->uses;
          co_return conn;
        }
        conn->Close();
        --pool.open;
      }
      if (pool.open < e.options.max_connections) {
        ++pool.open;
        auto conn = co_await Connect(e, deadline);
        if (!conn) --pool.open;
        co_return conn;
      }
      if (Clock::now() >= deadline) {
        co_return Error(ErrorCode::kUpstreamTimeout,
                        "no upstream connection became free in time (" + e.origin.Key() + ")");
      }
      asio::steady_timer timer(ctx_, deadline);
      Waiter waiter{&timer};
      pool.waiters.push_back(&waiter);
      auto [ec] = co_await timer.async_wait(kAsTuple);
      if (!waiter.notified) {
        std::erase(pool.waiters, &waiter);
        if (ec == asio::error::operation_aborted)
          co_return Error(ErrorCode::kCancelled, "request cancelled");
      }
      fresh = false;
    }
  }

  asio::awaitable<Result<std::vector<tcp::endpoint>>> Resolve(Entry& e) {
    {
      std::lock_guard lock(e.dns_mutex);
      if (!e.endpoints.empty() && Clock::now() < e.dns_expiry) co_return e.endpoints;
    }
    beast::error_code parse_ec;
    auto literal = asio::ip::make_address(e.origin.host, parse_ec);
    std::vector<tcp::endpoint> endpoints;
    if (!parse_ec) {
      endpoints.emplace_back(literal, e.origin.port);
    } else {
      tcp::resolver resolver(ctx_);
      auto [ec, results] =
          co_await resolver.async_resolve(e.origin.host, std::to_string(e.origin.port), kAsTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted)
          co_return Error(ErrorCode::kCancelled, "request cancelled");
        co_return Error(ErrorCode::kUnavailable,
                        "cannot resolve " + e.origin.host + ": " + ec.message());
      }
      for (const auto& r : results)
        endpoints.push_back(r.endpoint());
    }
    std::lock_guard lock(e.dns_mutex);
    e.endpoints = endpoints;
    e.dns_expiry = Clock::now() + kDnsTtl;
    co_return endpoints;
  }

  asio::awaitable<Result<std::shared_ptr<Conn>>> Connect(Entry& e, Clock::time_point deadline) {
    auto conn = std::make_shared<Conn>(ctx_);
    conn->Arm(std::min(deadline, Clock::now() + e.options.connect_timeout));
    auto endpoints = co_await Resolve(e);
    if (!endpoints) {
      conn->Disarm();
      co_return endpoints.error();
    }
    auto [ec, endpoint] = co_await asio::async_connect(conn->socket(), *endpoints, kAsTuple);
    if (ec) {
      conn->Disarm();
      if (conn->timed_out) {
        co_return Error(ErrorCode::kUpstreamTimeout,
                        "connecting to " + e.origin.Key() + " timed out");
      }
      if (ec == asio::error::operation_aborted)
        co_return Error(ErrorCode::kCancelled, "request cancelled");
      co_return Error(ErrorCode::kUnavailable,
                      "cannot connect to " + e.origin.Key() + ": " + ec.message());
    }
    beast::error_code ignored;
    conn->socket().set_option(tcp::no_delay(true), ignored);
    if (e.origin.tls) {
      tcp::socket plain = std::move(std::get<0>(conn->stream));
      auto& tls = conn->stream.emplace<1>(std::move(plain), *e.tls);
      if (!SSL_set_tlsext_host_name(tls.native_handle(), e.origin.host.c_str())) {
        conn->Disarm();
        co_return Error(ErrorCode::kUnavailable, "cannot set TLS server name for " + e.origin.host);
      }
      if (e.options.tls_verify) tls.set_verify_callback(ssl::host_name_verification(e.origin.host));
      auto [hec] = co_await tls.async_handshake(ssl::stream_base::client, kAsTuple);
      if (hec) {
        conn->Disarm();
        if (conn->timed_out) {
          co_return Error(ErrorCode::kUpstreamTimeout,
                          "TLS handshake with " + e.origin.Key() + " timed out");
        }
        if (hec == asio::error::operation_aborted)
          co_return Error(ErrorCode::kCancelled, "request cancelled");
        co_return Error(ErrorCode::kUnavailable,
                        "TLS handshake with " + e.origin.Key() + " failed: " + hec.message());
      }
    }
    conn->Disarm();
    co_return conn;
  }

  asio::awaitable<beast::error_code> Write(Conn& conn, const Origin& origin,
                                           const OutgoingRequest& req) {
    std::size_t length = 0;
    for (std::size_t i = 0; i < req.body_parts; ++i)
      length += req.body[i].size();
    std::string& head = conn.head;  // the connection's own: requests run concurrently
    head.clear();
    head += http::to_string(req.method);
    head += ' ';
    head += req.target;
    head += " HTTP/1.1\r\nHost: ";
    head += origin.host_header;
    head += "\r\nUser-Agent: orchestra\r\n";
    for (std::string_view h : req.headers) {
      head += h;
      head += "\r\n";
    }
    if (req.method != http::verb::get || length > 0) {
      head += "Content-Type: ";
      head += req.content_type;
      head += "\r\nContent-Length: ";
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), length);
      head.append(buf, end);
      head += "\r\n";
    }
    head += "\r\n";
    std::array<asio::const_buffer, 9> buffers;
    buffers[0] = asio::buffer(head);
    for (std::size_t i = 0; i < req.body_parts; ++i)
      buffers[i + 1] = asio::buffer(req.body[i]);
    auto [ec, n] = co_await std::visit([&](auto& s) { return WriteAll(s, buffers); }, conn.stream);
    co_return ec;
  }

  // Closes idle connections past their idle timeout, so pools do not hold sockets the
  // upstream has long forgotten.
  asio::awaitable<void> Reap() {
    asio::steady_timer timer(ctx_);
    while (true) {
      timer.expires_after(kReapPeriod);
      auto [ec] = co_await timer.async_wait(kAsTuple);
      if (ec) co_return;
      const auto now = Clock::now();
      for (std::size_t id = 0; id < pools_.size(); ++id) {
        Pool& pool = pools_[id];
        const Duration max_idle = shared_.origins[id]->options.idle_timeout;
        std::erase_if(pool.idle, [&](const std::shared_ptr<Conn>& c) {
          if (now - c->idle_since < max_idle && c->LooksReusable()) return false;
          c->Close();
          --pool.open;
          return true;
        });
      }
    }
  }

  asio::io_context& ctx_;
  Upstreams::Shared& shared_;
  std::vector<Pool> pools_;
};

StreamImpl::~StreamImpl() {
  if (conn_) client_->Discard(origin_, conn_);  // abandoned mid-body: the connection is unusable
}

asio::awaitable<Result<std::string_view>> StreamImpl::Read() {
  if (!conn_) co_return std::string_view();
  const Origin& origin = client_->entry(origin_).origin;
  auto fail = [&](beast::error_code ec) -> Result<std::string_view> {
    Error err = ErrorFor(*conn_, ec, "reading the upstream stream", origin);
    client_->Discard(origin_, conn_);
    conn_.reset();
    return err;
  };
  // Like ReadHttp: parse what is buffered, read only when the parser needs more (Beast's
  // async_read_some would go through the scheduler for every piece already buffered).
  parser_->eager(true);
  auto& body = parser_->get().body();
  body.data = chunk_;
  body.size = sizeof(chunk_);
  while (!parser_->is_done()) {
    if (conn_->buffer.size() > 0) {
      beast::error_code ec;
      const std::size_t used = parser_->put(conn_->buffer.data(), ec);
      conn_->buffer.consume(used);
      if (ec == http::error::need_buffer) ec = {};  // chunk_ is full: hand it over
      if (ec && ec != http::error::need_more) co_return fail(ec);
      const std::size_t got = sizeof(chunk_) - body.size;
      if (got > 0) {
        if (parser_->is_done()) conn_->Disarm();
        co_return std::string_view(chunk_, got);
      }
      if (used > 0 && !ec) continue;
    }
    conn_->Arm(std::min(deadline_, Clock::now() + gap_timeout_));
    auto [ec, n] = co_await std::visit(
        [&](auto& s) { return s.async_read_some(conn_->buffer.prepare(16 << 10), kAsTuple); },
        conn_->stream);
    if (ec == asio::error::eof && parser_->got_some()) {
      // A body that ends with the connection.
      beast::error_code eof_ec;
      parser_->put_eof(eof_ec);
      if (eof_ec) co_return fail(eof_ec);
      continue;
    }
    if (ec) co_return fail(ec);
    conn_->buffer.commit(n);
  }
  // The body is complete: the connection goes back to the pool when the upstream allows it.
  if (parser_->keep_alive()) {
    client_->Release(origin_, std::move(conn_));
  } else {
    client_->Discard(origin_, conn_);
  }
  conn_.reset();
  co_return std::string_view();
}

}  // namespace

Upstreams::Upstreams(int workers) : shared_(std::make_unique<Shared>()) {
  clients_.resize(static_cast<std::size_t>(std::max(1, workers)));
}

Upstreams::~Upstreams() = default;

OriginId Upstreams::Register(const Origin& origin, const OriginOptions& options) {
  auto e = std::make_unique<Shared::Entry>();
  e->origin = origin;
  e->options = options;
  if (origin.tls) {
    e->tls = std::make_unique<ssl::context>(ssl::context::tls_client);
    e->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    e->tls->set_default_verify_paths();
    if (!options.ca_file.empty()) {
      beast::error_code ec;
      e->tls->load_verify_file(options.ca_file, ec);
      if (ec) {
        throw std::runtime_error("cannot load CA file " + options.ca_file + ": " + ec.message());
      }
    }
    e->tls->set_verify_mode(options.tls_verify ? ssl::verify_peer : ssl::verify_none);
  }
  shared_->origins.push_back(std::move(e));
  return shared_->origins.size() - 1;
}

const Origin& Upstreams::origin(OriginId id) const {
  return shared_->origins.at(id)->origin;
}

void Upstreams::CreateClient(int index, asio::io_context& context) {
  clients_.at(static_cast<std::size_t>(index)) = std::make_shared<ClientImpl>(context, *shared_);
}

void Upstreams::ReleaseClients() {
  for (auto& c : clients_)
    c.reset();
}

Client& Upstreams::ForWorker(int index) {
  return *clients_.at(static_cast<std::size_t>(index));
}

}  // namespace orchestra::net
