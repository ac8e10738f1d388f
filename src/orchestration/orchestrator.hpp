#pragma once

#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"
#include "observability/trace.hpp"
#include "orchestration/balancer.hpp"
#include "orchestration/clock.hpp"
#include "orchestration/response_cache.hpp"
#include "orchestration/route_table.hpp"
#include "orchestration/usage.hpp"
#include "wire/types.hpp"

// The Orchestrator: model name → route → target, with retries, fallbacks, circuit breakers,
// the response cache and usage accounting (DESIGN.md §1). One per process, shared by every
// worker; each call runs on the calling worker's event loop.
//
// For one request it walks the route's fallback chain (the route first). Within a route the
// balancer picks a target whose breaker admits the attempt; the retry policy decides after each
// failure whether to try again (after a full-jitter backoff), move on to another target or the
// next fallback, or stop. Everything is bounded by the first route's `deadline`, each attempt by
// its route's `timeout`. A stream falls back only while nothing has reached the client.
namespace orchestra::orchestration {

// About the request, from the HTTP edge.
struct RequestInfo {
  std::string_view traceparent;  // ours, propagated upstream
  std::string_view request_id;
  std::string_view tenant;  // partitions the response cache
  // The client's Cache-Control (ParseCacheControl): may the answer come from the cache, and may
  // it be stored there.
  bool cache_read = true;
  bool cache_write = true;
  int worker = 0;
  SteadyTime start{};  // when the request arrived
  // The request's trace (null: none); a sampled one gets the orchestrator's spans
  // (call_trace.hpp). Must outlive the call.
  const observability::TraceContext* trace = nullptr;
};

// Who answered, for response headers and accounting.
struct ModelRoute;
class CallTrace;

// The names are views into the route table (routes and targets live as long as the
// orchestrator), so a Served is cheap to copy and never allocates.
struct Served {
  std::string_view model;  // the route that answered (a fallback's name if one did)
  std::string_view provider;
  std::string_view upstream_model;
  Duration upstream_time{0};  // time spent waiting for providers, all attempts
  Duration first_token{0};    // streams: from the request's arrival to the first chunk
  wire::Usage usage;
  double cost_usd = 0;
  bool cache_hit = false;
  bool cache_miss = false;  // the model is cached, but this answer did not come from the cache
  const ModelRoute* route = nullptr;  // the route that answered (for its price)
  const Target* target = nullptr;     // the target that answered (null for a cache hit)
};

// Where a stream goes: implemented by the HTTP edge.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Called once, just before the first chunk, with who is serving (response headers).
  // Returns false when the client has gone.
  virtual boost::asio::awaitable<bool> Begin(const Served& served) = 0;
  // One chunk; false when the client has gone.
  virtual boost::asio::awaitable<bool> Write(wire::ChatChunk& chunk) = 0;
};

struct ChatResult {
  wire::ChatResponse response;
  Served served;
};
struct EmbedResult {
  wire::EmbeddingResponse response;
  Served served;
};

class Orchestrator {
 public:
  // `routes`, `metrics`, `cache` (may be null), `clock` and `shared` (the cache tier shared by
  // every instance; may be null, and is used only with `cache`) must outlive the orchestrator.
  Orchestrator(RouteTable& routes, Metrics& metrics, ResponseCache* cache,
               const Clock& clock = RealClock(), SharedCacheTier* shared = nullptr);

  boost::asio::awaitable<Result<ChatResult>> Chat(wire::ChatRequest& request,
                                                  const RequestInfo& info);
  // Streams into `writer`, filling `served` as it learns who serves and what it cost (also when
  // the stream fails, so that it can be settled). On an error after the first chunk, the error
  // is returned and `*started` is true: the caller ends the stream with an error event.
  boost::asio::awaitable<Result<void>> ChatStream(wire::ChatRequest& request,
                                                  const RequestInfo& info, StreamWriter& writer,
                                                  Served& served, bool* started);
  boost::asio::awaitable<Result<EmbedResult>> Embed(wire::EmbeddingRequest& request,
                                                    const RequestInfo& info);

  RouteTable& routes() { return routes_; }

 private:
  // The answer goes to `answer` rather than in the result: the result is kept in the frames of
  // Run and of its caller, which must stay under the 1,020 bytes Asio recycles.
  // `trace` may be null (the request is not traced).
  template <class T, class Call>
  boost::asio::awaitable<Result<void>> Run(const ModelRoute& route, const RequestInfo& info,
                                           Served& served, Call& call, T& answer,
                                           const bool* started, CallTrace* trace);
  // The cached answer for this request: memory first, then the shared tier (a shared hit is
  // kept in memory for the rest of its life). Null: a miss.
  boost::asio::awaitable<std::shared_ptr<const CachedResponse>> Lookup(const ModelRoute& route,
                                                                       const RequestInfo& info,
                                                                       std::string_view body,
                                                                       CallTrace* trace);
  // Stores an answer in memory and, without waiting for it, in the shared tier (a coroutine
  // only to learn the caller's executor; it never suspends).
  boost::asio::awaitable<void> Store(const ModelRoute& route, const RequestInfo& info,
                                     std::string_view body,
                                     std::shared_ptr<const CachedResponse> response);
  // A non-streamed request answered from the cache into `result`: false on a miss.
  boost::asio::awaitable<bool> ChatFromCache(const ModelRoute& route, const RequestInfo& info,
                                             std::string_view body, ChatResult& result,
                                             CallTrace* trace);
  // The route `model` names (the trace told either way), or null. A plain function, as is
  // Unroutable: the Result would otherwise sit in the caller's coroutine frame, which must stay
  // under the 1,020 bytes Asio recycles.
  const ModelRoute* RouteFor(std::string_view model, CallTrace* trace);
  // Why `model` has no route (RouteFor returned null).
  Error Unroutable(std::string_view model);
  // A streamed request answered from the cache, replayed into `writer`: false on a miss.
  boost::asio::awaitable<bool> ReplayFromCache(const ModelRoute& route, const RequestInfo& info,
                                               std::string_view body, StreamWriter& writer,
                                               Served& served, bool* started, CallTrace* trace,
                                               Result<void>& outcome);

  RouteTable& routes_;
  Metrics& metrics_;
  ResponseCache* cache_;
  SharedCacheTier* shared_;
  const Clock& clock_;
  Balancer balancer_;
};

}  // namespace orchestra::orchestration
