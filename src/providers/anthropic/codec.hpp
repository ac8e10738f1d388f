#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "wire/types.hpp"

// The Anthropic Messages API wire format (`POST /v1/messages`, with and without `stream`):
// pure translation to and from the canonical (OpenAI-shaped) types, no I/O.
//
// Functions are pure (apart from the clock) and thread-safe; a StreamDecoder belongs to one
// stream.
namespace orchestra::providers::anthropic {

// A Messages API request body for `request` (messages and parameters already parsed by
// openai::ParseChatMessages):
// - system and developer messages → top-level `system` (joined with a blank line);
// - user → "user" (images as `image` blocks: data: URLs as base64 sources, http(s) URLs as url
//   sources); assistant → "assistant" with its tool calls as `tool_use` blocks (arguments
//   must be a JSON object); tool messages → `tool_result` blocks in a "user" message;
//   consecutive messages of one role are merged into one, as Anthropic requires; empty text
//   blocks, which Anthropic rejects, are left out;
// - function tools → `tools[{name, description, input_schema}]`; `tool_choice` auto/none/
//   required/function → {"type":"auto"|"none"|"any"|"tool"};
// - `max_tokens` (else `default_max_tokens`: Anthropic requires one), `temperature` (Anthropic
//   accepts 0..1), `top_p`, `stop` → `stop_sequences`, `user` → `metadata.user_id`, and
//   `stream`.
// Tool call ids outside Anthropic's [A-Za-z0-9_-]{1,64} (another provider's) are replaced by a
// stable "toolu_<hash>" so that a tool_use and its tool_result still match.
// `seed` has no Anthropic counterpart and is left out. What Anthropic cannot take (audio and
// file parts, n > 1, response_format other than text, non-function tools, the legacy `function`
// role) is kInvalidRequest with the offending param.
Result<std::string> BuildMessagesRequest(const wire::ChatRequest& request,
                                         std::string_view upstream_model, int default_max_tokens,
                                         bool stream);

// A Messages API response into the native response: text blocks joined, tool_use blocks as
// tool_calls (input serialised as the arguments), stop_reason mapped (end_turn/stop_sequence/
// pause_turn→stop, max_tokens/model_context_window_exceeded→length, tool_use→tool_calls,
// refusal→content_filter), usage with cache creation and cache read tokens counted as prompt
// tokens. An error body or malformed JSON is an Error (kUpstreamError, or kRateLimited /
// kUnavailable for rate_limit_error / overloaded_error).
Result<wire::ChatResponse> ParseMessagesResponse(std::string_view body);

// Turns the events of a streamed Messages response into OpenAI-shaped chunks.
// message_start → the first chunk (role "assistant"); text_delta → content; a tool_use block's
// start → a tool call delta with id and name, its input_json_delta pieces → argument deltas;
// message_delta → finish_reason; ping, content_block_stop, message_stop, thinking deltas and
// unknown events → nothing. An `error` event is returned as an Error: the caller ends the
// stream with it. Not thread-safe: one decoder per stream.
class StreamDecoder {
 public:
  StreamDecoder();

  // One SSE event: its `event:` name (may be empty: the data's "type" is used) and data.
  Result<std::vector<wire::ChatChunk>> Feed(std::string_view event, std::string_view data);

  // The final usage-only chunk (input tokens from message_start, output tokens from the last
  // message_delta), when the upstream reported usage.
  std::optional<wire::ChatChunk> Finish() const;

  // message_stop was seen (a stream that ends before it was cut).
  bool finished() const { return finished_; }
  const wire::Usage& usage() const { return usage_; }

 private:
  wire::ChatChunk NewChunk() const;

  std::string id_;
  std::string model_;
  std::int64_t created_ = 0;
  std::vector<int> tool_index_;  // content block index → tool call index (-1: not a tool)
  int tool_calls_ = 0;
  wire::Usage usage_;
  bool finished_ = false;
};

}  // namespace orchestra::providers::anthropic
