#include "orchestration/orchestrator.hpp"

#include <array>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/random.hpp"
#include "orchestration/call_trace.hpp"
#include "orchestration/retry.hpp"
#include "providers/provider.hpp"
#include "tokens/chat.hpp"
#include "tokens/encoding.hpp"
#include "wire/openai_codec.hpp"

namespace orchestra::orchestration {
namespace {

namespace asio = boost::asio;
using providers::ProviderError;

double Seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

Error Cancelled() {
  return Error(ErrorCode::kCancelled, "the client went away");
}

// A provider that translates reads the parsed fields: the body is parsed once, before the first
// attempt on such a target (one that forwards the client's text never needs it).
Result<void> PrepareChat(wire::ChatRequest& request, const Target& target) {
  if (target.provider().ForwardsRawBody()) return {};
  return request.Parse();
}

// A stream's events as the client receives them (OpenAI's chunk JSON), for the cache.
struct Recording {
  std::vector<CachedChunk> chunks;
  std::size_t bytes = 0;
  std::size_t limit = 0;
  bool overflow = false;

  void Add(const wire::ChatChunk& chunk) {
    if (overflow) return;
    std::string payload = chunk.raw.empty() ? wire::openai::EncodeChatChunk(chunk) : chunk.raw;
    bytes += payload.size() + 64;
    if (bytes > limit) {
      overflow = true;
      chunks.clear();
      return;
    }
    chunks.push_back({std::move(payload), chunk.usage_only});
  }
};

// Feeds a provider's chunks to the client's writer, opening the response at the first one.
class SinkToWriter final : public providers::ChunkSink {
 public:
  SinkToWriter(StreamWriter& writer, Served& served, const RequestInfo& info, const Clock& clock,
               CallTrace* trace)
      : writer_(writer), served_(served), info_(info), clock_(clock), trace_(trace) {}

  // Set before each attempt: who is serving, if the first chunk comes from this attempt.
  void Attempt(const ModelRoute& route, const Target& target, SteadyTime started) {
    route_ = &route;
    target_ = &target;
    attempt_start_ = started;
  }

  // Keeps what the client is sent, for the cache, up to `limit` bytes.
  void Record(std::size_t limit) {
    recording_ = std::make_unique<Recording>();
    recording_->limit = limit;
  }
  // The stream as recorded, or null when nothing was recorded or it outgrew its limit.
  std::unique_ptr<Recording> TakeRecording() {
    if (!recording_ || recording_->overflow || recording_->chunks.empty()) return nullptr;
    return std::move(recording_);
  }

  asio::awaitable<bool> OnChunk(wire::ChatChunk& chunk) override {
    if (recording_) recording_->Add(chunk);
    // A translated stream's text, for counting its tokens when the provider reports no usage.
    if (chunk.raw.empty()) {
      translated_ = true;
      if (completion_.size() < kMaxCountedCompletion) completion_.append(chunk.content);
      if (!chunk.id.empty() && last_.id.empty()) {
        last_.id = chunk.id;
        last_.model = chunk.model;
        last_.created = chunk.created;
      }
    }
    if (!started_) {
      started_ = true;
      const SteadyTime now = clock_.Now();
      first_byte_ = now - attempt_start_;
      served_.model = route_->name;
      served_.provider = target_->provider_name();
      served_.upstream_model = target_->upstream_model();
      served_.target = target_;
      // Orchestra's own time so far excludes the wait for this first chunk.
      served_.upstream_time += first_byte_;
      served_.first_token = now - info_.start;
      route_->metrics.ObserveTimeToFirstToken(Seconds(served_.first_token));
      if (trace_ != nullptr) trace_->FirstToken(now, served_.first_token);
      if (!co_await writer_.Begin(served_)) co_return false;
      counted_first_ = true;
    }
    co_return co_await writer_.Write(chunk);
  }

  bool started() const { return started_; }
  bool counted_first() const { return counted_first_; }
  const std::string& completion() const { return completion_; }
  bool translated() const { return translated_; }
  // The usage chunk a translated stream without usage ends with (the client sees it only when
  // it asked for usage).
  asio::awaitable<bool> WriteUsage(const wire::Usage& usage) {
    wire::ChatChunk chunk;
    chunk.id = last_.id;
    chunk.model = last_.model;
    chunk.created = last_.created;
    chunk.usage = usage;
    chunk.usage_only = true;
    if (recording_) recording_->Add(chunk);
    co_return co_await writer_.Write(chunk);
  }
  Duration first_byte() const { return first_byte_; }
  const bool* started_flag() const { return &started_; }

 private:
  StreamWriter& writer_;
  Served& served_;
  const RequestInfo& info_;
  const Clock& clock_;
  CallTrace* trace_;
  const ModelRoute* route_ = nullptr;
  const Target* target_ = nullptr;
  SteadyTime attempt_start_{};
  Duration first_byte_{0};
  bool started_ = false;
  bool counted_first_ = false;
  bool translated_ = false;
  std::unique_ptr<Recording> recording_;  // only for cached models
  static constexpr std::size_t kMaxCountedCompletion = 4 << 20;
  std::string completion_;
  struct {
    std::string id;
    std::string model;
    std::int64_t created = 0;
  } last_;
};

// Usage counted with the target's tokenizer, for a provider that reported none (a Gemini stream
// without usageMetadata): the parsed prompt as OpenAI bills chat messages, and the completion's
// text. An estimate for non-OpenAI models (tokens/encoding.hpp), marked as such.
wire::Usage CountUsage(const Target& target, const wire::ChatRequest& request,
                       std::string_view completion) {
  wire::Usage usage;
  const auto which =
      tokens::EncodingForModel(config::ToString(target.provider().type()), target.upstream_model());
  auto encoding = tokens::Get(which.encoding);
  if (!encoding) return usage;
  std::vector<tokens::ChatMessage> messages;
  for (const wire::Message& m : request.messages)
    messages.push_back({m.role, m.content, m.name});
  usage.prompt_tokens = static_cast<std::int64_t>(tokens::CountChatMessages(**encoding, messages));
  usage.completion_tokens = static_cast<std::int64_t>((*encoding)->Count(completion));
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  usage.known = true;
  usage.estimated = true;
  return usage;
}

// Run's helpers: what does not suspend, or suspends rarely, keeps its locals out of Run's
// coroutine frame.
template <class Call>
bool Prepared(Call& call, Target& target, std::optional<Error>& error) {
  auto prepared = call.Prepare(target);
  if (prepared) return true;
  error = prepared.error();
  return false;
}

// A cached answer's content and who gave it, as a Chat result.
void ServeCached(const CachedResponse& hit, const ModelRoute& route, ChatResult& result) {
  result.response.raw = hit.body;
  result.served.model = route.name;
  result.served.route = &route;
  result.served.provider = hit.provider;
  result.served.upstream_model = hit.upstream_model;
  result.served.cache_hit = true;
  result.served.cache_miss = false;
  result.response.answer_not_found = hit.answer_not_found;
}

std::shared_ptr<const CachedResponse> ChatToCache(const ChatResult& result) {
  auto cached = std::make_shared<CachedResponse>();
  cached->body = result.response.raw.empty() ? wire::openai::EncodeChatResponse(result.response)
                                             : result.response.raw;
  cached->provider = result.served.provider;
  cached->upstream_model = result.served.upstream_model;
  cached->answer_not_found = result.response.answer_not_found;
  cached->usage = result.response.usage;
  return cached;
}

// An entry from the shared tier, its names replaced by views into the route's targets (which
// outlive every request). Null when no target of the route has that provider and model any
// more: the configuration changed since it was stored.
std::shared_ptr<const CachedResponse> Intern(const ModelRoute& route, StoredResponse& stored) {
  for (const RouteTarget& t : route.plan().targets) {
    if (t.target->provider_name() != stored.provider ||
        t.target->upstream_model() != stored.upstream_model) {
      continue;
    }
    auto out = std::make_shared<CachedResponse>(std::move(stored.response));
    out->provider = t.target->provider_name();
    out->upstream_model = t.target->upstream_model();
    return out;
  }
  return nullptr;
}

std::int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The completion for the routing span, when capture_content asks for it.
std::unique_ptr<ResponseFacts> FactsFor(const CallTrace& trace, const wire::ChatResponse& r) {
  if (!trace.capture_content()) return nullptr;
  return std::make_unique<ResponseFacts>(FactsOf(r, true));
}

// A retry's backoff; false when the request was cancelled meanwhile.
asio::awaitable<bool> Pause(Duration delay) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(delay);
  auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !ec;
}

}  // namespace

Orchestrator::Orchestrator(RouteTable& routes, Metrics& metrics, ResponseCache* cache,
                           const Clock& clock, SharedCacheTier* shared)
    : routes_(routes),
      metrics_(metrics),
      cache_(cache),
      shared_(shared),
      clock_(clock),
      balancer_(clock) {}

asio::awaitable<std::shared_ptr<const CachedResponse>> Orchestrator::Lookup(const ModelRoute& route,
                                                                            const RequestInfo& info,
                                                                            std::string_view body,
                                                                            CallTrace* trace) {
  using R = Metrics::CacheResult;
  const SteadyTime start = trace != nullptr ? std::chrono::steady_clock::now() : SteadyTime{};
  const CacheKey key = MakeCacheKey(route.name, info.tenant, body);
  std::shared_ptr<const CachedResponse> hit = cache_->Get(key);
  metrics_.memory_cache(hit ? R::kHit : R::kMiss).Inc();
  if (!hit && shared_ != nullptr) {
    auto value = co_await shared_->Get(info.worker, SharedCacheKey(key));
    if (!value) {
      metrics_.shared_cache(R::kError).Inc();
    } else if (*value) {
      // A value that is not ours, damaged, expired by our clock or from a target the route no
      // longer has is a miss.
      std::unique_ptr<StoredResponse> stored = DecodeCachedResponse(**value);
      const std::int64_t left_ms = stored ? stored->expires_unix_ms - UnixMs() : 0;
      if (left_ms > 0) hit = Intern(route, *stored);
      if (hit) {
        cache_->Put(key, hit,
                    std::min<Duration>(route.cache_ttl, std::chrono::milliseconds(left_ms)));
      }
    }
    if (value) metrics_.shared_cache(hit ? R::kHit : R::kMiss).Inc();
  }
  if (trace != nullptr) trace->CacheLookup(start, hit != nullptr);
  co_return hit;
}

asio::awaitable<void> Orchestrator::Store(const ModelRoute& route, const RequestInfo& info,
                                          std::string_view body,
                                          std::shared_ptr<const CachedResponse> response) {
  const CacheKey key = MakeCacheKey(route.name, info.tenant, body);
  if (response->payload_bytes() > cache_->max_entry_bytes()) co_return;
  if (shared_ != nullptr) {
    const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(route.cache_ttl);
    if (ttl.count() > 0) {
      shared_->Put(co_await asio::this_coro::executor, info.worker, SharedCacheKey(key),
                   EncodeCachedResponse(*response, UnixMs() + ttl.count()), ttl);
    }
  }
  cache_->Put(key, std::move(response), route.cache_ttl);
}

asio::awaitable<bool> Orchestrator::ChatFromCache(const ModelRoute& route, const RequestInfo& info,
                                                  std::string_view body, ChatResult& result,
                                                  CallTrace* trace) {
  std::shared_ptr<const CachedResponse> hit = co_await Lookup(route, info, body, trace);
  if (!hit || hit->stream) co_return false;
  ServeCached(*hit, route, result);
  co_return true;
}

const ModelRoute* Orchestrator::RouteFor(std::string_view model, CallTrace* trace) {
  auto route = routes_.Resolve(model);
  if (!route) {
    if (trace != nullptr) trace->Fail(Served{}, route.error());
    return nullptr;
  }
  if (trace != nullptr) trace->Resolved(**route);
  return *route;
}

Error Orchestrator::Unroutable(std::string_view model) {
  auto route = routes_.Resolve(model);
  return route ? Error(ErrorCode::kInternal, "the route table changed during a request")
               : route.error();
}

asio::awaitable<bool> Orchestrator::ReplayFromCache(const ModelRoute& route,
                                                    const RequestInfo& info, std::string_view body,
                                                    StreamWriter& writer, Served& served,
                                                    bool* started, CallTrace* trace,
                                                    Result<void>& outcome) {
  std::shared_ptr<const CachedResponse> hit = co_await Lookup(route, info, body, trace);
  if (!hit || !hit->stream) co_return false;
  served.model = route.name;
  served.route = &route;
  served.provider = hit->provider;
  served.upstream_model = hit->upstream_model;
  served.cache_hit = true;
  served.cache_miss = false;
  metrics_.cache_hits().Inc();
  if (!co_await writer.Begin(served)) {
    outcome = Cancelled();
    co_return true;
  }
  *started = true;
  wire::ChatChunk chunk;
  for (const CachedChunk& c : hit->chunks) {
    chunk.raw = c.payload;
    chunk.usage_only = c.usage_only;
    if (!co_await writer.Write(chunk)) {
      outcome = Cancelled();
      co_return true;
    }
  }
  if (trace != nullptr) trace->Finish(served);
  outcome = Result<void>{};
  co_return true;
}

// The attempt loop shared by every kind of call. `call` provides:
//   Result<void> Prepare(Target&)                 — before an attempt on a target
//   awaitable<ProviderResult<T>> operator()(Target&, const CallOptions&, const ModelRoute&)
//   Duration Latency(Duration elapsed)            — what to feed the target's latency estimate
// `started` (streams) says whether anything reached the client: then no other attempt is made.
template <class T, class Call>
asio::awaitable<Result<void>> Orchestrator::Run(const ModelRoute& first, const RequestInfo& info,
                                                Served& served, Call& call, T& answer,
                                                const bool* started, CallTrace* trace) {
  const SteadyTime deadline = info.start + first.deadline;
  std::optional<Error> last_error;
  // Why the previous route gave up: its last failure, or open circuits.
  Metrics::Cause moved_on_because = Metrics::Cause::kCircuitOpen;
  bool first_route = true;
  for (const ModelRoute* route : first.chain) {
    if (!first_route) metrics_.fallbacks(moved_on_because).Inc();
    first_route = false;
    moved_on_because = Metrics::Cause::kCircuitOpen;
    // One plan for this route's attempts, even if a deployment replaces it meanwhile: indices
    // in `moved_on` and `attempts` refer to it (plans outlive every request: route_table.hpp).
    const TargetPlan& plan = route->plan();
    TargetSet moved_on;  // targets this route will not try again
    // Attempts per target; retry.attempts is at most 20. (Bytes, not ints: every local of a
    // coroutine lives in its frame, and this frame must stay under Asio's 1 KiB recycling
    // limit or it costs a glibc malloc/free per request.)
    std::array<std::uint8_t, kMaxRouteTargets> attempts{};
    while (true) {
      Selection sel = balancer_.Pick(plan.strategy, plan.targets, moved_on);
      for (std::size_t i = 0; i < plan.targets.size(); ++i) {
        if (sel.refused.contains(i)) plan.targets[i].target->metrics().Count(Outcome::kRejected);
      }
      if (!sel) {
        if (!last_error) {
          last_error = Error(ErrorCode::kUnavailable, "every target of model '" + route->name +
                                                          "' is unavailable (circuit open)");
        }
        break;
      }
      Target& target = *sel.target;
      if (!Prepared(call, target, last_error)) {
        sel.permit.Abandon();
        co_return *last_error;
      }
      const SteadyTime now = clock_.Now();
      if (now >= deadline) {
        sel.permit.Abandon();
        co_return Error(ErrorCode::kDeadlineExceeded,
                        "model '" + first.name + "' did not answer within its deadline");
      }
      providers::CallOptions options;
      options.upstream_model = target.upstream_model();
      options.upstream_model_json = target.upstream_model_json();
      // A call must end within the route's timeout; a stream must start within it and may then
      // run for the rest of the request's deadline (a long generation is not an error).
      options.first_byte_deadline = std::min(deadline, now + route->timeout);
      options.deadline = Call::Stream() ? deadline : options.first_byte_deadline;
      options.traceparent = info.traceparent;
      if (trace != nullptr) {
        options.traceparent = trace->BeginAttempt(*route, target, attempts[sel.index] + 1,
                                                  sel.permit.probe(), sel.refused.size());
      }
      options.request_id = info.request_id;
      options.worker = info.worker;

      auto in_flight = target.StartRequest();
      auto result = co_await call(target, options, *route);
      in_flight.Release();
      const Duration elapsed = clock_.Now() - now;
      target.metrics().ObserveDuration(Seconds(elapsed));
      ++attempts[sel.index];

      if (result) {
        sel.permit.Succeeded();
        target.metrics().Count(Outcome::kSuccess);
        target.RecordLatency(call.Latency(elapsed));
        served.upstream_time += call.Waited(elapsed);
        served.model = route->name;
        served.route = route;
        served.provider = target.provider_name();
        served.upstream_model = target.upstream_model();
        served.target = &target;
        if (trace != nullptr) trace->AttemptSucceeded(FactsOf(*result, false));
        answer = std::move(*result);
        co_return Result<void>();
      }
      const ProviderError& err = result.error();
      if (trace != nullptr) trace->AttemptFailed(err);
      served.upstream_time += call.Waited(elapsed);
      sel.permit.Settle(BreakerVerdict(err));
      target.metrics().Count(OutcomeOf(err));
      if (err.kind == providers::FailureKind::kTimeout) target.RecordLatency(elapsed);
      if (err.kind == providers::FailureKind::kCancelled) co_return Cancelled();
      last_error = err.error;
      if (started != nullptr && *started) co_return err.error;  // mid-stream: no second chance
      const Metrics::Cause cause = Metrics::CauseOf(err);
      moved_on_because = cause;

      const RetryDecision decision =
          Decide(route->retry, attempts[sel.index], err, RandomUnit(), deadline - clock_.Now());
      if (decision.action == RetryAction::kStop) co_return err.error;
      if (decision.action == RetryAction::kMoveOn) {
        moved_on.insert(sel.index);
        if (moved_on.size() >= static_cast<int>(plan.targets.size())) break;
        metrics_.retries(cause).Inc();
        continue;
      }
      metrics_.retries(cause).Inc();
      if (decision.delay > Duration::zero()) {
        served.upstream_time += decision.delay;  // waiting on the upstream's account
        if (!co_await Pause(decision.delay)) co_return Cancelled();
      }
    }
  }
  if (!last_error) last_error = Error(ErrorCode::kUnavailable, "no target could be tried");
  co_return *last_error;
}

asio::awaitable<Result<ChatResult>> Orchestrator::Chat(wire::ChatRequest& request,
                                                       const RequestInfo& info) {
  const std::unique_ptr<CallTrace> trace =
      CallTrace::Start(info, "chat", request.model, request.raw_body);
  const ModelRoute* const route = RouteFor(request.model, trace.get());
  if (route == nullptr) co_return Unroutable(request.model);
  const ModelRoute& r = *route;

  ChatResult result;
  // The key is made again to store the answer rather than kept across the call: this frame
  // stays under the 1,020 bytes Asio recycles without a trip through malloc.
  const bool cached = cache_ != nullptr && r.cache_ttl > Duration::zero();
  if (cached) {
    result.served.cache_miss = true;
    if (info.cache_read && co_await ChatFromCache(r, info, request.raw_body, result, trace.get())) {
      metrics_.cache_hits().Inc();
      if (trace) trace->Finish(result.served);
      co_return result;
    }
    metrics_.cache_misses().Inc();
  }

  struct Call {
    static bool Stream() { return false; }
    wire::ChatRequest& request;
    Result<void> Prepare(Target& t) { return PrepareChat(request, t); }
    asio::awaitable<providers::ProviderResult<wire::ChatResponse>> operator()(
        Target& t, const providers::CallOptions& o, const ModelRoute&) {
      return t.provider().Chat(request, o);
    }
    Duration Latency(Duration elapsed) const { return elapsed; }
    Duration Waited(Duration elapsed) const { return elapsed; }
  } call{request};

  auto ran = co_await Run(r, info, result.served, call, result.response, nullptr, trace.get());
  if (!ran) {
    if (trace) trace->Fail(result.served, ran.error());
    co_return ran.error();
  }
  const ModelRoute* served_route = result.served.route != nullptr ? result.served.route : &r;
  result.served.usage = result.response.usage;
  result.served.cost_usd = CostUsd(result.response.usage, served_route->price);
  if (cached && info.cache_write && served_route == &r) {
    co_await Store(r, info, request.raw_body, ChatToCache(result));
  }
  if (trace) trace->Finish(result.served, FactsFor(*trace, result.response).get());
  co_return result;
}

asio::awaitable<Result<void>> Orchestrator::ChatStream(wire::ChatRequest& request,
                                                       const RequestInfo& info,
                                                       StreamWriter& writer, Served& served,
                                                       bool* started) {
  *started = false;
  const std::unique_ptr<CallTrace> trace =
      CallTrace::Start(info, "chat", request.model, request.raw_body);
  const ModelRoute* const route = RouteFor(request.model, trace.get());
  if (route == nullptr) co_return Unroutable(request.model);
  const ModelRoute& r = *route;

  const bool cached = cache_ != nullptr && r.cache_ttl > Duration::zero();
  if (cached) {
    served.cache_miss = true;
    if (info.cache_read) {
      Result<void> replayed;
      if (co_await ReplayFromCache(r, info, request.raw_body, writer, served, started, trace.get(),
                                   replayed)) {
        co_return replayed;
      }
    }
    metrics_.cache_misses().Inc();
  }

  SinkToWriter sink(writer, served, info, clock_, trace.get());
  if (cached && info.cache_write) sink.Record(cache_->max_entry_bytes());
  struct Call {
    static bool Stream() { return true; }
    wire::ChatRequest& request;
    SinkToWriter& sink;
    const Clock& clock;
    Result<void> Prepare(Target& t) { return PrepareChat(request, t); }
    asio::awaitable<providers::ProviderResult<providers::StreamSummary>> operator()(
        Target& t, const providers::CallOptions& o, const ModelRoute& route) {
      sink.Attempt(route, t, clock.Now());
      return t.provider().ChatStream(request, o, sink);
    }
    // A stream's latency is its time to first token; its wait for the upstream before the
    // first chunk is counted by the sink, the rest is the client's stream, not our overhead.
    Duration Latency(Duration elapsed) const {
      return sink.started() ? sink.first_byte() : elapsed;
    }
    Duration Waited(Duration elapsed) const { return sink.started() ? Duration::zero() : elapsed; }
  } call{request, sink, clock_};

  providers::StreamSummary summary;
  auto ran = co_await Run(r, info, served, call, summary, sink.started_flag(), trace.get());
  *started = sink.started();
  if (!ran) {
    if (trace) trace->Fail(served, ran.error());
    co_return ran.error();
  }
  const ModelRoute* served_route = served.route != nullptr ? served.route : &r;
  served.usage = summary.usage;
  if (!served.usage.known && served.target != nullptr && request.parsed && sink.translated()) {
    served.usage = CountUsage(*served.target, request, sink.completion());
    if (served.usage.known && !co_await sink.WriteUsage(served.usage)) co_return Cancelled();
  }
  served.cost_usd = CostUsd(served.usage, served_route->price);
  if (!sink.started()) {
    // An upstream that ended its stream without a single chunk: answer the head anyway.
    if (!co_await writer.Begin(served)) co_return Cancelled();
    *started = true;
  }
  if (cached && info.cache_write && served_route == &r) {
    // A stream that ended normally: replayed as it was sent (usage chunk included; a client
    // that did not ask for usage has a different body, so a different entry).
    if (std::unique_ptr<Recording> recording = sink.TakeRecording()) {
      auto entry = std::make_shared<CachedResponse>();
      entry->stream = true;
      entry->chunks = std::move(recording->chunks);
      entry->provider = served.provider;
      entry->upstream_model = served.upstream_model;
      entry->usage = served.usage;
      co_await Store(r, info, request.raw_body, std::move(entry));
    }
  }
  if (trace) trace->Finish(served);
  co_return Result<void>{};
}

asio::awaitable<Result<EmbedResult>> Orchestrator::Embed(wire::EmbeddingRequest& request,
                                                         const RequestInfo& info) {
  const std::unique_ptr<CallTrace> trace = CallTrace::Start(info, "embeddings", request.model);
  const ModelRoute* const route = RouteFor(request.model, trace.get());
  if (route == nullptr) co_return Unroutable(request.model);
  const ModelRoute& r = *route;
  struct Call {
    static bool Stream() { return false; }
    wire::EmbeddingRequest& request;
    Result<void> Prepare(Target&) { return {}; }
    asio::awaitable<providers::ProviderResult<wire::EmbeddingResponse>> operator()(
        Target& t, const providers::CallOptions& o, const ModelRoute&) {
      return t.provider().Embed(request, o);
    }
    Duration Latency(Duration elapsed) const { return elapsed; }
    Duration Waited(Duration elapsed) const { return elapsed; }
  } call{request};
  EmbedResult result;
  auto ran = co_await Run(r, info, result.served, call, result.response, nullptr, trace.get());
  if (!ran) {
    if (trace) trace->Fail(result.served, ran.error());
    co_return ran.error();
  }
  const ModelRoute* served_route = result.served.route != nullptr ? result.served.route : &r;
  result.served.usage = result.response.usage;
  result.served.cost_usd = CostUsd(result.response.usage, served_route->price);
  if (trace) trace->Finish(result.served);
  co_return result;
}

}  // namespace orchestra::orchestration
