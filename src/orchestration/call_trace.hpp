#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "config/config.hpp"
#include "observability/span.hpp"
#include "observability/tracer.hpp"
#include "orchestration/clock.hpp"
#include "providers/provider.hpp"
#include "wire/types.hpp"

// The orchestrator's spans (docs/OPERATIONS.md#traces), for one call:
//
//   route {model}            INTERNAL  the routing of the request: model → route, the cache,
//   │                                  every attempt and fallback; who answered, tokens, cost
//   ├── cache lookup         INTERNAL  a cached model's lookup: hit or miss
//   ├── chat {upstream}      CLIENT    one per upstream attempt (INTERNAL for the in-process
//   │                                  local provider), after the GenAI semantic conventions:
//   └── ...                            provider, models, usage, finish reasons, retry number,
//                                      fallback step, breaker state, status; a stream's first
//                                      token as an event
//
// A CallTrace exists only for a sampled request while tracing is on (Start returns null
// otherwise: the orchestrator tests a pointer per attempt and pays nothing more). It lives on
// the heap, owned by the call's coroutine frame, and keeps copies of what it reports, so nothing
// it holds is a thread-local or a reference across a co_await. Each attempt's traceparent names
// the attempt's span, so the upstream's own spans are its children.
namespace orchestra::orchestration {

struct RequestInfo;
struct ModelRoute;
struct Served;
class Target;

// gen_ai.provider.name for a configured provider: the semantic conventions' well-known value
// for its API (openai, anthropic, gcp.gemini, gcp.vertex_ai), orchestra.local for the local
// models.
std::string GenAiProviderName(const config::ProviderConfig& provider);

// What an attempt's answer says, for its span.
struct ResponseFacts {
  std::string response_model;
  std::string response_id;
  std::vector<std::string> finish_reasons;
  wire::Usage usage;
  std::string output;  // with capture_content: the completion as JSON (OpenAI's choices)
};
ResponseFacts FactsOf(const wire::ChatResponse& response, bool capture_content);
ResponseFacts FactsOf(const providers::StreamSummary& summary, bool capture_content);
ResponseFacts FactsOf(const wire::EmbeddingResponse& response, bool capture_content);

class CallTrace {
 public:
  // Null unless `info`'s request is sampled and a tracer is installed. `operation` is
  // gen_ai.operation.name (chat, embeddings); `input_json` the request body, whose `messages`
  // the span carries with capture_content.
  static std::unique_ptr<CallTrace> Start(const RequestInfo& info, std::string_view operation,
                                          std::string_view requested_model,
                                          std::string_view input_json = {});
  CallTrace(observability::Tracer& tracer, const RequestInfo& info, std::string_view operation,
            std::string_view requested_model);
  ~CallTrace();  // records the routing span if Finish was not called
  CallTrace(const CallTrace&) = delete;
  CallTrace& operator=(const CallTrace&) = delete;

  void Resolved(const ModelRoute& route) { first_route_ = &route; }
  void CacheLookup(SteadyTime start, bool hit);

  // Starts an attempt's span: `route` is the route being tried, `target` the target picked,
  // `target_attempt` this target's try number on the route (1 for the first), `probe` whether
  // the breaker let it through as the half-open probe, `refused` how many targets' breakers
  // refused during the pick. Returns the traceparent for the upstream (valid until the next
  // BeginAttempt).
  std::string_view BeginAttempt(const ModelRoute& route, const Target& target, int target_attempt,
                                bool probe, int refused);
  // A stream's first chunk reached the client at `at`, `since_arrival` after the request came.
  void FirstToken(SteadyTime at, Duration since_arrival);
  void AttemptSucceeded(const ResponseFacts& facts);
  void AttemptFailed(const providers::ProviderError& error);

  // Records the routing span of a call that was answered (a cache hit too); `facts` (may be
  // null) carries the completion for capture_content.
  void Finish(const Served& served, const ResponseFacts* facts = nullptr);
  // Records the routing span of a call that failed with `error`.
  void Fail(const Served& served, const Error& error);

  bool capture_content() const { return tracer_.capture_content(); }

 private:
  struct Attempt;
  void Record(const Served& served, const Error* error, const ResponseFacts* facts);
  void EndAttempt(const ResponseFacts* facts, const providers::ProviderError* error);

  observability::Tracer& tracer_;
  std::array<char, 32> trace_id_;
  std::array<char, 16> parent_id_;  // the server span
  observability::SpanIdText span_id_;
  bool sampled_;
  std::string operation_;
  std::string requested_model_;
  std::string input_;  // with capture_content: the request's messages
  SteadyTime start_;
  const ModelRoute* first_route_ = nullptr;
  const ModelRoute* last_route_ = nullptr;
  int attempts_ = 0;
  int route_attempts_ = 0;
  std::optional<SteadyTime> first_token_;
  Duration time_to_first_token_{0};
  std::unique_ptr<Attempt> attempt_;  // the attempt in progress
  std::array<char, 55> traceparent_;
  bool finished_ = false;
};

}  // namespace orchestra::orchestration
