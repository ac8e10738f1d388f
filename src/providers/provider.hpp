#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "config/config.hpp"
#include "wire/types.hpp"

// A model provider: one upstream API (an OpenAI-compatible server, Gemini, Anthropic) or the
// built-in local models. A Provider makes exactly one attempt per call: retries, fallbacks,
// circuit breaking and accounting belong to the orchestrator. Providers know nothing of the
// HTTP server or of storage (DESIGN.md §1).
//
// Thread-safety: one Provider serves every worker thread; a call runs on the calling worker's
// event loop and uses that worker's connection pool (CallOptions::worker).
namespace orchestra::providers {

// What a failed upstream attempt was, for retry decisions and metrics.
enum class FailureKind : std::uint8_t {
  kNone,
  kConnect,    // DNS, TCP or TLS could not be established
  kTimeout,    // connect, first byte, idle or attempt timeout
  kStatus,     // the upstream answered with an HTTP error status
  kProtocol,   // unparseable or truncated response
  kCancelled,  // the client went away
};

struct ProviderError {
  Error error;
  FailureKind kind = FailureKind::kNone;
  int status = 0;           // upstream HTTP status for kStatus
  int retry_after_ms = -1;  // from Retry-After, when the upstream sent one
};

template <class T>
using ProviderResult = boost::system::result<T, ProviderError>;

struct CallOptions {
  std::string_view upstream_model;  // the provider's own name for the model
  // `upstream_model` as a JSON string, quotes included: made once per target (Target), so that a
  // provider splicing it into a body neither escapes it per request nor keeps a copy on its
  // coroutine frame while the request is written.
  std::string_view upstream_model_json;
  std::chrono::steady_clock::time_point deadline;  // this attempt must end by then
  // The first byte of the answer must arrive by then: for a call, the same as `deadline`; for a
  // stream, the attempt timeout (the stream itself may then run until `deadline`).
  std::chrono::steady_clock::time_point first_byte_deadline;
  std::string_view traceparent;  // propagated to the upstream (W3C Trace Context)
  std::string_view request_id;   // propagated as X-Request-Id
  int worker = 0;                // the calling event loop's index
};

// Receives a stream's chunks as they arrive. OnChunk returns false when the client has gone;
// the provider then stops reading and closes its upstream connection.
class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  virtual boost::asio::awaitable<bool> OnChunk(wire::ChatChunk& chunk) = 0;
};

struct StreamSummary {
  wire::Usage usage;
  std::string finish_reason;
  std::string upstream_model;
  int chunks = 0;
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual const std::string& name() const = 0;
  virtual config::ProviderType type() const = 0;

  // Why every call to this provider fails, fixed at start-up (its key could not be read:
  // "provider openai: environment variable OPENAI_API_KEY is not set"); empty when it is usable.
  // Never contains a secret. /v1/models, check-config and the start-up log report it.
  virtual std::string_view UnusableReason() const { return {}; }

  // What the provider reads of a chat request. True: it forwards the client's JSON text
  // (`raw_body`) with only the model spliced in and reads no parsed field, so the request is
  // never parsed for it. False: it translates from the parsed fields (`messages`, sampling
  // options, tools), and the caller must call ChatRequest::Parse() before the first attempt;
  // calling the provider with an unparsed request is a programming error.
  virtual bool ForwardsRawBody() const = 0;

  virtual boost::asio::awaitable<ProviderResult<wire::ChatResponse>> Chat(
      const wire::ChatRequest& request, const CallOptions& options) = 0;

  // Streams the completion into `sink`. An error is returned whether it happened before the
  // first chunk (the orchestrator may then fall back) or after (the stream is broken: the
  // caller ends it with an error event).
  virtual boost::asio::awaitable<ProviderResult<StreamSummary>> ChatStream(
      const wire::ChatRequest& request, const CallOptions& options, ChunkSink& sink) = 0;

  virtual boost::asio::awaitable<ProviderResult<wire::EmbeddingResponse>> Embed(
      const wire::EmbeddingRequest& request, const CallOptions& options) = 0;

  // Opens and pools a connection to the upstream on `worker`'s loop (POST /warmup). Returns a
  // short description of what was warmed.
  virtual boost::asio::awaitable<Result<std::string>> Warmup(int worker) = 0;
};

}  // namespace orchestra::providers
