#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

// What the HTTP server hands to the application for one request, and what it takes back.
// The net layer knows nothing of AI, auth or JSON: it parses, enforces protocol limits, and
// writes whatever the application puts in the Response (or streams through BeginStream).
namespace orchestra::net {

namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;

struct Request {
  http::verb method = http::verb::unknown;
  std::string_view method_name;
  std::string_view target;                                    // as received: path and query
  std::string_view path;                                      // target before '?'
  std::string_view query;                                     // after '?', without it
  const http::request<http::string_body>* message = nullptr;  // headers (and the body)
  std::string_view remote_ip;
  std::uint64_t wire_size = 0;  // request line + headers + body bytes
  Clock::time_point start;      // when the request head was complete

  std::string_view Header(http::field f) const { return message->base()[f]; }
  std::string_view Header(std::string_view name) const { return message->base()[name]; }
  const std::string& body() const { return message->body(); }
};

// A header the application adds to its response. Names are string literals (static storage).
struct Header {
  std::string_view name;
  std::string value;
};

struct Response {
  unsigned status = 200;
  std::string_view content_type = "application/json";  // static storage
  std::string body;
  bool close = false;  // answer with Connection: close and close afterwards

  // Adds a header line. Reset() keeps the strings' capacity, so a keep-alive connection's
  // headers stop allocating after its first requests.
  void AddHeader(std::string_view name, std::string_view value) {
    if (header_count_ < headers_.size()) {
      headers_[header_count_].name = name;
      headers_[header_count_].value.assign(value);
    } else {
      headers_.push_back({name, std::string(value)});
    }
    ++header_count_;
  }
  std::span<const Header> headers() const { return {headers_.data(), header_count_}; }

  void Reset() {
    status = 200;
    content_type = "application/json";
    body.clear();
    header_count_ = 0;
    close = false;
  }

 private:
  std::vector<Header> headers_;
  std::size_t header_count_ = 0;
};

// One request/response on a connection. Reused across the requests of a keep-alive connection,
// so the Response's buffers keep their capacity. Only the handler's coroutine touches it.
class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual const Request& request() const = 0;
  virtual Response& response() = 0;
  // Moves the request body out (request().body() is empty afterwards), for a handler that
  // keeps it, e.g. to forward it upstream, without a copy.
  virtual std::string TakeBody() = 0;

  // Streaming (Server-Sent Events and any chunked body). BeginStream sends the status line
  // and response().headers with `Transfer-Encoding: chunked`; each WriteChunk is flushed at
  // once. Both return false when the client has gone (stop producing). EndStream writes the
  // last chunk. After BeginStream, the handler's response().body is ignored.
  virtual boost::asio::awaitable<bool> BeginStream(std::string_view content_type) = 0;
  virtual boost::asio::awaitable<bool> WriteChunk(std::string_view data) = 0;
  virtual boost::asio::awaitable<void> EndStream() = 0;
  virtual bool streaming() const = 0;

  // Watches the client connection while the handler waits on something slow (an upstream
  // call): when the client disconnects, the handler's pending operation is cancelled with
  // boost::asio::error::operation_aborted and client_gone() turns true. Free for a fast
  // request: the worker's sweep checks a watched request once it has run for 200 ms, so a
  // disconnect is noticed within about half a second. Call it before going upstream.
  virtual void WatchClientDisconnect() = 0;
  virtual bool client_gone() const = 0;

  // Bytes written for the response so far (head + body), for the access log.
  virtual std::uint64_t bytes_written() const = 0;
  // Index of the event-loop thread running this exchange (per-thread pools, metric shards).
  virtual int worker_index() const = 0;
};

}  // namespace orchestra::net
