#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "api/router.hpp"
#include "common/error.hpp"
#include "observability/metrics.hpp"

// Operations endpoints: GET / (name, version), /healthz (liveness), /health (liveness in AI
// Orchestra's shape: {"status":"healthy"}), /readyz (readiness),
// /startupz (start-up finished), /metrics (Prometheus), POST /warmup (touch dependencies).
namespace orchestra::api {

// Something /readyz asks or /warmup runs: Ok(detail) or an error saying what is wrong.
struct NamedCheck {
  std::string name;
  std::function<boost::asio::awaitable<Result<std::string>>()> run;
};

// The process's lifecycle as the probes report it. Thread-safe.
class Health {
 public:
  void MarkStarted() { started_.store(true, std::memory_order_release); }
  void MarkDraining() { draining_.store(true, std::memory_order_release); }
  bool started() const { return started_.load(std::memory_order_acquire); }
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  // Set once at start-up, before the server starts.
  void SetLiveness(std::function<bool()> loops_responsive) {
    liveness_ = std::move(loops_responsive);
  }
  void AddReadinessCheck(NamedCheck check) { readiness_.push_back(std::move(check)); }
  void AddWarmer(NamedCheck warmer) { warmers_.push_back(std::move(warmer)); }

  bool alive() const { return !liveness_ || liveness_(); }
  const std::vector<NamedCheck>& readiness_checks() const { return readiness_; }
  const std::vector<NamedCheck>& warmers() const { return warmers_; }

 private:
  std::atomic<bool> started_{false};
  std::atomic<bool> draining_{false};
  std::function<bool()> liveness_;
  std::vector<NamedCheck> readiness_;
  std::vector<NamedCheck> warmers_;
};

struct BuildInfo {
  std::string version;
  std::string commit;
};

// GET /metrics alone (the Prometheus text of `registry`, which must outlive the router): part of
// the operations routes (admin scope), and the only route of observability.metrics_listen
// (public there: a scraper that cannot send a key).
void AddMetricsRoute(Router& router, observability::Registry& registry, Access access);

// Registers the operations routes. `health` and `registry` must outlive the router.
// /metrics needs the admin scope when API keys are configured; the others are public.
void AddOperationsRoutes(Router& router, Health& health, observability::Registry& registry,
                         BuildInfo build);

}  // namespace orchestra::api
