#include "providers/gemini/codec.hpp"

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <utility>

#include <boost/json.hpp>

#include "wire/codec_util.hpp"

namespace orchestra::providers::gemini {
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

// Separates a tool call id from the thought signature it carries (see the header).
constexpr std::string_view kSignatureMarker = ".gts.";
// Gemini's documented placeholder for function calls that no Gemini model signed.
constexpr std::string_view kSkipSignature = "skip_thought_signature_validator";
// A hostile upstream must not make the decoder allocate for absurd candidate indexes.
constexpr std::int64_t kMaxCandidates = 128;

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
// Thought signatures inside tool call ids. The signature is standard base64; in the id it is
// written URL-safe and unpadded so that the id stays within [A-Za-z0-9._-].

std::string ToolCallId(std::string_view base, std::string_view signature) {
  std::string id = base.empty() ? wire::NewToolCallId() : std::string(base);
  if (signature.empty()) return id;
  id += kSignatureMarker;
  for (char c : signature) {
    if (c == '=') break;
    id += c == '+' ? '-' : c == '/' ? '_' : c;
  }
  return id;
}

// The signature carried by a tool call id, standard base64 and padded again; "" when none.
std::string SignatureOf(std::string_view id) {
  const std::size_t at = id.find(kSignatureMarker);
  if (at == std::string_view::npos) return {};
  std::string signature(id.substr(at + kSignatureMarker.size()));
  for (char& c : signature) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (signature.size() % 4 != 0)
    signature += '=';
  return signature;
}

// ---------------------------------------------------------------------------------------------
// Request

json::object TextPart(std::string_view text) {
  json::object part;
  part["text"] = text;
  return part;
}

// Appends a content of `role`, merged into the previous one when it has the same role.
void AddContent(json::array& contents, std::string_view role, json::array parts) {
  if (parts.empty()) return;
  if (!contents.empty()) {
    json::object& last = contents.back().as_object();
    if (last["role"].as_string() == role) {
      json::array& last_parts = last["parts"].as_array();
      for (json::value& p : parts)
        last_parts.push_back(std::move(p));
      return;
    }
  }
  json::object content;
  content["role"] = role;
  content["parts"] = std::move(parts);
  contents.push_back(std::move(content));
}

// A user message's parts: its text, or its text and images in order (images only as inline
// data from data: URLs). Empty text, which Gemini rejects, is left out.
Result<json::array> UserParts(const wire::Message& m, const std::string& param) {
  json::array parts;
  if (m.parts.empty()) {
    if (!m.content.empty()) parts.push_back(TextPart(m.content));
    return parts;
  }
  for (std::size_t j = 0; j < m.parts.size(); ++j) {
    const wire::ContentPart& part = m.parts[j];
    if (part.image_url.empty()) {
      if (!part.text.empty()) parts.push_back(TextPart(part.text));
      continue;
    }
    const auto data = wire::ParseDataUrl(part.image_url);
    if (!data) {
      const std::string url_param = Indexed(param + ".content", j) + ".image_url.url";
      return Invalid("'" + url_param +
                         "': Gemini takes images through Orchestra only as data: URLs "
                         "(data:<type>;base64,...)",
                     url_param);
    }
    json::object inline_data;
    inline_data["mimeType"] = data->mime_type;
    inline_data["data"] = data->base64_data;
    json::object out;
    out["inlineData"] = std::move(inline_data);
    parts.push_back(std::move(out));
  }
  return parts;
}

Result<json::value> ParseArguments(std::string_view arguments, const std::string& param) {
  json::value args;
  std::string_view text = arguments;
  while (!text.empty() && IsJsonSpace(text.front()))
    text.remove_prefix(1);
  if (text.empty()) return json::value(json::object());
  if (auto parsed = ParseJson(text, args, "'" + param + "'", ErrorCode::kInvalidRequest);
      !parsed || !args.is_object()) {
    return Invalid("'" + param + "' must be a JSON object to be sent to Gemini", param);
  }
  return args;
}

Result<json::object> FunctionDeclarations(std::string_view tools_json) {
  json::value doc;
  auto tools = wire::codec_detail::ReadFunctionTools(tools_json, doc, "Gemini");
  if (!tools) return tools.error();
  json::array declarations;
  for (const wire::codec_detail::FunctionTool& tool : *tools) {
    json::object declaration;
    declaration["name"] = *tool.name;
    if (tool.description != nullptr) declaration["description"] = *tool.description;
    if (tool.parameters != nullptr) declaration["parametersJsonSchema"] = *tool.parameters;
    declarations.push_back(std::move(declaration));
  }
  json::object out;
  if (!declarations.empty()) out["functionDeclarations"] = std::move(declarations);
  return out;
}

Result<json::object> ToolConfig(std::string_view tool_choice_json) {
  using wire::codec_detail::ToolMode;
  auto choice = wire::codec_detail::ReadToolChoice(tool_choice_json, "Gemini");
  if (!choice) return choice.error();
  json::object config;
  switch (choice->mode) {
    case ToolMode::kAuto:
      config["mode"] = "AUTO";
      break;
    case ToolMode::kNone:
      config["mode"] = "NONE";
      break;
    case ToolMode::kRequired:
      config["mode"] = "ANY";
      break;
    case ToolMode::kFunction: {
      config["mode"] = "ANY";
      json::array names;
      names.emplace_back(choice->function);
      config["allowedFunctionNames"] = std::move(names);
      break;
    }
  }
  json::object out;
  out["functionCallingConfig"] = std::move(config);
  return out;
}

Result<void> AddResponseFormat(std::string_view response_format_json, json::object& config) {
  json::value doc;
  if (auto parsed =
          ParseJson(response_format_json, doc, "'response_format'", ErrorCode::kInvalidRequest);
      !parsed) {
    return parsed.error();
  }
  const json::object* format = doc.if_object();
  const json::string* type = format != nullptr ? FindString(*format, "type") : nullptr;
  if (type == nullptr) {
    return Invalid("'response_format.type' must be a string", "response_format.type");
  }
  if (*type == "text") return {};
  if (*type == "json_object") {
    config["responseMimeType"] = "application/json";
    return {};
  }
  if (*type == "json_schema") {
    config["responseMimeType"] = "application/json";
    const json::object* schema_holder = FindObject(*format, "json_schema");
    if (schema_holder != nullptr) {
      if (const json::value* schema = Find(*schema_holder, "schema");
          schema != nullptr && !schema->is_null()) {
        config["responseJsonSchema"] = *schema;
      }
    }
    return {};
  }
  return Invalid("'response_format.type' '" + std::string(*type) + "' cannot be sent to Gemini",
                 "response_format.type");
}

// ---------------------------------------------------------------------------------------------
// Responses

std::string MapFinishReason(std::string_view reason) {
  if (reason.empty()) return {};
  if (reason == "MAX_TOKENS") return "length";
  if (reason == "SAFETY" || reason == "RECITATION" || reason == "BLOCKLIST" ||
      reason == "PROHIBITED_CONTENT" || reason == "SPII" || reason.starts_with("IMAGE_")) {
    return "content_filter";
  }
  // STOP, and the reasons OpenAI has no word for (MALFORMED_FUNCTION_CALL, LANGUAGE, OTHER...).
  return "stop";
}

wire::Usage ParseUsageMetadata(const json::object& top) {
  wire::Usage usage;
  const json::object* meta = FindObject(top, "usageMetadata");
  if (meta == nullptr) return usage;
  auto prompt = FindTokenCount(*meta, "promptTokenCount");
  auto tool_prompt = FindTokenCount(*meta, "toolUsePromptTokenCount");
  auto candidates = FindTokenCount(*meta, "candidatesTokenCount");
  auto thoughts = FindTokenCount(*meta, "thoughtsTokenCount");
  auto total = FindTokenCount(*meta, "totalTokenCount");
  if (!prompt && !candidates && !total) return usage;
  usage.known = true;
  usage.prompt_tokens = prompt.value_or(0) + tool_prompt.value_or(0);
  usage.completion_tokens = candidates.value_or(0) + thoughts.value_or(0);
  usage.total_tokens = total.value_or(usage.prompt_tokens + usage.completion_tokens);
  return usage;
}

// An error document (`{"error":{...}}`) as an Error with the upstream's status.
std::optional<Error> ErrorDocument(const json::object& top, std::string_view body) {
  const json::object* error = FindObject(top, "error");
  if (error == nullptr) return std::nullopt;
  const int status = static_cast<int>(FindInteger(*error, "code").value_or(0));
  ErrorCode code = ErrorCode::kUpstreamError;
  if (status == 429) code = ErrorCode::kRateLimited;
  if (status == 503) code = ErrorCode::kUnavailable;
  return Error(code, "Gemini error: " + wire::ErrorMessageFromBody(body), {}, status);
}

std::optional<Error> BlockedPrompt(const json::object& top) {
  const json::object* feedback = FindObject(top, "promptFeedback");
  const json::string* reason = feedback != nullptr ? FindString(*feedback, "blockReason") : nullptr;
  if (reason == nullptr) return std::nullopt;
  return Invalid("Gemini blocked the prompt (" + std::string(*reason) + ")", "messages");
}

// The text and function calls of one candidate's parts.
struct CandidateParts {
  std::string text;
  std::vector<wire::ToolCall> tool_calls;
};

CandidateParts ReadParts(const json::object& candidate, int first_tool_index) {
  CandidateParts out;
  const json::object* content = FindObject(candidate, "content");
  const json::array* parts = content != nullptr ? FindArray(*content, "parts") : nullptr;
  if (parts == nullptr) return out;
  for (const json::value& p : *parts) {
    const json::object* part = p.if_object();
    if (part == nullptr) continue;
    if (const json::value* thought = Find(*part, "thought");
        thought != nullptr && thought->is_bool() && thought->get_bool()) {
      continue;  // a thought summary, not the answer
    }
    if (const json::string* text = FindString(*part, "text"); text != nullptr) {
      out.text.append(text->data(), text->size());
    }
    if (const json::object* call = FindObject(*part, "functionCall"); call != nullptr) {
      wire::ToolCall tool;
      tool.index = first_tool_index + static_cast<int>(out.tool_calls.size());
      tool.id = ToolCallId(StringOr(*call, "id"), StringOr(*part, "thoughtSignature"));
      tool.name = StringOr(*call, "name");
      const json::value* args = Find(*call, "args");
      tool.arguments = args != nullptr && !args->is_null() ? json::serialize(*args) : "{}";
      out.tool_calls.push_back(std::move(tool));
    }
  }
  return out;
}

Result<std::vector<float>> ReadValues(const json::object& embedding) {
  const json::array* values = FindArray(embedding, "values");
  if (values == nullptr) return UpstreamError("a Gemini embedding has no 'values' array");
  std::vector<float> out;
  out.reserve(values->size());
  for (const json::value& v : *values) {
    auto number = wire::codec_detail::AsNumber(v);
    if (!number) return UpstreamError("a Gemini embedding holds a non-number");
    out.push_back(static_cast<float>(*number));
  }
  return out;
}

std::string QualifiedModel(std::string_view model) {
  if (model.find('/') != std::string_view::npos) return std::string(model);
  return "models/" + std::string(model);
}

}  // namespace

Result<std::string> BuildGenerateContentRequest(const wire::ChatRequest& request) {
  json::object body;
  json::array contents;
  json::array system_parts;
  // The function each earlier tool call named, to name the response that answers it.
  std::unordered_map<std::string, std::string> call_names;

  for (std::size_t i = 0; i < request.messages.size(); ++i) {
    const wire::Message& m = request.messages[i];
    const std::string param = Indexed("messages", i);
    if (m.has_non_text_parts && m.parts.empty()) {
      return Invalid("'" + param +
                         "' has content Gemini cannot take through Orchestra (audio, files, "
                         "custom tools or legacy function calls)",
                     param + ".content");
    }
    if (m.role == "system" || m.role == "developer") {
      if (!m.content.empty()) system_parts.push_back(TextPart(m.content));
    } else if (m.role == "user") {
      auto parts = UserParts(m, param);
      if (!parts) return parts.error();
      AddContent(contents, "user", std::move(*parts));
    } else if (m.role == "assistant") {
      json::array parts;
      if (!m.content.empty()) parts.push_back(TextPart(m.content));
      const bool signed_turn =
          std::any_of(m.tool_calls.begin(), m.tool_calls.end(),
                      [](const wire::ToolCall& c) { return !SignatureOf(c.id).empty(); });
      for (std::size_t j = 0; j < m.tool_calls.size(); ++j) {
        const wire::ToolCall& call = m.tool_calls[j];
        auto args = ParseArguments(
            call.arguments, param + ".tool_calls[" + std::to_string(j) + "].function.arguments");
        if (!args) return args.error();
        json::object function_call;
        function_call["name"] = call.name;
        function_call["args"] = std::move(*args);
        json::object part;
        part["functionCall"] = std::move(function_call);
        if (std::string signature = SignatureOf(call.id); !signature.empty()) {
          part["thoughtSignature"] = signature;
        } else if (!signed_turn && j == 0) {
          part["thoughtSignature"] = kSkipSignature;
        }
        parts.push_back(std::move(part));
        call_names[call.id] = call.name;
      }
      AddContent(contents, "model", std::move(parts));
    } else if (m.role == "tool") {
      std::string name;
      if (auto it = call_names.find(m.tool_call_id); it != call_names.end()) {
        name = it->second;
      } else if (!m.name.empty()) {
        name = m.name;
      } else {
        return Invalid("'" + param +
                           ".tool_call_id' does not match a tool call of an earlier assistant "
                           "message (Gemini needs the function's name)",
                       param + ".tool_call_id");
      }
      json::value response;
      if (!ParseJson(m.content, response, "", ErrorCode::kInvalidRequest) ||
          !response.is_object()) {
        json::object wrapped;
        wrapped["output"] = m.content;
        response = std::move(wrapped);
      }
      json::object function_response;
      function_response["name"] = name;
      function_response["response"] = std::move(response);
      json::object part;
      part["functionResponse"] = std::move(function_response);
      json::array parts;
      parts.push_back(std::move(part));
      AddContent(contents, "user", std::move(parts));
    } else {
      return Invalid("'" + param + ".role' '" + m.role + "' cannot be sent to Gemini",
                     param + ".role");
    }
  }
  if (contents.empty()) {
    return Invalid("Gemini needs at least one user or assistant message", "messages");
  }
  body["contents"] = std::move(contents);
  if (!system_parts.empty()) {
    json::object instruction;
    instruction["parts"] = std::move(system_parts);
    body["systemInstruction"] = std::move(instruction);
  }
  if (!request.tools_json.empty()) {
    auto declarations = FunctionDeclarations(request.tools_json);
    if (!declarations) return declarations.error();
    if (!declarations->empty()) {
      json::array tools;
      tools.push_back(std::move(*declarations));
      body["tools"] = std::move(tools);
    }
  }
  if (!request.tool_choice_json.empty()) {
    auto config = ToolConfig(request.tool_choice_json);
    if (!config) return config.error();
    body["toolConfig"] = std::move(*config);
  }

  json::object config;
  if (request.temperature) config["temperature"] = *request.temperature;
  if (request.top_p) config["topP"] = *request.top_p;
  if (request.max_tokens) config["maxOutputTokens"] = *request.max_tokens;
  if (!request.stop.empty()) {
    json::array stops;
    for (const std::string& s : request.stop)
      stops.emplace_back(s);
    config["stopSequences"] = std::move(stops);
  }
  if (request.n) config["candidateCount"] = *request.n;
  if (request.seed) {
    // Gemini's seed is an int32.
    if (*request.seed < INT32_MIN || *request.seed > INT32_MAX) {
      return Invalid("Gemini takes a 'seed' that fits in 32 bits", "seed");
    }
    config["seed"] = *request.seed;
  }
  if (!request.response_format_json.empty()) {
    if (auto added = AddResponseFormat(request.response_format_json, config); !added) {
      return added.error();
    }
  }
  if (!config.empty()) body["generationConfig"] = std::move(config);
  return json::serialize(body);
}

Result<wire::ChatResponse> ParseGenerateContentResponse(std::string_view body,
                                                        std::string_view model) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseJson(body, doc, "the Gemini response", ErrorCode::kUpstreamError);
      !parsed) {
    return parsed.error();
  }
  const json::object* top = doc.if_object();
  if (top == nullptr) return UpstreamError("the Gemini response is not a JSON object");
  if (auto error = ErrorDocument(*top, body)) return *error;
  const json::array* candidates = FindArray(*top, "candidates");
  if (candidates == nullptr || candidates->empty()) {
    if (auto blocked = BlockedPrompt(*top)) return *blocked;
    return UpstreamError("the Gemini response has no candidates");
  }

  wire::ChatResponse response;
  response.id = StringOr(*top, "responseId");
  if (response.id.empty()) response.id = wire::NewChatCompletionId();
  response.model = StringOr(*top, "modelVersion");
  if (response.model.empty()) response.model = std::string(model);
  response.created = wire::UnixNow();
  response.usage = ParseUsageMetadata(*top);
  for (std::size_t i = 0; i < candidates->size(); ++i) {
    const json::object* candidate = (*candidates)[i].if_object();
    if (candidate == nullptr) return UpstreamError("a Gemini candidate is not an object");
    wire::ChatChoice choice;
    choice.index =
        static_cast<int>(FindInteger(*candidate, "index").value_or(static_cast<std::int64_t>(i)));
    CandidateParts parts = ReadParts(*candidate, 0);
    choice.content = std::move(parts.text);
    choice.tool_calls = std::move(parts.tool_calls);
    choice.finish_reason = MapFinishReason(StringOr(*candidate, "finishReason"));
    if (!choice.tool_calls.empty() &&
        (choice.finish_reason == "stop" || choice.finish_reason.empty())) {
      choice.finish_reason = "tool_calls";
    }
    response.choices.push_back(std::move(choice));
  }
  std::sort(response.choices.begin(), response.choices.end(),
            [](const wire::ChatChoice& a, const wire::ChatChoice& b) { return a.index < b.index; });
  return response;
}

StreamDecoder::StreamDecoder(std::string model)
    : model_(std::move(model)), created_(wire::UnixNow()) {}

wire::ChatChunk StreamDecoder::NewChunk(int index) const {
  wire::ChatChunk chunk;
  chunk.id = id_;
  chunk.model = model_;
  chunk.created = created_;
  chunk.index = index;
  return chunk;
}

Result<std::vector<wire::ChatChunk>> StreamDecoder::Feed(std::string_view data) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseJson(data, doc, "a Gemini stream event", ErrorCode::kUpstreamError);
      !parsed) {
    return parsed.error();
  }
  const json::object* top = doc.if_object();
  if (top == nullptr) return UpstreamError("a Gemini stream event is not a JSON object");
  if (auto error = ErrorDocument(*top, data)) return *error;
  const json::array* candidates = FindArray(*top, "candidates");
  if ((candidates == nullptr || candidates->empty())) {
    if (auto blocked = BlockedPrompt(*top)) return *blocked;
  }
  if (id_.empty()) {
    id_ = StringOr(*top, "responseId");
    if (id_.empty()) id_ = wire::NewChatCompletionId();
  }
  if (!model_reported_) {
    if (const json::string* version = FindString(*top, "modelVersion"); version != nullptr) {
      model_ = std::string(*version);
      model_reported_ = true;
    }
  }
  if (wire::Usage usage = ParseUsageMetadata(*top); usage.known) usage_ = usage;

  std::vector<wire::ChatChunk> chunks;
  if (candidates == nullptr) return chunks;
  for (std::size_t i = 0; i < candidates->size(); ++i) {
    const json::object* candidate = (*candidates)[i].if_object();
    if (candidate == nullptr) return UpstreamError("a Gemini candidate is not an object");
    const std::int64_t index =
        FindInteger(*candidate, "index").value_or(static_cast<std::int64_t>(i));
    if (index < 0 || index >= kMaxCandidates) {
      return UpstreamError("a Gemini candidate has an out-of-range index");
    }
    if (static_cast<std::size_t>(index) >= candidates_.size()) {
      candidates_.resize(static_cast<std::size_t>(index) + 1);
    }
    Candidate& state = candidates_[static_cast<std::size_t>(index)];
    wire::ChatChunk chunk = NewChunk(static_cast<int>(index));
    if (!state.role_sent) {
      chunk.role = "assistant";
      state.role_sent = true;
    }
    CandidateParts parts = ReadParts(*candidate, state.tool_calls);
    chunk.content = std::move(parts.text);
    state.tool_calls += static_cast<int>(parts.tool_calls.size());
    chunk.tool_calls = std::move(parts.tool_calls);
    chunk.finish_reason = MapFinishReason(StringOr(*candidate, "finishReason"));
    if (!chunk.finish_reason.empty()) {
      state.finished = true;
      if (state.tool_calls > 0 && chunk.finish_reason == "stop") chunk.finish_reason = "tool_calls";
    }
    if (!chunk.role.empty() || !chunk.content.empty() || !chunk.tool_calls.empty() ||
        !chunk.finish_reason.empty()) {
      chunks.push_back(std::move(chunk));
    }
  }
  return chunks;
}

std::optional<wire::ChatChunk> StreamDecoder::Finish() const {
  if (!usage_.known) return std::nullopt;
  wire::ChatChunk chunk = NewChunk(0);
  if (chunk.id.empty()) chunk.id = wire::NewChatCompletionId();
  chunk.usage_only = true;
  chunk.usage = usage_;
  return chunk;
}

bool StreamDecoder::finished() const {
  return !candidates_.empty() &&
         std::all_of(candidates_.begin(), candidates_.end(),
                     [](const Candidate& c) { return c.finished || !c.role_sent; });
}

Result<std::string> BuildEmbedRequest(const wire::EmbeddingRequest& request,
                                      std::string_view model) {
  if (request.token_input) {
    return Invalid("Gemini embeddings take text, not token ids", "input");
  }
  if (request.inputs.empty()) return Invalid("'input' must not be empty", "input");
  auto content = [](std::string_view text) {
    json::array parts;
    parts.push_back(TextPart(text));
    json::object c;
    c["parts"] = std::move(parts);
    return c;
  };
  if (!UsesBatchEmbed(request)) {
    json::object body;
    body["content"] = content(request.inputs.front());
    if (request.dimensions) body["outputDimensionality"] = *request.dimensions;
    return json::serialize(body);
  }
  const std::string qualified = QualifiedModel(model);
  json::array requests;
  requests.reserve(request.inputs.size());
  for (const std::string& input : request.inputs) {
    json::object one;
    one["model"] = qualified;
    one["content"] = content(input);
    if (request.dimensions) one["outputDimensionality"] = *request.dimensions;
    requests.push_back(std::move(one));
  }
  json::object body;
  body["requests"] = std::move(requests);
  return json::serialize(body);
}

Result<wire::EmbeddingResponse> ParseEmbedResponse(std::string_view body, bool batch) {
  json::monotonic_resource resource;
  json::value doc(&resource);
  if (auto parsed = ParseJson(body, doc, "the Gemini response", ErrorCode::kUpstreamError);
      !parsed) {
    return parsed.error();
  }
  const json::object* top = doc.if_object();
  if (top == nullptr) return UpstreamError("the Gemini response is not a JSON object");
  if (auto error = ErrorDocument(*top, body)) return *error;
  wire::EmbeddingResponse response;
  if (batch) {
    const json::array* embeddings = FindArray(*top, "embeddings");
    if (embeddings == nullptr) return UpstreamError("the Gemini response has no 'embeddings'");
    for (const json::value& e : *embeddings) {
      const json::object* embedding = e.if_object();
      if (embedding == nullptr) return UpstreamError("a Gemini embedding is not an object");
      auto values = ReadValues(*embedding);
      if (!values) return values.error();
      response.vectors.push_back(std::move(*values));
    }
  } else {
    const json::object* embedding = FindObject(*top, "embedding");
    if (embedding == nullptr) return UpstreamError("the Gemini response has no 'embedding'");
    auto values = ReadValues(*embedding);
    if (!values) return values.error();
    response.vectors.push_back(std::move(*values));
  }
  if (const json::object* meta = FindObject(*top, "usageMetadata"); meta != nullptr) {
    if (auto prompt = FindTokenCount(*meta, "promptTokenCount")) {
      response.usage.known = true;
      response.usage.prompt_tokens = *prompt;
      response.usage.total_tokens = FindTokenCount(*meta, "totalTokenCount").value_or(*prompt);
    }
  }
  return response;
}

}  // namespace orchestra::providers::gemini
