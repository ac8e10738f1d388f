#include "support/http_client.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/parse.hpp>

#include <sys/socket.h>

namespace orchestra::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

bool IsIpAddress(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Server-sent events, per the WHATWG parsing rules that matter here: lines end in LF, CRLF or
// CR; `data:` lines accumulate; a blank line dispatches; comments and unknown fields are skipped.
class SseParser {
 public:
  // False when the callback asked to stop.
  bool Feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event) {
    for (char c : bytes) {
      if (skip_lf_) {
        skip_lf_ = false;
        if (c == '\n') continue;
      }
      if (c == '\r' || c == '\n') {
        skip_lf_ = c == '\r';
        if (!Line(on_event)) return false;
        line_.clear();
        continue;
      }
      line_ += c;
    }
    return true;
  }

 private:
  bool Line(const std::function<bool(const SseEvent&)>& on_event) {
    if (line_.empty()) {
      if (!has_data_) {
        current_.event.clear();
        return true;
      }
      bool go_on = on_event(current_);
      current_ = SseEvent{};
      has_data_ = false;
      return go_on;
    }
    if (line_.front() == ':') return true;
    std::size_t colon = line_.find(':');
    std::string_view field(line_.data(), colon == std::string::npos ? line_.size() : colon);
    std::string_view value;
    if (colon != std::string::npos) {
      value = std::string_view(line_).substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      if (has_data_) current_.data += '\n';
      current_.data += value;
      has_data_ = true;
    } else if (field == "event") {
      current_.event = value;
    }
    return true;
  }

  std::string line_;
  SseEvent current_;
  bool has_data_ = false;
  bool skip_lf_ = false;
};

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsNoCase(n, name)) return v;
  }
  return {};
}

boost::json::value HttpResponse::Json() const {
  error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec) {
    throw std::runtime_error("response body (status " + std::to_string(status) +
                             ") is not JSON: " + ec.message() + "\n" + body);
  }
  return v;
}

struct HttpClient::Impl {
  std::string host;
  std::uint16_t port = 0;
  std::optional<TlsClientOptions> tls;
  std::chrono::milliseconds timeout{30'000};

  asio::io_context io{1};
  std::unique_ptr<ssl::context> ssl_context;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  bool connected = false;
  bool last_close_was_reset = false;

  beast::tcp_stream& Lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  template <class F>
  void Visit(F&& f) {
    if (secure) {
      f(*secure);
    } else {
      f(*plain);
    }
  }

  std::string Origin() const { return host + ":" + std::to_string(port); }

  // Runs the event loop until `done`; the blocking face of the async operations, which are used
  // because only they honour timeouts.
  void RunUntil(const bool& done) {
    io.restart();
    while (!done) {
      if (io.run_one() == 0) throw std::logic_error("HttpClient: event loop ran dry");
    }
    io.poll();  // completes cancelled timers left behind
  }

  void Close() {
    if (plain || secure) {
      error_code ignored;
      Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      Lowest().socket().close(ignored);
      io.restart();
      io.poll();
    }
    secure.reset();
    plain.reset();
    buffer.clear();
    connected = false;
  }

  void Connect() {
    Close();
    tcp::resolver resolver(io);
    error_code ec;
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) throw std::runtime_error("HttpClient: cannot resolve " + host + ": " + ec.message());
    if (tls) {
      if (!ssl_context) {
        ssl_context = std::make_unique<ssl::context>(ssl::context::tls_client);
        if (!tls->ca_file.empty()) {
          ssl_context->load_verify_file(tls->ca_file);
          ssl_context->set_verify_mode(ssl::verify_peer);
        } else {
          ssl_context->set_verify_mode(ssl::verify_none);
        }
      }
      secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, *ssl_context);
    } else {
      plain = std::make_unique<beast::tcp_stream>(io);
    }
    bool done = false;
    Lowest().expires_after(timeout);
    Lowest().async_connect(endpoints, [&](error_code e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    RunUntil(done);
    if (ec) {
      Close();
      throw std::runtime_error("HttpClient: cannot connect to " + Origin() + ": " + ec.message());
    }
    Lowest().socket().set_option(tcp::no_delay(true), ec);
    if (secure) {
      const std::string name = tls->server_name.empty() ? host : tls->server_name;
      if (!IsIpAddress(name)) SSL_set_tlsext_host_name(secure->native_handle(), name.c_str());
      if (!tls->ca_file.empty()) secure->set_verify_callback(ssl::host_name_verification(name));
      done = false;
      Lowest().expires_after(timeout);
      secure->async_handshake(ssl::stream_base::client, [&](error_code e) {
        ec = e;
        done = true;
      });
      RunUntil(done);
      if (ec) {
        Close();
        throw std::runtime_error("HttpClient: TLS handshake with " + Origin() +
                                 " failed: " + ec.message());
      }
    }
    connected = true;
  }

  // A kept-alive connection the server has since closed reads EOF (or holds unsolicited bytes);
  // checking before sending avoids both a failed request and a blind retry after sending, which
  // could replay a request whose directive (reset, times) the test is counting.
  bool StillOpen() {
    if (!connected || buffer.size() != 0) return false;
    char byte;
    ssize_t n = ::recv(Lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    // Over TLS, idle connections legitimately hold records (TLS 1.3 session tickets); on plain
    // HTTP, unsolicited bytes mean the server gave up on the connection (a 408, say).
    return n > 0 && secure != nullptr;
  }

  void EnsureConnected() {
    if (!StillOpen()) Connect();
  }

  void Send(std::string_view method, std::string_view target, std::string_view body,
            const std::vector<std::pair<std::string, std::string>>& headers) {
    EnsureConnected();
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, Origin());
    bool has_type = false;
    for (const auto& [name, value] : headers) {
      req.insert(name, value);
      if (EqualsNoCase(name, "content-type")) has_type = true;
    }
    const bool has_body = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
    if (has_body) {
      if (!has_type && !body.empty()) req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    error_code ec;
    bool done = false;
    Lowest().expires_after(timeout);
    Visit([&](auto& stream) {
      http::async_write(stream, req, [&](error_code e, std::size_t) {
        ec = e;
        done = true;
      });
    });
    RunUntil(done);
    if (ec) {
      Close();
      throw std::runtime_error("HttpClient: sending " + std::string(method) + " " +
                               std::string(target) + " to " + Origin() +
                               " failed: " + ec.message());
    }
  }

  using Parser = http::response_parser<http::string_body>;

  static std::unique_ptr<Parser> NewParser() {
    auto parser = std::make_unique<Parser>();
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser->header_limit(1 << 20);
    return parser;
  }

  error_code ReadHeader(Parser& parser) {
    error_code ec;
    bool done = false;
    Lowest().expires_after(timeout);
    Visit([&](auto& stream) {
      http::async_read_header(stream, buffer, parser, [&](error_code e, std::size_t) {
        ec = e;
        done = true;
      });
    });
    RunUntil(done);
    return ec;
  }

  error_code ReadSome(Parser& parser) {
    error_code ec;
    bool done = false;
    Lowest().expires_after(timeout);
    Visit([&](auto& stream) {
      http::async_read_some(stream, buffer, parser, [&](error_code e, std::size_t) {
        ec = e;
        done = true;
      });
    });
    RunUntil(done);
    return ec;
  }

  void NoteClose(const error_code& ec) {
    last_close_was_reset = ec == asio::error::connection_reset;
  }

  HttpResponse HeadOf(Parser& parser, std::string_view what, const error_code& ec) {
    if (!parser.is_header_done()) {
      NoteClose(ec);
      Close();
      throw std::runtime_error("HttpClient: no response to " + std::string(what) + " from " +
                               Origin() + ": " + ec.message());
    }
    HttpResponse r;
    r.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get()) {
      r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    return r;
  }

  // Reads from the raw connection until `deadline`; `on_bytes` sees what arrives. Returns the
  // error that ended it: operation_aborted when the deadline passed with the connection open.
  template <class F>
  error_code ReadRawUntil(Clock::time_point deadline, F&& on_bytes) {
    if (buffer.size() != 0) {
      auto data = buffer.data();
      on_bytes(std::string_view(static_cast<const char*>(data.data()), data.size()));
      buffer.consume(buffer.size());
    }
    if (!connected) return asio::error::not_connected;
    Lowest().expires_never();  // tcp_stream's own timeout would close the socket
    char chunk[16384];
    for (;;) {
      error_code read_ec;
      std::size_t n = 0;
      bool read_done = false;
      bool timer_done = false;
      asio::steady_timer timer(io, deadline);
      Visit([&](auto& stream) {
        stream.async_read_some(asio::buffer(chunk), [&](error_code e, std::size_t bytes) {
          read_ec = e;
          n = bytes;
          read_done = true;
          timer.cancel();
        });
      });
      timer.async_wait([&](error_code e) {
        timer_done = true;
        if (!e && !read_done) Lowest().socket().cancel();
      });
      io.restart();
      while (!(read_done && timer_done)) {
        if (io.run_one() == 0) break;
      }
      if (n > 0) on_bytes(std::string_view(chunk, n));
      if (read_ec) {
        if (read_ec != asio::error::operation_aborted) {
          NoteClose(read_ec);
          Close();
        }
        return read_ec;
      }
    }
  }
};

HttpClient::HttpClient(std::string host, std::uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
}

HttpClient::HttpClient(std::string host, std::uint16_t port, TlsClientOptions tls)
    : HttpClient(std::move(host), port) {
  impl_->tls = std::move(tls);
}

HttpClient::~HttpClient() {
  impl_->Close();
}

void HttpClient::set_timeout(std::chrono::milliseconds timeout) {
  impl_->timeout = timeout;
}

HttpResponse HttpClient::Request(std::string_view method, std::string_view target,
                                 std::string_view body,
                                 const std::vector<std::pair<std::string, std::string>>& headers) {
  Impl& d = *impl_;
  d.Send(method, target, body, headers);
  auto parser = Impl::NewParser();
  if (method == "HEAD") parser->skip(true);
  error_code ec = d.ReadHeader(*parser);
  HttpResponse r = d.HeadOf(*parser, std::string(method) + " " + std::string(target), ec);
  while (!ec && !parser->is_done())
    ec = d.ReadSome(*parser);
  r.body = std::move(parser->get().body());
  r.complete = !ec && parser->is_done();
  if (!r.complete || !parser->get().keep_alive()) {
    if (ec) d.NoteClose(ec);
    d.Close();
  }
  return r;
}

HttpResponse HttpClient::StreamEvents(
    std::string_view method, std::string_view target, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers,
    const std::function<bool(const SseEvent& event)>& on_event) {
  Impl& d = *impl_;
  d.Send(method, target, body, headers);
  auto parser = Impl::NewParser();
  error_code ec = d.ReadHeader(*parser);
  HttpResponse r = d.HeadOf(*parser, std::string(method) + " " + std::string(target), ec);
  SseParser sse;
  std::size_t fed = 0;
  bool stopped = false;
  for (;;) {
    const std::string& so_far = parser->get().body();
    if (so_far.size() > fed) {
      stopped = !sse.Feed(std::string_view(so_far).substr(fed), on_event);
      fed = so_far.size();
      if (stopped) break;
    }
    if (ec || parser->is_done()) break;
    ec = d.ReadSome(*parser);
  }
  r.body = std::move(parser->get().body());
  r.complete = !stopped && !ec && parser->is_done();
  if (!r.complete || !parser->get().keep_alive()) {
    if (ec) d.NoteClose(ec);
    d.Close();
  }
  return r;
}

HttpResponse HttpClient::Stream(std::string_view method, std::string_view target,
                                std::string_view body,
                                const std::vector<std::pair<std::string, std::string>>& headers,
                                const std::function<bool(std::string_view data)>& on_data) {
  return StreamEvents(method, target, body, headers,
                      [&](const SseEvent& event) { return on_data(event.data); });
}

void HttpClient::SendRaw(std::string_view bytes) {
  Impl& d = *impl_;
  if (!d.connected) d.Connect();
  error_code ec;
  bool done = false;
  d.Lowest().expires_after(d.timeout);
  d.Visit([&](auto& stream) {
    asio::async_write(stream, asio::buffer(bytes), [&](error_code e, std::size_t) {
      ec = e;
      done = true;
    });
  });
  d.RunUntil(done);
  if (ec) {
    d.NoteClose(ec);
    d.Close();
    throw std::runtime_error("HttpClient: SendRaw failed: " + ec.message());
  }
}

std::string HttpClient::ReadRaw(std::chrono::milliseconds timeout) {
  std::string out;
  impl_->ReadRawUntil(Clock::now() + timeout, [&](std::string_view bytes) { out += bytes; });
  return out;
}

bool HttpClient::PeerClosed(std::chrono::milliseconds timeout) {
  if (!impl_->connected && impl_->buffer.size() == 0) return true;
  impl_->buffer.consume(impl_->buffer.size());
  error_code ec = impl_->ReadRawUntil(Clock::now() + timeout, [](std::string_view) {});
  return ec != asio::error::operation_aborted;
}

bool HttpClient::LastCloseWasReset() const {
  return impl_->last_close_was_reset;
}

void HttpClient::Close() {
  impl_->Close();
}

std::uint16_t ParseListeningPort(std::string_view line) {
  std::string_view address;
  if (std::size_t at = line.find("\"address\""); at != std::string_view::npos) {
    std::size_t open = line.find('"', line.find(':', at + 9) + 1);
    std::size_t close = open == std::string_view::npos ? open : line.find('"', open + 1);
    if (close != std::string_view::npos) address = line.substr(open + 1, close - open - 1);
  } else if (std::size_t word = line.find("listening "); word != std::string_view::npos) {
    address = line.substr(word + 10);
    address = address.substr(0, address.find_first_of(" \t\r\n"));
  }
  std::size_t colon = address.rfind(':');
  if (colon != std::string_view::npos) {
    std::string_view digits = address.substr(colon + 1);
    unsigned port = 0;
    bool ok = !digits.empty() && digits.size() <= 5;
    for (char c : digits) {
      if (c < '0' || c > '9') ok = false;
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (ok && port > 0 && port <= 65535) return static_cast<std::uint16_t>(port);
  }
  throw std::runtime_error("no listening address in: " + std::string(line));
}

std::string TestUpstream::BinaryPath() {
  if (const char* env = std::getenv("ORCHESTRA_TEST_UPSTREAM"); env != nullptr && *env != '\0')
    return env;
#ifdef ORCHESTRA_TEST_UPSTREAM_PATH
  return ORCHESTRA_TEST_UPSTREAM_PATH;
#else
  const char* dir = std::getenv("ORCHESTRA_BUILD_DIR");
  return std::string(dir != nullptr ? dir : ".") + "/orchestra_test_upstream";
#endif
}

TestUpstream::TestUpstream(std::vector<std::string> extra_args) {
  for (const auto& a : extra_args) {
    if (a == "--tls-cert" || a.rfind("--tls-cert=", 0) == 0) tls_ = true;
  }
  std::vector<std::string> args = {"--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  process_ = ChildProcess::Start(BinaryPath(), args);
  port_ = ParseListeningPort(process_->WaitForLine("listening ", std::chrono::seconds(10)));
}

TestUpstream::~TestUpstream() {
  client_.reset();
  if (process_) {
    process_->Signal(SIGTERM);
    // The ChildProcess destructor kills a straggler. A failed exit (a sanitizer report, a
    // crash) cannot throw from here, so it is shown.
    std::optional<int> code = process_->Wait(std::chrono::seconds(5));
    if (code != 0) {
      std::fprintf(stderr, "orchestra_test_upstream did not exit cleanly (%s)\n%s\n",
                   code ? ("exit code " + std::to_string(*code)).c_str() : "still running",
                   process_->CapturedOutput().c_str());
    }
  }
}

std::string TestUpstream::base_url() const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

HttpClient& TestUpstream::Client() {
  if (!client_) {
    client_ = tls_ ? std::make_unique<HttpClient>("127.0.0.1", port_, TlsClientOptions{})
                   : std::make_unique<HttpClient>("127.0.0.1", port_);
    client_->set_timeout(std::chrono::seconds(10));
  }
  return *client_;
}

boost::json::value TestUpstream::Stats() {
  return Client().Request("GET", "/_stats").Json();
}

boost::json::value TestUpstream::LastRequest() {
  HttpResponse r = Client().Request("GET", "/_last_request");
  if (r.status != 200) return nullptr;
  return r.Json();
}

void TestUpstream::Reset() {
  HttpResponse r = Client().Request("POST", "/_reset");
  if (r.status != 200)
    throw std::runtime_error("POST /_reset answered " + std::to_string(r.status));
}

}  // namespace orchestra::testing
