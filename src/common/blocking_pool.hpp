#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace orchestra {

// Runs blocking calls (sqlite3, hiredis, libpq, file I/O) off the event-loop threads.
// A request coroutine `co_await pool.Run(fn)`: fn runs on a pool thread, and the coroutine
// resumes on its own executor with fn's result. fn must not throw; return a Result instead.
// Thread-safe. The pool must outlive every Run() it started (Stop() joins the threads).
class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads) : pool_(threads) {}
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;
  ~BlockingPool() { Stop(); }

  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&>> Run(F fn) {
    using R = std::invoke_result_t<F&>;
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(R)>(
        [this](auto handler, F f) {
          // Keeps the caller's io_context alive while the call is away on the pool.
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler));
          boost::asio::post(
              pool_, [h = std::move(handler), f = std::move(f), work = std::move(work)]() mutable {
                R result = f();
                auto ex = work.get_executor();
                boost::asio::dispatch(ex, [h = std::move(h), r = std::move(result)]() mutable {
                  std::move(h)(std::move(r));
                });
              });
        },
        boost::asio::use_awaitable, std::move(fn));
  }

  // Runs fn on the pool without waiting for it (background sweeps).
  template <class F>
  void Post(F fn) {
    boost::asio::post(pool_, std::move(fn));
  }

  void Stop() { pool_.join(); }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace orchestra
