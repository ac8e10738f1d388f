#include "wire/codec_util.hpp"

#include <array>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>

#include <boost/json.hpp>

#include "common/random.hpp"
#include "common/text.hpp"

namespace orchestra::wire {
namespace {

namespace json = boost::json;

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::size_t kMaxExcerpt = 200;

// -1 for a byte outside the alphabet.
constexpr std::array<std::int8_t, 256> MakeBase64Table() {
  std::array<std::int8_t, 256> table{};
  for (auto& t : table)
    t = -1;
  for (std::size_t i = 0; i < kBase64Alphabet.size(); ++i) {
    table[static_cast<unsigned char>(kBase64Alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return table;
}
constexpr std::array<std::int8_t, 256> kBase64Table = MakeBase64Table();

std::string MessageOfErrorObject(const json::object& error) {
  if (const auto* message = codec_detail::FindString(error, "message");
      message != nullptr && !message->empty()) {
    return std::string(*message);
  }
  if (const auto* status = codec_detail::FindString(error, "status"); status != nullptr) {
    return std::string(*status);
  }
  if (const auto* type = codec_detail::FindString(error, "type"); type != nullptr) {
    return std::string(*type);
  }
  return {};
}

std::string MessageOfErrorDocument(const json::value& doc) {
  const json::object* top = doc.if_object();
  if (top == nullptr) {
    // streamGenerateContent without alt=sse answers errors as a one-element array.
    if (const json::array* array = doc.if_array(); array != nullptr && !array->empty()) {
      top = (*array)[0].if_object();
    }
  }
  if (top == nullptr) return {};
  if (const json::value* error = codec_detail::Find(*top, "error"); error != nullptr) {
    if (const json::object* object = error->if_object(); object != nullptr) {
      return MessageOfErrorObject(*object);
    }
    if (const json::string* text = error->if_string(); text != nullptr) {
      return std::string(*text);
    }
  }
  // Some OpenAI-compatible servers (vLLM, llama.cpp) put the message at the top level.
  if (const auto* message = codec_detail::FindString(*top, "message"); message != nullptr) {
    return std::string(*message);
  }
  return {};
}

std::string Excerpt(std::string_view body) {
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!body.empty() && is_space(body.front()))
    body.remove_prefix(1);
  while (!body.empty() && is_space(body.back()))
    body.remove_suffix(1);
  if (body.size() > kMaxExcerpt) {
    std::size_t cut = kMaxExcerpt;
    // Do not split a UTF-8 sequence: back off over continuation bytes.
    while (cut > 0 && (static_cast<unsigned char>(body[cut]) & 0xC0) == 0x80)
      --cut;
    body = body.substr(0, cut);
  }
  std::string out(body);
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

}  // namespace

std::string ErrorMessageFromBody(std::string_view body) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (codec_detail::ParseJson(body, doc, "", ErrorCode::kUpstreamError)) {
    std::string message = MessageOfErrorDocument(doc);
    if (!message.empty()) return message;
  }
  return Excerpt(body);
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += kBase64Alphabet[(n >> 18) & 63];
    out += kBase64Alphabet[(n >> 12) & 63];
    out += kBase64Alphabet[(n >> 6) & 63];
    out += kBase64Alphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t n = byte(i) << 16;
    out += kBase64Alphabet[(n >> 18) & 63];
    out += kBase64Alphabet[(n >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8);
    out += kBase64Alphabet[(n >> 18) & 63];
    out += kBase64Alphabet[(n >> 12) & 63];
    out += kBase64Alphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 == 0 && !text.empty()) {
    if (text.back() == '=') text.remove_suffix(1);
    if (!text.empty() && text.back() == '=') text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const std::int8_t v = kBase64Table[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // Leftover bits must be zero padding, as an encoder writes them.
  if (bits > 0 && (acc & ((1U << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string EncodeFloatsBase64(std::span<const float> values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto bits = std::bit_cast<std::uint32_t>(values[i]);
    if constexpr (std::endian::native == std::endian::big) bits = __builtin_bswap32(bits);
    std::memcpy(bytes.data() + i * sizeof(float), &bits, sizeof(bits));
  }
  return Base64Encode(bytes);
}

std::optional<std::vector<float>> DecodeFloatsBase64(std::string_view text) {
  auto bytes = Base64Decode(text);
  if (!bytes || bytes->size() % sizeof(float) != 0) return std::nullopt;
  std::vector<float> values(bytes->size() / sizeof(float));
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, bytes->data() + i * sizeof(float), sizeof(bits));
    if constexpr (std::endian::native == std::endian::big) bits = __builtin_bswap32(bits);
    values[i] = std::bit_cast<float>(bits);
  }
  return values;
}

std::optional<DataUrl> ParseDataUrl(std::string_view url) {
  constexpr std::string_view kScheme = "data:";
  constexpr std::string_view kBase64 = ";base64";
  if (url.size() < kScheme.size() || !EqualsIgnoreCase(url.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  url.remove_prefix(kScheme.size());
  const std::size_t comma = url.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  std::string_view header = url.substr(0, comma);
  const std::string_view data = url.substr(comma + 1);
  if (header.size() < kBase64.size() ||
      !EqualsIgnoreCase(header.substr(header.size() - kBase64.size()), kBase64)) {
    return std::nullopt;
  }
  header.remove_suffix(kBase64.size());
  const std::string_view mime_type = header.substr(0, header.find(';'));
  if (mime_type.empty() || mime_type.find('/') == std::string_view::npos || data.empty()) {
    return std::nullopt;
  }
  return DataUrl{mime_type, data};
}

void AppendJsonFloat(std::string& out, float value) {
  if (!std::isfinite(value)) {
    out += '0';
    return;
  }
  std::array<char, 32> buffer{};
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (ec != std::errc()) {
    out += '0';
    return;
  }
  out.append(buffer.data(), end);
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  AppendJsonEscaped(out, text);
  out += '"';
}

void AppendMember(std::string& object_json, std::string_view name, std::string_view value_json) {
  const std::size_t close = object_json.rfind('}');
  if (close == std::string::npos) return;
  std::size_t before = close;
  while (before > 0 && (object_json[before - 1] == ' ' || object_json[before - 1] == '\n' ||
                        object_json[before - 1] == '\r' || object_json[before - 1] == '\t')) {
    --before;
  }
  std::string member;
  if (before > 0 && object_json[before - 1] != '{') member += ',';
  AppendJsonString(member, name);
  member += ':';
  member += value_json;
  object_json.insert(before, member);
}

std::string NewChatCompletionId() {
  return "chatcmpl-" + RandomHex(12);
}

std::string NewToolCallId() {
  return "call_" + RandomHex(12);
}

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace codec_detail {

Result<void> ParseJson(std::string_view text, json::value& out, std::string_view what,
                       ErrorCode code) {
  json::parse_options options;
  options.max_depth = 128;
  json::stream_parser parser(out.storage(), options);
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (!ec && used != text.size()) ec = json::error::extra_data;
  if (ec) {
    return Error(code, std::string(what) + " is not valid JSON (" + ec.message() + " at byte " +
                           std::to_string(used) + ")");
  }
  out = parser.release();
  return {};
}

const json::value* Find(const json::object& object, std::string_view key) {
  return object.if_contains(key);
}

const json::string* FindString(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

const json::object* FindObject(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return v != nullptr ? v->if_object() : nullptr;
}

const json::array* FindArray(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return v != nullptr ? v->if_array() : nullptr;
}

std::optional<std::int64_t> AsInteger(const json::value& value) {
  switch (value.kind()) {
    case json::kind::int64:
      return value.get_int64();
    case json::kind::uint64:
      if (value.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<std::int64_t>(value.get_uint64());
    case json::kind::double_: {
      const double d = value.get_double();
      // 2^63 is exactly representable; anything at or beyond it does not fit.
      if (!std::isfinite(d) || d != std::trunc(d) || d >= 9223372036854775808.0 ||
          d < -9223372036854775808.0) {
        return std::nullopt;
      }
      return static_cast<std::int64_t>(d);
    }
    default:
      return std::nullopt;
  }
}

std::optional<std::int64_t> FindTokenCount(const json::object& object, std::string_view key) {
  auto n = FindInteger(object, key);
  if (!n || *n < 0 || *n > kMaxTokenCount) return std::nullopt;
  return n;
}

std::optional<std::int64_t> FindInteger(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return v != nullptr ? AsInteger(*v) : std::nullopt;
}

std::optional<double> AsNumber(const json::value& value) {
  switch (value.kind()) {
    case json::kind::int64:
      return static_cast<double>(value.get_int64());
    case json::kind::uint64:
      return static_cast<double>(value.get_uint64());
    case json::kind::double_:
      // A JSON number is never NaN nor infinite, but Boost.JSON 1.81 reads `0e9990` as NaN:
      // such a value is not a number anyone can use (found by tests/fuzz/provider_request).
      if (!std::isfinite(value.get_double())) return std::nullopt;
      return value.get_double();
    default:
      return std::nullopt;
  }
}

std::string StringOr(const json::object& object, std::string_view key) {
  const json::string* s = FindString(object, key);
  return s != nullptr ? std::string(*s) : std::string();
}

Result<std::vector<FunctionTool>> ReadFunctionTools(std::string_view tools_json, json::value& doc,
                                                    std::string_view provider) {
  if (auto parsed = ParseJson(tools_json, doc, "'tools'", ErrorCode::kInvalidRequest); !parsed) {
    return parsed.error();
  }
  const json::array* tools = doc.if_array();
  if (tools == nullptr)
    return Error(ErrorCode::kInvalidRequest, "'tools' must be an array", "tools");
  std::vector<FunctionTool> out;
  for (std::size_t k = 0; k < tools->size(); ++k) {
    const std::string param = "tools[" + std::to_string(k) + "]";
    const json::object* tool = (*tools)[k].if_object();
    const json::object* function = tool != nullptr ? FindObject(*tool, "function") : nullptr;
    const json::string* type = tool != nullptr ? FindString(*tool, "type") : nullptr;
    if (type == nullptr || *type != "function" || function == nullptr) {
      return Error(ErrorCode::kInvalidRequest,
                   "'" + param + "': " + std::string(provider) + " accepts only function tools",
                   param);
    }
    FunctionTool f;
    f.name = FindString(*function, "name");
    if (f.name == nullptr) {
      return Error(ErrorCode::kInvalidRequest, "'" + param + ".function.name' must be a string",
                   param + ".function.name");
    }
    f.description = FindString(*function, "description");
    f.parameters = Find(*function, "parameters");
    if (f.parameters != nullptr && f.parameters->is_null()) f.parameters = nullptr;
    out.push_back(f);
  }
  return out;
}

Result<ToolChoice> ReadToolChoice(std::string_view tool_choice_json, std::string_view provider) {
  json::value doc;
  if (auto parsed = ParseJson(tool_choice_json, doc, "'tool_choice'", ErrorCode::kInvalidRequest);
      !parsed) {
    return parsed.error();
  }
  ToolChoice out;
  if (const json::string* mode = doc.if_string(); mode != nullptr) {
    if (*mode == "auto") {
      out.mode = ToolMode::kAuto;
    } else if (*mode == "none") {
      out.mode = ToolMode::kNone;
    } else if (*mode == "required") {
      out.mode = ToolMode::kRequired;
    } else {
      return Error(ErrorCode::kInvalidRequest,
                   "'tool_choice' must be 'none', 'auto', 'required' or a function", "tool_choice");
    }
    return out;
  }
  const json::object* choice = doc.if_object();
  const json::object* function = choice != nullptr ? FindObject(*choice, "function") : nullptr;
  const json::string* name = function != nullptr ? FindString(*function, "name") : nullptr;
  if (name == nullptr) {
    return Error(ErrorCode::kInvalidRequest,
                 "'tool_choice': " + std::string(provider) +
                     " accepts 'none', 'auto', 'required' or "
                     "{\"type\":\"function\",\"function\":{\"name\":...}}",
                 "tool_choice");
  }
  out.mode = ToolMode::kFunction;
  out.function = std::string(*name);
  return out;
}

}  // namespace codec_detail
}  // namespace orchestra::wire
