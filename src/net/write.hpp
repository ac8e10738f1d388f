#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/system/error_code.hpp>

// Writes a whole message. On a plain TCP socket it first tries one non-blocking send: a message
// that fits the socket's send buffer (nearly every upstream request and stream chunk) then goes
// out without suspending the coroutine, where async_write would complete it through the
// scheduler. What the send leaves (a full buffer, a large body) goes with async_write. TLS
// streams use async_write directly. (Server responses keep async_write: see
// Connection::WriteResponse.)
namespace orchestra::net {

template <class Stream, class Buffers>
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> WriteAll(
    Stream& stream, const Buffers& buffers) {
  namespace asio = boost::asio;
  constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
  if constexpr (std::is_same_v<Stream, asio::ip::tcp::socket>) {
    boost::system::error_code ec;
    // Synchronous operations return would_block instead of waiting; async ones are unaffected.
    if (!stream.non_blocking()) stream.non_blocking(true, ec);
    std::size_t sent = 0;
    if (!ec) sent = stream.write_some(buffers, ec);
    if (!ec && sent == asio::buffer_size(buffers)) co_return std::tuple(ec, sent);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
      co_return std::tuple(ec, sent);
    }
    boost::beast::buffers_suffix<Buffers> rest(buffers);
    rest.consume(sent);
    auto [wec, n] = co_await asio::async_write(stream, rest, kAsTuple);
    co_return std::tuple(wec, sent + n);
  } else {
    co_return co_await asio::async_write(stream, buffers, kAsTuple);
  }
}

}  // namespace orchestra::net
