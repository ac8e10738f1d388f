#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/json_scan.hpp"
#include "wire/types.hpp"

// The hot-path side of the OpenAI wire format: one validating pass over a body to learn what
// routing and accounting need, leaving the text to be forwarded untouched.
namespace orchestra::wire::openai {

// The top-level members of a request body Orchestra routes on, found by name after unescaping
// ("mod\u0065l" is `model`): spans[i] is the member names[i] (absent: not `present`). Refuses a
// body that is not a JSON object, and a member given twice: an upstream that keeps the last one
// would serve another model than the one routed, priced and allowed.
Result<void> ScanRoutedMembers(std::string_view body, std::span<const std::string_view> names,
                               std::span<JsonSpan> spans);

// The `model` member's value: required, a non-empty string.
Result<std::string> RoutedModel(std::string_view body, const JsonSpan& model);

// Validates a /v1/chat/completions body and extracts `model`, `stream`, the client's
// `stream_options.include_usage`, and the spans needed to rewrite `model` and
// `stream_options` without re-serialising. `messages` must be a non-empty array here; its
// contents are checked by whoever parses them (ParseChatMessages) or by the upstream.
Result<ChatRequest> ScanChatRequest(std::string body);

// `request` without its "documents" member and, when `system_message` is not empty, with it as
// a system message before the client's messages (the retrieved passages of the chat `documents`
// option); scanned again, so every span matches the new text. The rest of the body is kept as
// the client wrote it.
Result<ChatRequest> WithoutDocuments(const ChatRequest& request, std::string_view system_message);

// `usage` of an OpenAI-format response or chunk (prompt/completion/total tokens), if present.
Usage ScanUsage(std::string_view json);

// What a streamed `data:` payload is, as far as the gateway cares.
struct ChunkFacts {
  Usage usage;
  bool usage_only = false;  // choices is an empty array (the include_usage chunk)
  bool is_error = false;    // an {"error": ...} object sent mid-stream
  bool valid = false;       // well-formed JSON object
};
ChunkFacts ScanChunk(std::string_view data);

// Whether a streamed chunk ends a choice: a `finish_reason` that is a string (not null).
bool ChunkFinishesAChoice(std::string_view data);
// A streamed chunk's top-level id, created and model (what a chunk Orchestra adds to the stream
// repeats); members that are absent leave their argument as it is.
void ChunkIdentity(std::string_view data, std::string& id, std::int64_t& created,
                   std::string& model);

}  // namespace orchestra::wire::openai
