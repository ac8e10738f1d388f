#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/error.hpp"
#include "storage/change_follower.hpp"

namespace orchestra::storage {

// A ChangeFollower run on a thread of its own, for a service that keeps following the log
// without a request asking (API keys, model versions): Start loads and waits for that first
// load; the thread then polls every `poll_interval`, and loads again every `reload_interval`
// (which also covers a trimmed log or a failed-over backend) and after a failed load. One log
// line when following starts failing and one when it recovers, not one per poll.
class FollowerThread {
 public:
  struct Options {
    std::chrono::milliseconds poll_interval{1000};
    std::chrono::milliseconds reload_interval{30000};
    std::string subject;  // what is followed, starting the log lines: "api keys"
    std::string kept;     // what holds while polls fail: "keys stay as last read"
  };

  // `follower` must outlive this object.
  FollowerThread(ChangeFollower& follower, Options options);
  FollowerThread(const FollowerThread&) = delete;
  FollowerThread& operator=(const FollowerThread&) = delete;
  ~FollowerThread();  // Stop()

  // The first load's result (the thread goes on either way, retrying). Idempotent.
  Result<void> Start();
  // Ends the thread after the poll under way. Idempotent.
  void Stop();

  // Completed polls and loads after the first load (tests wait on it).
  std::uint64_t polls() const { return polls_.load(std::memory_order_acquire); }

 private:
  boost::asio::awaitable<void> Run(std::function<void(Result<void>)> loaded);

  ChangeFollower& follower_;
  Options options_;
  std::atomic<std::uint64_t> polls_{0};
  boost::asio::io_context context_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::thread thread_;
  bool stopping_ = false;  // on the thread
};

}  // namespace orchestra::storage
