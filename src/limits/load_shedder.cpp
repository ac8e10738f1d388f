#include "limits/load_shedder.hpp"

namespace orchestra::limits {

LoadShedder::LoadShedder(Options options, observability::Registry& registry) : options_(options) {
  registry.AddCallback("orchestra_http_inflight_requests",
                       "Requests admitted and not yet answered (load shedding counts these).",
                       observability::MetricType::kGauge,
                       [this] { return static_cast<double>(inflight()); });
}

std::optional<Refusal> LoadShedder::Admit(const Request& /*request*/, Ticket& /*ticket*/) {
  if (inflight_.fetch_add(1, std::memory_order_relaxed) >= options_.max_inflight) {
    inflight_.fetch_sub(1, std::memory_order_relaxed);
    Error e(ErrorCode::kOverloaded, "server is over capacity; retry shortly");
    e.retry_after_s = options_.retry_after_s;
    return Refusal{std::move(e), "overload"};
  }
  return std::nullopt;
}

void LoadShedder::Settle(const Request& /*request*/, const Ticket& /*ticket*/,
                         const Outcome& /*outcome*/) {
  inflight_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace orchestra::limits
