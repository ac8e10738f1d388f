#include "common/blocking_pool.hpp"

#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "common/error.hpp"

namespace orchestra {
namespace {

namespace asio = boost::asio;

TEST(BlockingPool, RunsOffTheLoopAndResumesOnIt) {
  asio::io_context io;
  BlockingPool pool(2);
  std::thread::id loop_thread;
  std::thread::id work_thread;
  std::thread::id resumed_on;
  Result<int> result = MakeError(ErrorCode::kInternal, "not run");
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        loop_thread = std::this_thread::get_id();
        result = co_await pool.Run([&]() -> Result<int> {
          work_thread = std::this_thread::get_id();
          return 42;
        });
        resumed_on = std::this_thread::get_id();
      },
      asio::detached);
  io.run();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, 42);
  EXPECT_NE(work_thread, loop_thread);
  EXPECT_EQ(resumed_on, loop_thread);
}

TEST(BlockingPool, CarriesErrorsBack) {
  asio::io_context io;
  BlockingPool pool(1);
  Result<std::string> result = std::string("unset");
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        result = co_await pool.Run(
            [] { return Result<std::string>(MakeError(ErrorCode::kNotFound, "gone")); });
      },
      asio::detached);
  io.run();
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(result.error().message, "gone");
}

}  // namespace
}  // namespace orchestra
