#include "orchestration/usage.hpp"

#include <algorithm>

namespace orchestra::orchestration {

std::string_view ToString(Outcome o) {
  switch (o) {
    case Outcome::kSuccess:
      return "success";
    case Outcome::kError:
      return "error";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kRejected:
      return "rejected";
    case Outcome::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::string_view CauseName(Metrics::Cause cause) {
  switch (cause) {
    case Metrics::Cause::kStatus429:
      return "status_429";
    case Metrics::Cause::kStatus5xx:
      return "status_5xx";
    case Metrics::Cause::kStatus4xx:
      return "status_4xx";
    case Metrics::Cause::kConnect:
      return "connect";
    case Metrics::Cause::kTimeout:
      return "timeout";
    case Metrics::Cause::kProtocol:
      return "protocol";
    case Metrics::Cause::kCircuitOpen:
      return "circuit_open";
  }
  return "protocol";
}

Outcome OutcomeOf(const providers::ProviderError& error) {
  switch (error.kind) {
    case providers::FailureKind::kTimeout:
      return Outcome::kTimeout;
    case providers::FailureKind::kCancelled:
      return Outcome::kCancelled;
    default:
      return Outcome::kError;
  }
}

double CostUsd(const wire::Usage& usage, const config::PriceConfig& price) {
  if (!usage.known) return 0;
  // Negative counts are an upstream bug; they must not turn into a refund.
  auto prompt = static_cast<double>(std::max<std::int64_t>(usage.prompt_tokens, 0));
  auto completion = static_cast<double>(std::max<std::int64_t>(usage.completion_tokens, 0));
  return (prompt * price.input_per_mtok + completion * price.output_per_mtok) / 1e6;
}

Metrics::Metrics(observability::Registry& registry)
    : upstream_requests_(registry.AddCounter("orchestra_upstream_requests_total",
                                             "Upstream attempts by provider, model and outcome.",
                                             {"provider", "model", "outcome"})),
      upstream_duration_(registry.AddHistogram(
          "orchestra_upstream_duration_seconds", "Duration of upstream attempts.",
          {"provider", "model"}, observability::LatencyBuckets())),
      time_to_first_token_(registry.AddHistogram(
          "orchestra_time_to_first_token_seconds",
          "Time from the request to the first streamed token, by public model.", {"model"},
          observability::LatencyBuckets())),
      circuit_open_(registry.AddGauge("orchestra_circuit_open",
                                      "1 while a target's circuit breaker is open or half-open.",
                                      {"target"})),
      cache_requests_(registry.AddCounter("orchestra_cache_requests_total",
                                          "Response cache lookups, by result.", {"result"})),
      cache_hits_(cache_requests_.With({"hit"})),
      cache_misses_(cache_requests_.With({"miss"})) {
  auto& retries =
      registry.AddCounter("orchestra_retries_total",
                          "Upstream attempts that were retries, by the failure before.", {"cause"});
  auto& fallbacks =
      registry.AddCounter("orchestra_fallbacks_total",
                          "Requests that moved on to a fallback model, by the failure "
                          "before.",
                          {"cause"});
  auto& tiers = registry.AddCounter("orchestra_cache_tier_requests_total",
                                    "Response cache lookups by tier (memory, then redis) and "
                                    "result (hit, miss, error).",
                                    {"tier", "result"});
  auto& writes = registry.AddCounter("orchestra_cache_shared_writes_total",
                                     "Writes to the shared response cache tier, by result (ok, "
                                     "error, dropped).",
                                     {"result"});
  constexpr std::array<std::string_view, 3> kResults = {"hit", "miss", "error"};
  constexpr std::array<std::string_view, 3> kWrites = {"ok", "error", "dropped"};
  for (std::size_t i = 0; i < 3; ++i) {
    // The in-process tier cannot fail: its error child would only ever read 0.
    if (static_cast<CacheResult>(i) != CacheResult::kError) {
      memory_cache_[i] = &tiers.With({"memory", kResults[i]});
    }
    shared_cache_[i] = &tiers.With({"redis", kResults[i]});
    shared_writes_[i] = &writes.With({kWrites[i]});
  }
  for (std::size_t i = 0; i < kCauseCount; ++i) {
    const std::string_view label = CauseName(static_cast<Cause>(i));
    retries_[i] = &retries.With({label});
    fallbacks_[i] = &fallbacks.With({label});
  }
}

Metrics::Cause Metrics::CauseOf(const providers::ProviderError& error) {
  switch (error.kind) {
    case providers::FailureKind::kConnect:
      return Cause::kConnect;
    case providers::FailureKind::kTimeout:
      return Cause::kTimeout;
    case providers::FailureKind::kStatus:
      if (error.status == 429) return Cause::kStatus429;
      return error.status >= 500 ? Cause::kStatus5xx : Cause::kStatus4xx;
    default:
      return Cause::kProtocol;
  }
}

TargetMetrics Metrics::ForTarget(std::string_view provider, std::string_view model,
                                 std::string_view label) {
  TargetMetrics m;
  for (std::size_t i = 0; i < kOutcomeCount; ++i) {
    m.requests[i] = &upstream_requests_.With({provider, model, ToString(static_cast<Outcome>(i))});
  }
  m.duration = &upstream_duration_.With({provider, model});
  m.circuit_open = &circuit_open_.With({label});
  return m;
}

ModelMetrics Metrics::ForModel(std::string_view model) {
  ModelMetrics m;
  m.time_to_first_token = &time_to_first_token_.With({model});
  return m;
}

}  // namespace orchestra::orchestration
