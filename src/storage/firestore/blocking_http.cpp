#include "storage/firestore/blocking_http.hpp"

#include <charconv>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace orchestra::storage {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kDnsTtl = std::chrono::seconds(60);

}  // namespace

Result<HttpOrigin> HttpOrigin::Parse(std::string_view text) {
  HttpOrigin out;
  const auto bad = [&](const std::string& why) {
    return MakeError(ErrorCode::kInvalidRequest, "bad address '" + std::string(text) + "': " + why);
  };
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    out.tls = true;
    out.port = 443;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    return bad("the scheme must be http or https");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return bad("no path is allowed");
  std::string_view host = rest;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return bad("unterminated [");
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!port.empty() && port.front() != ':') return bad("junk after the host");
    if (!port.empty()) port.remove_prefix(1);
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) return bad("no host");
  out.host = std::string(host);
  if (!port.empty()) {
    unsigned n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc() || end != port.data() + port.size() || n == 0 || n > 65535) {
      return bad("bad port");
    }
    out.port = static_cast<std::uint16_t>(n);
  }
  return out;
}

std::string HttpOrigin::Key() const {
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(tls ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

std::string HttpOrigin::HostHeader() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string out = v6 ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) out += ":" + std::to_string(port);
  return out;
}

// One keep-alive connection and the io_context its operations run on. Used by one thread at a
// time (the pool's lease holder), which runs the io_context for the duration of each operation.
class BlockingHttpClient::Connection {
 public:
  Connection(const BlockingHttpOptions& options, ssl::context* tls) : options_(options) {
    if (tls != nullptr) {
      tls_.emplace(io_, *tls);
    } else {
      plain_.emplace(io_);
    }
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    // Close the socket before its io_context goes; no operation is pending here.
    beast::error_code ignored;
    tcp().socket().close(ignored);
  }

  bool broken() const { return broken_; }

  Result<void> Connect(const std::vector<std::pair<std::string, std::uint16_t>>& addresses,
                       Deadline deadline) {
    std::vector<tcp::endpoint> endpoints;
    for (const auto& [address, port] : addresses) {
      beast::error_code ec;
      auto ip = asio::ip::make_address(address, ec);
      if (!ec) endpoints.emplace_back(ip, port);
    }
    tcp().expires_at(deadline);
    beast::error_code ec = Run([&](auto done) {
      tcp().async_connect(endpoints,
                          [done](beast::error_code e, const tcp::endpoint&) { done(e); });
    });
    if (ec) return Failed("cannot connect to " + options_.origin.Key(), ec);
    tcp().socket().set_option(tcp::no_delay(true), ec);
    if (tls_) {
      if (!SSL_set_tlsext_host_name(tls_->native_handle(), options_.origin.host.c_str())) {
        broken_ = true;
        return Unavailable("cannot set the TLS server name for " + options_.origin.host);
      }
      tls_->set_verify_callback(ssl::host_name_verification(options_.origin.host));
      ec = Run([&](auto done) { tls_->async_handshake(ssl::stream_base::client, done); });
      if (ec) return Failed("TLS handshake with " + options_.origin.Key() + " failed", ec);
    }
    return {};
  }

  Result<HttpResponse> Exchange(const HttpRequest& request, Deadline deadline) {
    http::request<http::string_body> req;
    req.method_string(request.method);
    req.target(request.target);
    req.version(11);
    req.set(http::field::host, options_.origin.HostHeader());
    req.set(http::field::user_agent, "orchestra");
    for (const auto& [name, value] : request.headers)
      req.set(name, value);
    if (!request.body.empty() || request.method == "POST") {
      req.set(http::field::content_type, request.content_type);
      req.body() = std::string(request.body);
      req.prepare_payload();
    }
    tcp().expires_at(deadline);
    beast::error_code ec = Run([&](auto done) {
      auto on_written = [done](beast::error_code e, std::size_t) { done(e); };
      if (tls_) {
        http::async_write(*tls_, req, on_written);
      } else {
        http::async_write(*plain_, req, on_written);
      }
    });
    if (ec) return Failed("sending to " + options_.origin.Key() + " failed", ec);

    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_response_bytes);
    parser.header_limit(64 * 1024);
    ec = Run([&](auto done) {
      auto on_read = [done](beast::error_code e, std::size_t) { done(e); };
      if (tls_) {
        http::async_read(*tls_, buffer_, parser, on_read);
      } else {
        http::async_read(*plain_, buffer_, parser, on_read);
      }
    });
    if (ec) {
      if (ec == http::error::body_limit || ec == http::error::header_limit) {
        broken_ = true;
        return MakeError(ErrorCode::kInternal, options_.name + ": the response from " +
                                                   options_.origin.Key() + " is too large");
      }
      return Failed("reading from " + options_.origin.Key() + " failed", ec);
    }
    if (!parser.keep_alive()) broken_ = true;  // the server closes it
    HttpResponse out;
    out.status = parser.get().result_int();
    out.body = std::move(parser.get().body());
    return out;
  }

 private:
  beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }

  // Starts one operation with a completion `done(error_code)` and runs the io_context until it
  // has completed: the stream's expiry (the deadline) cancels it with beast::error::timeout.
  template <class Start>
  beast::error_code Run(Start start) {
    beast::error_code result = asio::error::would_block;
    bool completed = false;
    start([&result, &completed](beast::error_code ec) {
      result = ec;
      completed = true;
    });
    io_.restart();
    io_.run();
    if (!completed) {
      broken_ = true;
      return asio::error::operation_aborted;
    }
    return result;
  }

  Error Unavailable(const std::string& message) {
    return MakeError(ErrorCode::kUnavailable, options_.name + ": " + message);
  }

  Error Failed(const std::string& what, const beast::error_code& ec) {
    broken_ = true;
    if (ec == beast::error::timeout) {
      return Unavailable(what + ": timed out (storage.operation_timeout)");
    }
    return Unavailable(what + ": " + ec.message());
  }

  const BlockingHttpOptions& options_;
  asio::io_context io_{1};
  std::optional<beast::tcp_stream> plain_;                   // http
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;  // https
  beast::flat_buffer buffer_;
  bool broken_ = false;
};

BlockingHttpClient::BlockingHttpClient(BlockingHttpOptions options) : options_(std::move(options)) {
  if (options_.origin.tls) {
    tls_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls_->set_default_verify_paths();
    if (!options_.ca_file.empty()) {
      beast::error_code ec;
      tls_->load_verify_file(options_.ca_file, ec);
      if (ec) {
        throw std::runtime_error("cannot load CA file " + options_.ca_file + ": " + ec.message());
      }
    }
    tls_->set_verify_mode(ssl::verify_peer);
  }
  pool_.emplace(options_.name, options_.connections,
                ConnectionPool<Connection>::Hooks{
                    .open = [this](Deadline deadline) { return Open(deadline); },
                    .reusable = [](const Connection& c) { return !c.broken(); }});
}

BlockingHttpClient::~BlockingHttpClient() = default;

Result<std::vector<std::pair<std::string, std::uint16_t>>> BlockingHttpClient::Resolve() {
  {
    std::lock_guard lock(dns_mutex_);
    if (!addresses_.empty() && Clock::now() < dns_expiry_) return addresses_;
  }
  std::vector<std::pair<std::string, std::uint16_t>> out;
  beast::error_code ec;
  const auto literal = asio::ip::make_address(options_.origin.host, ec);
  if (!ec) {
    out.emplace_back(literal.to_string(), options_.origin.port);
  } else {
    asio::io_context io;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(options_.origin.host, std::to_string(options_.origin.port), ec);
    if (ec) {
      return MakeError(ErrorCode::kUnavailable, options_.name + ": cannot resolve " +
                                                    options_.origin.host + ": " + ec.message());
    }
    for (const auto& entry : results) {
      out.emplace_back(entry.endpoint().address().to_string(), entry.endpoint().port());
    }
  }
  std::lock_guard lock(dns_mutex_);
  addresses_ = out;
  dns_expiry_ = Clock::now() + kDnsTtl;
  return out;
}

void BlockingHttpClient::ForgetAddresses() {
  std::lock_guard lock(dns_mutex_);
  addresses_.clear();
}

Result<std::unique_ptr<BlockingHttpClient::Connection>> BlockingHttpClient::Open(
    Deadline deadline) {
  auto addresses = Resolve();
  if (!addresses) return addresses.error();
  auto connection = std::make_unique<Connection>(options_, tls_.get());
  if (auto connected = connection->Connect(*addresses, deadline); !connected) {
    ForgetAddresses();  // the name may point elsewhere now
    return connected.error();
  }
  return connection;
}

Result<HttpResponse> BlockingHttpClient::Send(const HttpRequest& request, Deadline deadline,
                                              bool idempotent) {
  return pool_->Run(deadline, idempotent,
                    [&](Connection& c) { return c.Exchange(request, deadline); });
}

}  // namespace orchestra::storage
