#pragma once

#include <cstddef>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>

// Reads an HTTP message into a Beast parser with a plain read loop: feed what is buffered to
// parser.put(), read more only when it needs more. Beast's async_read/async_read_header do the
// same through layers of composed operations, each completion going through the scheduler even
// when the whole message is already buffered (the common case for a small request or response);
// on the gateway's hot path that machinery cost more than the parsing itself (callgrind).
namespace orchestra::net {

// Sees the raw bytes of a message's head (start line through the empty line) once the parser
// has accepted them. A plain function and its argument rather than a template parameter: every
// read of one parser type shares one coroutine.
struct HeadObserver {
  void (*fn)(void* arg, std::string_view head) = nullptr;
  void* arg = nullptr;
};

// Until the header is complete (`header_only`) or the whole message is. Returns the error (eof
// before any byte of the message is http::error::end_of_stream) and adds the bytes consumed
// from the stream to `bytes`. `on_head` is called with the head: Beast parses a head only when
// all of it is buffered, in one put(), so its bytes are contiguous at that moment.
template <class Stream, class Parser>
boost::asio::awaitable<boost::beast::error_code> ReadHttp(Stream& stream,
                                                          boost::beast::flat_buffer& buffer,
                                                          Parser& parser, bool header_only,
                                                          std::size_t& bytes,
                                                          HeadObserver on_head = {}) {
  namespace http = boost::beast::http;
  constexpr std::size_t kReadSize = 16 << 10;
  parser.eager(!header_only);
  while (!(header_only ? parser.is_header_done() : parser.is_done())) {
    if (buffer.size() > 0) {
      boost::beast::error_code ec;
      const bool watch_head = on_head.fn != nullptr && !parser.is_header_done();
      const std::size_t used = parser.put(buffer.data(), ec);
      if (watch_head && parser.is_header_done()) {
        on_head.fn(on_head.arg,
                   std::string_view(static_cast<const char*>(buffer.data().data()), used));
      }
      buffer.consume(used);
      bytes += used;
      if (ec && ec != http::error::need_more) co_return ec;
      if (used > 0 && !ec) continue;
    }
    auto [ec, n] = co_await stream.async_read_some(
        buffer.prepare(kReadSize), boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec == boost::asio::error::eof) {
      // The peer closed: fine for a body that ends with the connection, an error otherwise.
      if (parser.got_some()) {
        boost::beast::error_code eof_ec;
        parser.put_eof(eof_ec);
        if (!eof_ec) continue;
        co_return eof_ec;
      }
      co_return boost::beast::error_code(http::error::end_of_stream);
    }
    if (ec) co_return ec;
    buffer.commit(n);
  }
  co_return boost::beast::error_code();
}

}  // namespace orchestra::net
