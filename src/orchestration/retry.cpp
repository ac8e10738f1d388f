#include "orchestration/retry.hpp"

#include <algorithm>
#include <cmath>

namespace orchestra::orchestration {

std::string_view ToString(RetryAction a) {
  switch (a) {
    case RetryAction::kRetry:
      return "retry";
    case RetryAction::kMoveOn:
      return "move_on";
    case RetryAction::kStop:
      return "stop";
  }
  return "unknown";
}

bool IsRetryable(const config::RetryConfig& config, const providers::ProviderError& error) {
  using providers::FailureKind;
  switch (error.kind) {
    case FailureKind::kConnect:
      return config.on_connect;
    case FailureKind::kTimeout:
      return config.on_timeout;
    case FailureKind::kStatus:
      return std::find(config.statuses.begin(), config.statuses.end(), error.status) !=
             config.statuses.end();
    case FailureKind::kNone:
    case FailureKind::kProtocol:
    case FailureKind::kCancelled:
      return false;
  }
  return false;
}

bool WorthMovingOn(const providers::ProviderError& error) {
  using providers::FailureKind;
  switch (error.kind) {
    case FailureKind::kCancelled:
      return false;
    case FailureKind::kStatus: {
      int s = error.status;
      return s >= 500 || s < 400 || s == 408 || s == 429 || s == 401 || s == 403 || s == 404;
    }
    case FailureKind::kNone:
    case FailureKind::kConnect:
    case FailureKind::kTimeout:
    case FailureKind::kProtocol:
      return true;
  }
  return true;
}

Duration Backoff(const config::RetryConfig& config, int attempts_made, double random_unit) {
  // In double seconds: backoff × 2^(n−1) overflows no integer type and caps cleanly.
  double base = std::chrono::duration<double>(config.backoff).count();
  double cap = std::chrono::duration<double>(config.max_backoff).count();
  int exponent = std::clamp(attempts_made - 1, 0, 62);
  double ceiling = std::min(cap, std::ldexp(std::max(base, 0.0), exponent));
  double r = std::clamp(random_unit, 0.0, 1.0);
  return std::chrono::duration_cast<Duration>(
      std::chrono::duration<double>(std::max(0.0, r * ceiling)));
}

RetryDecision Decide(const config::RetryConfig& config, int attempts_made,
                     const providers::ProviderError& error, double random_unit,
                     Duration remaining) {
  if (error.kind == providers::FailureKind::kCancelled) {
    return {RetryAction::kStop, Duration{0}, "client cancelled"};
  }
  if (remaining <= Duration{0}) return {RetryAction::kStop, Duration{0}, "deadline exceeded"};
  if (!IsRetryable(config, error)) {
    if (WorthMovingOn(error)) return {RetryAction::kMoveOn, Duration{0}, "not retryable here"};
    return {RetryAction::kStop, Duration{0}, "request rejected by upstream"};
  }
  if (attempts_made >= config.attempts) {
    return {RetryAction::kMoveOn, Duration{0}, "attempts exhausted"};
  }
  Duration delay;
  if (error.retry_after_ms >= 0) {
    Duration retry_after = std::chrono::milliseconds(error.retry_after_ms);
    if (retry_after > config.retry_after_cap) {
      return {RetryAction::kMoveOn, Duration{0}, "retry-after beyond cap"};
    }
    delay = retry_after;
  } else {
    delay = Backoff(config, attempts_made, random_unit);
  }
  if (delay >= remaining) return {RetryAction::kMoveOn, Duration{0}, "deadline too close"};
  return {RetryAction::kRetry, delay, "retryable failure"};
}

}  // namespace orchestra::orchestration
