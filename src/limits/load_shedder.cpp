#include "limits/load_shedder.hpp"

#include "common/random.hpp"

namespace orchestra::limits {

LoadShedder::LoadShedder(Options options, const LoopLoad* load, observability::Registry& registry)
    : options_(options), load_(load) {
  registry.AddCallback("orchestra_http_inflight_requests",
                       "Requests admitted and not yet answered.", observability::MetricType::kGauge,
                       [this] { return static_cast<double>(inflight()); });
  if (load_ != nullptr) {
    registry.AddCallback(
        "orchestra_event_loop_delay_seconds",
        "The smoothed queueing delay of the busiest event loop (how late its timers run): what "
        "load shedding decides on.",
        observability::MetricType::kGauge,
        [this] { return std::chrono::duration<double>(load_->MaxDelay()).count(); });
  }
}

std::optional<Refusal> LoadShedder::Admit(const Request& request, Ticket& /*ticket*/) {
  auto refuse = [&](std::string message) {
    Error e(ErrorCode::kOverloaded, std::move(message));
    e.retry_after_s = options_.retry_after_s;
    return Refusal{std::move(e), "overload"};
  };
  if (load_ != nullptr) {
    const auto target = options_.max_loop_delay;
    if (target.count() > 0) {
      const auto delay = load_->Delay(request.worker);
      if (delay > target) {
        const double excess =
            static_cast<double>((delay - target).count()) / static_cast<double>(target.count());
        if (excess >= 1 || RandomUnit() < excess) {
          return refuse("server is over capacity (event loop delay); retry shortly");
        }
      }
    }
    if (options_.max_memory_bytes > 0 && load_->resident_bytes() > options_.max_memory_bytes) {
      return refuse("server is over its memory bound; retry shortly");
    }
  }
  if (inflight_.fetch_add(1, std::memory_order_relaxed) >= options_.max_inflight) {
    inflight_.fetch_sub(1, std::memory_order_relaxed);
    return refuse("server is over capacity; retry shortly");
  }
  return std::nullopt;
}

void LoadShedder::Settle(const Request& /*request*/, const Ticket& /*ticket*/,
                         const Outcome& /*outcome*/) {
  inflight_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace orchestra::limits
