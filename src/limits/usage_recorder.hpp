#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "limits/admission.hpp"
#include "observability/metrics.hpp"

// Usage accounting as a settlement stage: every admitted request that was served adds its
// tokens and cost to
//   orchestra_tokens_total{model,provider,key,kind}     kind: input | output | cached_input
//   orchestra_cost_usd_total{model,provider,key}
//   orchestra_time_per_output_token_seconds{model}      streams: (end - first token) / tokens
// where model is the public model that answered, provider its provider, key the API key's name.
// Label values are bounded: models by the route table (configured plus at most 256 synthetic
// routes), providers by the configuration, keys by the key table; past `max_series`
// combinations every new one is counted under model, provider and key "other".
namespace orchestra::limits {

class UsageRecorder final : public Stage {
 public:
  // `registry` must outlive this object.
  explicit UsageRecorder(observability::Registry& registry, std::size_t max_series = 10'000);
  ~UsageRecorder() override;

  std::string_view name() const override { return "usage"; }
  std::optional<Refusal> Admit(const Request& /*request*/, Ticket& /*ticket*/) override {
    return std::nullopt;
  }
  void Settle(const Request& request, const Ticket& ticket, const Outcome& outcome) override;

 private:
  struct Series;
  Series& SeriesFor(std::string_view model, std::string_view provider, std::string_view key);

  observability::Family<observability::Counter>& tokens_;
  observability::Family<observability::FloatCounter>& cost_;
  observability::Family<observability::Histogram>& time_per_output_token_;
  std::size_t max_series_;

  // model \0 provider \0 key → its children. Looked up under a mutex held for a hash lookup
  // only; the children are created once.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<Series>, Hash, std::equal_to<>> series_;
  std::unique_ptr<Series> overflow_;
};

}  // namespace orchestra::limits
