#include "limits/usage_recorder.hpp"

#include <array>
#include <chrono>
#include <cstring>

namespace orchestra::limits {

struct UsageRecorder::Series {
  observability::Counter* input = nullptr;
  observability::Counter* output = nullptr;
  observability::Counter* cached_input = nullptr;
  observability::FloatCounter* cost = nullptr;
  observability::Histogram* time_per_output_token = nullptr;
};

namespace {

std::vector<double> PerTokenBuckets() {
  // 1 ms to 1 s per token: fast small models to slow reasoning ones.
  return {0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0};
}

}  // namespace

UsageRecorder::UsageRecorder(observability::Registry& registry, std::size_t max_series)
    : tokens_(registry.AddCounter(
          "orchestra_tokens_total",
          "Tokens used, by public model, provider, API key name and kind (input, output, "
          "cached_input).",
          {"model", "provider", "key", "kind"})),
      cost_(registry.AddFloatCounter(
          "orchestra_cost_usd_total",
          "Cost in USD from the configured prices, by public model, provider and API key name.",
          {"model", "provider", "key"})),
      time_per_output_token_(registry.AddHistogram(
          "orchestra_time_per_output_token_seconds",
          "Streams: time from the first token to the end, per output token, by public model.",
          {"model"}, PerTokenBuckets())),
      max_series_(max_series) {}

UsageRecorder::~UsageRecorder() = default;

UsageRecorder::Series& UsageRecorder::SeriesFor(std::string_view model, std::string_view provider,
                                                std::string_view key) {
  std::array<char, 512> buffer;
  std::string_view id;
  const std::size_t length = model.size() + provider.size() + key.size() + 2;
  std::string long_id;
  if (length <= buffer.size()) {
    char* p = buffer.data();
    std::memcpy(p, model.data(), model.size());
    p += model.size();
    *p++ = '\0';
    std::memcpy(p, provider.data(), provider.size());
    p += provider.size();
    *p++ = '\0';
    std::memcpy(p, key.data(), key.size());
    id = std::string_view(buffer.data(), length);
  } else {
    long_id.append(model).append(1, '\0').append(provider).append(1, '\0').append(key);
    id = long_id;
  }
  std::lock_guard lock(mutex_);
  if (auto it = series_.find(id); it != series_.end()) return *it->second;
  auto make = [&](std::string_view m, std::string_view p, std::string_view k) {
    auto s = std::make_unique<Series>();
    s->input = &tokens_.With({m, p, k, "input"});
    s->output = &tokens_.With({m, p, k, "output"});
    s->cached_input = &tokens_.With({m, p, k, "cached_input"});
    s->cost = &cost_.With({m, p, k});
    s->time_per_output_token = &time_per_output_token_.With({m});
    return s;
  };
  if (series_.size() >= max_series_) {
    if (!overflow_) overflow_ = make("other", "other", "other");
    return *overflow_;
  }
  return *series_.emplace(std::string(id), make(model, provider, key)).first->second;
}

void UsageRecorder::Settle(const Request& request, const Ticket& /*ticket*/,
                           const Outcome& outcome) {
  if (outcome.refused || outcome.model.empty()) return;
  if (!outcome.usage_known && outcome.cost_usd == 0) return;
  // Most requests repeat a (target, key) pair: a small per-thread cache of the series found for
  // stable identities skips building and hashing the name. (A target serves one public model
  // for routes made from it, so the pair names the series, except for synthetic routes that
  // share a configured route's target, which a model check catches.)
  struct Cached {
    const void* target = nullptr;
    const void* principal = nullptr;
    const UsageRecorder* owner = nullptr;
    std::string_view model;
    Series* series = nullptr;
  };
  thread_local std::array<Cached, 64> cache{};
  Series* series = nullptr;
  Cached* slot = nullptr;
  if (outcome.target_id != nullptr && request.principal_id != nullptr) {
    const auto h = (reinterpret_cast<std::uintptr_t>(outcome.target_id) >> 4) ^
                   (reinterpret_cast<std::uintptr_t>(request.principal_id) >> 6);
    slot = &cache[h % cache.size()];
    if (slot->target == outcome.target_id && slot->principal == request.principal_id &&
        slot->owner == this && slot->model.data() == outcome.model.data()) {
      series = slot->series;
    }
  }
  if (series == nullptr) {
    series = &SeriesFor(outcome.model, outcome.provider, request.principal);
    if (slot != nullptr) {
      *slot = {outcome.target_id, request.principal_id, this, outcome.model, series};
    }
  }
  Series& s = *series;
  s.input->Inc(static_cast<std::uint64_t>(outcome.prompt_tokens - outcome.cached_tokens));
  s.cached_input->Inc(static_cast<std::uint64_t>(outcome.cached_tokens));
  s.output->Inc(static_cast<std::uint64_t>(outcome.completion_tokens));
  s.cost->Add(outcome.cost_usd);
  if (request.stream && outcome.completion_tokens > 0 && outcome.first_token.count() > 0 &&
      outcome.latency > outcome.first_token) {
    const double seconds =
        std::chrono::duration<double>(outcome.latency - outcome.first_token).count();
    s.time_per_output_token->Observe(seconds / static_cast<double>(outcome.completion_tokens));
  }
}

}  // namespace orchestra::limits
