#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "wire/types.hpp"

// The OpenAI wire format (Chat Completions and Embeddings), which is also the format Orchestra's
// clients speak: pure translation between JSON text and the canonical types, no I/O.
//
// These are the full parsers and encoders, for the paths that translate (Gemini, Anthropic,
// local, the response cache, tests). The forwarding hot path uses openai/scan.hpp instead and
// never re-serialises a body.
//
// Every function is pure (apart from fresh ids and the clock where noted) and thread-safe.
namespace orchestra::wire::openai {

// Parses `req.raw_body` (a /v1/chat/completions body already checked by ScanChatRequest) into
// `messages`, `temperature`, `top_p`, `max_tokens` (`max_completion_tokens` wins over the
// deprecated `max_tokens` when both are set), `stop`, `n`, `seed`, `user`, and the JSON text of
// `tools`, `tool_choice` and `response_format`. A JSON `null` counts as absent.
//
// Message content may be a string, null (an assistant message with tool_calls), or an array of
// parts: text parts (and an assistant's refusal parts) are joined with "\n"; any other part, a
// tool call of a type other than "function", or a legacy `function_call` sets
// `has_non_text_parts` (such a message only passes through to OpenAI-compatible upstreams),
// except that a user message whose other parts are all `image_url` parts also keeps its parts
// in order in `parts`, for the adapters that can carry images.
//
// Errors are kInvalidRequest with `param` naming the field as OpenAI does: "messages",
// "messages[2].role", "messages[0].content", "messages[1].tool_calls[0].function.name",
// "temperature", ... Unknown fields are accepted (they pass through elsewhere).
Result<void> ParseChatMessages(ChatRequest& req);

// A `chat.completion` object. When `response.raw` is set (an OpenAI-compatible upstream's own
// body) it is returned unchanged. `message.content` is null for a choice that has only tool
// calls; `usage` is written only when known.
std::string EncodeChatResponse(const ChatResponse& response);

// One `chat.completion.chunk` object: the text after "data: " in an SSE event. When
// `chunk.raw` is set it is returned unchanged. A `usage_only` chunk is written with
// `"choices":[]` and `usage`; any other chunk has one choice whose delta carries `role` (when
// set), `content`, and `tool_calls` (each with its `index`; `id`, `type` and the function name
// only when the ToolCall has an id, as on a call's first delta), and `finish_reason` (null
// until the end).
std::string EncodeChatChunk(const ChatChunk& chunk);

// An OpenAI-format `chat.completion` body into the native response. `raw` is left empty (the
// caller keeps the body if it forwards it). An `{"error":...}` body or a body that is not a
// chat completion is kUpstreamError.
Result<ChatResponse> ParseChatResponse(std::string_view body);

// One streamed `data:` payload (not "[DONE]") into a native chunk, including the usage-only
// chunk that `stream_options.include_usage` adds (`usage_only`, `usage`). Only the first
// choice is read (OpenAI sends one per chunk). An `{"error":...}` payload is kUpstreamError.
Result<ChatChunk> ParseChatChunk(std::string_view data);

// Parses and validates a /v1/embeddings body: `model` (required, non-empty string), `input`
// (a string, an array of strings, or token ids as an array of integers or of integer arrays,
// which sets `token_input` and leaves `inputs` empty), `encoding_format` ("float" or
// "base64"), `dimensions` (>= 1) and `user`. Fills `raw_body` (takes `body`) and
// `model_begin`/`model_end`, the byte range of the top-level model value, quotes included.
// Errors are kInvalidRequest with param "model", "input", "encoding_format", "dimensions" or
// "user".
Result<EmbeddingRequest> ParseEmbeddingRequest(std::string body);

// Requests built in the process (the task and document services) rather than received: the
// OpenAI body written from the native fields, so that a provider that forwards the client's
// text (OpenAI-compatible) and one that translates (which reads the native fields) both serve
// them. Fills `raw_body` and the model span; the chat request is marked parsed. Messages carry
// role, content and name; sampling fields are written when set.
void EncodeChatRequest(ChatRequest& request);
void EncodeEmbeddingRequest(EmbeddingRequest& request);

// An OpenAI embeddings `list` object. `encoding_format` "base64" writes each vector as the
// base64 of its little-endian float32 bytes; anything else writes arrays of numbers. When
// `response.raw` is set it is returned unchanged.
std::string EncodeEmbeddingResponse(const EmbeddingResponse& response,
                                    std::string_view encoding_format);

// An OpenAI embeddings response (float arrays or base64 strings) into vectors ordered by
// their `index`. `raw` is left empty.
Result<EmbeddingResponse> ParseEmbeddingResponse(std::string_view body);

}  // namespace orchestra::wire::openai
