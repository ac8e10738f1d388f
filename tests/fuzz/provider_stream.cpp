// A provider's streamed answer as the gateway reads it: the bytes split into events by
// net::SseParser, then each event through that provider's path:
// - OpenAI-compatible: the hot-path ScanChunk (usage, error, validity) and the full
//   ParseChatChunk, up to "[DONE]";
// - Gemini: gemini::StreamDecoder (one GenerateContentResponse per `data:`);
// - Anthropic: anthropic::StreamDecoder (named events).
//
// Input: the first byte picks the provider (its value mod 3), the rest is the stream's body.
//
// Invariants:
// - nothing crashes, leaks or is undefined, whatever the events say;
// - ScanChunk calls valid whatever ParseChatChunk reads (the scanner is the more lenient, see
//   json_scan), is_error only a payload with an "error" member;
// - every chunk a decoder produces, and its final usage chunk, encodes (EncodeChatChunk) to a
//   JSON object that ParseChatChunk reads back with the same id, content, finish_reason and
//   tool calls; usage counts are never negative;
// - a decoder that returned an error is not fed again (the caller ends the stream there).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "fuzz/fuzz_support.hpp"
#include "net/sse.hpp"
#include "providers/anthropic/codec.hpp"
#include "providers/gemini/codec.hpp"
#include "wire/openai_codec.hpp"
#include "wire/openai_scan.hpp"

namespace {

namespace json = boost::json;
using orchestra::fuzz::Shown;
using orchestra::wire::ChatChunk;

bool ReadsAsObject(std::string_view text, json::value& out) {
  json::parse_options options;
  options.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  out = json::parse(text, ec, {}, options);
  return !ec && out.is_object();
}

void CheckUsage(const orchestra::wire::Usage& usage) {
  FUZZ_CHECK(usage.prompt_tokens >= 0 && usage.completion_tokens >= 0 && usage.total_tokens >= 0,
             "negative usage: " + std::to_string(usage.prompt_tokens) + "/" +
                 std::to_string(usage.completion_tokens) + "/" +
                 std::to_string(usage.total_tokens));
}

// What a client receives for `chunk` is JSON and reads back as the same chunk.
void CheckEncoded(const ChatChunk& chunk) {
  const std::string encoded = orchestra::wire::openai::EncodeChatChunk(chunk);
  json::value v;
  FUZZ_CHECK(ReadsAsObject(encoded, v), "a chunk that is not a JSON object: " + Shown(encoded));
  if (chunk.usage) CheckUsage(*chunk.usage);
  auto back = orchestra::wire::openai::ParseChatChunk(encoded);
  FUZZ_CHECK(back.has_value(),
             "the encoded chunk does not parse: " + back.error().message + ": " + Shown(encoded));
  FUZZ_CHECK(back->id == chunk.id, "id changed: " + Shown(encoded));
  if (chunk.usage_only) {
    FUZZ_CHECK(back->usage_only, "usage_only lost: " + Shown(encoded));
    return;
  }
  FUZZ_CHECK(back->content == chunk.content, "content changed: " + Shown(encoded));
  FUZZ_CHECK(back->finish_reason == chunk.finish_reason,
             "finish_reason changed: " + Shown(encoded));
  FUZZ_CHECK(back->tool_calls.size() == chunk.tool_calls.size(),
             "tool call count changed: " + Shown(encoded));
  for (std::size_t i = 0; i < chunk.tool_calls.size(); ++i) {
    FUZZ_CHECK(back->tool_calls[i].arguments == chunk.tool_calls[i].arguments &&
                   back->tool_calls[i].index == chunk.tool_calls[i].index,
               "tool call " + std::to_string(i) + " changed: " + Shown(encoded));
  }
}

void OpenAiEvent(std::string_view data, bool& done) {
  if (data == "[DONE]") {
    done = true;
    return;
  }
  const auto facts = orchestra::wire::openai::ScanChunk(data);
  json::value v;
  const bool object = ReadsAsObject(data, v);
  if (facts.is_error && object) {
    FUZZ_CHECK(v.as_object().contains("error"), "is_error without an error member: " + Shown(data));
  }
  CheckUsage(facts.usage);
  auto chunk = orchestra::wire::openai::ParseChatChunk(data);
  if (chunk) {
    FUZZ_CHECK(facts.valid, "ParseChatChunk reads what ScanChunk calls invalid: " + Shown(data));
    if (chunk->usage) CheckUsage(*chunk->usage);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const int provider = data[0] % 3;
  const std::string_view body = orchestra::fuzz::AsText(data + 1, size - 1);

  orchestra::net::SseParser parser(1 << 20);
  orchestra::net::SseEvent event;
  orchestra::providers::gemini::StreamDecoder gemini("gemini-test");
  orchestra::providers::anthropic::StreamDecoder anthropic;
  bool done = false;
  bool failed = false;
  // Fed in two pieces, as a network read might cut it.
  const std::size_t cut = body.size() / 2;
  for (const std::string_view piece : {body.substr(0, cut), body.substr(cut)}) {
    if (!parser.Feed(piece)) return 0;
    while (!done && !failed && parser.Next(event)) {
      if (provider == 0) {
        OpenAiEvent(event.data, done);
        continue;
      }
      auto chunks =
          provider == 1 ? gemini.Feed(event.data) : anthropic.Feed(event.event, event.data);
      if (!chunks) {
        FUZZ_CHECK(!chunks.error().message.empty(), "an error without a message");
        failed = true;
        break;
      }
      for (const ChatChunk& chunk : *chunks)
        CheckEncoded(chunk);
    }
  }
  if (provider == 1) {
    CheckUsage(gemini.usage());
    if (auto last = gemini.Finish()) CheckEncoded(*last);
  } else if (provider == 2) {
    CheckUsage(anthropic.usage());
    if (auto last = anthropic.Finish()) CheckEncoded(*last);
  }
  return 0;
}
