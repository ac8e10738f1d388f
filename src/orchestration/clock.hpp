#pragma once

#include <atomic>
#include <chrono>

// Steady time for the orchestration logic (circuit breakers, latency estimates, cache expiry),
// injected so that tests move time by hand and never sleep.
namespace orchestra::orchestration {

using SteadyTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::nanoseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime Now() const = 0;
};

// std::chrono::steady_clock. Stateless; one instance serves the whole process.
class SteadyClock final : public Clock {
 public:
  SteadyTime Now() const override { return std::chrono::steady_clock::now(); }
};

// The process's steady clock: a function-local static, so no initialisation-order issue.
inline const Clock& RealClock() {
  static const SteadyClock clock;
  return clock;
}

// Time that moves only when a test says so. Starts well after the steady clock's epoch so that
// "now minus a cooldown" never goes below zero. Thread-safe (an atomic), so a test may advance
// it while other threads read it.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(SteadyTime start = SteadyTime(std::chrono::hours(1000))) : now_(start) {}

  SteadyTime Now() const override { return now_.load(std::memory_order_relaxed); }
  void Advance(Duration d) {
    SteadyTime t = now_.load(std::memory_order_relaxed);
    while (!now_.compare_exchange_weak(t, t + d, std::memory_order_relaxed)) {
    }
  }
  void Set(SteadyTime t) { now_.store(t, std::memory_order_relaxed); }

 private:
  std::atomic<SteadyTime> now_;
};

}  // namespace orchestra::orchestration
