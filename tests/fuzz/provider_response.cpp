// The provider response translators: an upstream's whole (non-streamed) body read into the
// canonical response, which is then what the client gets, encoded in OpenAI's format.
//
// Input: the first byte picks the translator (its value mod 6), the rest is the body:
//   0 OpenAI chat (ParseChatResponse)          3 Gemini embedContent (ParseEmbedResponse)
//   1 OpenAI embeddings (ParseEmbeddingResponse) 4 Gemini batchEmbedContents
//   2 Gemini generateContent                   5 Anthropic messages (ParseMessagesResponse)
//
// Invariants:
// - nothing crashes, leaks or is undefined; a refused body is an Error with a message;
// - a chat response encodes (EncodeChatResponse) to a JSON object that ParseChatResponse reads
//   back with the same choices (content, finish_reason, tool calls) and usage; usage is never
//   negative;
// - embeddings encode as floats and as base64 to JSON that ParseEmbeddingResponse reads back
//   as the same number of vectors of the same sizes (base64: the same bits).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "fuzz/fuzz_support.hpp"
#include "providers/anthropic/codec.hpp"
#include "providers/gemini/codec.hpp"
#include "wire/openai_codec.hpp"

namespace {

namespace json = boost::json;
using orchestra::fuzz::Shown;

void MustBeObject(std::string_view text, std::string_view what) {
  json::parse_options options;
  options.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec, {}, options);
  FUZZ_CHECK(!ec && v.is_object(),
             std::string(what) + " is not a JSON object (" + ec.message() + "): " + Shown(text));
}

void CheckUsage(const orchestra::wire::Usage& usage) {
  FUZZ_CHECK(usage.prompt_tokens >= 0 && usage.completion_tokens >= 0 && usage.total_tokens >= 0,
             "negative usage: " + std::to_string(usage.prompt_tokens) + "/" +
                 std::to_string(usage.completion_tokens) + "/" +
                 std::to_string(usage.total_tokens));
}

void CheckChat(const orchestra::Result<orchestra::wire::ChatResponse>& parsed) {
  if (!parsed) {
    FUZZ_CHECK(!parsed.error().message.empty(), "an error without a message");
    return;
  }
  const orchestra::wire::ChatResponse& response = *parsed;
  CheckUsage(response.usage);
  const std::string encoded = orchestra::wire::openai::EncodeChatResponse(response);
  MustBeObject(encoded, "the encoded response");
  auto back = orchestra::wire::openai::ParseChatResponse(encoded);
  FUZZ_CHECK(back.has_value(), "the encoded response does not parse: " + back.error().message +
                                   ": " + Shown(encoded));
  FUZZ_CHECK(back->choices.size() == response.choices.size(), "choices lost: " + Shown(encoded));
  for (std::size_t i = 0; i < response.choices.size(); ++i) {
    const auto& a = response.choices[i];
    const auto& b = back->choices[i];
    FUZZ_CHECK(a.content == b.content && a.finish_reason == b.finish_reason &&
                   a.tool_calls.size() == b.tool_calls.size(),
               "choice " + std::to_string(i) + " changed: " + Shown(encoded));
    for (std::size_t k = 0; k < a.tool_calls.size(); ++k) {
      FUZZ_CHECK(a.tool_calls[k].id == b.tool_calls[k].id &&
                     a.tool_calls[k].name == b.tool_calls[k].name &&
                     a.tool_calls[k].arguments == b.tool_calls[k].arguments,
                 "tool call " + std::to_string(k) + " changed: " + Shown(encoded));
    }
  }
  if (response.usage.known) {
    FUZZ_CHECK(back->usage.prompt_tokens == response.usage.prompt_tokens &&
                   back->usage.completion_tokens == response.usage.completion_tokens,
               "usage changed: " + Shown(encoded));
  }
}

void CheckEmbeddings(const orchestra::Result<orchestra::wire::EmbeddingResponse>& parsed) {
  if (!parsed) {
    FUZZ_CHECK(!parsed.error().message.empty(), "an error without a message");
    return;
  }
  for (const char* format : {"float", "base64"}) {
    const std::string encoded = orchestra::wire::openai::EncodeEmbeddingResponse(*parsed, format);
    MustBeObject(encoded, "the encoded embeddings");
    auto back = orchestra::wire::openai::ParseEmbeddingResponse(encoded);
    FUZZ_CHECK(back.has_value(), std::string(format) + " embeddings do not parse: " +
                                     back.error().message + ": " + Shown(encoded));
    FUZZ_CHECK(back->vectors.size() == parsed->vectors.size(), "vectors lost: " + Shown(encoded));
    for (std::size_t i = 0; i < parsed->vectors.size(); ++i) {
      const auto& a = parsed->vectors[i];
      const auto& b = back->vectors[i];
      FUZZ_CHECK(a.size() == b.size(), "vector " + std::to_string(i) + " changed its size");
      if (std::string_view(format) == "base64" && !a.empty()) {
        FUZZ_CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0,
                   "vector " + std::to_string(i) + " changed in base64");
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view body = orchestra::fuzz::AsText(data + 1, size - 1);
  namespace gemini = orchestra::providers::gemini;
  switch (data[0] % 6) {
    case 0:
      CheckChat(orchestra::wire::openai::ParseChatResponse(body));
      break;
    case 1:
      CheckEmbeddings(orchestra::wire::openai::ParseEmbeddingResponse(body));
      break;
    case 2:
      CheckChat(gemini::ParseGenerateContentResponse(body, "gemini-test"));
      break;
    case 3:
      CheckEmbeddings(gemini::ParseEmbedResponse(body, false));
      break;
    case 4:
      CheckEmbeddings(gemini::ParseEmbedResponse(body, true));
      break;
    default:
      CheckChat(orchestra::providers::anthropic::ParseMessagesResponse(body));
      break;
  }
  return 0;
}
