// The request decoders and the translating providers' request encoders: a client's
// /v1/chat/completions body scanned (ScanChatRequest) and parsed (ParseChatMessages), then
// written for Gemini (BuildGenerateContentRequest) and Anthropic (BuildMessagesRequest, with and
// without streaming), and re-encoded in OpenAI's format (EncodeChatRequest, what the task
// services send); a /v1/embeddings body (ParseEmbeddingRequest) written for Gemini
// (BuildEmbedRequest).
//
// Input: a request body; the first byte's low bit picks chat (0) or embeddings (1).
//
// Invariants:
// - nothing crashes, leaks or is undefined; a refused request is an Error with a message;
// - every body written for an upstream is a JSON object;
// - the OpenAI re-encoding of a parsed plain-text chat request scans and parses again to the
//   same roles and contents.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "fuzz/fuzz_support.hpp"
#include "providers/anthropic/codec.hpp"
#include "providers/gemini/codec.hpp"
#include "wire/openai_codec.hpp"
#include "wire/openai_scan.hpp"

namespace {

namespace json = boost::json;
using orchestra::fuzz::Shown;

void MustBeObject(std::string_view text, std::string_view what) {
  json::parse_options options;
  options.allow_invalid_utf8 = true;
  options.max_depth = 100000;
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec, {}, options);
  FUZZ_CHECK(!ec && v.is_object(),
             std::string(what) + " is not a JSON object (" + ec.message() + "): " + Shown(text));
}

template <class R>
void CheckBuilt(const R& built, std::string_view what) {
  if (!built) {
    FUZZ_CHECK(!built.error().message.empty(), std::string(what) + ": an error without a message");
    return;
  }
  MustBeObject(*built, what);
}

void CheckChat(std::string body) {
  auto scanned = orchestra::wire::openai::ScanChatRequest(std::move(body));
  if (!scanned) return;
  orchestra::wire::ChatRequest& req = *scanned;
  if (!orchestra::wire::openai::ParseChatMessages(req)) return;

  CheckBuilt(orchestra::providers::gemini::BuildGenerateContentRequest(req), "the Gemini request");
  CheckBuilt(orchestra::providers::anthropic::BuildMessagesRequest(req, "claude-test", 4096, false),
             "the Anthropic request");
  CheckBuilt(orchestra::providers::anthropic::BuildMessagesRequest(req, "claude-test", 4096, true),
             "the Anthropic stream request");

  // EncodeChatRequest writes role, content and name only: the round trip holds for the
  // conversations the task services build, plain text ones.
  for (const auto& m : req.messages) {
    if (!m.tool_calls.empty() || !m.tool_call_id.empty() || m.has_non_text_parts ||
        !m.parts.empty() || m.role == "tool" || m.role == "function") {
      return;
    }
  }
  orchestra::wire::ChatRequest copy;
  copy.model = req.model;
  copy.stream = req.stream;
  copy.messages = req.messages;
  copy.temperature = req.temperature;
  copy.top_p = req.top_p;
  copy.max_tokens = req.max_tokens;
  copy.stop = req.stop;
  copy.n = req.n;
  copy.seed = req.seed;
  copy.user = req.user;
  orchestra::wire::openai::EncodeChatRequest(copy);
  MustBeObject(copy.raw_body, "the re-encoded request");
  auto again = orchestra::wire::openai::ScanChatRequest(copy.raw_body);
  FUZZ_CHECK(again.has_value(), "the re-encoded request does not scan: " + again.error().message +
                                    ": " + Shown(copy.raw_body, 400));
  FUZZ_CHECK(again->model == req.model, "the model changed: " + Shown(copy.raw_body, 400));
  auto parsed = orchestra::wire::openai::ParseChatMessages(*again);
  FUZZ_CHECK(parsed.has_value(), "the re-encoded request does not parse: " +
                                     parsed.error().message + ": " + Shown(copy.raw_body, 400));
  FUZZ_CHECK(again->messages.size() == req.messages.size(), "messages lost");
  for (std::size_t i = 0; i < req.messages.size(); ++i) {
    FUZZ_CHECK(again->messages[i].role == req.messages[i].role &&
                   again->messages[i].content == req.messages[i].content,
               "message " + std::to_string(i) + " changed: " + Shown(copy.raw_body, 400));
  }
}

void CheckEmbeddings(std::string body) {
  auto parsed = orchestra::wire::openai::ParseEmbeddingRequest(std::move(body));
  if (!parsed) {
    FUZZ_CHECK(!parsed.error().message.empty(), "an error without a message");
    return;
  }
  CheckBuilt(orchestra::providers::gemini::BuildEmbedRequest(*parsed, "text-embedding-test"),
             "the Gemini embed request");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string body(orchestra::fuzz::AsText(data + 1, size - 1));
  if (data[0] & 1) {
    CheckEmbeddings(std::move(body));
  } else {
    CheckChat(std::move(body));
  }
  return 0;
}
