#pragma once

// The test upstream's HTTP/1.1 request parser. Hand-written rather than Beast's because the
// upstream must cost far less CPU per request than the proxies it is compared with: it parses
// in place, keeps views into the connection's buffer and allocates nothing for Content-Length
// bodies. Chunked request bodies are supported (decoded into a side buffer).

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace orchestra::testing::upstream {

struct HttpHeader {
  std::string_view name;
  std::string_view value;
};

constexpr std::size_t kMaxHeaders = 100;
constexpr std::size_t kMaxHeadBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = 64 * 1024 * 1024;

// A parsed request. Every view points into the buffer handed to ParseRequest (or into the
// chunked-body side buffer), so it is valid until either changes.
struct HttpRequest {
  std::string_view method;
  std::string_view target;  // path and query
  std::string_view path;    // without the query
  std::string_view query;   // without the '?'
  std::array<HttpHeader, kMaxHeaders> headers;
  std::size_t header_count = 0;
  std::string_view body;
  bool keep_alive = true;
  bool expect_continue = false;
  bool http10 = false;  // HTTP/1.0: no chunked responses, close after the reply

  // The first header with this (case-insensitive) name, or "".
  std::string_view Header(std::string_view name) const;
};

enum class ParseStatus : std::uint8_t {
  kComplete,       // `consumed` bytes form the request
  kNeedMore,       // read more and call again
  kBad,            // malformed: answer 400 and close
  kHeadTooLarge,   // 431 and close
  kBodyTooLarge,   // 413 and close
  kNotImplemented  // a transfer coding other than chunked: 501 and close
};

struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  std::size_t consumed = 0;
  // With kNeedMore after the head was parsed: the total bytes the request needs when known
  // (Content-Length), so that the caller can size its buffer once; 0 otherwise.
  std::size_t expected = 0;
  // With kNeedMore, before the body: the client sent `Expect: 100-continue`.
  bool wants_continue = false;
};

// Parses one request from the front of `input`. `chunked_body` receives a chunked body's
// decoded bytes (and req.body points into it). Cheap enough to call again after each read.
ParseResult ParseRequest(std::string_view input, HttpRequest& req, std::string& chunked_body);

}  // namespace orchestra::testing::upstream
