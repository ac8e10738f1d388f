#include "providers/local/local_provider.hpp"

#include <algorithm>

#include "common/json_scan.hpp"
#include "common/model_files.hpp"
#include "observability/log.hpp"
#include "providers/local/extractive_chat.hpp"
#include "providers/local/tokens.hpp"
#include "providers/local/word_vectors.hpp"
#include "tokens/chat.hpp"
#include "tokens/encoding.hpp"
#include "wire/codec_util.hpp"

namespace orchestra::providers {
namespace {

namespace asio = boost::asio;

ProviderError Failure(Error error) {
  ProviderError e;
  e.kind = FailureKind::kStatus;
  e.status = error.code == ErrorCode::kUnprocessable ? 422
             : error.code == ErrorCode::kNotFound    ? 404
                                                     : 400;
  e.error = std::move(error);
  return e;
}

ProviderError Invalid(std::string message, std::string param) {
  return Failure(Error(ErrorCode::kInvalidRequest, std::move(message), std::move(param)));
}

// A model the local provider has, asked for a kind of work it does not do: the request's fault
// (400, like an Anthropic model asked for embeddings), not an unknown model.
ProviderError WrongKind(std::string_view model, bool wants_embeddings) {
  return Invalid(wants_embeddings ? std::string(model) +
                                        " is a chat model and has no embeddings: use local-embed"
                                  : std::string(model) +
                                        " is an embedding model and cannot chat: use "
                                        "local-extractive, or /v1/embeddings",
                 "model");
}

ProviderError UnknownModel(std::string_view model) {
  return Failure(Error(ErrorCode::kNotFound,
                       "the local provider has no model '" + std::string(model) +
                           "' (it serves local-extractive and local-embed)",
                       "model"));
}

Error Unsupported(std::string_view field, std::string_view what) {
  return Error(ErrorCode::kInvalidRequest,
               "the local provider (local-extractive) does not support " + std::string(what) +
                   ": use a provider that does (OpenAI, Anthropic or Gemini)",
               std::string(field));
}

// The JSON text `json` is a string equal to one of `allowed` (or absent/null).
bool StringAmong(std::string_view json, std::initializer_list<std::string_view> allowed) {
  if (json.empty() || json == "null") return true;
  auto s = DecodeJsonString(json);
  return s && std::find(allowed.begin(), allowed.end(), *s) != allowed.end();
}

// `{"type":"text"}`, the one response format that asks for nothing special.
bool IsTextFormat(std::string_view json) {
  if (json.empty() || json == "null") return true;
  std::optional<std::string> type;
  auto kind = ScanJson(json, [&](std::string_view key, const JsonSpan& value) {
    if (key == "type" && value.kind == JsonKind::kString) type = DecodeJsonString(value.In(json));
  });
  return kind == JsonKind::kObject && type == "text";
}

// Usage of the local models in tokens of cl100k_base (tokens/encoding.hpp's stand-in for
// providers whose tokenizer is not published), so that limits and budgets count them like any
// model's. Words when the rank file is missing.
const tokens::Encoding* LocalEncoding() {
  auto e = tokens::Get("cl100k_base");
  return e ? *e : nullptr;
}

std::int64_t CountTokens(std::string_view text) {
  if (const tokens::Encoding* e = LocalEncoding()) return static_cast<std::int64_t>(e->Count(text));
  return static_cast<std::int64_t>(local::CountWords(text));
}

std::int64_t CountPrompt(const std::vector<wire::Message>& messages) {
  if (const tokens::Encoding* e = LocalEncoding()) {
    std::vector<tokens::ChatMessage> text;
    for (const wire::Message& m : messages)
      text.push_back({m.role, m.content, m.name});
    return static_cast<std::int64_t>(tokens::CountChatMessages(*e, text));
  }
  std::int64_t words = 0;
  for (const wire::Message& m : messages)
    words += CountTokens(m.content);
  return words;
}

// Cuts `text` before the first stop sequence it contains.
void ApplyStop(std::string& text, const std::vector<std::string>& stop) {
  std::size_t cut = text.size();
  for (const std::string& s : stop) {
    if (!s.empty()) cut = std::min(cut, text.find(s));
  }
  if (cut < text.size()) text.resize(cut);
}

}  // namespace

std::optional<Error> UnsupportedLocalChatField(const wire::ChatRequest& request) {
  const std::string_view tools = request.tools_json;
  if (!tools.empty() && tools != "null" && tools != "[]") {
    return Unsupported("tools", "tools (function calling)");
  }
  if (!StringAmong(request.tool_choice_json, {"none", "auto"})) {
    return Unsupported("tool_choice", "tool_choice");
  }
  if (!IsTextFormat(request.response_format_json)) {
    return Unsupported("response_format", "response_format other than text (JSON output)");
  }
  if (request.n && *request.n > 1) return Unsupported("n", "n > 1 (one answer is all it has)");
  for (const wire::Message& m : request.messages) {
    if (m.has_non_text_parts) return Unsupported("messages", "images or audio in messages");
  }
  // Fields the parsed request does not carry: read from the client's own body.
  std::optional<Error> found;
  const std::string_view body = request.raw_body;
  ScanJson(body, [&](std::string_view key, const JsonSpan& value) {
    if (found || value.kind == JsonKind::kNull) return;
    const std::string_view v = value.In(body);
    if (key == "logprobs" && v == "true") {
      found = Unsupported("logprobs", "logprobs");
    } else if (key == "top_logprobs") {
      found = Unsupported("top_logprobs", "top_logprobs");
    } else if (key == "functions" || key == "function_call") {
      found = Unsupported(key, "function calling");
    } else if (key == "audio" || key == "prediction" || key == "web_search_options") {
      found = Unsupported(key, key);
    } else if (key == "modalities" && v.find("audio") != std::string_view::npos) {
      found = Unsupported("modalities", "audio output");
    }
  });
  return found;
}

LocalProvider::LocalProvider(std::string name) : name_(std::move(name)) {
  // Only a stat() per place: the file is read on first use.
  if (!FindModelFile(local::WordVectors::kFileName)) {
    observability::Log(observability::Severity::kWarning,
                       "local models: word vectors not found; local-embed and the local task "
                       "models use lexical features only (run scripts/setup.sh, or set "
                       "ORCHESTRA_MODELS_DIR)",
                       {{"file", local::WordVectors::kFileName}});
  }
}

asio::awaitable<ProviderResult<wire::ChatResponse>> LocalProvider::Chat(
    const wire::ChatRequest& request, const CallOptions& options) {
  if (options.upstream_model == kEmbedModel) co_return WrongKind(options.upstream_model, false);
  if (options.upstream_model != kChatModel) co_return UnknownModel(options.upstream_model);
  if (!request.parsed) co_return Invalid("the request's messages were not parsed", "messages");
  if (auto unsupported = UnsupportedLocalChatField(request)) co_return Failure(*unsupported);
  std::vector<local::ChatTurn> turns;
  turns.reserve(request.messages.size());
  for (const wire::Message& m : request.messages)
    turns.push_back({m.role, m.content});
  const std::size_t max_words = request.max_tokens && *request.max_tokens > 0
                                    ? static_cast<std::size_t>(*request.max_tokens)
                                    : 0;
  auto reply = local::ExtractiveReply(embedder_, turns, max_words);
  if (!reply) co_return Failure(reply.error());
  wire::ChatResponse response;
  response.id = wire::NewChatCompletionId();
  response.created = wire::UnixNow();
  response.model = std::string(kChatModel);
  wire::ChatChoice choice;
  choice.content = std::move(reply->text);
  ApplyStop(choice.content, request.stop);
  choice.finish_reason = "stop";
  response.usage = {CountPrompt(request.messages), CountTokens(choice.content), 0, true};
  response.usage.total_tokens = response.usage.prompt_tokens + response.usage.completion_tokens;
  response.choices.push_back(std::move(choice));
  co_return response;
}

asio::awaitable<ProviderResult<StreamSummary>> LocalProvider::ChatStream(
    const wire::ChatRequest& request, const CallOptions& options, ChunkSink& sink) {
  // The same answer as Chat, in chunks: a refusal comes before the first one.
  auto full = co_await Chat(request, options);
  if (!full) co_return full.error();
  const wire::ChatResponse& r = *full;
  wire::ChatChunk chunk;
  chunk.id = r.id;
  chunk.created = r.created;
  chunk.model = r.model;
  StreamSummary summary;
  summary.upstream_model = r.model;
  auto cancelled = [] {
    ProviderError e;
    e.kind = FailureKind::kCancelled;
    e.error = Error(ErrorCode::kCancelled, "client went away");
    return e;
  };
  // One chunk per word, as a model would stream tokens.
  const std::string& text = r.choices[0].content;
  std::size_t i = 0;
  bool first = true;
  while (i < text.size()) {
    std::size_t end = text.find(' ', i + 1);
    if (end == std::string::npos) end = text.size();
    chunk.role = first ? "assistant" : "";
    chunk.content = text.substr(i, end - i);
    first = false;
    i = end;
    ++summary.chunks;
    if (!co_await sink.OnChunk(chunk)) co_return cancelled();
  }
  chunk.role = first ? "assistant" : "";
  chunk.content.clear();
  chunk.finish_reason = "stop";
  if (!co_await sink.OnChunk(chunk)) co_return cancelled();
  wire::ChatChunk usage;
  usage.id = r.id;
  usage.created = r.created;
  usage.model = r.model;
  usage.usage = r.usage;
  usage.usage_only = true;
  if (!co_await sink.OnChunk(usage)) co_return cancelled();
  summary.usage = r.usage;
  summary.finish_reason = "stop";
  co_return summary;
}

asio::awaitable<ProviderResult<wire::EmbeddingResponse>> LocalProvider::Embed(
    const wire::EmbeddingRequest& request, const CallOptions& options) {
  if (options.upstream_model == kChatModel) co_return WrongKind(options.upstream_model, true);
  if (options.upstream_model != kEmbedModel) co_return UnknownModel(options.upstream_model);
  if (request.token_input)
    co_return Invalid("local-embed takes text input, not token ids", "input");
  std::size_t dims = local::Embedder::kDefaultDimensions;
  if (request.dimensions) {
    if (*request.dimensions < 1 ||
        *request.dimensions > static_cast<std::int64_t>(local::Embedder::kMaxDimensions)) {
      co_return Invalid("dimensions must be between 1 and 4096", "dimensions");
    }
    dims = static_cast<std::size_t>(*request.dimensions);
  }
  wire::EmbeddingResponse response;
  response.model = std::string(kEmbedModel);
  std::int64_t tokens = 0;
  for (const std::string& input : request.inputs) {
    response.vectors.push_back(embedder_.Embed(input, dims));
    tokens += CountTokens(input);
  }
  response.usage = {tokens, 0, tokens, true};
  co_return response;
}

asio::awaitable<Result<std::string>> LocalProvider::Warmup(int /*worker*/) {
  // Says where the word vectors stand without loading them on an event-loop thread.
  const auto& vectors = local::WordVectors::Default();
  co_return "local models: " + (vectors.state() == local::WordVectors::State::kNotLoaded
                                    ? std::string("word vectors load on first use")
                                    : vectors.Status());
}

}  // namespace orchestra::providers
