#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

// How far behind the event loops are, and how much memory the process holds: the signals load
// shedding decides on (limits/load_shedder.hpp). An AI gateway mostly waits on upstreams, so
// the number of requests in flight says little; overload is when the loops fall behind their
// work. Each worker measures its own queueing delay (how late a timer it set runs, smoothed);
// the server's sweep samples the process's resident memory.
//
// Thread-safety: Record/SetResidentBytes from the owning worker (or the sampling thread);
// every reader from any thread (relaxed atomics).
namespace orchestra {

class LoopLoad {
 public:
  using Duration = std::chrono::nanoseconds;

  explicit LoopLoad(int workers);

  // One measured lateness of `worker`'s loop; folded into its smoothed delay (an exponentially
  // weighted average: a single slow tick moves it by a quarter).
  void Record(int worker, Duration lateness);
  // The smoothed queueing delay of `worker`'s loop (0 for an unknown worker).
  Duration Delay(int worker) const;
  // The worst of them.
  Duration MaxDelay() const;

  void SetResidentBytes(std::uint64_t bytes) { resident_.store(bytes, std::memory_order_relaxed); }
  std::uint64_t resident_bytes() const { return resident_.load(std::memory_order_relaxed); }

  int workers() const { return workers_; }

 private:
  struct alignas(64) Cell {
    std::atomic<std::int64_t> smoothed_ns{0};
  };
  int workers_;
  std::unique_ptr<Cell[]> cells_;
  std::atomic<std::uint64_t> resident_{0};
};

// The process's resident set size in bytes (from /proc/self/statm), 0 when unknown.
std::uint64_t ResidentBytes();

}  // namespace orchestra
