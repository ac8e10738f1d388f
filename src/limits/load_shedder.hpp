#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/loop_load.hpp"
#include "limits/admission.hpp"
#include "observability/metrics.hpp"

// Load shedding as an admission stage, by delay rather than by count. An AI gateway mostly
// waits on upstreams (a chat request may take 30 s, a stream minutes), so many requests in
// flight is normal; overload is when the event loops fall behind their work. A request is
// refused with 503 `overloaded` and Retry-After:
//   - with a probability that grows from 0 to 1 as its worker's smoothed queueing delay goes
//     from `max_loop_delay` to twice that (so admitted requests keep a bounded delay while the
//     loop sheds just enough to stay there);
//   - when the process's resident memory is over `max_memory_bytes` (0: no memory bound);
//   - past `max_inflight` requests admitted and not yet settled (a hard ceiling, sized by
//     file descriptors by default; configurable as an explicit cap).
// Probes and /warmup never reach it (public routes are not admitted), so an overloaded
// instance still answers /healthz.
namespace orchestra::limits {

class LoadShedder final : public Stage {
 public:
  struct Options {
    int max_inflight = 10'000;
    int retry_after_s = 1;
    std::chrono::nanoseconds max_loop_delay = std::chrono::milliseconds(10);  // 0: not used
    std::uint64_t max_memory_bytes = 0;                                       // 0: no bound
  };
  // Registers orchestra_http_inflight_requests and orchestra_event_loop_delay_seconds in
  // `registry`; `load` (may be null: no delay or memory shedding) is fed by the server. Both
  // must outlive this object.
  LoadShedder(Options options, const LoopLoad* load, observability::Registry& registry);

  std::string_view name() const override { return "load_shedding"; }
  std::optional<Refusal> Admit(const Request& request, Ticket& ticket) override;
  void Settle(const Request& request, const Ticket& ticket, const Outcome& outcome) override;

  // Requests admitted and not yet settled.
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }

 private:
  Options options_;
  const LoopLoad* load_;
  std::atomic<int> inflight_{0};
};

}  // namespace orchestra::limits
