// The request side of the OpenAI wire format, as a client's body meets it: the hot-path scan
// (wire::openai::ScanChatRequest), the splice that rewrites `model` and `stream_options` for an
// OpenAI-compatible upstream (providers/openai/body_splice.hpp), and the full decoders
// (ParseChatMessages, ParseEmbeddingRequest). Boost.JSON, which keeps the last of duplicate
// member names as most upstreams' parsers do, stands for the upstream.
//
// Invariants, for a body the scan accepts (escapes of UTF-16 surrogates are replaced first, as
// in json_scan):
// - the body is JSON to Boost.JSON too, and the model and stream the scan read are the ones the
//   upstream reads;
// - the spliced body is valid JSON in which `model` is the upstream model, include_usage is
//   true for a stream, and every other member is what the client sent;
// - on a valid UTF-8 body, ParseChatMessages never calls the body invalid JSON, and what it
//   reads (messages, their roles and string contents) is what Boost.JSON reads;
// - ParseEmbeddingRequest's model is the upstream's reading too, its span splices the same way,
//   and its inputs are the body's.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "api/json_body.hpp"
#include "common/utf8.hpp"
#include "fuzz/fuzz_support.hpp"
#include "providers/openai/body_splice.hpp"
#include "wire/openai_codec.hpp"
#include "wire/openai_scan.hpp"

namespace {

namespace json = boost::json;
using orchestra::fuzz::Shown;

// As in json_scan.cpp: every \u escape of a UTF-16 surrogate becomes \u0041.
std::string WithoutSurrogates(std::string_view text) {
  std::string out(text);
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] != '\\') continue;
    if (out[i + 1] == 'u' && i + 5 < out.size() && hex(out[i + 2]) && hex(out[i + 3]) &&
        hex(out[i + 4]) && hex(out[i + 5])) {
      const unsigned v = std::stoul(out.substr(i + 2, 4), nullptr, 16);
      if (v >= 0xD800 && v <= 0xDFFF) out.replace(i + 2, 4, "0041");
    }
    ++i;
  }
  return out;
}

// The upstream's reading of a body: invalid UTF-8 allowed (the scan does not check it), numbers
// the grammar allows but a double cannot hold count as unreadable (nothing to compare).
std::optional<json::object> UpstreamReads(std::string_view text) {
  json::parse_options options;
  options.max_depth = 100000;
  options.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, options);
  if (ec == json::error::exponent_overflow) return std::nullopt;
  FUZZ_CHECK(!ec,
             "the scan accepted what Boost.JSON refuses (" + ec.message() + "): " + Shown(text));
  FUZZ_CHECK(v.is_object(), "the scan accepted a body that is not an object");
  return std::move(v.get_object());
}

std::string Joined(const orchestra::net::OutgoingRequest& out) {
  std::string body;
  for (std::size_t i = 0; i < out.body_parts; ++i)
    body += out.body[i];
  return body;
}

json::object MustParse(std::string_view text, std::string_view what) {
  json::parse_options options;
  options.max_depth = 100000;
  options.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, options);
  FUZZ_CHECK(!ec && v.is_object(), std::string(what) + " is not a JSON object (" + ec.message() +
                                       "): " + Shown(text, 400));
  return std::move(v.get_object());
}

void CheckChat(const std::string& body, std::string_view upstream_model) {
  auto scanned = orchestra::wire::openai::ScanChatRequest(body);
  if (!scanned) return;
  orchestra::wire::ChatRequest& req = *scanned;
  const auto doc = UpstreamReads(body);
  if (!doc) return;

  const json::string* model = doc->at("model").if_string();
  FUZZ_CHECK(model != nullptr && *model == req.model, "the scan routes model '" + Shown(req.model) +
                                                          "', the upstream reads " +
                                                          json::serialize(doc->at("model")));
  const json::value* stream = doc->if_contains("stream");
  FUZZ_CHECK(req.stream == (stream != nullptr && stream->is_bool() && stream->get_bool()),
             "the scan reads stream " + std::to_string(req.stream) + ", the upstream " +
                 (stream ? json::serialize(*stream) : std::string("nothing")));

  // What the OpenAI-compatible provider sends (openai_provider.cpp: Forward and ChatStream).
  const std::string quoted = orchestra::JsonQuoted(upstream_model);
  orchestra::providers::Splice splices[2] = {{req.model_begin, req.model_end, quoted}};
  std::size_t count = 1;
  if (req.stream) splices[count++] = orchestra::providers::IncludeUsage(req);
  orchestra::net::OutgoingRequest out;
  orchestra::providers::AddSplicedBody(out, req.raw_body, std::span(splices, count));
  const std::string spliced = Joined(out);
  const json::object sent = MustParse(spliced, "the spliced body");
  const json::string* sent_model = sent.at("model").if_string();
  FUZZ_CHECK(sent_model != nullptr && *sent_model == upstream_model,
             "the upstream reads model " + json::serialize(sent.at("model")) + " in " +
                 Shown(spliced, 400));
  if (req.stream) {
    const json::object* options = sent.at("stream_options").if_object();
    FUZZ_CHECK(options != nullptr && options->contains("include_usage") &&
                   options->at("include_usage") == json::value(true),
               "include_usage not set: " + Shown(spliced, 400));
    if (const json::object* theirs = doc->at("stream_options").if_object()) {
      for (const auto& member : *theirs) {
        if (member.key() == "include_usage") continue;
        FUZZ_CHECK(options->contains(member.key()) && options->at(member.key()) == member.value(),
                   "the client's stream_options." + Shown(member.key()) + " was lost");
      }
    }
  }
  for (const auto& member : *doc) {
    if (member.key() == "model" || (req.stream && member.key() == "stream_options")) continue;
    FUZZ_CHECK(sent.contains(member.key()) && sent.at(member.key()) == member.value(),
               "member '" + Shown(member.key()) + "' changed by the splice: " + Shown(spliced));
  }

  // The translating providers' full parse of the same request.
  auto parsed = orchestra::wire::openai::ParseChatMessages(req);
  if (!parsed) {
    if (orchestra::utf8::IsValid(body)) {
      FUZZ_CHECK(parsed.error().message.find("not valid JSON") == std::string::npos,
                 "the scan accepts, ParseChatMessages says: " + parsed.error().message);
    }
    return;
  }
  const json::array* messages = doc->at("messages").if_array();
  FUZZ_CHECK(messages != nullptr && messages->size() == req.messages.size(),
             "ParseChatMessages read " + std::to_string(req.messages.size()) +
                 " messages, the upstream " + json::serialize(doc->at("messages")));
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const json::object& m = (*messages)[i].as_object();
    FUZZ_CHECK(m.at("role").as_string() == req.messages[i].role,
               "role of message " + std::to_string(i));
    const json::value* content_value = m.if_contains("content");
    if (const json::string* content = content_value ? content_value->if_string() : nullptr) {
      FUZZ_CHECK(*content == req.messages[i].content, "content of message " + std::to_string(i));
    }
  }
}

void CheckEmbedding(const std::string& body, std::string_view upstream_model) {
  auto parsed = orchestra::wire::openai::ParseEmbeddingRequest(body);
  if (!parsed) return;
  const orchestra::wire::EmbeddingRequest& req = *parsed;
  const auto doc = UpstreamReads(body);
  if (!doc) return;
  const json::string* model = doc->at("model").if_string();
  FUZZ_CHECK(model != nullptr && *model == req.model, "embeddings: model '" + Shown(req.model) +
                                                          "', the upstream reads " +
                                                          json::serialize(doc->at("model")));
  const json::value& input = doc->at("input");
  if (req.token_input) {
    FUZZ_CHECK(req.inputs.empty(), "token input with strings");
  } else if (const json::string* s = input.if_string()) {
    FUZZ_CHECK(req.inputs.size() == 1 && req.inputs[0] == *s, "embeddings: the string input");
  } else {
    const json::array& items = input.as_array();
    FUZZ_CHECK(items.size() == req.inputs.size(), "embeddings: the input count");
    for (std::size_t i = 0; i < items.size(); ++i)
      FUZZ_CHECK(items[i].as_string() == req.inputs[i], "embeddings: input " + std::to_string(i));
  }
  const std::string quoted = orchestra::JsonQuoted(upstream_model);
  orchestra::providers::Splice splice[1] = {{req.model_begin, req.model_end, quoted}};
  orchestra::net::OutgoingRequest out;
  orchestra::providers::AddSplicedBody(out, req.raw_body, splice);
  const std::string spliced = Joined(out);
  const json::object sent = MustParse(spliced, "the spliced embeddings body");
  const json::string* sent_model = sent.at("model").if_string();
  FUZZ_CHECK(sent_model != nullptr && *sent_model == upstream_model,
             "embeddings: the upstream reads model " + json::serialize(sent.at("model")));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body = WithoutSurrogates(orchestra::fuzz::AsText(data, size));
  // Upstream names that need no escaping, and one that does (a configured name is any string).
  const std::string_view upstream_model =
      size % 2 == 0 ? std::string_view("gpt-4o-mini") : std::string_view("up\"stream\\\n\u00e9");
  CheckChat(body, upstream_model);
  CheckEmbedding(body, upstream_model);
  return 0;
}
