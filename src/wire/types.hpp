#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

// Orchestra's canonical request and response types (DESIGN.md §1): native C++ on every layer
// between the HTTP edge and the provider adapters, which alone speak a wire format.
//
// The OpenAI wire format is also the client's, so a request that reaches an OpenAI-compatible
// upstream keeps the client's JSON text (`raw_body`) and is forwarded with only `model` (and
// `stream_options`) rewritten: fields Orchestra does not model (tools, response_format, seed,
// logprobs, user, ...) pass through untouched, and the hot path does no parse-and-reserialise.
// Adapters that translate (Gemini, Anthropic, local) read the parsed fields instead.
namespace orchestra::wire {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as the model produced it
  // Which of the choice's tool calls this is (0-based). In a stream, the deltas of one call share
  // it: the first carries id and name, the following ones pieces of `arguments`.
  int index = 0;
};

// One part of a user message whose array content holds only text and images, kept in order so
// that adapters that translate (Gemini, Anthropic) can carry the images.
struct ContentPart {
  std::string text;       // a text part, when image_url is empty
  std::string image_url;  // an image part: an http(s) URL or a data:<type>;base64,<data> URL
};

struct Message {
  std::string role;     // system | developer | user | assistant | tool
  std::string content;  // the text (text parts of array content joined with "\n")
  std::string name;
  std::string tool_call_id;          // role tool: the call this answers
  std::vector<ToolCall> tool_calls;  // role assistant
  bool has_non_text_parts = false;   // images or audio, which only pass through to OpenAI
  // Set (with has_non_text_parts) when a user message's non-text parts are all images: its parts
  // in order. Empty otherwise.
  std::vector<ContentPart> parts;
};

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
  bool known = false;      // the provider reported it, or Orchestra counted it
  bool estimated = false;  // counted by Orchestra's tokenizer (the provider reported none)
};

struct ChatRequest {
  // --- Always set by the edge parser (a validating single pass over the body). ---
  std::string model;  // as the client asked: a public model name or provider/model
  bool stream = false;
  bool client_wants_usage = false;       // stream_options.include_usage from the client
  std::string raw_body;                  // the client's JSON text
  std::size_t model_begin = 0;           // [model_begin, model_end): the top-level "model" value
  std::size_t model_end = 0;             //   in raw_body, quotes included
  std::size_t stream_options_begin = 0;  // the top-level "stream_options" value, when present
  std::size_t stream_options_end = 0;
  // The top-level "documents" value (Orchestra's retrieval option, docs/API.md), when present
  // (documents_end != 0). Orchestra's own: the edge removes it (openai::WithoutDocuments)
  // before the request goes anywhere, so no provider ever sees it.
  std::size_t documents_begin = 0;
  std::size_t documents_end = 0;

  // --- The native fields, filled by Parse() from raw_body, only when a provider that
  // translates is about to be called (Provider::ForwardsRawBody() is false); a request built
  // in the process (EncodeChatRequest) has them from the start. ---
  // Parses the fields below from raw_body, once (later calls return at once). kInvalidRequest
  // names the offending field as OpenAI does. Defined in openai_codec.cpp.
  Result<void> Parse();
  bool parsed = false;
  std::vector<Message> messages;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<std::int64_t> max_tokens;  // max_tokens or max_completion_tokens
  std::vector<std::string> stop;
  std::optional<std::int64_t> n;
  std::optional<std::int64_t> seed;
  std::string user;
  std::string tools_json;            // the "tools" array as JSON text ("" when absent)
  std::string tool_choice_json;      // "tool_choice" as JSON text
  std::string response_format_json;  // "response_format" as JSON text
};

struct ChatChoice {
  int index = 0;
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;  // stop | length | tool_calls | content_filter
};

struct ChatResponse {
  std::string id;
  std::string model;  // the upstream model that answered
  std::int64_t created = 0;
  std::vector<ChatChoice> choices;
  Usage usage;
  // The OpenAI-format body exactly as an OpenAI-compatible upstream sent it; when set it is what
  // the client receives, byte for byte. Empty when an adapter translated the response.
  std::string raw;
  // Orchestra's own, never written to the wire: the model looked for the answer in the context
  // it was given and found none (the local extractive model; the choice's content says so in
  // words). The task service answers such a question with `found: false` and no text.
  bool answer_not_found = false;
};

// One streamed delta. Either `raw` (an OpenAI-compatible upstream's `data:` payload, forwarded
// as is) or the native fields (a translated stream) describe it.
struct ChatChunk {
  std::string id;
  std::string model;
  std::int64_t created = 0;
  int index = 0;
  std::string role;                  // set on the first delta
  std::string content;               // text delta
  std::vector<ToolCall> tool_calls;  // tool-call deltas (arguments are partial JSON text)
  std::string finish_reason;         // set on the last delta of a choice
  std::optional<Usage> usage;        // the usage chunk (OpenAI sends it with empty choices)
  bool usage_only = false;           // a chunk that carries only usage (no choices)
  std::string raw;
};

struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> inputs;        // strings; token-array input stays in raw_body only
  bool token_input = false;               // input was token ids (OpenAI-compatible upstreams only)
  std::string encoding_format = "float";  // float | base64
  std::optional<std::int64_t> dimensions;
  std::string user;
  std::string raw_body;
  std::size_t model_begin = 0;
  std::size_t model_end = 0;
};

struct EmbeddingResponse {
  std::string model;
  std::vector<std::vector<float>> vectors;  // one per input, in input order
  Usage usage;
  std::string raw;  // an OpenAI-compatible upstream's body, forwarded as is
};

}  // namespace orchestra::wire
