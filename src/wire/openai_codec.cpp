#include "wire/openai_codec.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

#include <boost/json.hpp>

#include "common/json_scan.hpp"
#include "wire/codec_util.hpp"

namespace orchestra::wire::openai {
namespace {

namespace json = boost::json;
using codec_detail::AsInteger;
using codec_detail::AsNumber;
using codec_detail::Find;
using codec_detail::FindArray;
using codec_detail::FindInteger;
using codec_detail::FindObject;
using codec_detail::FindString;
using codec_detail::ParseJson;
using codec_detail::StringOr;

Error Invalid(std::string message, std::string param) {
  return Error(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
}

std::string Quoted(std::string_view param) {
  return "'" + std::string(param) + "'";
}

std::string Indexed(std::string_view base, std::size_t i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}

// Parses one top-level member's JSON text (a span of a body that ScanJson already validated).
Result<void> ParseMember(std::string_view text, json::value& out, std::string_view param) {
  auto parsed = ParseJson(text, out, Quoted(param), ErrorCode::kInvalidRequest);
  if (!parsed) {
    Error e = parsed.error();
    e.param = std::string(param);
    return e;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Chat request

constexpr std::string_view kRoles[] = {"system",    "developer", "user",
                                       "assistant", "tool",      "function"};

bool IsKnownRole(std::string_view role) {
  return std::find(std::begin(kRoles), std::end(kRoles), role) != std::end(kRoles);
}

// Content as a string, or an array of parts whose text parts are joined with "\n". A user
// message whose other parts are all images also keeps its parts in order (Message::parts).
Result<void> ParseContent(const json::value& content, Message& message, const std::string& param) {
  if (const json::string* text = content.if_string(); text != nullptr) {
    message.content = std::string(*text);
    return {};
  }
  const json::array* parts = content.if_array();
  if (parts == nullptr) {
    return Invalid(Quoted(param) + " must be a string or an array of content parts", param);
  }
  std::vector<ContentPart> kept;
  bool only_text_and_images = message.role == "user";
  bool first_text = true;
  for (std::size_t j = 0; j < parts->size(); ++j) {
    const std::string part_param = Indexed(param, j);
    const json::object* part = (*parts)[j].if_object();
    if (part == nullptr) return Invalid(Quoted(part_param) + " must be an object", part_param);
    const json::string* type = FindString(*part, "type");
    if (type == nullptr) {
      return Invalid(Quoted(part_param + ".type") + " must be a string", part_param + ".type");
    }
    if (*type == "image_url") {
      const json::object* image = FindObject(*part, "image_url");
      const json::string* url = image != nullptr ? FindString(*image, "url") : nullptr;
      if (url == nullptr) {
        return Invalid(Quoted(part_param + ".image_url.url") + " must be a string",
                       part_param + ".image_url.url");
      }
      message.has_non_text_parts = true;
      if (only_text_and_images) kept.push_back(ContentPart{{}, std::string(*url)});
      continue;
    }
    // An assistant's refusal part is text as well.
    const std::string_view text_key = *type == "text"      ? "text"
                                      : *type == "refusal" ? "refusal"
                                                           : "";
    if (text_key.empty()) {
      message.has_non_text_parts = true;
      only_text_and_images = false;
      continue;
    }
    const json::string* text = FindString(*part, text_key);
    if (text == nullptr) {
      const std::string text_param = part_param + "." + std::string(text_key);
      return Invalid(Quoted(text_param) + " must be a string", text_param);
    }
    if (!first_text) message.content += '\n';
    message.content.append(text->data(), text->size());
    first_text = false;
    if (only_text_and_images) kept.push_back(ContentPart{std::string(*text), {}});
  }
  if (message.has_non_text_parts && only_text_and_images) message.parts = std::move(kept);
  return {};
}

Result<void> ParseToolCalls(const json::array& calls, Message& message, const std::string& param) {
  for (std::size_t j = 0; j < calls.size(); ++j) {
    const std::string call_param = Indexed(param, j);
    const json::object* call = calls[j].if_object();
    if (call == nullptr) return Invalid(Quoted(call_param) + " must be an object", call_param);
    const json::string* type = FindString(*call, "type");
    if (type != nullptr && *type != "function") {
      // Custom tools and future kinds pass through to OpenAI-compatible upstreams only.
      message.has_non_text_parts = true;
      continue;
    }
    ToolCall out;
    out.index = static_cast<int>(message.tool_calls.size());
    const json::string* id = FindString(*call, "id");
    if (id == nullptr) {
      return Invalid(Quoted(call_param + ".id") + " must be a string", call_param + ".id");
    }
    out.id = std::string(*id);
    const json::object* function = FindObject(*call, "function");
    if (function == nullptr) {
      return Invalid(Quoted(call_param + ".function") + " must be an object",
                     call_param + ".function");
    }
    const json::string* name = FindString(*function, "name");
    if (name == nullptr) {
      return Invalid(Quoted(call_param + ".function.name") + " must be a string",
                     call_param + ".function.name");
    }
    out.name = std::string(*name);
    const json::string* arguments = FindString(*function, "arguments");
    if (arguments == nullptr) {
      return Invalid(Quoted(call_param + ".function.arguments") + " must be a string of JSON",
                     call_param + ".function.arguments");
    }
    out.arguments = std::string(*arguments);
    message.tool_calls.push_back(std::move(out));
  }
  return {};
}

Result<Message> ParseMessage(const json::value& value, std::size_t i) {
  const std::string param = Indexed("messages", i);
  const json::object* object = value.if_object();
  if (object == nullptr) return Invalid(Quoted(param) + " must be an object", param);
  Message message;
  const json::string* role = FindString(*object, "role");
  if (role == nullptr || !IsKnownRole(*role)) {
    return Invalid(Quoted(param + ".role") +
                       " must be one of 'system', 'developer', 'user', 'assistant', 'tool'",
                   param + ".role");
  }
  message.role = std::string(*role);
  const bool assistant = message.role == "assistant";

  if (const json::value* name = Find(*object, "name"); name != nullptr && !name->is_null()) {
    if (!name->is_string()) {
      return Invalid(Quoted(param + ".name") + " must be a string", param + ".name");
    }
    message.name = std::string(name->get_string());
  }

  if (const json::value* calls = Find(*object, "tool_calls");
      calls != nullptr && !calls->is_null()) {
    if (!assistant) {
      return Invalid(Quoted(param + ".tool_calls") + " is only allowed on assistant messages",
                     param + ".tool_calls");
    }
    if (!calls->is_array()) {
      return Invalid(Quoted(param + ".tool_calls") + " must be an array", param + ".tool_calls");
    }
    if (auto parsed = ParseToolCalls(calls->get_array(), message, param + ".tool_calls"); !parsed) {
      return parsed.error();
    }
  }
  bool legacy_function_call = false;
  if (const json::value* call = Find(*object, "function_call");
      assistant && call != nullptr && !call->is_null()) {
    legacy_function_call = true;
    message.has_non_text_parts = true;
  }

  const json::value* content = Find(*object, "content");
  if (content == nullptr || content->is_null()) {
    const bool may_omit = (assistant && (!message.tool_calls.empty() || legacy_function_call ||
                                         message.has_non_text_parts)) ||
                          message.role == "function";
    if (!may_omit) {
      return Invalid(Quoted(param + ".content") + " is required", param + ".content");
    }
  } else if (auto parsed = ParseContent(*content, message, param + ".content"); !parsed) {
    return parsed.error();
  }

  if (message.role == "tool") {
    const json::string* call_id = FindString(*object, "tool_call_id");
    if (call_id == nullptr) {
      return Invalid(Quoted(param + ".tool_call_id") + " must be a string",
                     param + ".tool_call_id");
    }
    message.tool_call_id = std::string(*call_id);
  }
  if (message.role == "function") {
    // The deprecated function-calling protocol: only OpenAI-compatible upstreams take it.
    message.has_non_text_parts = true;
  }
  return message;
}

Result<double> NumberInRange(const json::value& v, std::string_view param, double low,
                             double high) {
  auto number = AsNumber(v);
  if (!number || *number < low || *number > high) {
    return Invalid(Quoted(param) + " must be a number between " + std::to_string(int(low)) +
                       " and " + std::to_string(int(high)),
                   std::string(param));
  }
  return *number;
}

Result<std::int64_t> IntegerAtLeast(const json::value& v, std::string_view param,
                                    std::int64_t low) {
  auto number = AsInteger(v);
  if (!number || *number < low) {
    return Invalid(Quoted(param) + " must be an integer >= " + std::to_string(low),
                   std::string(param));
  }
  return *number;
}

// The members of a chat body that ParseChatMessages reads; `present` is false when absent.
struct ChatSpans {
  JsonSpan messages, temperature, top_p, max_tokens, max_completion_tokens, stop, n, seed, user,
      tools, tool_choice, response_format;
};

Result<void> ParseTools(std::string_view text, ChatRequest& req) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseMember(text, doc, "tools"); !parsed) return parsed.error();
  if (doc.is_null()) return {};
  const json::array* tools = doc.if_array();
  if (tools == nullptr) return Invalid("'tools' must be an array", "tools");
  for (std::size_t k = 0; k < tools->size(); ++k) {
    const std::string param = Indexed("tools", k);
    const json::object* tool = (*tools)[k].if_object();
    if (tool == nullptr) return Invalid(Quoted(param) + " must be an object", param);
    const json::string* type = FindString(*tool, "type");
    if (type == nullptr) {
      return Invalid(Quoted(param + ".type") + " must be a string", param + ".type");
    }
    if (*type != "function") continue;
    const json::object* function = FindObject(*tool, "function");
    if (function == nullptr) {
      return Invalid(Quoted(param + ".function") + " must be an object", param + ".function");
    }
    if (FindString(*function, "name") == nullptr) {
      return Invalid(Quoted(param + ".function.name") + " must be a string",
                     param + ".function.name");
    }
  }
  req.tools_json = std::string(text);
  return {};
}

Result<void> ParseToolChoice(std::string_view text, ChatRequest& req) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseMember(text, doc, "tool_choice"); !parsed) return parsed.error();
  if (doc.is_null()) return {};
  if (const json::string* mode = doc.if_string(); mode != nullptr) {
    if (*mode != "none" && *mode != "auto" && *mode != "required") {
      return Invalid("'tool_choice' must be 'none', 'auto', 'required' or an object",
                     "tool_choice");
    }
  } else if (const json::object* choice = doc.if_object(); choice != nullptr) {
    if (FindString(*choice, "type") == nullptr) {
      return Invalid("'tool_choice.type' must be a string", "tool_choice.type");
    }
  } else {
    return Invalid("'tool_choice' must be 'none', 'auto', 'required' or an object", "tool_choice");
  }
  req.tool_choice_json = std::string(text);
  return {};
}

Result<void> ParseResponseFormat(std::string_view text, ChatRequest& req) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseMember(text, doc, "response_format"); !parsed) return parsed.error();
  if (doc.is_null()) return {};
  const json::object* format = doc.if_object();
  if (format == nullptr) return Invalid("'response_format' must be an object", "response_format");
  if (FindString(*format, "type") == nullptr) {
    return Invalid("'response_format.type' must be a string", "response_format.type");
  }
  req.response_format_json = std::string(text);
  return {};
}

// ---------------------------------------------------------------------------------------------
// Chat response and chunk encoding

void AppendUsage(std::string& out, const Usage& usage) {
  out += R"("usage":{"prompt_tokens":)";
  out += std::to_string(usage.prompt_tokens);
  out += R"(,"completion_tokens":)";
  out += std::to_string(usage.completion_tokens);
  out += R"(,"total_tokens":)";
  out += std::to_string(usage.total_tokens != 0 ? usage.total_tokens
                                                : usage.prompt_tokens + usage.completion_tokens);
  out += '}';
}

void AppendHead(std::string& out, std::string_view object, std::string_view id,
                std::int64_t created, std::string_view model) {
  out += R"({"id":)";
  AppendJsonString(out, id);
  out += R"(,"object":")";
  out += object;
  out += R"(","created":)";
  out += std::to_string(created);
  out += R"(,"model":)";
  AppendJsonString(out, model);
}

void AppendFinishReason(std::string& out, std::string_view reason) {
  out += R"("finish_reason":)";
  if (reason.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, reason);
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing upstream responses

Error UpstreamError(std::string message) {
  return Error(ErrorCode::kUpstreamError, std::move(message));
}

// An `{"error": ...}` document as an Error, when it is one.
std::optional<Error> ErrorDocument(const json::object& top, std::string_view body) {
  if (const json::value* error = Find(top, "error"); error != nullptr && !error->is_null()) {
    return UpstreamError("upstream error: " + ErrorMessageFromBody(body));
  }
  return std::nullopt;
}

Usage ParseUsage(const json::object& top) {
  Usage usage;
  const json::object* u = FindObject(top, "usage");
  if (u == nullptr) return usage;
  auto prompt = FindInteger(*u, "prompt_tokens");
  auto completion = FindInteger(*u, "completion_tokens");
  auto total = FindInteger(*u, "total_tokens");
  if (!prompt && !completion && !total) return usage;
  usage.known = true;
  usage.prompt_tokens = prompt.value_or(0);
  usage.completion_tokens = completion.value_or(0);
  usage.total_tokens = total.value_or(usage.prompt_tokens + usage.completion_tokens);
  return usage;
}

// tool_calls of a message (`streamed` = deltas, where everything but index may be absent).
Result<std::vector<ToolCall>> ParseResponseToolCalls(const json::array& calls, bool streamed) {
  std::vector<ToolCall> out;
  for (std::size_t j = 0; j < calls.size(); ++j) {
    const json::object* call = calls[j].if_object();
    if (call == nullptr) return UpstreamError("upstream tool call is not an object");
    ToolCall tool;
    tool.index = static_cast<int>(FindInteger(*call, "index").value_or(static_cast<int>(j)));
    tool.id = StringOr(*call, "id");
    if (const json::object* function = FindObject(*call, "function"); function != nullptr) {
      tool.name = StringOr(*function, "name");
      tool.arguments = StringOr(*function, "arguments");
    } else if (!streamed) {
      continue;  // not a function call (a custom tool): nothing Orchestra models
    }
    out.push_back(std::move(tool));
  }
  return out;
}

std::string ContentText(const json::value* content) {
  if (content == nullptr) return {};
  if (const json::string* s = content->if_string(); s != nullptr) return std::string(*s);
  std::string out;
  if (const json::array* parts = content->if_array(); parts != nullptr) {
    for (const json::value& p : *parts) {
      const json::object* part = p.if_object();
      if (part == nullptr) continue;
      if (const json::string* t = FindString(*part, "text"); t != nullptr) {
        if (!out.empty()) out += '\n';
        out.append(t->data(), t->size());
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Embeddings

// The `input` member of an embeddings request.
Result<void> ParseEmbeddingInput(std::string_view text, EmbeddingRequest& req) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseMember(text, doc, "input"); !parsed) return parsed.error();
  const Error not_input = Invalid(
      "'input' must be a non-empty string, an array of non-empty strings, or an array of token "
      "ids",
      "input");
  if (const json::string* s = doc.if_string(); s != nullptr) {
    if (s->empty()) return Invalid("'input' must not be empty", "input");
    req.inputs.emplace_back(*s);
    return {};
  }
  const json::array* items = doc.if_array();
  if (items == nullptr) return not_input;
  if (items->empty()) return Invalid("'input' must not be an empty array", "input");
  const json::value& first = items->front();
  if (first.is_string()) {
    req.inputs.reserve(items->size());
    for (std::size_t i = 0; i < items->size(); ++i) {
      const json::string* s = (*items)[i].if_string();
      if (s == nullptr) return not_input;
      if (s->empty()) return Invalid(Quoted(Indexed("input", i)) + " must not be empty", "input");
      req.inputs.emplace_back(*s);
    }
    return {};
  }
  auto is_token = [](const json::value& v) { return AsInteger(v).has_value() && !v.is_double(); };
  if (is_token(first)) {
    if (!std::all_of(items->begin(), items->end(), is_token)) return not_input;
    req.token_input = true;
    return {};
  }
  if (first.is_array()) {
    for (const json::value& item : *items) {
      const json::array* tokens = item.if_array();
      if (tokens == nullptr || tokens->empty() ||
          !std::all_of(tokens->begin(), tokens->end(), is_token)) {
        return not_input;
      }
    }
    req.token_input = true;
    return {};
  }
  return not_input;
}

}  // namespace

Result<void> ParseChatMessages(ChatRequest& req) {
  const std::string_view body = req.raw_body;
  ChatSpans spans;
  JsonScanError scan_error;
  auto kind = ScanJson(
      body,
      [&](std::string_view key, const JsonSpan& v) {
        if (key == "messages") {
          spans.messages = v;
        } else if (key == "temperature") {
          spans.temperature = v;
        } else if (key == "top_p") {
          spans.top_p = v;
        } else if (key == "max_tokens") {
          spans.max_tokens = v;
        } else if (key == "max_completion_tokens") {
          spans.max_completion_tokens = v;
        } else if (key == "stop") {
          spans.stop = v;
        } else if (key == "n") {
          spans.n = v;
        } else if (key == "seed") {
          spans.seed = v;
        } else if (key == "user") {
          spans.user = v;
        } else if (key == "tools") {
          spans.tools = v;
        } else if (key == "tool_choice") {
          spans.tool_choice = v;
        } else if (key == "response_format") {
          spans.response_format = v;
        }
      },
      &scan_error);
  if (!kind) {
    return Error(ErrorCode::kInvalidRequest,
                 "request body is not valid JSON: " + std::string(scan_error.what) + " at byte " +
                     std::to_string(scan_error.offset));
  }
  if (*kind != JsonKind::kObject) {
    return Error(ErrorCode::kInvalidRequest, "request body must be a JSON object");
  }

  req.messages.clear();
  req.stop.clear();
  json::monotonic_resource resource;

  if (!spans.messages.present) return Invalid("'messages' is required", "messages");
  if (spans.messages.kind != JsonKind::kArray) {
    return Invalid("'messages' must be an array", "messages");
  }
  {
    json::value doc(&resource);
    if (auto parsed = ParseMember(spans.messages.In(body), doc, "messages"); !parsed) {
      return parsed.error();
    }
    const json::array& messages = doc.get_array();
    if (messages.empty()) return Invalid("'messages' must not be empty", "messages");
    req.messages.reserve(messages.size());
    for (std::size_t i = 0; i < messages.size(); ++i) {
      auto message = ParseMessage(messages[i], i);
      if (!message) return message.error();
      req.messages.push_back(std::move(*message));
    }
  }

  // A scalar member: parsed when present and not null.
  auto scalar = [&](const JsonSpan& span, std::string_view param) -> Result<json::value> {
    json::value v(&resource);
    if (!span.present || span.kind == JsonKind::kNull) return v;
    if (auto parsed = ParseMember(span.In(body), v, param); !parsed) return parsed.error();
    return v;
  };

  if (spans.temperature.present && spans.temperature.kind != JsonKind::kNull) {
    auto v = scalar(spans.temperature, "temperature");
    if (!v) return v.error();
    auto t = NumberInRange(*v, "temperature", 0, 2);
    if (!t) return t.error();
    req.temperature = *t;
  }
  if (spans.top_p.present && spans.top_p.kind != JsonKind::kNull) {
    auto v = scalar(spans.top_p, "top_p");
    if (!v) return v.error();
    auto p = NumberInRange(*v, "top_p", 0, 1);
    if (!p) return p.error();
    req.top_p = *p;
  }
  for (const auto& [span, param] :
       {std::pair{&spans.max_tokens, "max_tokens"},
        std::pair{&spans.max_completion_tokens, "max_completion_tokens"}}) {
    if (!span->present || span->kind == JsonKind::kNull) continue;
    auto v = scalar(*span, param);
    if (!v) return v.error();
    auto m = IntegerAtLeast(*v, param, 1);
    if (!m) return m.error();
    req.max_tokens = *m;  // max_completion_tokens is second: it wins
  }
  if (spans.n.present && spans.n.kind != JsonKind::kNull) {
    auto v = scalar(spans.n, "n");
    if (!v) return v.error();
    auto n = IntegerAtLeast(*v, "n", 1);
    if (!n) return n.error();
    req.n = *n;
  }
  if (spans.seed.present && spans.seed.kind != JsonKind::kNull) {
    auto v = scalar(spans.seed, "seed");
    if (!v) return v.error();
    auto seed = AsInteger(*v);
    if (!seed) return Invalid("'seed' must be an integer", "seed");
    req.seed = *seed;
  }
  if (spans.user.present && spans.user.kind != JsonKind::kNull) {
    auto v = scalar(spans.user, "user");
    if (!v) return v.error();
    if (!v->is_string()) return Invalid("'user' must be a string", "user");
    req.user = std::string(v->get_string());
  }
  if (spans.stop.present && spans.stop.kind != JsonKind::kNull) {
    auto v = scalar(spans.stop, "stop");
    if (!v) return v.error();
    if (const json::string* s = v->if_string(); s != nullptr) {
      req.stop.emplace_back(*s);
    } else if (const json::array* a = v->if_array(); a != nullptr) {
      for (const json::value& item : *a) {
        if (!item.is_string()) {
          return Invalid("'stop' must be a string or an array of strings", "stop");
        }
        req.stop.emplace_back(item.get_string());
      }
    } else {
      return Invalid("'stop' must be a string or an array of strings", "stop");
    }
  }
  if (spans.tools.present) {
    if (auto parsed = ParseTools(spans.tools.In(body), req); !parsed) return parsed.error();
  }
  if (spans.tool_choice.present) {
    if (auto parsed = ParseToolChoice(spans.tool_choice.In(body), req); !parsed) {
      return parsed.error();
    }
  }
  if (spans.response_format.present) {
    if (auto parsed = ParseResponseFormat(spans.response_format.In(body), req); !parsed) {
      return parsed.error();
    }
  }
  return {};
}

std::string EncodeChatResponse(const ChatResponse& response) {
  if (!response.raw.empty()) return response.raw;
  std::string out;
  out.reserve(256 + response.choices.size() * 128);
  AppendHead(out, "chat.completion", response.id, response.created, response.model);
  out += R"(,"choices":[)";
  for (std::size_t i = 0; i < response.choices.size(); ++i) {
    const ChatChoice& choice = response.choices[i];
    if (i > 0) out += ',';
    out += R"({"index":)";
    out += std::to_string(choice.index);
    out += R"(,"message":{"role":"assistant","content":)";
    if (choice.content.empty() && !choice.tool_calls.empty()) {
      out += "null";
    } else {
      AppendJsonString(out, choice.content);
    }
    if (!choice.tool_calls.empty()) {
      out += R"(,"tool_calls":[)";
      for (std::size_t j = 0; j < choice.tool_calls.size(); ++j) {
        const ToolCall& call = choice.tool_calls[j];
        if (j > 0) out += ',';
        out += R"({"id":)";
        AppendJsonString(out, call.id);
        out += R"(,"type":"function","function":{"name":)";
        AppendJsonString(out, call.name);
        out += R"(,"arguments":)";
        AppendJsonString(out, call.arguments);
        out += "}}";
      }
      out += ']';
    }
    out += R"(},"logprobs":null,)";
    AppendFinishReason(out, choice.finish_reason);
    out += '}';
  }
  out += ']';
  if (response.usage.known) {
    out += ',';
    AppendUsage(out, response.usage);
  }
  out += '}';
  return out;
}

std::string EncodeChatChunk(const ChatChunk& chunk) {
  if (!chunk.raw.empty()) return chunk.raw;
  std::string out;
  out.reserve(192 + chunk.content.size());
  AppendHead(out, "chat.completion.chunk", chunk.id, chunk.created, chunk.model);
  if (chunk.usage_only) {
    out += R"(,"choices":[],)";
    AppendUsage(out, chunk.usage.value_or(Usage{}));
    out += '}';
    return out;
  }
  out += R"(,"choices":[{"index":)";
  out += std::to_string(chunk.index);
  out += R"(,"delta":{)";
  bool first = true;
  auto comma = [&] {
    if (!first) out += ',';
    first = false;
  };
  if (!chunk.role.empty()) {
    comma();
    out += R"("role":)";
    AppendJsonString(out, chunk.role);
  }
  // The first delta of a text answer carries "content":"" with the role, as OpenAI sends it.
  if (!chunk.content.empty() || (!chunk.role.empty() && chunk.tool_calls.empty())) {
    comma();
    out += R"("content":)";
    AppendJsonString(out, chunk.content);
  }
  if (!chunk.tool_calls.empty()) {
    comma();
    out += R"("tool_calls":[)";
    for (std::size_t j = 0; j < chunk.tool_calls.size(); ++j) {
      const ToolCall& call = chunk.tool_calls[j];
      if (j > 0) out += ',';
      out += R"({"index":)";
      out += std::to_string(call.index);
      if (!call.id.empty()) {
        out += R"(,"id":)";
        AppendJsonString(out, call.id);
        out += R"(,"type":"function","function":{"name":)";
        AppendJsonString(out, call.name);
        out += ',';
      } else {
        out += R"(,"function":{)";
      }
      out += R"("arguments":)";
      AppendJsonString(out, call.arguments);
      out += "}}";
    }
    out += ']';
  }
  out += R"(},"logprobs":null,)";
  AppendFinishReason(out, chunk.finish_reason);
  out += "}]";
  if (chunk.usage) {
    out += ',';
    AppendUsage(out, *chunk.usage);
  }
  out += '}';
  return out;
}

Result<ChatResponse> ParseChatResponse(std::string_view body) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseJson(body, doc, "the upstream response", ErrorCode::kUpstreamError);
      !parsed) {
    return parsed.error();
  }
  const json::object* top = doc.if_object();
  if (top == nullptr) return UpstreamError("the upstream response is not a JSON object");
  if (auto error = ErrorDocument(*top, body)) return *error;
  const json::array* choices = FindArray(*top, "choices");
  if (choices == nullptr) return UpstreamError("the upstream response has no 'choices' array");

  ChatResponse response;
  response.id = StringOr(*top, "id");
  response.model = StringOr(*top, "model");
  response.created = FindInteger(*top, "created").value_or(0);
  response.usage = ParseUsage(*top);
  response.choices.reserve(choices->size());
  for (std::size_t i = 0; i < choices->size(); ++i) {
    const json::object* c = (*choices)[i].if_object();
    if (c == nullptr) return UpstreamError("an upstream choice is not an object");
    ChatChoice choice;
    choice.index = static_cast<int>(FindInteger(*c, "index").value_or(static_cast<int>(i)));
    choice.finish_reason = StringOr(*c, "finish_reason");
    if (const json::object* message = FindObject(*c, "message"); message != nullptr) {
      choice.content = ContentText(Find(*message, "content"));
      if (const json::array* calls = FindArray(*message, "tool_calls"); calls != nullptr) {
        auto parsed = ParseResponseToolCalls(*calls, false);
        if (!parsed) return parsed.error();
        choice.tool_calls = std::move(*parsed);
      }
    }
    response.choices.push_back(std::move(choice));
  }
  return response;
}

Result<ChatChunk> ParseChatChunk(std::string_view data) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseJson(data, doc, "the upstream chunk", ErrorCode::kUpstreamError);
      !parsed) {
    return parsed.error();
  }
  const json::object* top = doc.if_object();
  if (top == nullptr) return UpstreamError("the upstream chunk is not a JSON object");
  if (auto error = ErrorDocument(*top, data)) return *error;

  ChatChunk chunk;
  chunk.id = StringOr(*top, "id");
  chunk.model = StringOr(*top, "model");
  chunk.created = FindInteger(*top, "created").value_or(0);
  if (Usage usage = ParseUsage(*top); usage.known) chunk.usage = usage;
  const json::array* choices = FindArray(*top, "choices");
  if (choices == nullptr || choices->empty()) {
    chunk.usage_only = chunk.usage.has_value();
    return chunk;
  }
  const json::object* choice = choices->front().if_object();
  if (choice == nullptr) return UpstreamError("an upstream chunk choice is not an object");
  chunk.index = static_cast<int>(FindInteger(*choice, "index").value_or(0));
  chunk.finish_reason = StringOr(*choice, "finish_reason");
  if (const json::object* delta = FindObject(*choice, "delta"); delta != nullptr) {
    chunk.role = StringOr(*delta, "role");
    chunk.content = ContentText(Find(*delta, "content"));
    if (const json::array* calls = FindArray(*delta, "tool_calls"); calls != nullptr) {
      auto parsed = ParseResponseToolCalls(*calls, true);
      if (!parsed) return parsed.error();
      chunk.tool_calls = std::move(*parsed);
    }
  }
  return chunk;
}

Result<EmbeddingRequest> ParseEmbeddingRequest(std::string body) {
  EmbeddingRequest req;
  JsonSpan model, input, encoding_format, dimensions, user;
  JsonScanError scan_error;
  // As for chat requests (openai_scan.cpp): a routed member given twice is refused.
  std::string scratch;
  std::string_view duplicate;
  auto take = [&](JsonSpan& slot, std::string_view name, const JsonSpan& v) {
    if (slot.present) duplicate = name;
    slot = v;
  };
  auto kind = ScanJson(
      body,
      [&](std::string_view raw_key, const JsonSpan& v) {
        const std::string_view key = JsonMemberName(raw_key, scratch);
        if (key == "model") {
          take(model, "model", v);
        } else if (key == "input") {
          take(input, "input", v);
        } else if (key == "encoding_format") {
          take(encoding_format, "encoding_format", v);
        } else if (key == "dimensions") {
          take(dimensions, "dimensions", v);
        } else if (key == "user") {
          take(user, "user", v);
        }
      },
      &scan_error);
  if (!kind) {
    return Error(ErrorCode::kInvalidRequest,
                 "request body is not valid JSON: " + std::string(scan_error.what) + " at byte " +
                     std::to_string(scan_error.offset));
  }
  if (*kind != JsonKind::kObject) {
    return Error(ErrorCode::kInvalidRequest, "request body must be a JSON object");
  }
  if (!duplicate.empty()) {
    return Invalid("'" + std::string(duplicate) + "' is given more than once",
                   std::string(duplicate));
  }

  if (!model.present) return Invalid("'model' is required", "model");
  if (model.kind != JsonKind::kString) return Invalid("'model' must be a string", "model");
  auto name = DecodeJsonString(model.In(body));
  if (!name || name->empty()) return Invalid("'model' must be a non-empty string", "model");
  req.model = std::move(*name);
  req.model_begin = model.begin;
  req.model_end = model.end;

  if (!input.present || input.kind == JsonKind::kNull) {
    return Invalid("'input' is required", "input");
  }
  if (auto parsed = ParseEmbeddingInput(input.In(body), req); !parsed) return parsed.error();

  if (encoding_format.present && encoding_format.kind != JsonKind::kNull) {
    auto format = encoding_format.kind == JsonKind::kString
                      ? DecodeJsonString(encoding_format.In(body))
                      : std::nullopt;
    if (!format || (*format != "float" && *format != "base64")) {
      return Invalid("'encoding_format' must be 'float' or 'base64'", "encoding_format");
    }
    req.encoding_format = std::move(*format);
  }
  if (dimensions.present && dimensions.kind != JsonKind::kNull) {
    auto n = dimensions.kind == JsonKind::kNumber ? JsonInteger(dimensions.In(body)) : std::nullopt;
    if (!n || *n < 1) return Invalid("'dimensions' must be an integer >= 1", "dimensions");
    req.dimensions = *n;
  }
  if (user.present && user.kind != JsonKind::kNull) {
    auto text = user.kind == JsonKind::kString ? DecodeJsonString(user.In(body)) : std::nullopt;
    if (!text) return Invalid("'user' must be a string", "user");
    req.user = std::move(*text);
  }
  req.raw_body = std::move(body);
  return req;
}

std::string EncodeEmbeddingResponse(const EmbeddingResponse& response,
                                    std::string_view encoding_format) {
  if (!response.raw.empty()) return response.raw;
  const bool base64 = encoding_format == "base64";
  std::size_t values = 0;
  for (const auto& v : response.vectors)
    values += v.size();
  std::string out;
  out.reserve(128 + response.vectors.size() * 64 + values * (base64 ? 6 : 12));
  out += R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < response.vectors.size(); ++i) {
    const std::vector<float>& vector = response.vectors[i];
    if (i > 0) out += ',';
    out += R"({"object":"embedding","index":)";
    out += std::to_string(i);
    out += R"(,"embedding":)";
    if (base64) {
      out += '"';
      out += EncodeFloatsBase64(vector);
      out += '"';
    } else {
      out += '[';
      for (std::size_t k = 0; k < vector.size(); ++k) {
        if (k > 0) out += ',';
        AppendJsonFloat(out, vector[k]);
      }
      out += ']';
    }
    out += '}';
  }
  out += R"(],"model":)";
  AppendJsonString(out, response.model);
  out += R"(,"usage":{"prompt_tokens":)";
  out += std::to_string(response.usage.prompt_tokens);
  out += R"(,"total_tokens":)";
  out += std::to_string(response.usage.total_tokens != 0 ? response.usage.total_tokens
                                                         : response.usage.prompt_tokens);
  out += "}}";
  return out;
}

Result<EmbeddingResponse> ParseEmbeddingResponse(std::string_view body) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseJson(body, doc, "the upstream response", ErrorCode::kUpstreamError);
      !parsed) {
    return parsed.error();
  }
  const json::object* top = doc.if_object();
  if (top == nullptr) return UpstreamError("the upstream response is not a JSON object");
  if (auto error = ErrorDocument(*top, body)) return *error;
  const json::array* data = FindArray(*top, "data");
  if (data == nullptr) return UpstreamError("the upstream response has no 'data' array");

  EmbeddingResponse response;
  response.model = StringOr(*top, "model");
  response.usage = ParseUsage(*top);
  response.vectors.resize(data->size());
  std::vector<bool> seen(data->size(), false);
  for (std::size_t i = 0; i < data->size(); ++i) {
    const json::object* item = (*data)[i].if_object();
    if (item == nullptr) return UpstreamError("an upstream embedding is not an object");
    const std::int64_t index = FindInteger(*item, "index").value_or(static_cast<std::int64_t>(i));
    if (index < 0 || static_cast<std::size_t>(index) >= data->size() ||
        seen[static_cast<std::size_t>(index)]) {
      return UpstreamError("the upstream embeddings have a bad or repeated index");
    }
    seen[static_cast<std::size_t>(index)] = true;
    std::vector<float>& vector = response.vectors[static_cast<std::size_t>(index)];
    const json::value* embedding = Find(*item, "embedding");
    if (embedding != nullptr && embedding->is_string()) {
      auto decoded = DecodeFloatsBase64(embedding->get_string());
      if (!decoded) return UpstreamError("an upstream base64 embedding is malformed");
      vector = std::move(*decoded);
    } else if (embedding != nullptr && embedding->is_array()) {
      const json::array& values = embedding->get_array();
      vector.reserve(values.size());
      for (const json::value& v : values) {
        auto number = AsNumber(v);
        if (!number) return UpstreamError("an upstream embedding holds a non-number");
        vector.push_back(static_cast<float>(*number));
      }
    } else {
      return UpstreamError("an upstream embedding has no 'embedding' array or string");
    }
  }
  return response;
}

namespace {

// `"model":<value>` at the start of an object under construction, recording the value's span.
void BeginWithModel(std::string& out, std::string_view model, std::size_t& begin,
                    std::size_t& end) {
  out.assign(R"({"model":)");
  begin = out.size();
  AppendJsonString(out, model);
  end = out.size();
}

void AppendNumber(std::string& out, std::string_view name, double value) {
  out += ",\"";
  out += name;
  out += "\":";
  char buffer[32];
  auto [p, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, ec == std::errc() ? p : buffer);
}

}  // namespace

void EncodeChatRequest(ChatRequest& request) {
  std::string& out = request.raw_body;
  BeginWithModel(out, request.model, request.model_begin, request.model_end);
  out += R"(,"messages":[)";
  for (std::size_t i = 0; i < request.messages.size(); ++i) {
    const Message& m = request.messages[i];
    if (i > 0) out += ',';
    out += R"({"role":)";
    AppendJsonString(out, m.role);
    out += R"(,"content":)";
    AppendJsonString(out, m.content);
    if (!m.name.empty()) {
      out += R"(,"name":)";
      AppendJsonString(out, m.name);
    }
    out += '}';
  }
  out += ']';
  if (request.temperature) AppendNumber(out, "temperature", *request.temperature);
  if (request.top_p) AppendNumber(out, "top_p", *request.top_p);
  if (request.max_tokens) {
    out += R"(,"max_tokens":)";
    out += std::to_string(*request.max_tokens);
  }
  if (!request.stop.empty()) {
    out += R"(,"stop":[)";
    for (std::size_t i = 0; i < request.stop.size(); ++i) {
      if (i > 0) out += ',';
      AppendJsonString(out, request.stop[i]);
    }
    out += ']';
  }
  if (request.stream) out += R"(,"stream":true)";
  out += '}';
  request.stream_options_begin = request.stream_options_end = 0;
  request.parsed = true;
}

void EncodeEmbeddingRequest(EmbeddingRequest& request) {
  std::string& out = request.raw_body;
  BeginWithModel(out, request.model, request.model_begin, request.model_end);
  out += R"(,"input":[)";
  for (std::size_t i = 0; i < request.inputs.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(out, request.inputs[i]);
  }
  out += ']';
  if (request.dimensions) {
    out += R"(,"dimensions":)";
    out += std::to_string(*request.dimensions);
  }
  out += '}';
}

}  // namespace orchestra::wire::openai

namespace orchestra::wire {

Result<void> ChatRequest::Parse() {
  if (parsed) return {};
  if (auto r = openai::ParseChatMessages(*this); !r) return r.error();
  parsed = true;
  return {};
}

}  // namespace orchestra::wire
