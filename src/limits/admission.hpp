#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"
#include "limits/policy.hpp"

// Admission and settlement: the seam where per-request policy lives (DESIGN.md §1, "ADMIT" and
// "SETTLE"). The pipeline (api/pipeline.cpp) runs every configured Stage, in order:
//
//   Admit   once per request that reaches a handler, before any service is called, with who is
//           asking, which route, the model the body names and an estimate of its tokens. A stage
//           may refuse (an Error in the one error shape: 429 rate_limit_exceeded, 429
//           insufficient_quota, 503 overloaded; with retry_after_s for Retry-After) or admit,
//           leaving a reservation in its Ticket.
//   Settle  exactly once for every request a stage admitted, when its outcome is known: after
//           the handler returns, which for a stream is at its end, on an upstream cut, or when
//           the client has gone. A stage that admitted is settled even when a later stage
//           refuses (its outcome then says so).
//
// Stages are shared by every worker thread and called concurrently; they must not block. A
// stage whose decision needs a round trip (a fleet-wide limit in Redis) says so with
// `asynchronous()`, and the pipeline co_awaits its AdmitAsync instead of calling Admit.
namespace orchestra::limits {

// The state of the rate limits that applied to a request, for OpenAI's response headers
// (`x-ratelimit-{limit,remaining,reset}-{requests,tokens}`). A stage that enforces rate limits
// fills it at admission, also when it refuses; the pipeline writes the headers. A limit of 0:
// no such limit applied (its headers are left out).
struct RateHeaders {
  std::int64_t limit_requests = 0;
  std::int64_t remaining_requests = 0;
  std::int64_t reset_requests_ms = 0;  // until another request would be admitted
  std::int64_t limit_tokens = 0;
  std::int64_t remaining_tokens = 0;
  std::int64_t reset_tokens_ms = 0;  // until more tokens are available
};

// What admission knows of a request. The views are valid until Settle returns.
struct Request {
  std::string_view principal;         // the API key's name (the tenant)
  std::string_view route;             // the route pattern ("/v1/chat/completions")
  std::string_view model;             // the model the body names; "" for routes without one
  std::int64_t estimated_tokens = 0;  // prompt estimate plus the completion tokens asked for
  bool stream = false;
  int worker = 0;  // the calling event loop
  // The principal's identity (stable for the process's life; equal for the same key), for
  // stages that cache per key.
  const void* principal_id = nullptr;
  // The key's limits, budget and allowed models (never null once the pipeline admits; an
  // unrestricted policy for keys without any).
  const KeyPolicy* policy = nullptr;
  // Where a rate-limiting stage reports the limits' state (null: nobody wants the headers).
  RateHeaders* rate_headers = nullptr;
};

// How an admitted request ended.
struct Outcome {
  unsigned status = 0;       // the HTTP status answered (or that a stream began with)
  bool refused = false;      // a later stage refused it; nothing was served
  bool client_gone = false;  // the client went away before the end
  // Who served (empty when nothing was): the public model that answered, its provider and the
  // upstream model.
  std::string_view model;
  std::string_view provider;
  std::string_view upstream_model;
  // The target (provider + upstream model) that served, stable for the process's life; null
  // when none did (or a cached answer was served).
  const void* target_id = nullptr;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t cached_tokens = 0;
  bool usage_known = false;  // the provider (or Orchestra's count) reported usage
  double cost_usd = 0;
  bool cache_hit = false;
  std::chrono::nanoseconds latency{0};      // from the request's arrival to its end
  std::chrono::nanoseconds first_token{0};  // streams: from arrival to the first chunk
};

// A stage's refusal: the error to answer and a label for orchestra_http_rejected_total{reason}
// (a string literal from a fixed set: overload, rate_limit, budget, model_not_allowed, ...).
struct Refusal {
  Error error;
  std::string_view reason;
};

// What a stage reserved at admission, handed back at settlement.
struct Ticket {
  std::int64_t amount = 0;
  std::uint64_t token = 0;
  std::uint64_t lease = 0;  // a reservation held elsewhere (the fleet limiter's, in Redis)
};

class Stage {
 public:
  virtual ~Stage() = default;

  // A short name for logs and metrics ("load_shedding", "rate_limit").
  virtual std::string_view name() const = 0;

  // Admits (nullopt, filling `ticket` as it needs) or refuses.
  virtual std::optional<Refusal> Admit(const Request& request, Ticket& ticket) = 0;

  // True when admission needs a round trip; the pipeline then co_awaits AdmitAsync instead.
  virtual bool asynchronous() const { return false; }
  virtual boost::asio::awaitable<std::optional<Refusal>> AdmitAsync(const Request& request,
                                                                    Ticket& ticket) {
    co_return Admit(request, ticket);
  }

  // Exactly once per request this stage admitted.
  virtual void Settle(const Request& request, const Ticket& ticket, const Outcome& outcome) = 0;
};

}  // namespace orchestra::limits
