#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// What a key may spend: its rate limits (per key and per key × model), its budget and the models
// it may call. Held by the key's auth::Principal (from the config file or from a virtual key in
// the storage backend) and read by the admission stages through limits::Request::policy.
namespace orchestra::limits {

// 0 = no limit.
struct RateLimits {
  std::int64_t rpm = 0;           // requests per minute
  std::int64_t tpm = 0;           // tokens (prompt + completion) per minute
  std::int64_t max_parallel = 0;  // requests in flight at once

  bool any() const { return rpm > 0 || tpm > 0 || max_parallel > 0; }
  friend bool operator==(const RateLimits&, const RateLimits&) = default;
};

enum class BudgetPeriod : std::uint8_t { kDay, kWeek, kMonth };

struct Budget {
  double usd = 0;
  BudgetPeriod period = BudgetPeriod::kMonth;
  friend bool operator==(const Budget&, const Budget&) = default;
};

struct ModelLimits {
  std::string model;  // a public model name
  RateLimits limits;
  friend bool operator==(const ModelLimits&, const ModelLimits&) = default;
};

struct KeyPolicy {
  RateLimits limits;
  std::vector<ModelLimits> per_model;
  std::optional<Budget> budget;
  // The models the key may call: names or globs ("gpt-4o*"); empty = every model.
  std::vector<std::string> models;

  bool unrestricted() const {
    return !limits.any() && per_model.empty() && !budget && models.empty();
  }
  friend bool operator==(const KeyPolicy&, const KeyPolicy&) = default;
};

}  // namespace orchestra::limits
