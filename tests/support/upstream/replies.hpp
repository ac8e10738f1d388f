#pragma once

// The test upstream's answers in the wire formats of OpenAI, Gemini and Anthropic. The builders
// are plain functions that fill a Reply (bytes plus what to act out: delays, stall, reset, cut);
// the connection coroutine in server.cpp executes it. Everything lands in buffers that live as
// long as the connection, so a keep-alive connection stops allocating after its first requests.
//
// Content is deterministic: the reply text is "echo: " + the last user message's text; a stream
// has one content event per word of it (or `chunks=N`); prompt tokens are the whitespace-separated
// words of every input message, completion tokens the words of the reply.
//
// Wire details worth knowing when asserting on them:
//   - OpenAI streams: the first content chunk also carries `role`; then a chunk with an empty
//     delta and finish_reason "stop"; a usage chunk (choices: []) only with
//     stream_options.include_usage; then `data: [DONE]`.
//   - Anthropic streams: message_start, content_block_start, ping (as the real API sends),
//     content_block_delta..., content_block_stop, message_delta, message_stop. max_tokens is
//     required and roles must be user/assistant, as upstream.
//   - Gemini: `?alt=sse` streams SSE framed with CRLF (as Google does); without it, one JSON
//     array. usageMetadata and finishReason ride on the last event.
//   - Embeddings: unit vectors from a hash of each input (same input, same vector, whichever
//     provider format asked); 16 dimensions unless `dims=N` or the request says otherwise.
//   - Errors come in the provider's own shape. GET /v1/models ignores directives and defaults.
//   - Ids end in 16 hex digits, unique per process run.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "upstream/directives.hpp"
#include "upstream/http_request.hpp"

namespace orchestra::testing::upstream {

// The request kinds the upstream tells apart; also the keys of GET /_stats "requests".
enum class Endpoint : std::uint8_t {
  kOpenAiChat,
  kOpenAiEmbeddings,
  kOpenAiModels,
  kAnthropicMessages,
  kGeminiGenerate,
  kGeminiStream,
  kGeminiEmbed,
  kGeminiBatchEmbed,
  kOther,  // unknown paths and methods (answered 404 / 405)
  kCount
};
std::string_view ToString(Endpoint endpoint);

// Where a request goes. Introspection paths (/_stats, /_last_request, /_reset) are not routed
// here: the server answers them itself.
struct Route {
  Endpoint endpoint = Endpoint::kOther;
  std::string_view model;  // Gemini: the still percent-encoded {model} path segment
  bool method_allowed = true;
};
Route RouteRequest(const HttpRequest& req);

// A stream's framed event: [begin, end) of Reply::body.
struct StreamEvent {
  std::uint32_t begin = 0;
  std::uint32_t end = 0;
  bool content = false;  // a content delta: what `cut` and `chunk_delay` count
};

enum class Action : std::uint8_t { kRespond, kStall, kReset };

struct Reply {
  Action action = Action::kRespond;
  int status = 200;
  bool stream = false;
  bool close = false;  // close the connection after the reply
  std::string head;    // status line and headers, through the empty line
  std::string body;    // the body; for streams the framed events back to back
  std::vector<StreamEvent> events;
  Directives directives;  // the delays and failures to act out

  // Benchmarks send one body over and over; a byte-identical request on the same connection
  // reuses these bytes, with only the id and timestamp fields rewritten (RefreshReply).
  bool reusable = false;
  std::vector<std::uint32_t> id_offsets;       // 16 hex digits each, in `body`
  std::vector<std::uint32_t> created_offsets;  // 10 decimal digits each, in `body`
};

// Per-model-string counts for `times`, shared by every worker thread.
class TimesCounter {
 public:
  // The 1-based ordinal of this request among those with exactly this model string.
  std::uint64_t Next(std::string_view model);
  void Clear();

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::uint64_t> counts_;
};

// Reusable scratch space and the settings one worker's builders need. Not thread-safe: one per
// connection.
struct ReplyContext {
  const Directives* defaults = nullptr;
  TimesCounter* times = nullptr;
  std::atomic<std::uint64_t>* injected_errors = nullptr;  // counts answers with `status`
  std::uint64_t worker_index = 0;       // the top byte of ids, so workers never collide
  std::uint64_t* id_counter = nullptr;  // the worker's: ids are unique across connections

  std::string text;        // decoded message text
  std::string last_user;   // the last user message's text
  std::string reply_text;  // "echo: ..."
  std::string event;       // one event before framing
  std::string model;       // the decoded model name
  std::string id;          // the response id
  std::vector<std::uint32_t> word_ends;
  std::vector<float> vector;
};

// Fills `reply` for a model endpoint (anything but kOther), and marks it reusable when it is a
// pure function of the request (no `times` state, no stall or reset).
void BuildReply(const Route& route, const HttpRequest& req, ReplyContext& ctx, Reply& reply);

// Makes a reusable reply fresh for another identical request: new id, current timestamp, and
// the counters BuildReply would have bumped.
void RefreshReply(ReplyContext& ctx, Reply& reply);

// 404/405 for unknown paths and methods, in OpenAI's error shape.
void BuildNotFound(const Route& route, const HttpRequest& req, Reply& reply);

// A plain answer with a ready body (introspection, errors of the HTTP layer).
void BuildSimple(int status, std::string_view content_type, std::string_view body, bool close,
                 Reply& reply);

// The reason phrase for a status ("Too Many Requests"), "Unknown" for odd ones.
std::string_view ReasonPhrase(int status);

}  // namespace orchestra::testing::upstream
