#pragma once

#include <atomic>

#include "limits/admission.hpp"
#include "observability/metrics.hpp"

// Load shedding as an admission stage: past `max_inflight` requests admitted and not yet
// settled, new requests get 503 `overloaded` with Retry-After. Probes and /warmup never reach it
// (public routes are not admitted), so an overloaded instance still answers /healthz.
namespace orchestra::limits {

class LoadShedder final : public Stage {
 public:
  struct Options {
    int max_inflight = 80;
    int retry_after_s = 1;
  };
  // Registers orchestra_http_inflight_requests in `registry`, which must outlive this object.
  LoadShedder(Options options, observability::Registry& registry);

  std::string_view name() const override { return "load_shedding"; }
  std::optional<Refusal> Admit(const Request& request, Ticket& ticket) override;
  void Settle(const Request& request, const Ticket& ticket, const Outcome& outcome) override;

  // Requests admitted and not yet settled.
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }

 private:
  Options options_;
  std::atomic<int> inflight_{0};
};

}  // namespace orchestra::limits
