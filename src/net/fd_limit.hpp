#pragma once

#include <chrono>
#include <cstdint>

#include <boost/system/error_code.hpp>

// Running out of file descriptors (EMFILE: the process's limit, ENFILE: the system's) is a
// local overload, not a failure of a peer or of the client: the server pauses accepting with a
// backoff (Server::Worker::Accept), an upstream connect fails with kOverloaded (503 with
// Retry-After), and both count orchestra_fd_exhausted_total and log, rate-limited.
namespace orchestra::net {

inline bool IsOutOfDescriptors(const boost::system::error_code& ec) {
  return ec == boost::system::errc::too_many_files_open ||
         ec == boost::system::errc::too_many_files_open_in_system;
}

// Lets a repeated log line through at most once per period, and says how many it held back.
// One per thread (not thread-safe).
class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LogThrottle(Clock::duration period) : period_(period) {}

  // True when this occurrence is to be logged; then `held_back` is how many were not since
  // the last one that was.
  bool Allow(Clock::time_point now, std::uint64_t& held_back) {
    if (logged_once_ && now - last_ < period_) {
      ++held_back_;
      return false;
    }
    logged_once_ = true;
    last_ = now;
    held_back = held_back_;
    held_back_ = 0;
    return true;
  }

 private:
  Clock::duration period_;
  Clock::time_point last_{};
  std::uint64_t held_back_ = 0;
  bool logged_once_ = false;
};

}  // namespace orchestra::net
