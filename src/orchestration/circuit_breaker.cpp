#include "orchestration/circuit_breaker.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "orchestration/retry.hpp"

namespace orchestra::orchestration {
namespace {

// A bucket word: epoch tag (24 bits) | requests (20 bits) | failures (20 bits). A bucket that
// fills up stops counting until it rotates: the first million results of a bucket's span are a
// fine sample of its failure rate, and min_requests (at most 1,000,000) is already reached.
constexpr int kCountBits = 20;
constexpr int kTagBits = 24;
constexpr std::uint64_t kCountMax = (std::uint64_t{1} << kCountBits) - 1;
constexpr std::uint64_t kTagMask = (std::uint64_t{1} << kTagBits) - 1;
constexpr int kTagShift = 2 * kCountBits;
constexpr std::uint64_t kOneRequest = std::uint64_t{1} << kCountBits;

std::uint64_t TagOf(std::uint64_t word) {
  return word >> kTagShift;
}
std::uint64_t RequestsOf(std::uint64_t word) {
  return (word >> kCountBits) & kCountMax;
}
std::uint64_t FailuresOf(std::uint64_t word) {
  return word & kCountMax;
}
// How many bucket widths `tag` lies before `current` (negative: after it), modulo 2^24.
std::int64_t TagAge(std::uint64_t current, std::uint64_t tag) {
  auto age = static_cast<std::int64_t>((current - tag) & kTagMask);
  return age >= (std::int64_t{1} << (kTagBits - 1)) ? age - (std::int64_t{1} << kTagBits) : age;
}

constexpr std::uint64_t kPhaseMask = 3;
constexpr std::int64_t kMaxStatusTime = std::numeric_limits<std::int64_t>::max() >> 2;

}  // namespace

std::string_view ToString(CircuitState s) {
  switch (s) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

Verdict BreakerVerdict(const providers::ProviderError& error) {
  using providers::FailureKind;
  switch (error.kind) {
    case FailureKind::kCancelled:
      return Verdict::kAbandon;
    case FailureKind::kStatus:
      // The statuses after which another upstream might do better are this upstream's fault.
      return WorthMovingOn(error) ? Verdict::kFailure : Verdict::kSuccess;
    case FailureKind::kNone:
    case FailureKind::kConnect:
    case FailureKind::kTimeout:
    case FailureKind::kProtocol:
      return Verdict::kFailure;
  }
  return Verdict::kFailure;
}

CircuitBreaker::CircuitBreaker(const config::CircuitBreakerConfig& config, const Clock& clock,
                               Listener listener)
    : config_(config),
      clock_(clock),
      listener_(std::move(listener)),
      bucket_ns_(std::max<std::int64_t>(
          (std::chrono::duration_cast<Duration>(config.window) / kBuckets).count(),
          kMinBucket.count())),
      cooldown_ns_(std::clamp<std::int64_t>(config.cooldown.count(), 0, kMaxStatusTime)) {}

CircuitBreaker::Permit::Permit(Permit&& other) noexcept
    : breaker_(std::exchange(other.breaker_, nullptr)),
      kind_(std::exchange(other.kind_, Kind::kRefused)) {}

CircuitBreaker::Permit& CircuitBreaker::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    Abandon();
    breaker_ = std::exchange(other.breaker_, nullptr);
    kind_ = std::exchange(other.kind_, Kind::kRefused);
  }
  return *this;
}

void CircuitBreaker::Permit::Settle(Verdict verdict) {
  CircuitBreaker* breaker = std::exchange(breaker_, nullptr);
  if (breaker == nullptr) return;
  bool probe = kind_ == Kind::kProbe;
  switch (verdict) {
    case Verdict::kSuccess:
      breaker->OnSuccess(probe);
      break;
    case Verdict::kFailure:
      breaker->OnFailure(probe);
      break;
    case Verdict::kAbandon:
      breaker->OnAbandon(probe);
      break;
  }
}

std::int64_t CircuitBreaker::NowNs() const {
  return std::clamp<std::int64_t>(clock_.Now().time_since_epoch().count(), 0, kMaxStatusTime);
}

CircuitBreaker::Permit CircuitBreaker::TryAcquire() {
  std::uint64_t s = status_.load(std::memory_order_acquire);
  for (;;) {
    switch (s & kPhaseMask) {
      case kPhaseClosed:
        return {this, Permit::Kind::kNormal};
      case kPhaseProbing:
        return {};
      default: {
        auto until = static_cast<std::int64_t>(s >> 2);
        if (NowNs() < until) return {};
        // Cooldown over: whoever swaps open → probing holds the one probe slot.
        if (status_.compare_exchange_weak(s, kPhaseProbing, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
          return {this, Permit::Kind::kProbe};
        }
      }
    }
  }
}

CircuitState CircuitBreaker::state() const {
  std::uint64_t s = status_.load(std::memory_order_acquire);
  switch (s & kPhaseMask) {
    case kPhaseClosed:
      return CircuitState::kClosed;
    case kPhaseProbing:
      return CircuitState::kHalfOpen;
    default:
      return NowNs() < static_cast<std::int64_t>(s >> 2) ? CircuitState::kOpen
                                                         : CircuitState::kHalfOpen;
  }
}

void CircuitBreaker::OnSuccess(bool probe) {
  if (probe) {
    // Clear before publishing "closed", so that the new closed period starts from zero.
    ClearCounters();
    std::uint64_t expected = kPhaseProbing;
    if (status_.compare_exchange_strong(expected, kPhaseClosed, std::memory_order_acq_rel)) {
      Notify(CircuitState::kClosed);
    }
    return;
  }
  // Results of requests admitted before the circuit opened say nothing new: only the probe
  // decides while it is open.
  if ((status_.load(std::memory_order_acquire) & kPhaseMask) != kPhaseClosed) return;
  // Load first: most successes find it zero already and leave the cache line shared.
  if (consecutive_.load(std::memory_order_relaxed) != 0) {
    consecutive_.store(0, std::memory_order_relaxed);
  }
  Record(NowNs(), false);
}

void CircuitBreaker::OnFailure(bool probe) {
  std::int64_t now = NowNs();
  if (probe) {
    Open(kPhaseProbing, now);
    return;
  }
  if ((status_.load(std::memory_order_acquire) & kPhaseMask) != kPhaseClosed) return;
  int consecutive = consecutive_.fetch_add(1, std::memory_order_relaxed) + 1;
  WindowCounts w = Record(now, true);
  bool trip = consecutive >= config_.failures;
  if (!trip && w.requests >= static_cast<std::uint64_t>(std::max(config_.min_requests, 1))) {
    // A small tolerance so that e.g. 3 failures of 10 reach a 0.3 rate despite rounding.
    trip = static_cast<double>(w.failures) >=
           config_.failure_rate * static_cast<double>(w.requests) - 1e-9;
  }
  if (trip) Open(kPhaseClosed, now);
}

void CircuitBreaker::OnAbandon(bool probe) {
  if (!probe) return;
  // Back to "open until the past", i.e. half-open with the probe slot free.
  std::uint64_t expected = kPhaseProbing;
  status_.compare_exchange_strong(expected, kPhaseOpen, std::memory_order_acq_rel);
}

void CircuitBreaker::Open(std::uint64_t expected_status, std::int64_t now_ns) {
  std::int64_t until = now_ns + std::min(cooldown_ns_, kMaxStatusTime - now_ns);
  std::uint64_t desired = (static_cast<std::uint64_t>(until) << 2) | kPhaseOpen;
  if (status_.compare_exchange_strong(expected_status, desired, std::memory_order_acq_rel)) {
    Notify(CircuitState::kOpen);
  }
}

void CircuitBreaker::Notify(CircuitState s) const {
  if (listener_) listener_(s);
}

CircuitBreaker::WindowCounts CircuitBreaker::Record(std::int64_t now_ns, bool failed) {
  std::int64_t epoch = now_ns / bucket_ns_;
  AdvanceHead(epoch);
  auto tag = static_cast<std::uint64_t>(epoch) & kTagMask;
  std::atomic<std::uint64_t>& bucket = buckets_[static_cast<std::size_t>(epoch % kBuckets)];
  std::uint64_t old = bucket.load(std::memory_order_relaxed);
  for (;;) {
    // A bucket from an earlier round starts over; one already moved on by a thread with a
    // fresher clock reading takes the result as it is.
    std::uint64_t base = TagAge(tag, TagOf(old)) > 0 ? tag << kTagShift : old;
    if (RequestsOf(base) == kCountMax) break;
    std::uint64_t next = base + kOneRequest + (failed ? 1 : 0);
    if (bucket.compare_exchange_weak(old, next, std::memory_order_relaxed)) break;
  }
  if (!failed) return {};
  return Sum(epoch);
}

CircuitBreaker::WindowCounts CircuitBreaker::Sum(std::int64_t epoch) const {
  auto tag = static_cast<std::uint64_t>(epoch) & kTagMask;
  WindowCounts w;
  for (const auto& bucket : buckets_) {
    std::uint64_t word = bucket.load(std::memory_order_relaxed);
    std::int64_t age = TagAge(tag, TagOf(word));
    if (age < 0 || age >= kBuckets) continue;
    w.requests += RequestsOf(word);
    w.failures += FailuresOf(word);
  }
  return w;
}

CircuitBreaker::WindowCounts CircuitBreaker::window_counts() const {
  return Sum(NowNs() / bucket_ns_);
}

void CircuitBreaker::AdvanceHead(std::int64_t epoch) {
  std::int64_t head = head_epoch_.load(std::memory_order_acquire);
  if (epoch <= head) return;  // the common case: one load
  // Once per bucket width: zero what fell out of the window before publishing the new head, so
  // that every non-zero bucket stays within a window of the head and its 24-bit tag is exact.
  // After an idle gap longer than the window everything is stale (tags may alias by then):
  // zero all of it, at worst dropping a result a concurrent thread has just counted.
  bool idle = epoch - head >= kBuckets;
  auto tag = static_cast<std::uint64_t>(epoch) & kTagMask;
  for (auto& bucket : buckets_) {
    if (idle) {
      bucket.store(0, std::memory_order_relaxed);
      continue;
    }
    std::uint64_t word = bucket.load(std::memory_order_relaxed);
    while (word != 0 && TagAge(tag, TagOf(word)) >= kBuckets) {
      if (bucket.compare_exchange_weak(word, 0, std::memory_order_relaxed)) break;
    }
  }
  while (head < epoch && !head_epoch_.compare_exchange_weak(head, epoch, std::memory_order_acq_rel,
                                                            std::memory_order_acquire)) {
  }
}

void CircuitBreaker::ClearCounters() {
  consecutive_.store(0, std::memory_order_relaxed);
  for (auto& bucket : buckets_)
    bucket.store(0, std::memory_order_relaxed);
}

}  // namespace orchestra::orchestration
