#include "orchestration/route_table.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "common/text.hpp"
#include "orchestration/default_prices.hpp"

namespace orchestra::orchestration {
namespace {

void AppendChain(const ModelRoute* route, std::size_t max_length,
                 std::vector<const ModelRoute*>& out) {
  if (out.size() >= max_length) return;
  if (std::find(out.begin(), out.end(), route) != out.end()) return;
  out.push_back(route);
  for (const ModelRoute* f : route->fallbacks)
    AppendChain(f, max_length, out);
}

bool SamePlan(const TargetPlan& a, const TargetPlan& b) {
  return a.strategy == b.strategy &&
         std::equal(a.targets.begin(), a.targets.end(), b.targets.begin(), b.targets.end(),
                    [](const RouteTarget& x, const RouteTarget& y) {
                      return x.target == y.target && x.weight == y.weight;
                    });
}

std::string Quoted(std::string_view name) {
  // Client-supplied text in a message: bounded.
  constexpr std::size_t kMax = 128;
  std::string out = "'";
  out.append(name.substr(0, kMax));
  if (name.size() > kMax) out += "...";
  out += "'";
  return out;
}

}  // namespace

std::vector<const ModelRoute*> FallbackChain(const ModelRoute& route, std::size_t max_length) {
  std::vector<const ModelRoute*> chain;
  AppendChain(&route, std::max<std::size_t>(max_length, 1), chain);
  return chain;
}

RouteTable::RouteTable(const config::Config& config, const ProviderMap& providers, Metrics& metrics,
                       const Clock& clock)
    : RouteTable(config, providers, metrics, clock, Options{}) {}

RouteTable::RouteTable(const config::Config& config, ProviderMap providers, Metrics& metrics,
                       const Clock& clock, Options options)
    : options_(options), metrics_(metrics), clock_(clock), providers_(std::move(providers)) {
  for (const auto& [name, provider] : providers_) {
    if (provider == nullptr) {
      throw std::invalid_argument("provider '" + name + "' has no instance");
    }
    provider_names_.push_back(name);
  }

  // Configured routes and their targets.
  for (const config::ModelConfig& m : config.models) {
    if (m.targets.size() > kMaxRouteTargets) {
      throw std::invalid_argument("model '" + m.name + "' has " + std::to_string(m.targets.size()) +
                                  " targets; at most " + std::to_string(kMaxRouteTargets) +
                                  " are supported");
    }
    auto route = std::make_unique<ModelRoute>();
    route->name = m.name;
    route->configured.strategy = m.strategy;
    route->retry = m.retry;
    route->timeout = m.timeout;
    route->deadline = m.deadline;
    route->price = m.price;
    route->cache_ttl = m.cache_ttl;
    route->breaker = m.circuit_breaker;
    route->metrics = metrics_.ForModel(m.name);
    for (const config::TargetConfig& t : m.targets) {
      auto it = providers_.find(t.provider);
      if (it == providers_.end()) {
        throw std::invalid_argument("model '" + m.name + "': provider '" + t.provider +
                                    "' has no instance");
      }
      Target& target = TargetFor(*it->second, t.model, m.circuit_breaker);
      route->configured.targets.push_back(RouteTarget{&target, t.weight});
      prices_.try_emplace(target.label(), m.price);
    }
    // No configured price: the list price of the first target's model, when known.
    if (route->price.input_per_mtok == 0 && route->price.output_per_mtok == 0 &&
        !m.targets.empty()) {
      if (auto listed = DefaultPrice(m.targets.front().model)) route->price = *listed;
    }
    if (!public_.emplace(route->name, route.get()).second) {
      throw std::invalid_argument("duplicate model name '" + m.name + "'");
    }
    public_list_.push_back(route.get());
    public_names_.push_back(route->name);
    routes_.push_back(std::move(route));
  }

  // The synthetic table: room for the on-demand cap plus every fallback named in the
  // configuration, at most half full so that probes stay short and always end at an empty slot.
  std::size_t startup_names = 0;
  for (const config::ModelConfig& m : config.models)
    startup_names += m.fallbacks.size();
  std::size_t capacity = std::bit_ceil(2 * (options_.max_synthetic_routes + startup_names) + 2);
  slot_mask_ = capacity - 1;
  slots_ = std::make_unique<std::atomic<const ModelRoute*>[]>(capacity);

  // Fallbacks: other public models, or provider/model and local-* names (made now).
  for (std::size_t i = 0; i < config.models.size(); ++i) {
    ModelRoute& route = *routes_[i];
    for (const std::string& name : config.models[i].fallbacks) {
      const ModelRoute* fallback = nullptr;
      if (auto it = public_.find(name); it != public_.end()) {
        fallback = it->second;
      } else {
        std::size_t slash = name.find('/');
        std::string_view provider;
        std::string_view upstream;
        if (slash != std::string::npos) {
          provider = std::string_view(name).substr(0, slash);
          upstream = std::string_view(name).substr(slash + 1);
        } else if (config::IsLocalModelName(name)) {
          provider = "local";
          upstream = name;
        }
        if (!provider.empty() && !upstream.empty() && providers_.contains(provider) &&
            KnownLocal(provider, upstream)) {
          if (auto made = MakeSynthetic(name, provider, upstream, true)) fallback = *made;
        }
      }
      if (fallback == nullptr) {
        throw std::invalid_argument("model '" + route.name + "': fallback '" + name +
                                    "' is neither a model nor a provider/model of a provider "
                                    "with an instance");
      }
      if (fallback != &route) route.fallbacks.push_back(fallback);
    }
  }
  for (auto& route : routes_)
    route->chain = FallbackChain(*route, options_.max_chain);
}

RouteTable::~RouteTable() = default;

std::size_t RouteTable::synthetic_routes() const {
  std::lock_guard lock(mutex_);
  return on_demand_;
}

Result<const ModelRoute*> RouteTable::Resolve(std::string_view model) {
  if (model.empty()) return MakeError(ErrorCode::kInvalidRequest, "model is required", "model");
  if (auto it = public_.find(model); it != public_.end()) return it->second;

  std::string_view provider;
  std::string_view upstream;
  if (std::size_t slash = model.find('/'); slash != std::string_view::npos) {
    provider = model.substr(0, slash);
    upstream = model.substr(slash + 1);
  } else if (config::IsLocalModelName(model)) {
    provider = "local";
    upstream = model;
  }
  if (provider.empty() || upstream.empty() || !providers_.contains(provider) ||
      !KnownLocal(provider, upstream)) {
    return NotFound(model);
  }
  if (const ModelRoute* route = FindSynthetic(model)) return route;
  if (model.size() > options_.max_model_name) {
    return MakeError(
        ErrorCode::kInvalidRequest,
        "model name longer than " + std::to_string(options_.max_model_name) + " characters",
        "model");
  }
  std::lock_guard lock(mutex_);
  return MakeSynthetic(model, provider, upstream, false);
}

const ModelRoute* RouteTable::FindPublic(std::string_view model) const {
  auto it = public_.find(model);
  return it == public_.end() ? nullptr : it->second;
}

Result<void> RouteTable::CheckTarget(std::string_view provider,
                                     std::string_view upstream_model) const {
  if (!providers_.contains(provider)) {
    std::string message = "no provider named " + Quoted(provider);
    if (auto near = ClosestMatch(provider, provider_names_)) {
      message += " (did you mean '" + std::string(*near) + "'?)";
    } else {
      message += " is configured";
    }
    return MakeError(ErrorCode::kNotFound, std::move(message));
  }
  if (upstream_model.empty()) {
    return MakeError(ErrorCode::kInvalidRequest, "the upstream model name is empty");
  }
  if (upstream_model.size() > options_.max_model_name) {
    return MakeError(ErrorCode::kInvalidRequest, "upstream model name longer than " +
                                                     std::to_string(options_.max_model_name) +
                                                     " characters");
  }
  if (!KnownLocal(provider, upstream_model)) {
    return MakeError(ErrorCode::kNotFound,
                     "the local provider has no model " + Quoted(upstream_model));
  }
  return {};
}

Result<void> RouteTable::SetPlan(std::string_view model, config::Strategy strategy,
                                 std::span<const PlanTarget> targets) {
  return ChangePlan(model, strategy, targets, true);
}

Result<void> RouteTable::CheckPlan(std::string_view model, config::Strategy strategy,
                                   std::span<const PlanTarget> targets) {
  return ChangePlan(model, strategy, targets, false);
}

Result<void> RouteTable::ChangePlan(std::string_view model, config::Strategy strategy,
                                    std::span<const PlanTarget> targets, bool apply) {
  ModelRoute* route = nullptr;
  for (const auto& r : routes_) {
    if (r->name == model) route = r.get();
  }
  if (route == nullptr) {
    return MakeError(ErrorCode::kNotFound,
                     "the model " + Quoted(model) + " is not a configured model");
  }
  if (targets.empty()) return MakeError(ErrorCode::kInvalidRequest, "a plan needs a target");
  if (targets.size() > kMaxRouteTargets) {
    return MakeError(ErrorCode::kInvalidRequest,
                     "at most " + std::to_string(kMaxRouteTargets) + " targets per model");
  }
  for (const PlanTarget& t : targets) {
    if (!std::isfinite(t.weight) || !(t.weight > 0)) {
      return MakeError(ErrorCode::kInvalidRequest, "a target's weight must be greater than 0");
    }
    if (auto checked = CheckTarget(t.provider, t.upstream_model); !checked) return checked;
  }

  std::lock_guard lock(mutex_);
  // The same upstream named twice (blue and green registered with one endpoint) is one target
  // with both weights: the balancer would otherwise count it twice among the candidates.
  struct Entry {
    std::string label;
    const PlanTarget* target;
    double weight;
  };
  std::vector<Entry> entries;
  for (const PlanTarget& t : targets) {
    std::string label = std::string(t.provider) + "/" + std::string(t.upstream_model);
    auto same = std::find_if(entries.begin(), entries.end(),
                             [&](const Entry& e) { return e.label == label; });
    if (same != entries.end()) {
      same->weight += t.weight;
    } else {
      entries.push_back({std::move(label), &t, t.weight});
    }
  }
  std::size_t new_targets = 0;
  for (const Entry& e : entries)
    new_targets += targets_.contains(e.label) ? 0 : 1;
  if (plan_targets_ + new_targets > options_.max_plan_targets) {
    return MakeError(ErrorCode::kConflict,
                     "the limit of " + std::to_string(options_.max_plan_targets) +
                         " upstream models added at run time is reached; restart the server to "
                         "reclaim the unused ones");
  }
  const Error too_many_plans(ErrorCode::kConflict,
                             "the limit of " + std::to_string(options_.max_plans) +
                                 " distinct deployments since start-up is reached; restart the "
                                 "server to reclaim them");
  if (new_targets > 0 && plans_.size() >= options_.max_plans) return too_many_plans;

  TargetPlan plan;
  plan.strategy = strategy;
  for (const Entry& e : entries) {
    if (!apply) {
      // Only targets that exist are looked at: with a new one the plan is new, and the caps
      // above already said whether it fits.
      if (new_targets > 0) return {};
      plan.targets.push_back(RouteTarget{targets_.find(e.label)->second.get(), e.weight});
      continue;
    }
    Target& target = TargetFor(*providers_.find(e.target->provider)->second,
                               e.target->upstream_model, route->breaker);
    plan.targets.push_back(RouteTarget{&target, e.weight});
  }
  if (SamePlan(plan, route->configured)) {
    if (apply) route->active.store(&route->configured, std::memory_order_release);
    return {};
  }
  if (!apply) {
    const bool known = std::any_of(plans_.begin(), plans_.end(),
                                   [&](const auto& kept) { return SamePlan(*kept, plan); });
    if (!known && plans_.size() >= options_.max_plans) return too_many_plans;
    return {};
  }
  plan_targets_ += new_targets;
  const TargetPlan* interned = Intern(std::move(plan));
  if (interned == nullptr) return too_many_plans;
  // Release: a request that loads the pointer sees the finished plan.
  route->active.store(interned, std::memory_order_release);
  return {};
}

Result<void> RouteTable::ResetPlan(std::string_view model) {
  for (const auto& r : routes_) {
    if (r->name == model) {
      std::lock_guard lock(mutex_);
      r->active.store(&r->configured, std::memory_order_release);
      return {};
    }
  }
  return MakeError(ErrorCode::kNotFound,
                   "the model " + Quoted(model) + " is not a configured model");
}

std::size_t RouteTable::plans() const {
  std::lock_guard lock(mutex_);
  return plans_.size();
}

// Called with mutex_ held. Null when the plan is new and the cap is reached.
const TargetPlan* RouteTable::Intern(TargetPlan plan) {
  for (const auto& kept : plans_) {
    if (SamePlan(*kept, plan)) return kept.get();
  }
  if (plans_.size() >= options_.max_plans) return nullptr;
  plans_.push_back(std::make_unique<const TargetPlan>(std::move(plan)));
  return plans_.back().get();
}

bool RouteTable::KnownLocal(std::string_view provider, std::string_view upstream) const {
  if (provider != "local" || options_.local_models.empty()) return true;
  return std::find(options_.local_models.begin(), options_.local_models.end(), upstream) !=
         options_.local_models.end();
}

const ModelRoute* RouteTable::FindSynthetic(std::string_view name) const {
  std::size_t i = std::hash<std::string_view>{}(name)&slot_mask_;
  for (;;) {
    const ModelRoute* route = slots_[i].load(std::memory_order_acquire);
    if (route == nullptr) return nullptr;
    if (route->name == name) return route;
    i = (i + 1) & slot_mask_;
  }
}

// Called with mutex_ held, or from the constructor.
Result<const ModelRoute*> RouteTable::MakeSynthetic(std::string_view name,
                                                    std::string_view provider,
                                                    std::string_view upstream_model,
                                                    bool at_startup) {
  // Another thread may have made it since the caller's lock-free lookup.
  if (const ModelRoute* existing = FindSynthetic(name)) return existing;
  if (!at_startup && on_demand_ >= options_.max_synthetic_routes) {
    return MakeError(ErrorCode::kNotFound,
                     "the model " + Quoted(name) + " is not configured, and the limit of " +
                         std::to_string(options_.max_synthetic_routes) +
                         " distinct provider/model names in use is reached; add it under "
                         "models: in the configuration",
                     "model");
  }
  providers::Provider& p = *providers_.find(provider)->second;
  Target& target = TargetFor(p, upstream_model, config::CircuitBreakerConfig{});

  const config::ModelConfig defaults;
  auto route = std::make_unique<ModelRoute>();
  route->name = std::string(name);
  route->configured.strategy = config::Strategy::kWeighted;
  route->configured.targets.push_back(RouteTarget{&target, 1});
  route->retry = defaults.retry;
  route->timeout = defaults.timeout;
  route->deadline = defaults.deadline;
  if (auto it = prices_.find(target.label()); it != prices_.end()) route->price = it->second;
  if (route->price.input_per_mtok == 0 && route->price.output_per_mtok == 0) {
    if (auto listed = DefaultPrice(target.upstream_model())) route->price = *listed;
  }
  route->cache_ttl = Duration{0};
  route->synthetic = true;
  route->metrics = metrics_.ForModel(route->name);
  route->chain = {route.get()};

  const ModelRoute* made = route.get();
  synthetic_.push_back(std::move(route));
  if (!at_startup) ++on_demand_;
  std::size_t i = std::hash<std::string_view>{}(made->name) & slot_mask_;
  while (slots_[i].load(std::memory_order_relaxed) != nullptr)
    i = (i + 1) & slot_mask_;
  // Release: a reader that sees the pointer sees the finished route.
  slots_[i].store(made, std::memory_order_release);
  return made;
}

Target& RouteTable::TargetFor(providers::Provider& provider, std::string_view upstream_model,
                              const config::CircuitBreakerConfig& breaker) {
  std::string label = provider.name() + "/" + std::string(upstream_model);
  if (auto it = targets_.find(label); it != targets_.end()) return *it->second;
  auto target =
      std::make_unique<Target>(provider, std::string(upstream_model), breaker, clock_,
                               metrics_.ForTarget(provider.name(), upstream_model, label));
  Target& ref = *target;
  targets_.emplace(std::move(label), std::move(target));
  return ref;
}

Error RouteTable::NotFound(std::string_view model) const {
  std::string message = "The model " + Quoted(model) + " does not exist";
  std::size_t slash = model.find('/');
  if (slash != std::string_view::npos && !providers_.contains(model.substr(0, slash))) {
    std::string_view provider = model.substr(0, slash);
    if (auto near = ClosestMatch(provider, provider_names_)) {
      message += " (did you mean '" + std::string(*near) + std::string(model.substr(slash)) + "'?)";
    } else {
      message += " (no provider named " + Quoted(provider) + ")";
    }
  } else if (auto near = ClosestMatch(model, public_names_)) {
    message += " (did you mean '" + std::string(*near) + "'?)";
  } else if (config::IsLocalModelName(model) && !options_.local_models.empty()) {
    std::vector<std::string_view> local(options_.local_models.begin(), options_.local_models.end());
    if (auto close = ClosestMatch(model, local)) {
      message += " (did you mean '" + std::string(*close) + "'?)";
    } else {
      message += " (the local provider serves";
      for (std::size_t i = 0; i < local.size(); ++i) {
        message += (i == 0 ? " " : ", ") + std::string(local[i]);
      }
      message += ")";
    }
  }
  return MakeError(ErrorCode::kNotFound, std::move(message), "model");
}

}  // namespace orchestra::orchestration
