#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "limits/admission.hpp"

// Per-key rate limits as an admission stage, in process: requests per minute, tokens per minute
// and requests in flight, per key (KeyPolicy::limits) and per key × model (KeyPolicy::per_model,
// the model as the client names it).
//
// A minute is a sliding window of kSlots slots of kSlotMs: a request is admitted when what the
// last minute (the current slot and the 240 before it: 60 s to 60.25 s) admitted, plus this
// request, stays within every limit that applies. So no 60-second span ever admits more than the
// limit, and a burst admits exactly the limit (a token bucket would admit the limit plus what it
// refills during the burst).
//
// Tokens are admitted on the request's estimate (prompt estimate plus the completion tokens it
// asks for) and settled on what it used: the difference goes to the slot it was admitted in while
// that slot is still in the window (so a request that used less gives the rest back at once), and
// a request that used more than estimated after its slot left the window is charged the excess in
// the current slot. Refused-by-a-later-stage requests give everything back; cached answers
// (Outcome::cache_hit) cost no tokens but count as a request.
//
// Over a limit: 429 `rate_limit_exceeded` naming the limit, with Retry-After (seconds until the
// window has room for the request); the state of the tightest request and token limits goes to
// Request::rate_headers either way.
//
// Thread-safety: buckets live in kShards shards, each with its own mutex held for a hash lookup;
// a bucket has its own mutex held for a few additions. No lock is global. A request touches at
// most two buckets (key, key × model), always locked in that order.
namespace orchestra::limits {

class RateLimiter final : public Stage {
 public:
  static constexpr std::int64_t kSlotMs = 250;
  static constexpr std::size_t kSlots = 241;  // the current slot + 60 s of full slots
  static constexpr std::size_t kShards = 64;

  // Milliseconds on a clock shared by every instance that shares limits (wall time); tests
  // inject their own.
  using Clock = std::function<std::int64_t()>;
  static std::int64_t WallClockMs();

  explicit RateLimiter(Clock clock = &RateLimiter::WallClockMs);
  ~RateLimiter() override;

  std::string_view name() const override { return "rate_limit"; }
  std::optional<Refusal> Admit(const Request& request, Ticket& ticket) override;
  void Settle(const Request& request, const Ticket& ticket, const Outcome& outcome) override;

  // One minute of counts in slots: what a limit is checked against.
  struct Window {
    std::array<std::int64_t, kSlots> slots{};
    std::int64_t head = -1;  // the newest slot's index (time / kSlotMs); -1: never used
    std::int64_t sum = 0;    // of every slot

    // Moves the window to `slot`, dropping the slots that left it.
    void Advance(std::int64_t slot);
    void Add(std::int64_t slot, std::int64_t amount);
    // Adds `delta` to the slot `admitted_slot` when still in the window, else a positive delta
    // to the newest slot (the window was advanced to the present first).
    void Correct(std::int64_t admitted_slot, std::int64_t delta);
    // Milliseconds from `now_ms` until the window has room for `amount` more under `limit`.
    std::int64_t WaitMs(std::int64_t amount, std::int64_t limit, std::int64_t now_ms) const;
  };

 private:
  struct Bucket {
    std::mutex mutex;
    Window requests;
    Window tokens;
    std::int64_t inflight = 0;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::unique_ptr<Bucket>, Hash, std::equal_to<>> buckets;
  };

  // The bucket of `principal` (model "": the key's own), created when `create`.
  Bucket* Find(std::string_view principal, std::string_view model, bool create);

  Clock clock_;
  std::array<Shard, kShards> shards_;
};

// The per-model limits of `policy` for `model` (the client's name), or null.
const ModelLimits* FindModelLimits(const KeyPolicy& policy, std::string_view model);

// The 429 rate_limit_exceeded refusal naming the limit `what` ("requests per minute", "tokens
// per minute", "parallel requests") of `limit`, with Retry-After from `wait_ms`; `never`: the
// request's estimate alone exceeds the tokens limit.
Refusal RateLimitRefusal(std::string_view what, std::int64_t limit, std::int64_t wait_ms,
                         bool never, bool per_model, std::string_view model, std::int64_t estimate);

// OpenAI's form of a duration in the x-ratelimit-reset-* headers: "250ms", "1.5s", "1m0.25s".
// Writes into `out` (at least 32 bytes) and returns the length.
std::size_t FormatResetDuration(std::int64_t ms, char* out);

}  // namespace orchestra::limits
