#include "providers/anthropic/codec.hpp"

#include <utility>

#include <boost/json.hpp>

#include "common/text.hpp"
#include "wire/codec_util.hpp"

namespace orchestra::providers::anthropic {
namespace {

namespace json = boost::json;
using wire::codec_detail::Find;
using wire::codec_detail::FindArray;
using wire::codec_detail::FindInteger;
using wire::codec_detail::FindObject;
using wire::codec_detail::FindString;
using wire::codec_detail::FindTokenCount;
using wire::codec_detail::ParseJson;
using wire::codec_detail::StringOr;

// Tool call ids longer than this, or with other characters, are replaced (see the header).
constexpr std::size_t kMaxToolIdLength = 64;

Error Invalid(std::string message, std::string param) {
  return Error(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
}

Error UpstreamError(std::string message) {
  return Error(ErrorCode::kUpstreamError, std::move(message));
}

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

std::string Indexed(std::string_view base, std::size_t i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}

// ---------------------------------------------------------------------------------------------
// Request

bool IsValidToolId(std::string_view id) {
  if (id.empty() || id.size() > kMaxToolIdLength) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string ToolId(std::string_view id) {
  if (IsValidToolId(id)) return std::string(id);
  // FNV-1a: stable, so a tool_use and the tool_result that names it map to the same id.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : id) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  std::uint8_t bytes[8];
  for (int k = 0; k < 8; ++k)
    bytes[k] = static_cast<std::uint8_t>(hash >> (56 - 8 * k));
  return "toolu_" + HexEncode(bytes);
}

json::object TextBlock(std::string_view text) {
  json::object block;
  block["type"] = "text";
  block["text"] = text;
  return block;
}

// A user message's blocks: its text, or its text and images in order (inline data: URLs as
// base64 sources, http(s) URLs as url sources). Empty text, which Anthropic rejects, is left out.
Result<json::array> UserBlocks(const wire::Message& m, const std::string& param) {
  json::array blocks;
  if (m.parts.empty()) {
    if (!m.content.empty()) blocks.push_back(TextBlock(m.content));
    return blocks;
  }
  for (std::size_t j = 0; j < m.parts.size(); ++j) {
    const wire::ContentPart& part = m.parts[j];
    if (part.image_url.empty()) {
      if (!part.text.empty()) blocks.push_back(TextBlock(part.text));
      continue;
    }
    json::object source;
    if (const auto data = wire::ParseDataUrl(part.image_url)) {
      source["type"] = "base64";
      source["media_type"] = data->mime_type;
      source["data"] = data->base64_data;
    } else if (part.image_url.starts_with("https://") || part.image_url.starts_with("http://")) {
      source["type"] = "url";
      source["url"] = part.image_url;
    } else {
      const std::string url_param = Indexed(param + ".content", j) + ".image_url.url";
      return Invalid("'" + url_param + "' must be an http(s) URL or a base64 data: URL", url_param);
    }
    json::object block;
    block["type"] = "image";
    block["source"] = std::move(source);
    blocks.push_back(std::move(block));
  }
  return blocks;
}

// Appends a message of `role`, merged into the previous one when it has the same role.
void AddMessage(json::array& messages, std::string_view role, json::array blocks) {
  if (blocks.empty()) return;
  if (!messages.empty()) {
    json::object& last = messages.back().as_object();
    if (last["role"].as_string() == role) {
      json::array& last_blocks = last["content"].as_array();
      for (json::value& b : blocks)
        last_blocks.push_back(std::move(b));
      return;
    }
  }
  json::object message;
  message["role"] = role;
  message["content"] = std::move(blocks);
  messages.push_back(std::move(message));
}

Result<json::value> ParseInput(std::string_view arguments, const std::string& param) {
  std::string_view text = arguments;
  while (!text.empty() && IsJsonSpace(text.front()))
    text.remove_prefix(1);
  if (text.empty()) return json::value(json::object());
  json::value input;
  if (auto parsed = ParseJson(text, input, "'" + param + "'", ErrorCode::kInvalidRequest);
      !parsed || !input.is_object()) {
    return Invalid("'" + param + "' must be a JSON object to be sent to Anthropic", param);
  }
  return input;
}

Result<json::array> Tools(std::string_view tools_json) {
  json::value doc;
  auto tools = wire::codec_detail::ReadFunctionTools(tools_json, doc, "Anthropic");
  if (!tools) return tools.error();
  json::array out;
  for (const wire::codec_detail::FunctionTool& tool : *tools) {
    json::object converted;
    converted["name"] = *tool.name;
    if (tool.description != nullptr) converted["description"] = *tool.description;
    if (tool.parameters != nullptr && tool.parameters->is_object()) {
      converted["input_schema"] = *tool.parameters;
    } else {
      // Anthropic requires an object schema; a function without parameters takes none.
      json::object schema;
      schema["type"] = "object";
      schema["properties"] = json::object();
      converted["input_schema"] = std::move(schema);
    }
    out.push_back(std::move(converted));
  }
  return out;
}

Result<json::object> ToolChoice(std::string_view tool_choice_json) {
  using wire::codec_detail::ToolMode;
  auto choice = wire::codec_detail::ReadToolChoice(tool_choice_json, "Anthropic");
  if (!choice) return choice.error();
  json::object out;
  switch (choice->mode) {
    case ToolMode::kAuto:
      out["type"] = "auto";
      break;
    case ToolMode::kNone:
      out["type"] = "none";
      break;
    case ToolMode::kRequired:
      out["type"] = "any";
      break;
    case ToolMode::kFunction:
      out["type"] = "tool";
      out["name"] = choice->function;
      break;
  }
  return out;
}

Result<void> CheckResponseFormat(std::string_view response_format_json) {
  json::value doc;
  if (auto parsed =
          ParseJson(response_format_json, doc, "'response_format'", ErrorCode::kInvalidRequest);
      !parsed) {
    return parsed.error();
  }
  const json::object* format = doc.if_object();
  const json::string* type = format != nullptr ? FindString(*format, "type") : nullptr;
  if (type != nullptr && *type == "text") return {};
  return Invalid("'response_format' other than text cannot be sent to Anthropic",
                 "response_format");
}

// ---------------------------------------------------------------------------------------------
// Responses

std::string MapStopReason(std::string_view reason) {
  if (reason.empty()) return {};
  if (reason == "max_tokens" || reason == "model_context_window_exceeded") return "length";
  if (reason == "tool_use") return "tool_calls";
  if (reason == "refusal") return "content_filter";
  return "stop";  // end_turn, stop_sequence, pause_turn
}

// Anthropic's error type → our code and the HTTP status Anthropic documents for it.
Error ErrorFromObject(const json::object& error) {
  const std::string type = StringOr(error, "type");
  std::string message = StringOr(error, "message");
  if (message.empty()) message = type;
  ErrorCode code = ErrorCode::kUpstreamError;
  int status = 500;
  if (type == "invalid_request_error") {
    status = 400;
  } else if (type == "authentication_error") {
    status = 401;
  } else if (type == "permission_error") {
    status = 403;
  } else if (type == "not_found_error") {
    status = 404;
  } else if (type == "request_too_large") {
    status = 413;
  } else if (type == "rate_limit_error") {
    code = ErrorCode::kRateLimited;
    status = 429;
  } else if (type == "overloaded_error") {
    code = ErrorCode::kUnavailable;
    status = 529;
  }
  return Error(code, "Anthropic error (" + type + "): " + message, {}, status);
}

std::optional<Error> ErrorDocument(const json::object& top) {
  if (const json::object* error = FindObject(top, "error"); error != nullptr) {
    return ErrorFromObject(*error);
  }
  if (const json::string* type = FindString(top, "type"); type != nullptr && *type == "error") {
    return UpstreamError("Anthropic error without details");
  }
  return std::nullopt;
}

// Adds an Anthropic usage object's counts to `usage` (prompt = input + cache creation + cache
// read). Counts absent from `u` leave the current values alone.
void ReadUsage(const json::object& u, wire::Usage& usage) {
  auto input = FindTokenCount(u, "input_tokens");
  auto creation = FindTokenCount(u, "cache_creation_input_tokens");
  auto read = FindTokenCount(u, "cache_read_input_tokens");
  auto output = FindTokenCount(u, "output_tokens");
  if (input || creation || read) {
    usage.prompt_tokens = input.value_or(0) + creation.value_or(0) + read.value_or(0);
    usage.known = true;
  }
  if (output) {
    usage.completion_tokens = *output;
    usage.known = true;
  }
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
}

}  // namespace

Result<std::string> BuildMessagesRequest(const wire::ChatRequest& request,
                                         std::string_view upstream_model, int default_max_tokens,
                                         bool stream) {
  std::string system;
  json::array messages;
  for (std::size_t i = 0; i < request.messages.size(); ++i) {
    const wire::Message& m = request.messages[i];
    const std::string param = Indexed("messages", i);
    if (m.has_non_text_parts && m.parts.empty()) {
      return Invalid("'" + param +
                         "' has content Anthropic cannot take through Orchestra (audio, files, "
                         "custom tools or legacy function calls)",
                     param + ".content");
    }
    if (m.role == "system" || m.role == "developer") {
      if (!system.empty() && !m.content.empty()) system += "\n\n";
      system += m.content;
    } else if (m.role == "user") {
      auto blocks = UserBlocks(m, param);
      if (!blocks) return blocks.error();
      AddMessage(messages, "user", std::move(*blocks));
    } else if (m.role == "assistant") {
      json::array blocks;
      if (!m.content.empty()) blocks.push_back(TextBlock(m.content));
      for (std::size_t j = 0; j < m.tool_calls.size(); ++j) {
        const wire::ToolCall& call = m.tool_calls[j];
        auto input = ParseInput(
            call.arguments, param + ".tool_calls[" + std::to_string(j) + "].function.arguments");
        if (!input) return input.error();
        json::object block;
        block["type"] = "tool_use";
        block["id"] = ToolId(call.id);
        block["name"] = call.name;
        block["input"] = std::move(*input);
        blocks.push_back(std::move(block));
      }
      AddMessage(messages, "assistant", std::move(blocks));
    } else if (m.role == "tool") {
      json::object block;
      block["type"] = "tool_result";
      block["tool_use_id"] = ToolId(m.tool_call_id);
      if (!m.content.empty()) block["content"] = m.content;
      json::array blocks;
      blocks.push_back(std::move(block));
      AddMessage(messages, "user", std::move(blocks));
    } else {
      return Invalid("'" + param + ".role' '" + m.role + "' cannot be sent to Anthropic",
                     param + ".role");
    }
  }
  if (messages.empty()) {
    return Invalid("Anthropic needs at least one non-empty user or assistant message", "messages");
  }
  if (request.n && *request.n > 1) {
    return Invalid("Anthropic generates one choice per request: 'n' must be 1", "n");
  }
  if (request.temperature && *request.temperature > 1.0) {
    return Invalid("Anthropic accepts 'temperature' between 0 and 1", "temperature");
  }
  if (!request.response_format_json.empty()) {
    if (auto checked = CheckResponseFormat(request.response_format_json); !checked) {
      return checked.error();
    }
  }

  json::object body;
  body["model"] = upstream_model;
  body["max_tokens"] = request.max_tokens.value_or(default_max_tokens);
  if (!system.empty()) body["system"] = system;
  body["messages"] = std::move(messages);
  if (!request.tools_json.empty()) {
    auto tools = Tools(request.tools_json);
    if (!tools) return tools.error();
    if (!tools->empty()) {
      body["tools"] = std::move(*tools);
      if (!request.tool_choice_json.empty()) {
        auto choice = ToolChoice(request.tool_choice_json);
        if (!choice) return choice.error();
        body["tool_choice"] = std::move(*choice);
      }
    }
  }
  if (request.temperature) body["temperature"] = *request.temperature;
  if (request.top_p) body["top_p"] = *request.top_p;
  if (!request.stop.empty()) {
    json::array stops;
    for (const std::string& s : request.stop)
      stops.emplace_back(s);
    body["stop_sequences"] = std::move(stops);
  }
  if (!request.user.empty()) {
    json::object metadata;
    metadata["user_id"] = request.user;
    body["metadata"] = std::move(metadata);
  }
  if (stream) body["stream"] = true;
  return json::serialize(body);
}

Result<wire::ChatResponse> ParseMessagesResponse(std::string_view body) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseJson(body, doc, "the Anthropic response", ErrorCode::kUpstreamError);
      !parsed) {
    return parsed.error();
  }
  const json::object* top = doc.if_object();
  if (top == nullptr) return UpstreamError("the Anthropic response is not a JSON object");
  if (auto error = ErrorDocument(*top)) return *error;
  const json::array* content = FindArray(*top, "content");
  if (content == nullptr) return UpstreamError("the Anthropic response has no 'content' array");

  wire::ChatResponse response;
  response.id = StringOr(*top, "id");
  response.model = StringOr(*top, "model");
  response.created = wire::UnixNow();
  wire::ChatChoice choice;
  for (const json::value& b : *content) {
    const json::object* block = b.if_object();
    if (block == nullptr) continue;
    const std::string type = StringOr(*block, "type");
    if (type == "text") {
      choice.content += StringOr(*block, "text");
    } else if (type == "tool_use") {
      wire::ToolCall call;
      call.index = static_cast<int>(choice.tool_calls.size());
      call.id = StringOr(*block, "id");
      call.name = StringOr(*block, "name");
      const json::value* input = Find(*block, "input");
      call.arguments = input != nullptr && !input->is_null() ? json::serialize(*input) : "{}";
      choice.tool_calls.push_back(std::move(call));
    }
    // thinking, redacted_thinking and server tool blocks have no OpenAI counterpart.
  }
  choice.finish_reason = MapStopReason(StringOr(*top, "stop_reason"));
  response.choices.push_back(std::move(choice));
  if (const json::object* usage = FindObject(*top, "usage"); usage != nullptr) {
    ReadUsage(*usage, response.usage);
  }
  return response;
}

StreamDecoder::StreamDecoder() : created_(wire::UnixNow()) {}

wire::ChatChunk StreamDecoder::NewChunk() const {
  wire::ChatChunk chunk;
  chunk.id = id_;
  chunk.model = model_;
  chunk.created = created_;
  return chunk;
}

Result<std::vector<wire::ChatChunk>> StreamDecoder::Feed(std::string_view event,
                                                         std::string_view data) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseJson(data, doc, "an Anthropic stream event", ErrorCode::kUpstreamError);
      !parsed) {
    return parsed.error();
  }
  const json::object* top = doc.if_object();
  if (top == nullptr) return UpstreamError("an Anthropic stream event is not a JSON object");
  const std::string type = event.empty() ? StringOr(*top, "type") : std::string(event);

  std::vector<wire::ChatChunk> chunks;
  if (type == "error") {
    if (const json::object* error = FindObject(*top, "error"); error != nullptr) {
      return ErrorFromObject(*error);
    }
    return UpstreamError("Anthropic sent an error event without details");
  }
  if (id_.empty()) id_ = wire::NewChatCompletionId();  // replaced by message_start's id
  if (type == "message_start") {
    if (const json::object* message = FindObject(*top, "message"); message != nullptr) {
      if (std::string id = StringOr(*message, "id"); !id.empty()) id_ = std::move(id);
      model_ = StringOr(*message, "model");
      if (const json::object* usage = FindObject(*message, "usage"); usage != nullptr) {
        ReadUsage(*usage, usage_);
      }
    }
    wire::ChatChunk chunk = NewChunk();
    chunk.role = "assistant";
    chunks.push_back(std::move(chunk));
  } else if (type == "content_block_start") {
    const std::int64_t index = FindInteger(*top, "index").value_or(-1);
    const json::object* block = FindObject(*top, "content_block");
    if (index < 0 || index > 4096 || block == nullptr) {
      return UpstreamError("an Anthropic content_block_start is malformed");
    }
    if (tool_index_.size() <= static_cast<std::size_t>(index)) {
      tool_index_.resize(static_cast<std::size_t>(index) + 1, -1);
    }
    const std::string block_type = StringOr(*block, "type");
    if (block_type == "tool_use") {
      tool_index_[static_cast<std::size_t>(index)] = tool_calls_;
      wire::ChatChunk chunk = NewChunk();
      wire::ToolCall call;
      call.index = tool_calls_++;
      call.id = StringOr(*block, "id");
      call.name = StringOr(*block, "name");
      chunk.tool_calls.push_back(std::move(call));
      chunks.push_back(std::move(chunk));
    } else if (block_type == "text") {
      if (std::string text = StringOr(*block, "text"); !text.empty()) {
        wire::ChatChunk chunk = NewChunk();
        chunk.content = std::move(text);
        chunks.push_back(std::move(chunk));
      }
    }
  } else if (type == "content_block_delta") {
    const std::int64_t index = FindInteger(*top, "index").value_or(-1);
    const json::object* delta = FindObject(*top, "delta");
    if (delta == nullptr) return UpstreamError("an Anthropic content_block_delta has no delta");
    const std::string delta_type = StringOr(*delta, "type");
    if (delta_type == "text_delta") {
      wire::ChatChunk chunk = NewChunk();
      chunk.content = StringOr(*delta, "text");
      if (!chunk.content.empty()) chunks.push_back(std::move(chunk));
    } else if (delta_type == "input_json_delta") {
      if (index < 0 || static_cast<std::size_t>(index) >= tool_index_.size() ||
          tool_index_[static_cast<std::size_t>(index)] < 0) {
        return UpstreamError("an Anthropic input_json_delta names no tool_use block");
      }
      wire::ToolCall call;
      call.index = tool_index_[static_cast<std::size_t>(index)];
      call.arguments = StringOr(*delta, "partial_json");
      if (!call.arguments.empty()) {
        wire::ChatChunk chunk = NewChunk();
        chunk.tool_calls.push_back(std::move(call));
        chunks.push_back(std::move(chunk));
      }
    }
    // thinking_delta, signature_delta and citations_delta have no OpenAI counterpart.
  } else if (type == "message_delta") {
    if (const json::object* usage = FindObject(*top, "usage"); usage != nullptr) {
      ReadUsage(*usage, usage_);
    }
    const json::object* delta = FindObject(*top, "delta");
    if (delta != nullptr) {
      if (std::string reason = MapStopReason(StringOr(*delta, "stop_reason")); !reason.empty()) {
        wire::ChatChunk chunk = NewChunk();
        chunk.finish_reason = std::move(reason);
        chunks.push_back(std::move(chunk));
      }
    }
  } else if (type == "message_stop") {
    finished_ = true;
  }
  // ping, content_block_stop and event types added later: nothing to emit.
  return chunks;
}

std::optional<wire::ChatChunk> StreamDecoder::Finish() const {
  if (!usage_.known) return std::nullopt;
  wire::ChatChunk chunk = NewChunk();
  if (chunk.id.empty()) chunk.id = wire::NewChatCompletionId();
  chunk.usage_only = true;
  chunk.usage = usage_;
  return chunk;
}

}  // namespace orchestra::providers::anthropic
