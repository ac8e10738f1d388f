#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "common/error.hpp"
#include "wire/types.hpp"

// Helpers shared by the provider wire-format codecs (providers/{openai,gemini,anthropic}/codec).
// Everything here is a pure function of its arguments, apart from the id generators and the
// clock; all are safe to call from any thread.
namespace orchestra::wire {

// The human-readable explanation in an upstream error body, whichever provider sent it:
// OpenAI `{"error":{"message"}}`, Gemini `{"error":{"code","message","status"}}` (also inside
// the one-element array that a non-SSE stream answers with), Anthropic
// `{"type":"error","error":{"type","message"}}`. Falls back to a trimmed, single-line excerpt
// of the body (at most 200 bytes) when the body has none of these shapes.
std::string ErrorMessageFromBody(std::string_view body);

// RFC 4648 base64 with padding.
std::string Base64Encode(std::string_view bytes);
// Accepts padded or unpadded standard base64 (no whitespace); nullopt when malformed.
std::optional<std::string> Base64Decode(std::string_view text);

// An embedding as OpenAI's `encoding_format: "base64"` sends it: the float32 values as
// little-endian bytes, base64-encoded.
std::string EncodeFloatsBase64(std::span<const float> values);
// The inverse; nullopt when the text is not base64 or not a whole number of float32 values.
std::optional<std::vector<float>> DecodeFloatsBase64(std::string_view text);

// A `data:<mime type>;base64,<data>` URL (an image sent inline), split; nullopt for any other
// URL. The views point into `url`; the data is not decoded.
struct DataUrl {
  std::string_view mime_type;
  std::string_view base64_data;
};
std::optional<DataUrl> ParseDataUrl(std::string_view url);

// Appends `value` as the shortest JSON number that reads back as the same float (a non-finite
// value, which JSON cannot hold, is written as 0).
void AppendJsonFloat(std::string& out, float value);
// Appends `text` as a JSON string, quotes included.
void AppendJsonString(std::string& out, std::string_view text);
// Adds the member `name`: `value_json` (JSON text) last in `object_json`, a JSON object (trailing
// whitespace allowed), keeping the rest as it is. Not for a name the object already has.
void AppendMember(std::string& object_json, std::string_view name, std::string_view value_json);

// Fresh identifiers in OpenAI's shapes: "chatcmpl-" + 24 hex digits, "call_" + 24 hex digits.
std::string NewChatCompletionId();
std::string NewToolCallId();
// Seconds since the Unix epoch (the `created` field).
std::int64_t UnixNow();

// Internal to the codecs: Boost.JSON helpers. Nothing outside providers/*/codec.cpp should
// include these in its interface (the codecs' own interfaces take and return JSON text).
namespace codec_detail {

// Parses `text` (at most 128 levels deep) into `out`, allocating from `out`'s storage. On
// failure returns an error with `code` whose message starts with `what` ("the upstream
// response is not valid JSON") and names the byte offset.
Result<void> ParseJson(std::string_view text, boost::json::value& out, std::string_view what,
                       ErrorCode code);

const boost::json::value* Find(const boost::json::object& object, std::string_view key);
// The member as a string/object/array, or nullptr when absent or of another type.
const boost::json::string* FindString(const boost::json::object& object, std::string_view key);
const boost::json::object* FindObject(const boost::json::object& object, std::string_view key);
const boost::json::array* FindArray(const boost::json::object& object, std::string_view key);
// A JSON number that holds an integer (also 3.0), as int64; nullopt otherwise.
std::optional<std::int64_t> AsInteger(const boost::json::value& value);
std::optional<std::int64_t> FindInteger(const boost::json::object& object, std::string_view key);
// A token count of an upstream's usage: an integer in [0, kMaxTokenCount], else nothing (an
// upstream's negative count once reached the token metrics as 2^64 - 5; tests/fuzz).
inline constexpr std::int64_t kMaxTokenCount = 1'000'000'000'000;
std::optional<std::int64_t> FindTokenCount(const boost::json::object& object, std::string_view key);
// Any JSON number as a finite double; nothing for what Boost.JSON read as NaN or infinity.
std::optional<double> AsNumber(const boost::json::value& value);

// A member's string value as std::string ("" when absent or not a string).
std::string StringOr(const boost::json::object& object, std::string_view key);

// OpenAI's `tools` and `tool_choice` as a translating codec needs them; `provider` names the
// provider in refusals ("Gemini accepts only function tools").
struct FunctionTool {
  const boost::json::string* name = nullptr;
  const boost::json::string* description = nullptr;  // absent: nullptr
  const boost::json::value* parameters = nullptr;    // absent or null: nullptr
};
// The function tools of a `tools` array, pointing into `doc` (which holds the parsed array and
// must outlive them). Any other kind of tool, or a function without a string name, is refused
// naming the element ("tools[2]").
Result<std::vector<FunctionTool>> ReadFunctionTools(std::string_view tools_json,
                                                    boost::json::value& doc,
                                                    std::string_view provider);
enum class ToolMode : std::uint8_t { kAuto, kNone, kRequired, kFunction };
struct ToolChoice {
  ToolMode mode = ToolMode::kAuto;
  std::string function;  // kFunction: the function's name
};
Result<ToolChoice> ReadToolChoice(std::string_view tool_choice_json, std::string_view provider);

}  // namespace codec_detail

}  // namespace orchestra::wire
