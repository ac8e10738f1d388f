#include "net/client.hpp"

#include <charconv>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "net/fd_limit.hpp"
#include "net/http_read.hpp"
#include "net/write.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include <sys/socket.h>
#include <zlib.h>

namespace orchestra::net {
namespace {

using namespace std::string_view_literals;

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kDnsTtl = std::chrono::seconds(30);
constexpr auto kReapPeriod = std::chrono::seconds(5);

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
    // What every request's head has after its target, made once: " HTTP/1.1", Host, User-Agent
    // and Accept-Encoding.
    std::string head_lines;
    OriginOptions options;
    std::unique_ptr<ssl::context> tls;
    // DNS cache, shared by the workers (resolution is rare and off the request path).
    std::mutex dns_mutex;
    std::vector<tcp::endpoint> endpoints;
    Clock::time_point dns_expiry{};
  };
  std::vector<std::unique_ptr<Entry>> origins;
  observability::Counter* fd_exhausted = nullptr;
};

namespace {

using Entry = Upstreams::Shared::Entry;
using Stream = std::variant<tcp::socket, ssl::stream<tcp::socket>>;

// A response head larger than this is refused (Beast's default for responses is 8 KiB, which
// some real upstreams' heads pass).
constexpr std::uint32_t kMaxResponseHeadBytes = 64 << 10;
// More interim (1xx) responses than this before the final one is a protocol error.
constexpr int kMaxInterimResponses = 16;
// A whole body's buffer doubles while under this size, then takes the response cap at once.
constexpr std::size_t kDoublingLimit = 1 << 20;
constexpr auto kFdLogPeriod = std::chrono::seconds(10);

// Protocol errors of an upstream that Beast's parser does not report itself.
enum class UpstreamFault {
  kSwitchingProtocols = 1,
  kBadStatus,
  kTooManyInterim,
  kBytesAfterResponse,
  kUnknownEncoding,
  kBadEncodedBody,
  kDecodedTooLarge,
};

// boost::system::error_category's destructor is protected and non-virtual by design (categories
// are never deleted through it), which -Wnon-virtual-dtor does not know.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class UpstreamFaultCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "orchestra.upstream"; }
  std::string message(int value) const override {
    switch (static_cast<UpstreamFault>(value)) {
      case UpstreamFault::kSwitchingProtocols:
        return "the upstream answered 101 Switching Protocols; only a final response is accepted";
      case UpstreamFault::kBadStatus:
        return "the upstream answered with a status outside 100-599";
      case UpstreamFault::kTooManyInterim:
        return "the upstream sent more than " + std::to_string(kMaxInterimResponses) +
               " interim (1xx) responses";
      case UpstreamFault::kBytesAfterResponse:
        return "the upstream sent bytes after its response (a Content-Length shorter than the "
               "body, or an unrequested response)";
      case UpstreamFault::kUnknownEncoding:
        return "the upstream answered with a Content-Encoding Orchestra does not decode (it "
               "asks for identity; gzip and deflate are decoded)";
      case UpstreamFault::kBadEncodedBody:
        return "the upstream's compressed body is corrupt or cut";
      case UpstreamFault::kDecodedTooLarge:
        return "the upstream's decoded body exceeds max_response_bytes";
    }
    return "upstream protocol error";
  }
};

#pragma GCC diagnostic pop

const boost::system::error_category& UpstreamFaultCategoryInstance() {
  static const UpstreamFaultCategory category;
  return category;
}

beast::error_code MakeError(UpstreamFault fault) {
  return {static_cast<int>(fault), UpstreamFaultCategoryInstance()};
}

// A pooled connection could have been closed by the upstream while it sat idle; these are the
// errors that show it, before any byte of the response arrived.
bool IsStaleConnectionError(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == http::error::end_of_stream ||
         ec == asio::ssl::error::stream_truncated;
}

// Makes room for `needed` bytes in `text`, which will never hold more than `cap`: doubling while
// small, then the cap in one step (std::string would double past it).
void ReserveCapped(std::string& text, std::size_t needed, std::uint64_t cap) {
  if (needed <= text.capacity()) return;
  std::size_t want = std::max(needed, 2 * text.capacity());
  if (want > kDoublingLimit) want = std::max<std::size_t>(needed, static_cast<std::size_t>(cap));
  text.reserve(want);
}

// The body of a whole (non-streamed) response: a std::string that doubles while small, then
// takes the origin's cap in one step. Beast's string_body doubles all the way: a chunked body
// refused at a 64 MiB cap took the process to 135 MB, the buffer having doubled past the cap
// while copying itself (72 MB now). Reserving the cap touches no page: memory grows with the
// bytes that arrive. The parser's body_limit refuses
// a body as soon as it passes the cap (from its Content-Length, a chunk's size, or the bytes).
struct CappedBody {
  struct value_type {
    std::string text;
    std::uint64_t cap = 0;
  };

  class reader {
   public:
    template <bool kRequest, class Fields>
    reader(http::header<kRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>& length, beast::error_code& ec) {
      ec = {};
      if (length) body_.text.reserve(static_cast<std::size_t>(*length));  // at most the cap
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      ec = {};
      std::string& text = body_.text;
      const std::size_t n = asio::buffer_size(buffers);
      const std::size_t size = text.size();
      ReserveCapped(text, size + n, body_.cap);
      text.resize(size + n);
      asio::buffer_copy(asio::buffer(text.data() + size, n), buffers);
      return n;
    }

    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

using WholeParser = http::response_parser<CappedBody>;
using StreamParser = http::response_parser<http::buffer_body>;

// Content-Encoding of a response, as far as Orchestra decodes it.
enum class Coding : std::uint8_t { kIdentity, kGzip, kDeflate, kUnknown };

Coding CodingOf(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  if (value.empty() || beast::iequals(value, "identity")) return Coding::kIdentity;
  if (beast::iequals(value, "gzip") || beast::iequals(value, "x-gzip")) return Coding::kGzip;
  if (beast::iequals(value, "deflate")) return Coding::kDeflate;
  return Coding::kUnknown;  // br, zstd, compress, a list of several codings...
}

// Inflates a gzip or deflate body as its pieces arrive. "deflate" is meant to be zlib-wrapped
// (RFC 9110 §8.4.1.2); some servers send it raw, which the first bytes tell apart.
class Inflater {
 public:
  explicit Inflater(Coding coding) : coding_(coding) {}
  ~Inflater() {
    if (started_) inflateEnd(&z_);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Appends what `in` decodes to to `out`; fails when the data is corrupt, when it continues
  // past the end of the compressed stream, or when `out` would pass `limit` bytes.
  beast::error_code Decode(std::string_view in, std::string& out, std::uint64_t limit) {
    if (in.empty()) return {};
    if (!started_) {
      int window = coding_ == Coding::kGzip ? 15 + 16 : 15;
      if (coding_ == Coding::kDeflate && !LooksLikeZlib(in)) window = -15;
      if (inflateInit2(&z_, window) != Z_OK) return MakeError(UpstreamFault::kBadEncodedBody);
      started_ = true;
    }
    if (ended_) return MakeError(UpstreamFault::kBadEncodedBody);
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    for (;;) {
      const std::size_t at = out.size();
      const std::size_t room = std::max<std::size_t>(16 << 10, std::size_t{z_.avail_in} * 4);
      const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(at + room, limit + 1));
      ReserveCapped(out, size, limit + 1);
      out.resize(size);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + at);
      z_.avail_out = static_cast<uInt>(out.size() - at);
      const int rc = inflate(&z_, Z_SYNC_FLUSH);
      out.resize(out.size() - z_.avail_out);
      if (out.size() > limit) return MakeError(UpstreamFault::kDecodedTooLarge);
      if (rc == Z_STREAM_END) {
        ended_ = true;
        if (z_.avail_in > 0) return MakeError(UpstreamFault::kBadEncodedBody);
        break;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) return MakeError(UpstreamFault::kBadEncodedBody);
      // Room left: everything the input gives has been written (Z_SYNC_FLUSH).
      if (z_.avail_out > 0) break;
    }
    return {};
  }

  // Whether the compressed stream reached its end (a body that stops before is cut).
  bool ended() const { return ended_; }

 private:
  static bool LooksLikeZlib(std::string_view in) {
    if (in.size() < 2) return true;
    const auto cmf = static_cast<unsigned char>(in[0]);
    const auto flg = static_cast<unsigned char>(in[1]);
    return (cmf & 0x0F) == 8 && ((cmf << 8) | flg) % 31 == 0;
  }

  Coding coding_;
  z_stream z_{};
  bool started_ = false;
  bool ended_ = false;
};

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
  // Whether an idle connection is still usable: open, and the upstream has neither closed it
  // nor sent anything (bytes that arrive while no request is pending belong to no request).
  bool IdleAndClean() {
    if (!socket().is_open() || buffer.size() > 0) return false;
    if (auto* tls = std::get_if<1>(&stream); tls && SSL_pending(tls->native_handle()) > 0) {
      return false;
    }
    char byte;
    ssize_t n = ::recv(socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  Stream stream;
  beast::flat_buffer buffer;
  std::string head;                           // the request head being written
  std::array<asio::const_buffer, 9> buffers;  // the head and the body pieces being written
  asio::steady_timer watchdog;
  Clock::time_point deadline = Clock::time_point::max();  // max: disarmed
  int waits = 0;                                          // watchdog waits not yet completed
  bool timed_out = false;
  std::uint64_t uses = 0;
  Clock::time_point idle_since{};
};

Error ErrorFor(bool timed_out, const beast::error_code& ec, std::string_view what, const Entry& e) {
  if (timed_out) {
    return Error(ErrorCode::kUpstreamTimeout,
                 std::string(what) + " timed out (" + e.origin.Key() + ")");
  }
  if (ec == asio::error::operation_aborted) {
    return Error(ErrorCode::kCancelled, "request cancelled");
  }
  std::string detail;
  if (ec == http::error::body_limit || ec == MakeError(UpstreamFault::kDecodedTooLarge)) {
    detail = "the response body exceeds max_response_bytes (" +
             std::to_string(e.options.max_response_bytes) + " bytes)";
  } else if (ec == http::error::header_limit) {
    detail = "the response head exceeds " + std::to_string(kMaxResponseHeadBytes) + " bytes";
  } else {
    detail = ec.message();
  }
  return Error(ErrorCode::kUpstreamError,
               std::string(what) + " failed (" + e.origin.Key() + "): " + detail);
}

class ClientImpl;

class StreamImpl final : public ResponseStream {
 public:
  StreamImpl(std::shared_ptr<ClientImpl> client, OriginId origin, Clock::time_point deadline,
             Duration gap_timeout, std::uint64_t max_decoded)
      : client_(std::move(client)),
        origin_(origin),
        deadline_(deadline),
        gap_timeout_(gap_timeout),
        max_decoded_(max_decoded) {}
  ~StreamImpl() override;

  std::optional<StreamParser>& parser() { return parser_; }
  // Takes the connection whose response head `parser()` holds.
  void Attach(std::shared_ptr<Conn> conn, Coding coding) {
    conn_ = std::move(conn);
    head_.status = parser_->get().result_int();
    head_.fields = parser_->get().base();
    if (coding != Coding::kIdentity) {
      head_.fields.erase(http::field::content_encoding);
      head_.fields.erase(http::field::content_length);
      inflater_.emplace(coding);
    }
  }

  const ResponseHead& head() const override { return head_; }
  asio::awaitable<Result<std::string_view>> Read() override;

 private:
  asio::awaitable<Result<std::string_view>> ReadRaw();
  Result<std::string_view> Fail(beast::error_code ec);
  void Finish();

  // Shared: a stream abandoned by a request that the shutdown cut off may outlive Upstreams'
  // own reference to its client (it is destroyed with the io_context's pending work).
  std::shared_ptr<ClientImpl> client_;
  OriginId origin_;
  std::shared_ptr<Conn> conn_;
  std::optional<StreamParser> parser_;
  Clock::time_point deadline_;
  Duration gap_timeout_;
  std::uint64_t max_decoded_;
  std::uint64_t decoded_total_ = 0;
  bool done_ = false;
  beast::error_code failed_;  // a parse error to report at the next read
  ResponseHead head_;
  std::optional<Inflater> inflater_;
  std::string decoded_;
  char chunk_[16 << 10];
};

class ClientImpl final : public Client, public std::enable_shared_from_this<ClientImpl> {
 public:
  ClientImpl(asio::io_context& ctx, Upstreams::Shared& shared)
      : ctx_(ctx), shared_(shared), pools_(shared.origins.size()) {
    asio::co_spawn(ctx_, Reap(), asio::detached);
  }

  // Both return the shared coroutine's awaitable: one frame per request, as before there was
  // one path.
  asio::awaitable<Result<IncomingResponse>> Send(OriginId id, const OutgoingRequest& req) override {
    return Exchange<false>(id, req);
  }

  asio::awaitable<Result<std::unique_ptr<ResponseStream>>> Open(
      OriginId id, const OutgoingRequest& req) override {
    return Exchange<true>(id, req);
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

  // Back to the pool, when the response ended exactly at a message boundary with nothing left
  // unread; otherwise closed.
  void Finish(OriginId id, std::shared_ptr<Conn> conn, bool keep_alive) {
    if (keep_alive && conn->buffer.size() == 0) {
      Release(id, std::move(conn));
    } else {
      Discard(id, conn);
    }
  }

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

  static std::optional<WholeParser>& ParserIn(std::optional<WholeParser>& parser) { return parser; }
  static std::optional<StreamParser>& ParserIn(std::unique_ptr<StreamImpl>& stream) {
    return stream->parser();
  }

  // The one send path of Send (`kStream` false: the whole body, decoded) and Open (true: a
  // ResponseStream): a connection from the pool or a new one, the request written, the final
  // response head read. A reused connection that fails before any byte of the response arrived
  // had been closed by the upstream while idle: the request goes again, once, on a fresh one.
  template <bool kStream>
  asio::awaitable<
      Result<std::conditional_t<kStream, std::unique_ptr<ResponseStream>, IncomingResponse>>>
  Exchange(OriginId id, const OutgoingRequest& req) {
    Entry& e = *shared_.origins[id];
    const Clock::time_point head_by = std::min(req.deadline, req.first_byte_deadline);
    // Where the parser lives: in this frame for a whole body, in the stream for a stream (the
    // parser cannot move).
    std::conditional_t<kStream, std::unique_ptr<StreamImpl>, std::optional<WholeParser>> holder;
    if constexpr (kStream) {
      holder =
          std::make_unique<StreamImpl>(shared_from_this(), id, req.deadline,
                                       e.options.first_byte_timeout, e.options.max_response_bytes);
    }
    auto& parser = ParserIn(holder);
    std::shared_ptr<Conn> conn;
    for (int attempt = 0;; ++attempt) {
      if (attempt == 0) conn = TakeIdle(pools_[id], e);
      if (conn == nullptr) {
        auto acquired = co_await Acquire(id, head_by, attempt > 0);
        if (!acquired) co_return acquired.error();
        conn = std::move(*acquired);
      }
      const bool reused = conn->uses > 0;
      conn->Arm(std::min(head_by, Clock::now() + e.options.first_byte_timeout));
      bool got_some = false;  // a byte of a response arrived
      auto [ec, written] = co_await Write(*conn, e, req);
      // The final response head: an interim response (1xx) is skipped, each into a fresh
      // parser; 101 is a protocol error (Orchestra never asks to switch protocols).
      for (int interim = 0; !ec; ++interim) {
        parser.emplace();
        parser->header_limit(kMaxResponseHeadBytes);
        parser->body_limit(e.options.max_response_bytes);
        if (req.method == http::verb::head) parser->skip(true);
        std::size_t n = 0;
        ec = co_await std::visit(
            [&](auto& s) { return ReadHttp(s, conn->buffer, *parser, true, n); }, conn->stream);
        got_some = got_some || n > 0 || conn->buffer.size() > 0;
        if (ec) break;
        const unsigned status = parser->get().result_int();
        if (status >= 200 && status <= 599) break;
        if (status == 101) {
          ec = MakeError(UpstreamFault::kSwitchingProtocols);
        } else if (status < 100 || status > 599) {
          ec = MakeError(UpstreamFault::kBadStatus);
        } else if (interim == kMaxInterimResponses) {
          ec = MakeError(UpstreamFault::kTooManyInterim);
        }
      }
      if (!ec) break;
      const bool stale = reused && !got_some && !conn->timed_out && IsStaleConnectionError(ec);
      if (stale && attempt == 0) {
        Discard(id, conn);
        conn.reset();
        continue;
      }
      co_return Abandon(id, conn, ec, "upstream request");
    }
    const Coding coding = CodingIn(parser->get());
    if (coding == Coding::kUnknown) co_return UnknownCoding(id, conn, parser->get());

    if constexpr (kStream) {
      conn->Disarm();
      holder->Attach(std::move(conn), coding);
      co_return std::unique_ptr<ResponseStream>(std::move(holder));
    } else {
      parser->get().body().cap = e.options.max_response_bytes;
      conn->Arm(std::min(req.deadline, Clock::now() + e.options.first_byte_timeout));
      std::size_t body_bytes = 0;
      const beast::error_code ec = co_await std::visit(
          [&](auto& s) { return ReadHttp(s, conn->buffer, *parser, false, body_bytes); },
          conn->stream);
      co_return TakeWhole(id, std::move(conn), *parser, coding, ec);
    }
  }

  // What follows is in plain functions, not in Exchange: locals of a coroutine live in its
  // frame, and the frame must stay under the 1,020 bytes Asio recycles (docs/ARCHITECTURE.md).

  // Closes `conn` after `ec` and says why.
  Error Abandon(OriginId id, const std::shared_ptr<Conn>& conn, const beast::error_code& ec,
                std::string_view what) {
    Error err = ErrorFor(conn->timed_out, ec, what, entry(id));
    Discard(id, conn);
    return err;
  }

  static Coding CodingIn(const http::response_header<>& head) {
    auto it = head.find(http::field::content_encoding);
    return it == head.end() ? Coding::kIdentity : CodingOf(it->value());
  }

  Error UnknownCoding(OriginId id, const std::shared_ptr<Conn>& conn,
                      const http::response_header<>& head) {
    Error err = Abandon(id, conn, MakeError(UpstreamFault::kUnknownEncoding), "upstream request");
    err.message +=
        " (Content-Encoding: " + std::string(head[http::field::content_encoding].substr(0, 64)) +
        ")";
    return err;
  }

  // The whole response once its body was read (`ec`: how the read ended), decoded; the
  // connection back to the pool when it ended cleanly.
  Result<IncomingResponse> TakeWhole(OriginId id, std::shared_ptr<Conn> conn, WholeParser& parser,
                                     Coding coding, beast::error_code ec) {
    if (!ec && conn->buffer.size() > 0) ec = MakeError(UpstreamFault::kBytesAfterResponse);
    IncomingResponse response;
    if (!ec && coding != Coding::kIdentity) {
      Inflater inflater(coding);
      ec = inflater.Decode(parser.get().body().text, response.body,
                           entry(id).options.max_response_bytes);
      if (!ec && !inflater.ended()) ec = MakeError(UpstreamFault::kBadEncodedBody);
      parser.get().base().erase(http::field::content_encoding);
      parser.get().base().erase(http::field::content_length);
    } else {
      response.body = std::move(parser.get().body().text);
    }
    if (ec) return Abandon(id, conn, ec, "reading the upstream response");
    conn->Disarm();
    response.head.status = parser.get().result_int();
    const bool keep_alive = parser.keep_alive();
    response.head.fields = std::move(parser.get().base());
    Finish(id, std::move(conn), keep_alive);
    return response;
  }

  static void WakeWaiter(Pool& pool) {
    if (pool.waiters.empty()) return;
    Waiter* w = pool.waiters.front();
    pool.waiters.pop_front();
    w->notified = true;
    w->timer->cancel();
  }

  // The most recently used idle connection that is still good, or null. Not a coroutine: the
  // usual way to a connection costs no coroutine frame.
  std::shared_ptr<Conn> TakeIdle(Pool& pool, const Entry& e) {
    while (!pool.idle.empty()) {
      std::shared_ptr<Conn> conn = std::move(pool.idle.back());
      pool.idle.pop_back();
      // One non-blocking peek: a connection on which the upstream sent something while it was
      // idle (the rest of an earlier response, an unrequested one) or which it closed is never
      // used. One the upstream closes just after the peek fails before any response byte, and
      // the request goes again on a fresh one (Exchange).
      if (Clock::now() - conn->idle_since < e.options.idle_timeout && conn->IdleAndClean()) {
        ++conn->uses;
        return conn;
      }
      conn->Close();
      --pool.open;
    }
    return nullptr;
  }

  // A pooled connection (`fresh`: not for the first try), or a new one when none is idle and
  // the cap allows; otherwise waits for one to be released.
  asio::awaitable<Result<std::shared_ptr<Conn>>> Acquire(OriginId id, Clock::time_point deadline,
                                                         bool fresh) {
    Pool& pool = pools_[id];
    Entry& e = *shared_.origins[id];
    while (true) {
      if (!fresh) {
        if (auto conn = TakeIdle(pool, e)) co_return conn;
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

  // Out of file descriptors: this process is overloaded, not the upstream down.
  Error OutOfDescriptors(const Entry& e, const beast::error_code& ec) {
    if (shared_.fd_exhausted != nullptr) shared_.fd_exhausted->Inc();
    std::uint64_t held_back = 0;
    if (fd_log_.Allow(Clock::now(), held_back)) {
      observability::Log(observability::Severity::kError,
                         "out of file descriptors: upstream connections fail until some close",
                         {{"upstream", e.origin.Key()},
                          {"error", ec.message()},
                          {"not_logged_since_last", held_back}});
    }
    return Error(ErrorCode::kOverloaded,
                 "the server is out of file descriptors; retry shortly (" + e.origin.Key() + ")");
  }

  asio::awaitable<Result<std::shared_ptr<Conn>>> Connect(Entry& e, Clock::time_point deadline) {
    auto conn = std::make_shared<Conn>(ctx_);
    conn->Arm(std::min(deadline, Clock::now() + e.options.connect_timeout));
    auto endpoints = co_await Resolve(e);
    if (!endpoints) {
      conn->Disarm();
      co_return endpoints.error();
    }
    // Each address in turn. The socket is opened here rather than by async_connect, whose
    // range form reports a socket it could not open (EMFILE) as operation_aborted, which is
    // what a cancelled request looks like.
    beast::error_code ec = asio::error::host_not_found;
    for (const tcp::endpoint& endpoint : *endpoints) {
      beast::error_code ignored;
      conn->socket().close(ignored);
      if (conn->socket().open(endpoint.protocol(), ec); ec) {
        if (IsOutOfDescriptors(ec)) {
          conn->Disarm();
          co_return OutOfDescriptors(e, ec);
        }
        continue;
      }
      auto [cec] = co_await conn->socket().async_connect(endpoint, kAsTuple);
      ec = cec;
      if (!ec || ec == asio::error::operation_aborted || conn->timed_out) break;
    }
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

  // Writes the request: the head into the connection's own buffer (requests run
  // concurrently), then head and body in one gathered write. Not a coroutine: it returns
  // WriteAll's awaitable, whose buffers live in the connection.
  asio::awaitable<std::tuple<beast::error_code, std::size_t>> Write(Conn& conn, const Entry& e,
                                                                    const OutgoingRequest& req) {
    std::size_t length = 0;
    for (std::size_t i = 0; i < req.body_parts; ++i)
      length += req.body[i].size();
    std::string& head = conn.head;
    head.clear();
    head += http::to_string(req.method);
    head += ' ';
    head += req.target;
    head += e.head_lines;
    for (std::string_view h : req.headers) {
      head += h;
      head += "\r\n"sv;
    }
    if (!req.traceparent.empty()) {
      head += "traceparent: "sv;
      head += req.traceparent;
      head += "\r\n"sv;
    }
    if (!req.request_id.empty()) {
      head += "X-Request-Id: "sv;
      head += req.request_id;
      head += "\r\n"sv;
    }
    if (req.method != http::verb::get || length > 0) {
      head += "Content-Type: "sv;
      head += req.content_type;
      head += "\r\nContent-Length: "sv;
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), length);
      head.append(buf, end);
      head += "\r\n"sv;
    }
    head += "\r\n"sv;
    auto& buffers = conn.buffers;
    buffers[0] = asio::buffer(head);
    for (std::size_t i = 0; i < req.body_parts; ++i)
      buffers[i + 1] = asio::buffer(req.body[i]);
    for (std::size_t i = req.body_parts + 1; i < buffers.size(); ++i)
      buffers[i] = asio::const_buffer();
    return std::visit([&](auto& s) { return WriteAll(s, buffers); }, conn.stream);
  }

  // Closes idle connections past their idle timeout, or that the upstream closed or sent
  // something on, so pools do not hold sockets the upstream has long forgotten.
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
          if (now - c->idle_since < max_idle && c->IdleAndClean()) return false;
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
  LogThrottle fd_log_{kFdLogPeriod};
};

StreamImpl::~StreamImpl() {
  if (conn_) client_->Discard(origin_, conn_);  // abandoned mid-body: the connection is unusable
}

Result<std::string_view> StreamImpl::Fail(beast::error_code ec) {
  Error err = ErrorFor(conn_ && conn_->timed_out, ec, "reading the upstream stream",
                       client_->entry(origin_));
  if (conn_) {
    client_->Discard(origin_, conn_);  // after the body's end it is back in the pool already
    conn_.reset();
  }
  done_ = true;
  return err;
}

// The body is complete: the connection goes back to the pool as soon as the last byte is
// parsed (a caller that stops at its own end marker need not read on to the end).
void StreamImpl::Finish() {
  done_ = true;
  client_->Finish(origin_, std::move(conn_), parser_->keep_alive());
  conn_.reset();
}

asio::awaitable<Result<std::string_view>> StreamImpl::Read() {
  if (!inflater_) co_return co_await ReadRaw();
  // Decoded: as many raw pieces as it takes to decode something (a piece may hold only part
  // of the compressed stream's header).
  while (true) {
    auto raw = co_await ReadRaw();
    if (!raw) co_return raw;
    if (raw->empty()) {
      if (!inflater_->ended()) co_return Fail(MakeError(UpstreamFault::kBadEncodedBody));
      co_return std::string_view();
    }
    decoded_.clear();
    const beast::error_code ec =
        inflater_->Decode(*raw, decoded_, max_decoded_ - std::min(max_decoded_, decoded_total_));
    if (ec) co_return Fail(ec);
    decoded_total_ += decoded_.size();
    if (!decoded_.empty()) co_return std::string_view(decoded_);
  }
}

asio::awaitable<Result<std::string_view>> StreamImpl::ReadRaw() {
  if (done_) co_return std::string_view();
  if (failed_) co_return Fail(failed_);
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
      const std::size_t got = sizeof(chunk_) - body.size;
      if (ec && ec != http::error::need_more) {
        if (got == 0) co_return Fail(ec);
        failed_ = ec;  // what arrived before the error goes out first
        co_return std::string_view(chunk_, got);
      }
      if (got > 0) {
        if (parser_->is_done()) Finish();
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
      if (eof_ec) co_return Fail(eof_ec);
      continue;
    }
    if (ec) co_return Fail(ec);
    conn_->buffer.commit(n);
  }
  Finish();
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
  // Compressed bodies are not asked for: decoding costs more CPU than the bytes cost on the way
  // from an upstream (a gzip body that comes anyway is decoded).
  e->head_lines = " HTTP/1.1\r\nHost: " + origin.host_header +
                  "\r\nUser-Agent: orchestra\r\nAccept-Encoding: identity\r\n";
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

void Upstreams::set_fd_exhausted_counter(observability::Counter* counter) {
  shared_->fd_exhausted = counter;
}

Client& Upstreams::ForWorker(int index) {
  return *clients_.at(static_cast<std::size_t>(index));
}

}  // namespace orchestra::net
