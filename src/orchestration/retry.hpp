#pragma once

#include <cstdint>
#include <string_view>

#include "config/config.hpp"
#include "orchestration/clock.hpp"
#include "providers/provider.hpp"

// What to do after a failed upstream attempt (config::RetryConfig, docs/CONFIG.md). Pure
// functions: the caller passes the attempt count, the randomness and the time left.
//
// Which failures retry: the configured `statuses` (default 429, 500, 502, 503, 504), connect
// failures when `on_connect`, timeouts when `on_timeout`. Never:
// - kCancelled: the client has gone; nothing more is sent on its behalf (kStop).
// - kProtocol: the upstream answered something unusable (unparseable or truncated). The same
//   request to the same upstream most likely fails the same way, and a truncated answer may have
//   been generated and billed in full, so it is not repeated there; another target or a
//   fallback model may well work (kMoveOn).
//
// A failure that does not retry still moves on to the next target or fallback when another
// upstream might succeed: connect failures, timeouts, protocol errors, 5xx, 408, 429 and
// 401/403/404 (a target with a bad key or an unknown upstream model). Any other 4xx is the
// request's own fault, the same everywhere: kStop, and the client gets that error.
//
// The delay of a retry is full jitter: random × min(max_backoff, backoff × 2^(attempts − 1)).
// An upstream Retry-After replaces it when it is at most `retry_after_cap`; a longer one is not
// waited: kMoveOn. A retry whose delay would reach the request's deadline is not scheduled:
// kMoveOn (a fallback can start at once); with no time left at all: kStop.
namespace orchestra::orchestration {

enum class RetryAction : std::uint8_t {
  kRetry,   // try again after `delay` (on this target, or on another of the same route)
  kMoveOn,  // not on this target again: the next target of the route, else the next fallback
  kStop,    // nothing else will do better: answer with this error
};
std::string_view ToString(RetryAction a);

struct RetryDecision {
  RetryAction action = RetryAction::kStop;
  Duration delay{0};        // for kRetry
  std::string_view reason;  // a short static phrase for logs ("attempts exhausted")
};

// `attempts_made`: attempts already made (≥ 1, the one that just failed included), counted the
// way `RetryConfig::attempts` counts them (per target). `random_unit`: uniform in [0, 1).
// `remaining`: time left until the request's deadline.
RetryDecision Decide(const config::RetryConfig& config, int attempts_made,
                     const providers::ProviderError& error, double random_unit, Duration remaining);

// The configuration says this failure may be retried.
bool IsRetryable(const config::RetryConfig& config, const providers::ProviderError& error);
// Another target or model might succeed where this one failed.
bool WorthMovingOn(const providers::ProviderError& error);
// Full-jitter backoff before attempt `attempts_made + 1`.
Duration Backoff(const config::RetryConfig& config, int attempts_made, double random_unit);

}  // namespace orchestra::orchestration
