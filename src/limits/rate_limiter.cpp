#include "limits/rate_limiter.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>

namespace orchestra::limits {
namespace {

constexpr std::int64_t kSlotCount = static_cast<std::int64_t>(RateLimiter::kSlots);
constexpr std::int64_t kWindowMs = kSlotCount * RateLimiter::kSlotMs;

// Ticket::token: the admission's slot + 1, and which buckets it charged.
constexpr std::uint64_t kChargedKey = 1ULL << 63;
constexpr std::uint64_t kChargedModel = 1ULL << 62;
constexpr std::uint64_t kSlotMask = kChargedModel - 1;

std::int64_t Remaining(std::int64_t limit, std::int64_t used) {
  return std::max<std::int64_t>(limit - used, 0);
}

// What one limit says about a request.
struct Verdict {
  bool refused = false;
  const char* what = "";  // "requests per minute", ...
  std::int64_t limit = 0;
  std::int64_t wait_ms = 0;
  bool never = false;  // the request alone exceeds the limit
};

void RecordHeaders(RateHeaders& h, const RateLimits& limits, const RateLimiter::Window& requests,
                   const RateLimiter::Window& tokens, std::int64_t now_ms) {
  if (limits.rpm > 0) {
    const std::int64_t remaining = Remaining(limits.rpm, requests.sum);
    if (h.limit_requests == 0 || remaining < h.remaining_requests) {
      h.limit_requests = limits.rpm;
      h.remaining_requests = remaining;
      h.reset_requests_ms = requests.WaitMs(remaining > 0 ? 0 : 1, limits.rpm, now_ms);
    }
  }
  if (limits.tpm > 0) {
    const std::int64_t remaining = Remaining(limits.tpm, tokens.sum);
    if (h.limit_tokens == 0 || remaining < h.remaining_tokens) {
      h.limit_tokens = limits.tpm;
      h.remaining_tokens = remaining;
      h.reset_tokens_ms = tokens.WaitMs(remaining > 0 ? 0 : 1, limits.tpm, now_ms);
    }
  }
}

Verdict Check(const RateLimits& limits, const RateLimiter::Window& requests,
              const RateLimiter::Window& tokens, std::int64_t inflight, std::int64_t estimate,
              std::int64_t now_ms) {
  Verdict v;
  if (limits.max_parallel > 0 && inflight >= limits.max_parallel) {
    return {true, "parallel requests", limits.max_parallel, 1000, false};
  }
  if (limits.rpm > 0 && requests.sum + 1 > limits.rpm) {
    return {true, "requests per minute", limits.rpm, requests.WaitMs(1, limits.rpm, now_ms), false};
  }
  if (limits.tpm > 0 && estimate > 0 && tokens.sum + estimate > limits.tpm) {
    if (estimate > limits.tpm) return {true, "tokens per minute", limits.tpm, kWindowMs, true};
    return {true, "tokens per minute", limits.tpm, tokens.WaitMs(estimate, limits.tpm, now_ms),
            false};
  }
  return v;
}

Refusal MakeRefusal(const Verdict& v, bool per_model, std::string_view model,
                    std::int64_t estimate) {
  return RateLimitRefusal(v.what, v.limit, v.wait_ms, v.never, per_model, model, estimate);
}

}  // namespace

const ModelLimits* FindModelLimits(const KeyPolicy& policy, std::string_view model) {
  if (model.empty()) return nullptr;
  for (const ModelLimits& m : policy.per_model) {
    if (m.model == model && m.limits.any()) return &m;
  }
  return nullptr;
}

Refusal RateLimitRefusal(std::string_view what, std::int64_t limit, std::int64_t wait_ms,
                         bool never, bool per_model, std::string_view model,
                         std::int64_t estimate) {
  std::string message;
  if (never) {
    message = "this request's estimated " + std::to_string(estimate) +
              " tokens exceed the limit of " + std::to_string(limit) + " tokens per minute";
  } else {
    message = "rate limit reached: " + std::to_string(limit) + " " + std::string(what);
  }
  if (per_model) {
    message += " for model '" + std::string(model) + "'";
  }
  message += " on this API key";
  if (!never) message += "; retry after the time in Retry-After";
  Error error(ErrorCode::kRateLimited, std::move(message));
  error.retry_after_s = static_cast<int>(std::max<std::int64_t>((wait_ms + 999) / 1000, 1));
  return Refusal{std::move(error), "rate_limit"};
}

std::int64_t RateLimiter::WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void RateLimiter::Window::Advance(std::int64_t slot) {
  if (head < 0 || slot - head >= kSlotCount) {
    if (head >= 0) slots.fill(0);
    sum = 0;
    head = slot;
    return;
  }
  while (head < slot) {
    ++head;
    std::int64_t& s = slots[static_cast<std::size_t>(head % kSlotCount)];
    sum -= s;
    s = 0;
  }
}

void RateLimiter::Window::Add(std::int64_t slot, std::int64_t amount) {
  Advance(slot);
  slots[static_cast<std::size_t>(head % kSlotCount)] += amount;
  sum += amount;
}

void RateLimiter::Window::Correct(std::int64_t admitted_slot, std::int64_t delta) {
  if (delta == 0 || head < 0) return;
  if (admitted_slot > head - kSlotCount && admitted_slot <= head) {
    std::int64_t& s = slots[static_cast<std::size_t>(admitted_slot % kSlotCount)];
    const std::int64_t next = std::max<std::int64_t>(s + delta, 0);
    sum += next - s;
    s = next;
  } else if (delta > 0) {
    slots[static_cast<std::size_t>(head % kSlotCount)] += delta;
    sum += delta;
  }
}

std::int64_t RateLimiter::Window::WaitMs(std::int64_t amount, std::int64_t limit,
                                         std::int64_t now_ms) const {
  if (sum + amount <= limit || head < 0) return 0;
  std::int64_t freed = 0;
  for (std::int64_t i = head - kSlotCount + 1; i <= head; ++i) {
    freed += slots[static_cast<std::size_t>(((i % kSlotCount) + kSlotCount) % kSlotCount)];
    if (sum - freed + amount <= limit) {
      return std::max<std::int64_t>((i + kSlotCount) * kSlotMs - now_ms, 1);
    }
  }
  return kWindowMs;
}

RateLimiter::RateLimiter(Clock clock) : clock_(std::move(clock)) {}

RateLimiter::~RateLimiter() = default;

RateLimiter::Bucket* RateLimiter::Find(std::string_view principal, std::string_view model,
                                       bool create) {
  // principal \x1f model: a name never holds a control character the config accepts as a
  // separator, and the key's own bucket (model "") differs from every per-model one.
  std::array<char, 320> buffer;
  std::string long_id;
  std::string_view id;
  const std::size_t length = principal.size() + 1 + model.size();
  if (length <= buffer.size()) {
    // (memcpy from an empty view's null data is undefined: copy only what there is)
    if (!principal.empty()) std::memcpy(buffer.data(), principal.data(), principal.size());
    buffer[principal.size()] = '\x1f';
    if (!model.empty())
      std::memcpy(buffer.data() + principal.size() + 1, model.data(), model.size());
    id = std::string_view(buffer.data(), length);
  } else {
    long_id.append(principal).append(1, '\x1f').append(model);
    id = long_id;
  }
  Shard& shard = shards_[Hash{}(id) % kShards];
  std::lock_guard lock(shard.mutex);
  if (auto it = shard.buckets.find(id); it != shard.buckets.end()) return it->second.get();
  if (!create) return nullptr;
  return shard.buckets.emplace(std::string(id), std::make_unique<Bucket>()).first->second.get();
}

std::optional<Refusal> RateLimiter::Admit(const Request& request, Ticket& ticket) {
  ticket = {};
  if (request.policy == nullptr) return std::nullopt;
  const KeyPolicy& policy = *request.policy;
  const RateLimits* key_limits = policy.limits.any() ? &policy.limits : nullptr;
  const ModelLimits* model_limits = FindModelLimits(policy, request.model);
  if (key_limits == nullptr && model_limits == nullptr) return std::nullopt;

  const std::int64_t now_ms = clock_();
  const std::int64_t slot = now_ms / kSlotMs;
  const std::int64_t estimate = std::max<std::int64_t>(request.estimated_tokens, 0);
  Bucket* key_bucket = key_limits != nullptr ? Find(request.principal, {}, true) : nullptr;
  Bucket* model_bucket =
      model_limits != nullptr ? Find(request.principal, request.model, true) : nullptr;

  std::unique_lock<std::mutex> key_lock;
  std::unique_lock<std::mutex> model_lock;
  if (key_bucket != nullptr) {
    key_lock = std::unique_lock(key_bucket->mutex);
    key_bucket->requests.Advance(slot);
    key_bucket->tokens.Advance(slot);
  }
  if (model_bucket != nullptr) {
    model_lock = std::unique_lock(model_bucket->mutex);
    model_bucket->requests.Advance(slot);
    model_bucket->tokens.Advance(slot);
  }

  std::optional<Refusal> refusal;
  if (key_bucket != nullptr) {
    Verdict v = Check(*key_limits, key_bucket->requests, key_bucket->tokens, key_bucket->inflight,
                      estimate, now_ms);
    if (v.refused) refusal = MakeRefusal(v, false, request.model, estimate);
  }
  if (!refusal && model_bucket != nullptr) {
    Verdict v = Check(model_limits->limits, model_bucket->requests, model_bucket->tokens,
                      model_bucket->inflight, estimate, now_ms);
    if (v.refused) refusal = MakeRefusal(v, true, request.model, estimate);
  }
  if (!refusal) {
    std::uint64_t token = static_cast<std::uint64_t>(slot + 1) & kSlotMask;
    if (key_bucket != nullptr) {
      key_bucket->requests.Add(slot, 1);
      key_bucket->tokens.Add(slot, estimate);
      ++key_bucket->inflight;
      token |= kChargedKey;
    }
    if (model_bucket != nullptr) {
      model_bucket->requests.Add(slot, 1);
      model_bucket->tokens.Add(slot, estimate);
      ++model_bucket->inflight;
      token |= kChargedModel;
    }
    ticket.amount = estimate;
    ticket.token = token;
  }
  if (request.rate_headers != nullptr) {
    RateHeaders& h = *request.rate_headers;
    h = {};
    if (key_bucket != nullptr)
      RecordHeaders(h, *key_limits, key_bucket->requests, key_bucket->tokens, now_ms);
    if (model_bucket != nullptr) {
      RecordHeaders(h, model_limits->limits, model_bucket->requests, model_bucket->tokens, now_ms);
    }
  }
  return refusal;
}

void RateLimiter::Settle(const Request& request, const Ticket& ticket, const Outcome& outcome) {
  if (ticket.token == 0) return;
  const auto admitted_slot = static_cast<std::int64_t>(ticket.token & kSlotMask) - 1;
  std::int64_t used = 0;
  if (!outcome.refused && outcome.usage_known && !outcome.cache_hit) {
    used = std::max<std::int64_t>(outcome.prompt_tokens, 0) +
           std::max<std::int64_t>(outcome.completion_tokens, 0);
  }
  const std::int64_t correction = used - ticket.amount;
  const std::int64_t slot = clock_() / kSlotMs;
  auto settle = [&](Bucket* bucket) {
    if (bucket == nullptr) return;
    std::lock_guard lock(bucket->mutex);
    --bucket->inflight;
    bucket->requests.Advance(slot);
    bucket->tokens.Advance(slot);
    if (outcome.refused) bucket->requests.Correct(admitted_slot, -1);
    bucket->tokens.Correct(admitted_slot, correction);
  };
  if ((ticket.token & kChargedKey) != 0) settle(Find(request.principal, {}, false));
  if ((ticket.token & kChargedModel) != 0) settle(Find(request.principal, request.model, false));
}

std::size_t FormatResetDuration(std::int64_t ms, char* out) {
  char* p = out;
  auto put = [&p](std::int64_t v) { p = std::to_chars(p, p + 20, v).ptr; };
  if (ms < 0) ms = 0;
  if (ms < 1000) {
    put(ms);
    *p++ = 'm';
    *p++ = 's';
    return static_cast<std::size_t>(p - out);
  }
  const std::int64_t minutes = ms / 60'000;
  ms -= minutes * 60'000;
  if (minutes > 0) {
    put(minutes);
    *p++ = 'm';
  }
  put(ms / 1000);
  if (std::int64_t frac = ms % 1000; frac != 0) {
    *p++ = '.';
    char digits[3] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                      static_cast<char>('0' + frac % 10)};
    int n = 3;
    while (n > 0 && digits[n - 1] == '0')
      --n;
    for (int i = 0; i < n; ++i)
      *p++ = digits[i];
  }
  *p++ = 's';
  return static_cast<std::size_t>(p - out);
}

}  // namespace orchestra::limits
