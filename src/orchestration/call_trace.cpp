#include "orchestration/call_trace.hpp"

#include <algorithm>
#include <cstring>

#include "common/json_scan.hpp"
#include "common/text.hpp"
#include "orchestration/orchestrator.hpp"
#include "orchestration/route_table.hpp"
#include "orchestration/target.hpp"

namespace orchestra::orchestration {
namespace {

using observability::Attribute;
using observability::SpanEvent;
using observability::SpanKind;
using observability::SpanRecord;
using observability::SpanStatus;

constexpr std::string_view kFirstTokenEvent = "gen_ai.first_token";
constexpr std::string_view kTimeToFirstToken = "orchestra.time_to_first_token_s";

double Seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string_view View(const std::array<char, 16>& id) {
  return {id.data(), id.size()};
}
std::string_view View(const std::array<char, 32>& id) {
  return {id.data(), id.size()};
}

// A top-level member's raw JSON text, or "".
std::string_view Member(std::string_view json, std::string_view name) {
  std::string_view out;
  ScanJson(json, [&](std::string_view key, const JsonSpan& v) {
    if (key == name && out.empty()) out = v.In(json);
  });
  return out;
}

std::string StringMember(std::string_view raw) {
  return raw.size() >= 2 && raw.front() == '"' ? DecodeJsonString(raw).value_or("") : "";
}

// error.type of a failed attempt: the upstream's status, or what kind of failure it was.
std::string ErrorType(const providers::ProviderError& e) {
  switch (e.kind) {
    case providers::FailureKind::kStatus:
      return std::to_string(e.status);
    case providers::FailureKind::kConnect:
      return "connect";
    case providers::FailureKind::kTimeout:
      return "timeout";
    case providers::FailureKind::kProtocol:
      return "protocol";
    case providers::FailureKind::kCancelled:
      return "cancelled";
    case providers::FailureKind::kNone:
      break;
  }
  return "_OTHER";
}

// The route's place in the chain tried for the request: 0 for the model asked for, then one per
// fallback.
int FallbackStep(const ModelRoute* first, const ModelRoute* route) {
  if (first == nullptr || route == nullptr) return 0;
  const auto it = std::find(first->chain.begin(), first->chain.end(), route);
  return it == first->chain.end() ? 0 : static_cast<int>(it - first->chain.begin());
}

// The span's attributes, gathered in a fixed array.
template <std::size_t N>
struct Attributes {
  std::array<Attribute, N> items;
  std::size_t size = 0;
  template <class V>
  void Add(std::string_view key, V value) {
    if (size < N) items[size++] = Attribute(key, value);
  }
  std::span<const Attribute> view() const { return {items.data(), size}; }
};

}  // namespace

std::string GenAiProviderName(const config::ProviderConfig& provider) {
  switch (provider.type) {
    case config::ProviderType::kOpenAI:
      return "openai";
    case config::ProviderType::kAnthropic:
      return "anthropic";
    case config::ProviderType::kGemini:
      return provider.vertex ? "gcp.vertex_ai" : "gcp.gemini";
    case config::ProviderType::kLocal:
      return "orchestra.local";
  }
  return "_OTHER";
}

ResponseFacts FactsOf(const wire::ChatResponse& r, bool capture_content) {
  ResponseFacts f;
  f.usage = r.usage;
  if (!r.raw.empty()) {
    // An OpenAI-compatible upstream's own body: only its usage was read on the way through.
    ScanJson(r.raw, [&](std::string_view key, const JsonSpan& v) {
      if (key == "id") f.response_id = StringMember(v.In(r.raw));
      if (key == "model") f.response_model = StringMember(v.In(r.raw));
      if (key == "choices" && capture_content) f.output = std::string(v.In(r.raw));
    });
    return f;
  }
  f.response_id = r.id;
  f.response_model = r.model;
  for (const wire::ChatChoice& c : r.choices) {
    if (!c.finish_reason.empty()) f.finish_reasons.push_back(c.finish_reason);
  }
  if (capture_content) {
    f.output.push_back('[');
    for (const wire::ChatChoice& c : r.choices) {
      if (f.output.size() > 1) f.output += ',';
      f.output += "{\"message\":{\"role\":\"assistant\",\"content\":\"";
      AppendJsonEscaped(f.output, c.content);
      f.output += "\"},\"finish_reason\":\"";
      AppendJsonEscaped(f.output, c.finish_reason);
      f.output += "\"}";
    }
    f.output += ']';
  }
  return f;
}

ResponseFacts FactsOf(const providers::StreamSummary& s, bool) {
  ResponseFacts f;
  f.usage = s.usage;
  f.response_model = s.upstream_model;
  if (!s.finish_reason.empty()) f.finish_reasons.push_back(s.finish_reason);
  return f;
}

ResponseFacts FactsOf(const wire::EmbeddingResponse& r, bool) {
  ResponseFacts f;
  f.usage = r.usage;
  f.response_model = r.model;
  return f;
}

struct CallTrace::Attempt {
  observability::SpanIdText id;
  SteadyTime start;
  const ModelRoute* route = nullptr;
  const Target* target = nullptr;
  int target_attempt = 1;
  int retry = 0;
  int fallback_step = 0;
  int refused = 0;
  bool probe = false;
  std::optional<SteadyTime> first_token;
};

std::unique_ptr<CallTrace> CallTrace::Start(const RequestInfo& info, std::string_view operation,
                                            std::string_view requested_model,
                                            std::string_view input_json) {
  if (info.trace == nullptr) return nullptr;
  observability::Tracer* tracer = observability::TracerFor(*info.trace);
  if (tracer == nullptr) return nullptr;
  auto trace = std::make_unique<CallTrace>(*tracer, info, operation, requested_model);
  if (tracer->capture_content() && !input_json.empty()) {
    trace->input_ = std::string(Member(input_json, "messages"));
  }
  return trace;
}

CallTrace::CallTrace(observability::Tracer& tracer, const RequestInfo& info,
                     std::string_view operation, std::string_view requested_model)
    : tracer_(tracer),
      trace_id_(info.trace->trace_id),
      parent_id_(info.trace->span_id),
      span_id_(observability::NewSpanId()),
      sampled_(info.trace->sampled),
      operation_(operation),
      requested_model_(requested_model),
      start_(std::chrono::steady_clock::now()) {}

CallTrace::~CallTrace() {
  if (!finished_) {
    const Error cancelled(ErrorCode::kCancelled, "the call ended before an answer");
    if (attempt_) EndAttempt(nullptr, nullptr);
    Fail(Served{}, cancelled);
  }
}

void CallTrace::CacheLookup(SteadyTime start, bool hit) {
  const observability::UnixTime clock;
  const auto id = observability::NewSpanId();
  Attributes<2> a;
  a.Add("orchestra.cache.hit", hit);
  if (first_route_ != nullptr) a.Add("orchestra.route", std::string_view(first_route_->name));
  SpanRecord span;
  span.trace_id = View(trace_id_);
  span.span_id = observability::View(id);
  span.parent_span_id = observability::View(span_id_);
  span.sampled = sampled_;
  span.name = "cache lookup";
  span.start_unix_nano = clock.Of(start);
  span.end_unix_nano = clock.now();
  span.attributes = a.view();
  tracer_.Record(span);
}

std::string_view CallTrace::BeginAttempt(const ModelRoute& route, const Target& target,
                                         int target_attempt, bool probe, int refused) {
  if (attempt_) EndAttempt(nullptr, nullptr);  // not reported: should not happen
  attempt_ = std::make_unique<Attempt>();
  Attempt& a = *attempt_;
  a.id = observability::NewSpanId();
  a.start = std::chrono::steady_clock::now();
  a.route = &route;
  a.target = &target;
  a.target_attempt = target_attempt;
  a.probe = probe;
  a.refused = refused;
  a.fallback_step = FallbackStep(first_route_, &route);
  route_attempts_ = &route == last_route_ ? route_attempts_ + 1 : 0;
  last_route_ = &route;
  a.retry = route_attempts_;
  ++attempts_;
  // "00-<trace>-<the attempt's span>-<flags>"
  char* p = traceparent_.data();
  std::memcpy(p, "00-", 3);
  std::memcpy(p + 3, trace_id_.data(), 32);
  p[35] = '-';
  std::memcpy(p + 36, a.id.data(), 16);
  std::memcpy(p + 52, sampled_ ? "-01" : "-00", 3);
  return {traceparent_.data(), traceparent_.size()};
}

void CallTrace::FirstToken(SteadyTime at, Duration since_arrival) {
  first_token_ = at;
  time_to_first_token_ = since_arrival;
  if (attempt_) attempt_->first_token = at;
}

void CallTrace::AttemptSucceeded(const ResponseFacts& facts) {
  EndAttempt(&facts, nullptr);
}

void CallTrace::AttemptFailed(const providers::ProviderError& error) {
  EndAttempt(nullptr, &error);
}

void CallTrace::EndAttempt(const ResponseFacts* facts, const providers::ProviderError* error) {
  if (!attempt_) return;
  const std::unique_ptr<Attempt> done = std::move(attempt_);
  const Attempt& a = *done;
  const observability::UnixTime clock;
  const providers::Provider& provider = a.target->provider();
  const bool local = provider.type() == config::ProviderType::kLocal;
  std::string_view system = tracer_.GenAiProviderName(provider.name());
  if (system.empty()) system = local ? "orchestra.local" : "_OTHER";
  const std::string name = operation_ + " " + a.target->upstream_model();
  std::string error_type;
  std::vector<std::string_view> finish_reasons;

  Attributes<24> attrs;
  attrs.Add("gen_ai.operation.name", std::string_view(operation_));
  attrs.Add("gen_ai.provider.name", system);
  attrs.Add("gen_ai.request.model", std::string_view(a.target->upstream_model()));
  attrs.Add("orchestra.provider", std::string_view(provider.name()));
  attrs.Add("orchestra.route", std::string_view(a.route->name));
  attrs.Add("orchestra.fallback.step", a.fallback_step);
  attrs.Add("orchestra.retry", a.retry);
  attrs.Add("orchestra.target.attempt", a.target_attempt);
  attrs.Add("orchestra.circuit.state", a.probe ? "half_open" : "closed");
  if (a.refused > 0) attrs.Add("orchestra.circuit.refused_targets", a.refused);
  if (facts != nullptr) {
    if (!facts->response_model.empty()) {
      attrs.Add("gen_ai.response.model", std::string_view(facts->response_model));
    }
    if (!facts->response_id.empty()) {
      attrs.Add("gen_ai.response.id", std::string_view(facts->response_id));
    }
    for (const std::string& r : facts->finish_reasons)
      finish_reasons.emplace_back(r);
    if (!finish_reasons.empty()) {
      attrs.Add("gen_ai.response.finish_reasons",
                std::span<const std::string_view>(finish_reasons));
    }
    if (facts->usage.known) {
      attrs.Add("gen_ai.usage.input_tokens", facts->usage.prompt_tokens);
      attrs.Add("gen_ai.usage.output_tokens", facts->usage.completion_tokens);
    }
  }
  if (error != nullptr) {
    error_type = ErrorType(*error);
    attrs.Add("error.type", std::string_view(error_type));
    if (error->kind == providers::FailureKind::kStatus) {
      attrs.Add("http.response.status_code", error->status);
    }
  }
  const Attribute ttft(kTimeToFirstToken, Seconds(time_to_first_token_));
  SpanEvent first_token;
  if (a.first_token) {
    first_token.name = kFirstTokenEvent;
    first_token.time_unix_nano = clock.Of(*a.first_token);
    first_token.attributes = {&ttft, 1};
  }

  SpanRecord span;
  span.trace_id = View(trace_id_);
  span.span_id = observability::View(a.id);
  span.parent_span_id = observability::View(span_id_);
  span.sampled = sampled_;
  span.name = name;
  span.kind = local ? SpanKind::kInternal : SpanKind::kClient;
  span.start_unix_nano = clock.Of(a.start);
  span.end_unix_nano = clock.now();
  span.attributes = attrs.view();
  if (a.first_token) span.events = {&first_token, 1};
  if (error != nullptr) {
    span.status = SpanStatus::kError;
    span.status_message = error->error.message;
  } else if (facts == nullptr) {
    span.status = SpanStatus::kError;
    span.status_message = "the attempt did not finish";
  }
  tracer_.Record(span);
}

void CallTrace::Finish(const Served& served, const ResponseFacts* facts) {
  Record(served, nullptr, facts);
}

void CallTrace::Fail(const Served& served, const Error& error) {
  Record(served, &error, nullptr);
}

void CallTrace::Record(const Served& served, const Error* error, const ResponseFacts* facts) {
  if (finished_) return;
  finished_ = true;
  const observability::UnixTime clock;
  const bool answered = error == nullptr;
  std::string error_type;
  std::string_view system;
  if (answered && !served.provider.empty()) system = tracer_.GenAiProviderName(served.provider);

  Attributes<20> a;
  a.Add("gen_ai.operation.name", std::string_view(operation_));
  a.Add("gen_ai.request.model", std::string_view(requested_model_));
  if (first_route_ != nullptr) a.Add("orchestra.route", std::string_view(first_route_->name));
  a.Add("orchestra.attempts", attempts_);
  if (answered) {
    if (!served.model.empty()) a.Add("orchestra.model", served.model);
    a.Add("orchestra.fallback.step", FallbackStep(first_route_, served.route));
    if (!system.empty()) a.Add("gen_ai.provider.name", system);
    if (!served.provider.empty()) a.Add("orchestra.provider", served.provider);
    if (!served.upstream_model.empty()) a.Add("gen_ai.response.model", served.upstream_model);
    a.Add("orchestra.cache_hit", served.cache_hit);
    if (served.usage.known) {
      a.Add("gen_ai.usage.input_tokens", served.usage.prompt_tokens);
      a.Add("gen_ai.usage.output_tokens", served.usage.completion_tokens);
      a.Add("orchestra.cost_usd", served.cost_usd);
    }
  } else {
    error_type = std::string(ToString(error->code));
    a.Add("error.type", std::string_view(error_type));
  }
  if (!input_.empty()) a.Add("gen_ai.input.messages", std::string_view(input_));
  if (facts != nullptr && !facts->output.empty()) {
    a.Add("gen_ai.output.messages", std::string_view(facts->output));
  }
  const Attribute ttft(kTimeToFirstToken, Seconds(time_to_first_token_));
  SpanEvent first_token;
  if (first_token_) {
    first_token.name = kFirstTokenEvent;
    first_token.time_unix_nano = clock.Of(*first_token_);
    first_token.attributes = {&ttft, 1};
  }

  SpanRecord span;
  span.trace_id = View(trace_id_);
  span.span_id = observability::View(span_id_);
  span.parent_span_id = View(parent_id_);
  span.sampled = sampled_;
  const std::string name = "route " + requested_model_;
  span.name = name;
  span.start_unix_nano = clock.Of(start_);
  span.end_unix_nano = clock.now();
  span.attributes = a.view();
  if (first_token_) span.events = {&first_token, 1};
  if (!answered) {
    span.status = SpanStatus::kError;
    span.status_message = error->message;
  }
  tracer_.Record(span);
}

}  // namespace orchestra::orchestration
