#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "wire/types.hpp"

// The Gemini API wire format (`models/*:generateContent`, `:streamGenerateContent?alt=sse`,
// `:embedContent`, `:batchEmbedContents`), whose JSON Vertex AI's Gemini endpoints share: pure
// translation to and from the canonical (OpenAI-shaped) types, no I/O.
//
// Tool calls: Gemini does not give function calls ids, so each gets a fresh "call_..." id.
// Gemini's thinking models attach an opaque `thoughtSignature` to function calls that must come
// back with the call in the next request; the codec carries it inside the tool call id
// ("call_<hex>.gts.<signature>"), which OpenAI clients return verbatim, and restores it when the
// conversation is sent back. Function calls without one (written by another provider) are sent
// with Gemini's documented "skip_thought_signature_validator" placeholder.
//
// Functions are pure (apart from fresh ids and the clock) and thread-safe; a StreamDecoder
// belongs to one stream.
namespace orchestra::providers::gemini {

// A GenerateContentRequest body for `request` (messages and parameters already parsed by
// openai::ParseChatMessages):
// - system and developer messages → `systemInstruction`; user → "user"; assistant → "model";
//   consecutive messages of one role are merged into one content; empty text, which Gemini
//   rejects, is left out; images given as data: URLs → `inlineData` parts;
// - assistant tool calls → `functionCall` parts (arguments must be a JSON object); tool
//   messages → `functionResponse` parts named after the call they answer (content that is a
//   JSON object is the response, anything else becomes {"output": content});
// - function tools → `tools[{functionDeclarations}]` (parameters as `parametersJsonSchema`);
//   `tool_choice` → `toolConfig.functionCallingConfig`;
// - temperature, top_p, max_tokens, stop, n, seed → `generationConfig`; `response_format`
//   json_object → responseMimeType "application/json", json_schema → also
//   `responseJsonSchema` (Gemini's JSON Schema field; `responseSchema` takes only an OpenAPI
//   subset).
// What Gemini cannot take (images by http(s) URL, audio and file parts, non-function tools,
// the legacy `function` role, an unknown response_format, a seed beyond 32 bits) is
// kInvalidRequest with the offending param.
Result<std::string> BuildGenerateContentRequest(const wire::ChatRequest& request);

// A GenerateContentResponse body into the native response: text parts joined (thought parts
// skipped), function calls as tool_calls, finishReason mapped (STOP→stop, MAX_TOKENS→length,
// SAFETY/RECITATION/BLOCKLIST/PROHIBITED_CONTENT/SPII/IMAGE_*→content_filter, tool_calls when
// the candidate called functions), usageMetadata → usage (completion includes thinking
// tokens). `id` is `responseId` or a fresh "chatcmpl-..."; `model` is `modelVersion` or
// `model`. A prompt blocked by promptFeedback.blockReason is kInvalidRequest (param
// "messages"); an error body or malformed JSON is kUpstreamError.
Result<wire::ChatResponse> ParseGenerateContentResponse(std::string_view body,
                                                        std::string_view model);

// Turns the `data:` payloads of a streamGenerateContent?alt=sse response (one
// GenerateContentResponse each) into OpenAI-shaped chunks with one stable id and created time.
// The first chunk of each candidate carries role "assistant"; a candidate's finishReason
// becomes the finish_reason of its last chunk; usage is kept from the latest usageMetadata
// and emitted by Finish(). Not thread-safe: one decoder per stream.
class StreamDecoder {
 public:
  // `model` names the answer until the upstream reports its `modelVersion`.
  explicit StreamDecoder(std::string model);

  // The chunks to emit for one payload (possibly none). An error payload, a blocked prompt or
  // malformed JSON is an Error: the caller ends the stream with it.
  Result<std::vector<wire::ChatChunk>> Feed(std::string_view data);

  // The final usage-only chunk, when the upstream reported usage.
  std::optional<wire::ChatChunk> Finish() const;

  // Every candidate seen so far has finished (a stream that ends before this was cut).
  bool finished() const;
  const wire::Usage& usage() const { return usage_; }

 private:
  struct Candidate {
    bool role_sent = false;
    bool finished = false;
    int tool_calls = 0;
  };

  wire::ChatChunk NewChunk(int index) const;

  std::string id_;
  std::string model_;
  std::int64_t created_ = 0;
  bool model_reported_ = false;
  std::vector<Candidate> candidates_;
  wire::Usage usage_;
};

// Whether `request` goes to batchEmbedContents (several inputs) rather than embedContent.
inline bool UsesBatchEmbed(const wire::EmbeddingRequest& request) {
  return request.inputs.size() > 1;
}

// An embedContent body for one input, or a batchEmbedContents body (`requests[]`, each with
// `model: "models/<model>"`) for several; `dimensions` → `outputDimensionality`. Token-id input
// is kInvalidRequest (param "input").
Result<std::string> BuildEmbedRequest(const wire::EmbeddingRequest& request,
                                      std::string_view model);

// An embedContent (`batch` false) or batchEmbedContents (`batch` true) response into vectors
// in input order. Usage is known only when the upstream reports it (`usageMetadata`, as Vertex
// AI does). An error body or malformed JSON is kUpstreamError.
Result<wire::EmbeddingResponse> ParseEmbedResponse(std::string_view body, bool batch);

}  // namespace orchestra::providers::gemini
