#include "net/client.hpp"

#include <functional>
#include <thread>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "net/server.hpp"
#include "net/sse.hpp"
#include <poll.h>
#include <zlib.h>

namespace orchestra::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Sends `target` (with `body`) on worker 0's client and runs `io` through `run_until` until the
// answer or the error is there.
template <class Run>
Result<IncomingResponse> SendAndWait(asio::io_context& io, Upstreams& upstreams, OriginId origin,
                                     std::string target, std::string body, Run run_until) {
  Result<IncomingResponse> out = Error(ErrorCode::kInternal, "not run");
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        OutgoingRequest r;
        r.target = target;
        r.AddBody(body);
        r.deadline = Clock::now() + 5s;
        out = co_await upstreams.ForWorker(0).Send(origin, r);
      },
      asio::detached);
  run_until([&] { return out.has_value() || out.error().message != "not run"; });
  return out;
}

std::string BigBody() {
  std::string body;
  for (int i = 0; body.size() < 100'000; ++i)
    body += std::to_string(i) + ',';
  return body;
}

// An in-process upstream built on our own server: "/ok" answers, "/slow" waits 2 s, "/sse"
// streams three events, "/big" streams 100 KB in one chunk, "/close" answers with
// Connection: close.
class UpstreamFixture : public testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.port = 0;
    o.threads = 1;
    o.idle_timeout = 300ms;  // closes pooled client connections quickly (stale-connection test)
    server_ = std::make_unique<Server>(
        o,
        [this](Exchange& ex) -> asio::awaitable<void> {
          ++requests_;
          const std::string path(ex.request().path);
          if (path == "/slow") {
            asio::steady_timer t(co_await asio::this_coro::executor, 2s);
            co_await t.async_wait(asio::use_awaitable);
          }
          if (path == "/sse") {
            co_await ex.BeginStream("text/event-stream");
            for (int i = 0; i < 3; ++i) {
              co_await ex.WriteChunk("data: " + std::to_string(i) + "\n\n");
            }
            co_await ex.EndStream();
            co_return;
          }
          if (path == "/big") {
            // 100 KB in one chunk: more than a stream's 16 KiB read buffer at once.
            co_await ex.BeginStream("text/plain");
            co_await ex.WriteChunk(BigBody());
            co_await ex.EndStream();
            co_return;
          }
          if (path == "/close") ex.response().close = true;
          ex.response().body = "echo:" + ex.request().body();
          co_return;
        },
        [](const Error& e, Response& r) {
          r.status = 500;
          r.body = e.message;
        });
    port_ = server_->Listen();
    server_->Start();
    upstreams_ = std::make_unique<Upstreams>(1);
    OriginOptions opts;
    opts.first_byte_timeout = 500ms;
    origin_ =
        upstreams_->Register(*Origin::Parse("http://127.0.0.1:" + std::to_string(port_)), opts);
    upstreams_->CreateClient(0, io_);
  }
  void TearDown() override { server_->Stop(); }

  Result<IncomingResponse> Send(std::string target, std::string body = "") {
    return SendAndWait(io_, *upstreams_, origin_, std::move(target), std::move(body),
                       [&](auto done) { RunUntil(done); });
  }

  template <class Pred>
  void RunUntil(Pred done) {
    auto until = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < until) {
      io_.restart();
      io_.run_for(10ms);
    }
  }

  asio::io_context io_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Upstreams> upstreams_;
  OriginId origin_ = 0;
  std::uint16_t port_ = 0;
  std::atomic<int> requests_{0};
};

TEST_F(UpstreamFixture, SendsAndPoolsTheConnection) {
  auto r = Send("/ok", "hello");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->head.status, 200u);
  EXPECT_EQ(r->body, "echo:hello");
  EXPECT_EQ(r->head.Header("content-type"), "application/json");
  EXPECT_EQ(upstreams_->ForWorker(0).idle_connections(origin_), 1u);
  auto again = Send("/ok", "again");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->body, "echo:again");
  EXPECT_EQ(upstreams_->ForWorker(0).idle_connections(origin_), 1u);
}

TEST_F(UpstreamFixture, RetriesOnceWhenAPooledConnectionWasClosedByTheUpstream) {
  ASSERT_TRUE(Send("/ok", "1").has_value());
  std::this_thread::sleep_for(800ms);  // the server's idle timeout closes the pooled connection
  auto r = Send("/ok", "2");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->body, "echo:2");
}

TEST_F(UpstreamFixture, DoesNotPoolAConnectionTheUpstreamCloses) {
  ASSERT_TRUE(Send("/close", "x").has_value());
  EXPECT_EQ(upstreams_->ForWorker(0).idle_connections(origin_), 0u);
}

TEST_F(UpstreamFixture, TimesOutASlowUpstream) {
  auto r = Send("/slow");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUpstreamTimeout);
}

// On a pooled connection the watchdog armed by the previous request is still pending with an
// earlier expiry: the new request's timeout must neither fire at that stale time nor be lost.
TEST_F(UpstreamFixture, TimesOutARequestOnAReusedConnectionAtItsOwnDeadline) {
  ASSERT_TRUE(Send("/ok", "warm").has_value());
  std::this_thread::sleep_for(200ms);
  const auto start = std::chrono::steady_clock::now();
  auto r = Send("/slow");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.has_value()) << "the slow answer arrived: no timeout";
  EXPECT_EQ(r.error().code, ErrorCode::kUpstreamTimeout);
  EXPECT_GE(elapsed, 450ms);  // first_byte_timeout is 500 ms from this request's start
  // A request after the timeout gets a fresh connection and its answer.
  auto after = Send("/ok", "after");
  ASSERT_TRUE(after.has_value()) << after.error().message;
  EXPECT_EQ(after->body, "echo:after");
}

TEST_F(UpstreamFixture, StreamsTheBodyAsItArrives) {
  std::vector<std::string> events;
  bool done = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        OutgoingRequest r;
        r.method = http::verb::get;
        r.target = "/sse";
        r.deadline = Clock::now() + 5s;
        auto opened = co_await upstreams_->ForWorker(0).Open(origin_, r);
        EXPECT_TRUE(opened.has_value());
        if (!opened) co_return;
        EXPECT_EQ((*opened)->head().status, 200u);
        SseParser parser;
        SseEvent e;
        while (true) {
          auto piece = co_await (*opened)->Read();
          EXPECT_TRUE(piece.has_value());
          if (!piece || piece->empty()) break;
          parser.Feed(*piece);
          while (parser.Next(e))
            events.emplace_back(e.data);
        }
        done = true;
      },
      asio::detached);
  RunUntil([&] { return done; });
  EXPECT_EQ(events, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(upstreams_->ForWorker(0).idle_connections(origin_), 1u);
}

// Reads a streamed response to its end; the pieces are concatenated.
template <class Run>
std::string ReadAll(asio::io_context& io, Upstreams& upstreams, OriginId origin, std::string target,
                    Run run_until, int* pieces = nullptr) {
  std::string out;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        OutgoingRequest r;
        r.method = http::verb::get;
        r.target = target;
        r.deadline = Clock::now() + 5s;
        auto opened = co_await upstreams.ForWorker(0).Open(origin, r);
        EXPECT_TRUE(opened.has_value()) << (opened ? "" : opened.error().message);
        if (opened) {
          while (true) {
            auto piece = co_await (*opened)->Read();
            EXPECT_TRUE(piece.has_value()) << (piece ? "" : piece.error().message);
            if (!piece || piece->empty()) break;
            out += *piece;
            if (pieces != nullptr) ++*pieces;
          }
        }
        done = true;
      },
      asio::detached);
  run_until([&] { return done; });
  return out;
}

TEST_F(UpstreamFixture, StreamsABodyLargerThanItsReadBufferInPieces) {
  int pieces = 0;
  const std::string body = ReadAll(
      io_, *upstreams_, origin_, "/big", [&](auto done) { RunUntil(done); }, &pieces);
  EXPECT_EQ(body, BigBody());
  EXPECT_GE(pieces, 7);  // 100 KB through a 16 KiB buffer
  EXPECT_EQ(upstreams_->ForWorker(0).idle_connections(origin_), 1u);
  // The whole-body path reads the same response.
  auto whole = Send("/big");
  ASSERT_TRUE(whole.has_value()) << whole.error().message;
  EXPECT_EQ(whole->body, BigBody());
}

// An upstream whose bodies end with the connection (no Content-Length, not chunked): both
// reading paths take the end of the stream as the end of the body and pool nothing.
TEST(Client, ReadsABodyThatEndsWithTheConnection) {
  asio::io_context upstream_io;
  asio::ip::tcp::acceptor acceptor(upstream_io, {asio::ip::make_address("127.0.0.1"), 0});
  const std::uint16_t port = acceptor.local_endpoint().port();
  std::thread upstream([&] {
    for (int i = 0; i < 2; ++i) {
      asio::ip::tcp::socket s(upstream_io);
      acceptor.accept(s);
      asio::streambuf request;
      asio::read_until(s, request, "\r\n\r\n");
      asio::write(s, asio::buffer(std::string_view(
                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")));
      s.shutdown(asio::ip::tcp::socket::shutdown_both);
    }
  });
  asio::io_context io;
  Upstreams upstreams(1);
  auto id = upstreams.Register(*Origin::Parse("http://127.0.0.1:" + std::to_string(port)), {});
  upstreams.CreateClient(0, io);
  auto run_until = [&](auto done) {
    for (int i = 0; i < 500 && !done(); ++i) {
      io.restart();
      io.run_for(10ms);
    }
  };

  auto out = SendAndWait(io, upstreams, id, "/", "", run_until);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(out->body, "until the end");
  EXPECT_EQ(ReadAll(io, upstreams, id, "/", run_until), "until the end");
  EXPECT_EQ(upstreams.ForWorker(0).idle_connections(id), 0u);
  upstream.join();
}

// A stand-alone upstream on raw sockets: answers `requests` requests in order, each with
// `reply(index)`, on the newest connection or a new one; `after(index, socket)` may send more.
class RawUpstream {
 public:
  using Reply = std::function<std::string(int index)>;
  using After = std::function<void(int index, asio::ip::tcp::socket& socket)>;
  RawUpstream(int requests, Reply reply, After after = {})
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this, requests, reply, after] {
      std::vector<asio::ip::tcp::socket> sockets;
      for (int i = 0; i < requests; ++i) {
        // A request on the newest connection or a new one, whichever comes first.
        if (sockets.empty() || !HasRequest(sockets.back())) {
          sockets.emplace_back(io_);
          acceptor_.accept(sockets.back());
          ++connections;
        }
        asio::ip::tcp::socket& s = sockets.back();
        asio::streambuf request;
        asio::read_until(s, request, "\r\n\r\n");
        asio::write(s, asio::buffer(reply(i)));
        if (after) after(i, s);
      }
    });
  }
  ~RawUpstream() { thread_.join(); }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::atomic<int> connections{0};

 private:
  // Whether the next request comes on `s` rather than on a new connection (then `s` was
  // closed, or a connection is waiting).
  bool HasRequest(asio::ip::tcp::socket& s) {
    pollfd fds[2] = {{s.native_handle(), POLLIN, 0}, {acceptor_.native_handle(), POLLIN, 0}};
    ::poll(fds, 2, 5000);
    if ((fds[1].revents & POLLIN) != 0 || (fds[0].revents & POLLIN) == 0) return false;
    char byte;
    return ::recv(s.native_handle(), &byte, 1, MSG_PEEK) > 0;
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

std::string Response(std::string_view body, std::string_view extra_headers = {}) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + std::string(extra_headers) +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

struct StandAlone {
  explicit StandAlone(std::uint16_t port, OriginOptions options = {}) : upstreams(1) {
    id = upstreams.Register(*Origin::Parse("http://127.0.0.1:" + std::to_string(port)), options);
    upstreams.CreateClient(0, io);
  }
  Result<IncomingResponse> Send(std::string target) {
    return SendAndWait(io, upstreams, id, std::move(target), "", [&](auto done) {
      for (int i = 0; i < 500 && !done(); ++i) {
        io.restart();
        io.run_for(10ms);
      }
    });
  }
  asio::io_context io;
  Upstreams upstreams;
  OriginId id = 0;
};

// Bytes the upstream sends on a connection while it sits in the pool belong to no request:
// that connection is closed, and the next request goes on a new one.
TEST(Client, NeverUsesAPooledConnectionOnWhichBytesArrived) {
  RawUpstream upstream(
      2, [](int i) { return Response(i == 0 ? "first" : "second"); },
      [](int i, asio::ip::tcp::socket& s) {
        if (i != 0) return;
        std::this_thread::sleep_for(50ms);
        asio::write(s, asio::buffer(Response("stray")));
      });
  StandAlone client(upstream.port());
  auto first = client.Send("/");
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->body, "first");
  EXPECT_EQ(client.upstreams.ForWorker(0).idle_connections(client.id), 1u);
  std::this_thread::sleep_for(200ms);  // the stray response arrives on the idle connection
  auto second = client.Send("/");
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(second->body, "second");
  EXPECT_EQ(upstream.connections.load(), 2);
}

// Interim responses are skipped, however many; the final one is the answer.
TEST(Client, SkipsInterimResponses) {
  RawUpstream upstream(1, [](int) {
    return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" +
           Response("final");
  });
  StandAlone client(upstream.port());
  auto r = client.Send("/");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->head.status, 200u);
  EXPECT_EQ(r->body, "final");
  EXPECT_EQ(client.upstreams.ForWorker(0).idle_connections(client.id), 1u);
}

std::string Gzip(std::string_view in) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  return out;
}

// A gzip body is decoded, and what it decodes to counts against the cap: a small body that
// inflates past max_response_bytes is refused.
TEST(Client, DecodesGzipWithinTheCap) {
  const std::string big(1 << 20, 'a');  // 1 MiB of one letter: a few KiB compressed
  RawUpstream upstream(2, [&](int) { return Response(Gzip(big), "Content-Encoding: gzip\r\n"); });
  OriginOptions options;
  options.max_response_bytes = 2 << 20;
  StandAlone client(upstream.port(), options);
  auto r = client.Send("/");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->body, big);
  EXPECT_EQ(r->head.Header("content-encoding"), "");

  OriginOptions small;
  small.max_response_bytes = 512 << 10;
  StandAlone capped(upstream.port(), small);
  auto refused = capped.Send("/");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kUpstreamError);
  EXPECT_NE(refused.error().message.find("max_response_bytes"), std::string::npos)
      << refused.error().message;
}

TEST_F(UpstreamFixture, CancellationAbortsTheRequest) {
  Result<IncomingResponse> out = Error(ErrorCode::kInternal, "not run");
  asio::cancellation_signal signal;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        OutgoingRequest r;
        r.target = "/slow";
        r.deadline = Clock::now() + 5s;
        out = co_await upstreams_->ForWorker(0).Send(origin_, r);
      },
      asio::bind_cancellation_slot(signal.slot(), asio::detached));
  RunUntil([&] { return requests_.load() > 0; });
  signal.emit(asio::cancellation_type::terminal);
  RunUntil([&] { return out.has_value() || out.error().message != "not run"; });
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code, ErrorCode::kCancelled);
  EXPECT_EQ(upstreams_->ForWorker(0).idle_connections(origin_), 0u);
}

TEST(Client, ConnectionRefusedIsUnavailable) {
  asio::io_context io;
  Upstreams upstreams(1);
  // Port 1 on loopback: nothing listens there.
  auto id = upstreams.Register(*Origin::Parse("http://127.0.0.1:1"), {});
  upstreams.CreateClient(0, io);
  Result<IncomingResponse> out = Error(ErrorCode::kInternal, "not run");
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        OutgoingRequest r;
        r.target = "/";
        r.deadline = Clock::now() + 2s;
        out = co_await upstreams.ForWorker(0).Send(id, r);
      },
      asio::detached);
  for (int i = 0; i < 300 && !out.has_value() && out.error().message == "not run"; ++i) {
    io.run_for(10ms);
  }
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code, ErrorCode::kUnavailable);
}

TEST(Origin, ParsesUrls) {
  auto o = Origin::Parse("https://api.openai.com/v1/");
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->tls);
  EXPECT_EQ(o->host, "api.openai.com");
  EXPECT_EQ(o->port, 443);
  EXPECT_EQ(o->base_path, "/v1");
  EXPECT_EQ(o->host_header, "api.openai.com");
  auto local = Origin::Parse("http://127.0.0.1:8081");
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->host_header, "127.0.0.1:8081");
  EXPECT_EQ(local->base_path, "");
  auto v6 = Origin::Parse("http://[::1]:9000/x");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->host_header, "[::1]:9000");
  EXPECT_FALSE(Origin::Parse("ftp://x").has_value());
  EXPECT_FALSE(Origin::Parse("http://h:99999").has_value());
}

}  // namespace
}  // namespace orchestra::net
