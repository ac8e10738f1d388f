#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/container/small_vector.hpp>

#include "common/error.hpp"

// The upstream HTTP/1.1 client (DESIGN.md §3): keep-alive connection pools per origin and per
// event-loop thread (no lock on the request path), TLS with OpenSSL (peer verification against
// the system CAs, SNI), cached DNS, connect / first-byte / between-bytes timeouts, a cap on
// connections per origin and thread, and streamed response bodies.
//
// What it guarantees whatever the upstream sends: interim 1xx responses are skipped (101 is a
// protocol error); a connection returns to the pool only when its response ended exactly at a
// message boundary with nothing left unread, and a pooled connection with unread bytes is never
// used, so no byte of one response can answer another request; bodies are asked for
// uncompressed (Accept-Encoding: identity) and gzip or deflate that comes anyway is decoded;
// a body larger than the origin's max_response_bytes is refused as soon as it passes it, and a
// whole body's buffer never grows past that cap.
//
// Errors: kUnavailable (DNS, connect or TLS failed), kOverloaded (out of file descriptors:
// this process is overloaded, not the upstream), kUpstreamTimeout (a timeout passed),
// kUpstreamError (the response was malformed, cut, too large or in an unknown encoding),
// kCancelled (the caller's coroutine was cancelled — the client went away). An HTTP error
// status is not an error here: the caller reads it from the response.
namespace orchestra::observability {
class Counter;
}

namespace orchestra::net {

namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;
using Duration = std::chrono::nanoseconds;

struct Origin {
  bool tls = false;
  std::string host;
  std::uint16_t port = 80;
  std::string base_path;    // e.g. "/v1", no trailing slash
  std::string host_header;  // "host" or "host:port"

  // "https://api.openai.com/v1" → {tls, "api.openai.com", 443, "/v1"}.
  static Result<Origin> Parse(std::string_view url);
  std::string Key() const;  // scheme://host:port
};

struct OriginOptions {
  Duration connect_timeout = std::chrono::seconds(5);
  Duration first_byte_timeout = std::chrono::seconds(60);  // also the longest gap between bytes
  Duration idle_timeout = std::chrono::seconds(90);        // a pooled connection unused this long
  int max_connections = 256;                               // per thread
  bool tls_verify = true;
  std::string ca_file;
  std::uint64_t max_response_bytes = 64ULL << 20;  // a body, decoded or not (a stream: all of it)
};

// Index of an origin registered with Upstreams.
using OriginId = std::size_t;

struct OutgoingRequest {
  http::verb method = http::verb::post;
  std::uint32_t body_parts = 0;  // of `body`; next to `method`, where it costs no room
  std::string_view target;       // absolute path (and query), base path included
  // Extra header lines, each "Name: value" without CRLF; Host, Content-Length and
  // Content-Type are written by the client.
  boost::container::small_vector<std::string_view, 6> headers;  // no allocation up to 6
  // Written as `traceparent` and `X-Request-Id` when not empty (no copy into a header line: a
  // request lives on a coroutine frame, which must stay small).
  std::string_view traceparent;
  std::string_view request_id;
  std::string_view content_type = "application/json";
  // The body in up to eight pieces, written with one writev (a forwarded body with its model
  // value replaced is three pieces and never copied).
  std::array<std::string_view, 8> body{};
  Clock::time_point deadline = Clock::time_point::max();  // the whole exchange
  // The response head must have arrived by then (for a stream: its time to first byte; the body
  // may then run until `deadline`). Later than `deadline` means `deadline`.
  Clock::time_point first_byte_deadline = Clock::time_point::max();

  void AddBody(std::string_view part) { body[body_parts++] = part; }
};

struct ResponseHead {
  unsigned status = 0;
  http::response_header<> fields;  // as received (Beast's parsed header, moved, not copied)
  // A header by name, case-insensitively; "" when absent.
  std::string_view Header(std::string_view name) const { return fields[name]; }
};

struct IncomingResponse {
  ResponseHead head;
  std::string body;  // decoded: head.fields no longer has Content-Encoding
};

class Client;

// A response whose body is read as it arrives (streams). Destroying it before the end closes
// the connection (the upstream sees the request abandoned); reading to the end returns the
// connection to the pool.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual const ResponseHead& head() const = 0;
  // The next piece of the body (decoded when the upstream compressed it); an empty view at the
  // end of the body. The view is valid until the next call.
  virtual boost::asio::awaitable<Result<std::string_view>> Read() = 0;
};

// One worker thread's client: its pools, bound to that worker's io_context. Use only from
// that thread.
class Client {
 public:
  virtual ~Client() = default;
  virtual boost::asio::awaitable<Result<IncomingResponse>> Send(OriginId origin,
                                                                const OutgoingRequest& request) = 0;
  virtual boost::asio::awaitable<Result<std::unique_ptr<ResponseStream>>> Open(
      OriginId origin, const OutgoingRequest& request) = 0;
  // Makes sure one idle connection to the origin is open (POST /warmup).
  virtual boost::asio::awaitable<Result<void>> Warm(OriginId origin) = 0;
  virtual std::size_t idle_connections(OriginId origin) const = 0;
};

// Every origin the process talks to, and one Client per worker thread. Origins are registered
// at start-up; CreateClient is called on each worker thread (Server's WorkerInit).
class Upstreams {
 public:
  // `workers`: how many per-thread clients CreateClient will be asked for.
  explicit Upstreams(int workers);
  ~Upstreams();
  Upstreams(const Upstreams&) = delete;
  Upstreams& operator=(const Upstreams&) = delete;

  // Start-up only. Throws std::runtime_error on a bad CA file.
  OriginId Register(const Origin& origin, const OriginOptions& options);
  const Origin& origin(OriginId id) const;

  // Creates worker `index`'s client on its io_context; call on that worker's thread.
  void CreateClient(int index, boost::asio::io_context& context);
  Client& ForWorker(int index);
  // Counted each time an upstream connect finds no file descriptor left. Start-up only.
  void set_fd_exhausted_counter(observability::Counter* counter);
  // Closes the pooled connections and drops the clients. Call after the workers have stopped
  // and before their io_contexts are destroyed: a client's sockets and timers belong to them.
  void ReleaseClients();

  struct Shared;

 private:
  std::unique_ptr<Shared> shared_;
  std::vector<std::shared_ptr<Client>> clients_;
};

}  // namespace orchestra::net
