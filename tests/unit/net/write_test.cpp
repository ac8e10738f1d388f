#include "net/write.hpp"

#include <array>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <gtest/gtest.h>

namespace orchestra::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

struct SocketPair {
  explicit SocketPair(asio::io_context& io) : writer(io), reader(io) {
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    writer.connect(acceptor.local_endpoint());
    acceptor.accept(reader);
  }
  tcp::socket writer;
  tcp::socket reader;
};

// A small message goes out in the direct send; the coroutine finishes within one run.
TEST(WriteAll, SendsASmallMessageWhole) {
  asio::io_context io;
  SocketPair pair(io);
  const std::string head = "HTTP/1.1 200 OK\r\n";
  const std::string body = "hello";
  std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(body)};
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, n] = co_await WriteAll(pair.writer, buffers);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(n, head.size() + body.size());
        done = true;
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(done);
  std::string got(head.size() + body.size(), '\0');
  asio::read(pair.reader, asio::buffer(got));
  EXPECT_EQ(got, head + body);
}

// A message larger than the socket's buffers: the direct send takes part of it, async_write the
// rest once the reader drains; every byte arrives once and in order.
TEST(WriteAll, FinishesALargeMessageAsynchronously) {
  asio::io_context io;
  SocketPair pair(io);
  std::string big(16 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>('a' + (i * 7) % 26);
  const std::string tail = "<end>";
  std::array<asio::const_buffer, 2> buffers{asio::buffer(big), asio::buffer(tail)};
  std::size_t written = 0;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, n] = co_await WriteAll(pair.writer, buffers);
        EXPECT_FALSE(ec) << ec.message();
        written = n;
        done = true;
      },
      asio::detached);
  std::string got;
  got.resize(big.size() + tail.size());
  bool read_done = false;
  asio::async_read(pair.reader, asio::buffer(got), [&](boost::system::error_code ec, std::size_t) {
    EXPECT_FALSE(ec) << ec.message();
    read_done = true;
  });
  io.run();
  EXPECT_TRUE(done);
  EXPECT_TRUE(read_done);
  EXPECT_EQ(written, big.size() + tail.size());
  EXPECT_TRUE(got == big + tail);
}

// A peer that has gone is an error, not a hang.
TEST(WriteAll, ReportsABrokenConnection) {
  asio::io_context io;
  SocketPair pair(io);
  pair.reader.close();
  std::string chunk(1 << 20, 'x');
  boost::system::error_code last;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 64 && !last; ++i) {
          auto [ec, n] = co_await WriteAll(pair.writer, asio::buffer(chunk));
          last = ec;
        }
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(last);
}

}  // namespace
}  // namespace orchestra::net
