#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "config/config.hpp"
#include "orchestration/clock.hpp"
#include "orchestration/target.hpp"
#include "orchestration/usage.hpp"
#include "providers/provider.hpp"

// Model name → route: what a request for a model may use, built once at start-up from
// config::Config (`models:`) and the provider instances main created.
//
// Resolution of the model string a client sent, in order:
//   1. a configured public model name (`models[].name`);
//   2. `provider/model` for a configured provider (split at the first '/', so upstream names
//      with slashes work: `openrouter/meta-llama/llama-3-8b`);
//   3. `local-<name>`, the local provider's built-in models, as `local/local-<name>`;
//   else kNotFound, with a "did you mean" suggestion when a name is close.
// Cases 2 and 3 are synthetic routes: one target of weight 1 and the defaults of a model entry
// (retry, timeout, deadline, breaker, no cache); the price of the first configured model listing
// the same target, so that direct use is still costed. They are made on first use and kept: a
// route carries a breaker, a latency estimate and metric children, which are only worth
// anything if they persist, and in-flight requests hold plain pointers to routes, so routes are
// never freed. Clients could otherwise mint routes (and metric series) without end, so at most
// Options::max_synthetic_routes are made on demand; beyond that a new provider/model name is
// kNotFound with a message saying to configure the model. Synthetic routes named as fallbacks
// in the configuration are made at start-up and do not count.
//
// Run-time plans (model versions and blue/green deployments, src/versions/): the targets of a
// configured public route can be replaced while the server runs (SetPlan, ResetPlan). The route
// itself, its name, fallbacks, retry policy, timeouts, price and cache stay as configured; only
// its TargetPlan (targets, weights, strategy) is swapped, by one atomic pointer store. A request
// reads the plan once for each route it tries (Orchestrator::Run) and keeps using that plan
// across its suspensions, so a plan is never freed while the table lives: plans are interned
// (an identical plan is reused, so memory grows with the distinct plans ever used, not with the
// number of changes) and capped (Options::max_plans). Targets a plan adds are made like any
// other (shared, never freed) and capped too (Options::max_plan_targets), so that metric series
// stay bounded. Served's views into routes and targets therefore stay valid however plans change.
//
// Thread-safety: Resolve may be called from every thread. Configured routes are an immutable
// map; synthetic routes are found in a fixed-size open-addressing table of atomic pointers
// (lock-free lookup) and created under a mutex; plans are published with a release store and
// read with an acquire load (ModelRoute::plan), and SetPlan/ResetPlan serialise on the same
// mutex. Lifetime: routes, plans and targets live as long as the table; providers, metrics and
// clock must outlive it.
namespace orchestra::orchestration {

// What a route sends its requests to: the targets and how one is chosen for an attempt.
// Immutable once a route uses it.
struct TargetPlan {
  config::Strategy strategy = config::Strategy::kWeighted;
  std::vector<RouteTarget> targets;  // 1..kMaxRouteTargets
};

struct ModelRoute {
  std::string name;  // the public name, or the provider/model or local-* name asked for
  // The targets from the configuration (a synthetic route's one target): the plan in force
  // unless a deployment replaced it (RouteTable::SetPlan), and again after ResetPlan.
  TargetPlan configured;
  std::vector<const ModelRoute*> fallbacks;  // as configured, resolved, in order
  std::vector<const ModelRoute*> chain;      // FallbackChain(*this), computed once
  config::RetryConfig retry;
  Duration timeout{0};   // per attempt
  Duration deadline{0};  // whole request, all attempts and fallbacks
  config::PriceConfig price;
  Duration cache_ttl{0};  // > 0: identical non-streaming requests are answered from the cache
  bool synthetic = false;
  config::CircuitBreakerConfig breaker;  // for the targets a run-time plan adds
  ModelMetrics metrics;

  // The plan in force. Read it once and keep the reference for the whole walk of this route
  // (one request's attempts): plans are never freed while the table lives.
  const TargetPlan& plan() const { return *active.load(std::memory_order_acquire); }
  // Written only by the RouteTable (under its mutex).
  std::atomic<const TargetPlan*> active{&configured};
};

inline constexpr std::size_t kMaxFallbackChain = 8;

// The routes to try for a request, in order: `route` itself, then each of its fallbacks followed
// by that fallback's own chain (depth first: a fallback that fails falls back as it would on its
// own, before the next fallback of `route` is tried). A route already in the chain is skipped,
// which also breaks cycles; at most `max_length` routes.
std::vector<const ModelRoute*> FallbackChain(const ModelRoute& route,
                                             std::size_t max_length = kMaxFallbackChain);

// Provider name → instance (main owns the providers).
using ProviderMap = std::map<std::string, providers::Provider*, std::less<>>;

class RouteTable {
 public:
  struct Options {
    std::size_t max_synthetic_routes = 256;  // made on demand for clients
    std::size_t max_chain = kMaxFallbackChain;
    std::size_t max_model_name = 256;  // longer provider/model names are refused
    // The models the `local` provider serves; when set, other local-* (and local/...) names are
    // unknown rather than made into routes that could only fail.
    std::vector<std::string> local_models;
    // Run-time plans (SetPlan): the most distinct plans kept, and the most targets made for them
    // that no configured or synthetic route had.
    std::size_t max_plans = 4096;
    std::size_t max_plan_targets = 256;
  };

  // One target of a run-time plan: an upstream model at a provider, and its share of traffic.
  struct PlanTarget {
    std::string_view provider;
    std::string_view upstream_model;
    double weight = 1;
  };

  // Throws std::invalid_argument when the configuration names a provider that has no instance,
  // a model has more than kMaxRouteTargets targets, or a fallback cannot be resolved (start-up
  // errors: the configuration was validated, so these are wiring mistakes).
  RouteTable(const config::Config& config, const ProviderMap& providers, Metrics& metrics,
             const Clock& clock = RealClock());
  RouteTable(const config::Config& config, ProviderMap providers, Metrics& metrics,
             const Clock& clock, Options options);
  ~RouteTable();
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // The route for the model a client asked for (see the top of this file). Errors: kNotFound
  // (unknown, or the synthetic route cap is reached), kInvalidRequest (empty or too long).
  Result<const ModelRoute*> Resolve(std::string_view model);

  // The configured public models, in configuration order (GET /v1/models).
  const std::vector<const ModelRoute*>& public_routes() const { return public_list_; }
  // Synthetic routes made on demand so far (not counting those made at start-up).
  std::size_t synthetic_routes() const;

  // The configured public route named `model`, or null (no provider/model or local-* names).
  const ModelRoute* FindPublic(std::string_view model) const;

  // Whether `provider`/`upstream_model` names something a plan may send to: a provider with an
  // instance and a non-empty upstream model (for the local provider, one of its models). kNotFound
  // otherwise, naming the provider (with a suggestion) or the model. Changes nothing.
  Result<void> CheckTarget(std::string_view provider, std::string_view upstream_model) const;

  // Replaces the targets of the configured public route `model` with `targets`, chosen by
  // `strategy`; everything else about the route stays. Requests that read the route's plan
  // afterwards use the new one; those already walking the route finish with the plan they read.
  // Errors, after which nothing has changed: kNotFound (no such public model; a target's
  // provider or local model is unknown), kInvalidRequest (no targets, more than
  // kMaxRouteTargets, a weight not > 0 or not finite), kConflict (Options::max_plans distinct
  // plans or Options::max_plan_targets added targets are in use: restart to reclaim them).
  Result<void> SetPlan(std::string_view model, config::Strategy strategy,
                       std::span<const PlanTarget> targets);
  // Whether SetPlan would succeed now, changing nothing (a caller that persists the change first
  // asks before writing it).
  Result<void> CheckPlan(std::string_view model, config::Strategy strategy,
                         std::span<const PlanTarget> targets);
  // Back to the configured targets. kNotFound when `model` is not a configured public model.
  Result<void> ResetPlan(std::string_view model);
  // Distinct run-time plans kept so far.
  std::size_t plans() const;

 private:
  const ModelRoute* FindSynthetic(std::string_view name) const;
  bool KnownLocal(std::string_view provider, std::string_view upstream) const;
  Result<const ModelRoute*> MakeSynthetic(std::string_view name, std::string_view provider,
                                          std::string_view upstream_model, bool at_startup);
  Target& TargetFor(providers::Provider& provider, std::string_view upstream_model,
                    const config::CircuitBreakerConfig& breaker);
  Result<void> ChangePlan(std::string_view model, config::Strategy strategy,
                          std::span<const PlanTarget> targets, bool apply);
  const TargetPlan* Intern(TargetPlan plan);
  Error NotFound(std::string_view model) const;

  Options options_;
  Metrics& metrics_;
  const Clock& clock_;
  ProviderMap providers_;
  std::vector<std::string_view> provider_names_;
  std::vector<std::string_view> public_names_;

  // Immutable after construction.
  std::vector<std::unique_ptr<ModelRoute>> routes_;
  std::unordered_map<std::string_view, const ModelRoute*> public_;
  std::vector<const ModelRoute*> public_list_;

  // Guards everything below that is not atomic; taken only to make a synthetic route.
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Target>, std::less<>> targets_;  // by label
  std::map<std::string, config::PriceConfig, std::less<>> prices_;       // by target label
  std::vector<std::unique_ptr<ModelRoute>> synthetic_;
  std::vector<std::unique_ptr<const TargetPlan>> plans_;  // interned run-time plans, never freed
  std::size_t plan_targets_ = 0;                          // targets made for run-time plans
  std::size_t on_demand_ = 0;
  std::size_t slot_mask_ = 0;
  std::unique_ptr<std::atomic<const ModelRoute*>[]> slots_;  // never more than half full
};

}  // namespace orchestra::orchestration
