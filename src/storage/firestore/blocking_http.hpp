#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "storage/backend.hpp"
#include "storage/connection_pool.hpp"

namespace boost::asio::ssl {
class context;
}

// A blocking HTTP/1.1 client for one origin, for the storage backends that speak HTTP (Firestore
// and its token source, the metadata server). It runs on the storage blocking pool, where the
// event-loop client (net/client.hpp, per worker thread, coroutines) cannot be used.
//
// Every wait is bounded by the call's deadline: each connection owns a private io_context and
// runs Beast's *asynchronous* connect, TLS handshake, write and read on it with a
// beast::tcp_stream whose expiry is the deadline, from the calling thread, until the operation
// completes or the expiry cancels it (Beast's synchronous calls have no timeout, and socket
// timeouts restart with every byte). DNS is the exception: names are resolved synchronously
// (getaddrinfo has no deadline) and cached for a minute, so it happens only when a connection
// is opened; a numeric address (the emulator) never waits.
//
// Connections: a ConnectionPool of keep-alive connections; one that fails or is not kept alive
// by the server is closed. TLS verifies the server's certificate against the system CAs (or
// `ca_file`) and its name, and sends SNI.
//
// Errors: kUnavailable when the origin cannot be reached or the deadline passes (DNS, connect,
// TLS, write, read), kInternal for a malformed or oversized response. An HTTP error status is
// not an error here.
namespace orchestra::storage {

struct HttpOrigin {
  bool tls = false;
  std::string host;
  std::uint16_t port = 80;

  // "https://host[:port]", "http://host[:port]" or, without a scheme, "host[:port]" over
  // plain HTTP. Paths are not allowed. kInvalidRequest when malformed.
  static Result<HttpOrigin> Parse(std::string_view text);
  std::string Key() const;  // scheme://host:port, for messages
  std::string HostHeader() const;
};

struct HttpRequest {
  std::string_view method = "POST";
  std::string_view target;  // absolute path
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view content_type = "application/json";
  std::string_view body;
};

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

struct BlockingHttpOptions {
  std::string name;  // prefixes error messages ("firestore")
  HttpOrigin origin;
  std::size_t connections = 4;
  std::string ca_file;  // PEM, trusted in addition to the system CAs (tests)
  std::uint64_t max_response_bytes = 64ULL << 20;
};

class BlockingHttpClient {
 public:
  // Throws std::runtime_error when the CA file cannot be loaded (start-up only).
  explicit BlockingHttpClient(BlockingHttpOptions options);
  ~BlockingHttpClient();
  BlockingHttpClient(const BlockingHttpClient&) = delete;
  BlockingHttpClient& operator=(const BlockingHttpClient&) = delete;

  // Sends the request and reads the whole response by the deadline. `idempotent` allows the
  // pool's one retry on a fresh connection when a reused one turns out to be closed.
  // Thread-safe.
  Result<HttpResponse> Send(const HttpRequest& request, Deadline deadline, bool idempotent);

  const HttpOrigin& origin() const { return options_.origin; }

  class Connection;

 private:
  Result<std::unique_ptr<Connection>> Open(Deadline deadline);
  Result<std::vector<std::pair<std::string, std::uint16_t>>> Resolve();
  void ForgetAddresses();

  BlockingHttpOptions options_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  std::mutex dns_mutex_;
  std::vector<std::pair<std::string, std::uint16_t>> addresses_;  // guarded by dns_mutex_
  std::chrono::steady_clock::time_point dns_expiry_{};            // guarded by dns_mutex_
  std::optional<ConnectionPool<Connection>> pool_;
};

}  // namespace orchestra::storage
