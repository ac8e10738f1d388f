#include "api/openai.hpp"

#include <array>
#include <chrono>
#include <map>
#include <memory>

#include <boost/json/serialize.hpp>

#include "api/context.hpp"
#include "api/documents.hpp"
#include "api/json_body.hpp"
#include "api/request_info.hpp"
#include "auth/key_record.hpp"
#include "common/text.hpp"
#include "wire/codec_util.hpp"
#include "wire/openai_codec.hpp"
#include "wire/openai_scan.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
using orchestration::Served;

// Time spent in Orchestra itself: everything since the request arrived except the waits for
// upstreams.
std::int64_t OverheadUs(const net::Request& request, const Served& served) {
  const auto total = std::chrono::steady_clock::now() - request.start;
  const auto own = total - served.upstream_time;
  return std::max<std::int64_t>(0,
                                std::chrono::duration_cast<std::chrono::microseconds>(own).count());
}

void AddServedHeaders(net::Response& response, const Served& served, std::int64_t overhead_us) {
  response.AddHeader("x-orchestra-provider", served.provider);
  response.AddHeader("x-orchestra-model", served.upstream_model);
  response.AddHeader("x-orchestra-overhead-us", std::to_string(overhead_us));
  if (served.cache_hit) {
    response.AddHeader("x-orchestra-cache", "hit");
  } else if (served.cache_miss) {
    response.AddHeader("x-orchestra-cache", "miss");
  }
}

// Writes a chat stream as server-sent events in OpenAI's shape.
// With `citations` (the chat `documents` option's chunk ids as a JSON array), the chunk that
// ends a choice (finish_reason set) carries them as a top-level `citations` member; a stream that
// never says so gets them in a chunk of their own (no choices) before [DONE].
class SseWriter final : public orchestration::StreamWriter {
 public:
  SseWriter(RequestContext& ctx, bool client_wants_usage, std::string_view citations)
      : ctx_(ctx), client_wants_usage_(client_wants_usage), citations_(citations) {}

  asio::awaitable<bool> Begin(const Served& served) override {
    ctx_.response.status = 200;
    AddServedHeaders(ctx_.response, served, OverheadUs(ctx_.request, served));
    ctx_.response.AddHeader("X-Request-Id", ctx_.request_id);
    co_return co_await ctx_.exchange.BeginStream("text/event-stream");
  }

  asio::awaitable<bool> Write(wire::ChatChunk& chunk) override {
    // Usage is always asked of the upstream (to count tokens); the client sees the usage chunk
    // only when it asked for it.
    if (chunk.usage_only && !client_wants_usage_) co_return true;
    buffer_.assign("data: ");
    if (!chunk.raw.empty()) {
      buffer_ += chunk.raw;
    } else {
      buffer_ += wire::openai::EncodeChatChunk(chunk);
    }
    if (!citations_.empty()) Cite(chunk);
    buffer_ += "\n\n";
    co_return co_await ctx_.exchange.WriteChunk(buffer_);
  }

  asio::awaitable<void> Finish() {
    if (!citations_.empty() && !cited_) {
      buffer_ = R"(data: {"id":)";
      wire::AppendJsonString(buffer_, id_);
      buffer_ += R"(,"object":"chat.completion.chunk","created":)";
      buffer_ += std::to_string(created_);
      buffer_ += R"(,"model":)";
      wire::AppendJsonString(buffer_, model_);
      buffer_ += R"(,"choices":[],"citations":)";
      buffer_ += citations_;
      buffer_ += "}\n\n";
      co_await ctx_.exchange.WriteChunk(buffer_);
    }
    co_await ctx_.exchange.WriteChunk("data: [DONE]\n\n");
    co_await ctx_.exchange.EndStream();
  }

  // A failure after the stream began: an error event in OpenAI's error shape (the SDKs raise
  // it), and the stream ends without [DONE].
  asio::awaitable<void> Fail(const Error& error) {
    buffer_ = "data: " + ErrorJson(error) + "\n\n";
    co_await ctx_.exchange.WriteChunk(buffer_);
    co_await ctx_.exchange.EndStream();
  }

 private:
  // buffer_ holds "data: " + the chunk's JSON: the citations go in when the chunk ends a choice;
  // otherwise its id, created and model are kept for the chunk Finish may have to send.
  void Cite(const wire::ChatChunk& chunk) {
    const std::string_view json = std::string_view(buffer_).substr(6);
    const bool ends =
        chunk.raw.empty() ? !chunk.finish_reason.empty() : wire::openai::ChunkFinishesAChoice(json);
    if (ends) {
      wire::AppendMember(buffer_, "citations", citations_);
      cited_ = true;
    } else if (id_.empty()) {
      if (chunk.raw.empty()) {
        id_ = chunk.id;
        created_ = chunk.created;
        model_ = chunk.model;
      } else {
        wire::openai::ChunkIdentity(json, id_, created_, model_);
      }
    }
  }

  RequestContext& ctx_;
  bool client_wants_usage_;
  std::string_view citations_;  // "" without the documents option
  bool cited_ = false;
  std::string buffer_;
  std::string id_;
  std::int64_t created_ = 0;
  std::string model_;
};

// Admission's token estimate before the body is tokenized: a JSON body carries about one token
// per four bytes of text, plus the completion tokens asked for (unknown here: none).
std::int64_t EstimateTokens(std::string_view body) {
  return static_cast<std::int64_t>(body.size() / 4);
}

// A streamed chat completion, in a coroutine of its own: the non-streamed path's frame then holds
// no writer, and both stay under the 1,020 bytes Asio recycles without a trip through malloc.
asio::awaitable<void> StreamCompletion(orchestration::Orchestrator& orchestrator,
                                       RequestContext& ctx, wire::ChatRequest& request,
                                       const orchestration::RequestInfo& info,
                                       std::string_view citations = {}) {
  SseWriter writer(ctx, request.client_wants_usage, citations);
  bool started = false;
  auto streamed = co_await orchestrator.ChatStream(request, info, writer, ctx.served, &started);
  if (ctx.exchange.client_gone()) co_return;
  if (streamed) {
    ctx.Settle();
    co_await writer.Finish();
  } else if (started) {
    co_await writer.Fail(streamed.error());
  } else {
    ctx.Fail(streamed.error());
  }
}

// A non-streamed chat completion's answer; with `citations` (the documents option's chunk ids),
// they are added to the body as a top-level member.
void ReplyChat(RequestContext& ctx, orchestration::ChatResult& result,
               std::string_view citations = {}) {
  std::string body = result.response.raw.empty() ? wire::openai::EncodeChatResponse(result.response)
                                                 : std::move(result.response.raw);
  if (!citations.empty()) wire::AppendMember(body, "citations", citations);
  AddServedHeaders(ctx.response, result.served, OverheadUs(ctx.request, result.served));
  ctx.served = std::move(result.served);
  ctx.Json(std::move(body));
}

// The chat `documents` option (docs/API.md): `true`, `false`, null or
// {enabled?, query?, document_id?, limit?, score_threshold?, mode?, metadata?}. Sets `search`
// and returns true when retrieval is asked for; kInvalidRequest naming `documents.<member>`.
Result<bool> ReadDocumentsOption(const wire::ChatRequest& request,
                                 documents::SearchRequest& search) {
  const std::string_view value =
      std::string_view(request.raw_body)
          .substr(request.documents_begin, request.documents_end - request.documents_begin);
  if (value == "true") return true;
  if (value == "false" || value == "null") return false;
  if (value.front() != '{') {
    return Error(ErrorCode::kInvalidRequest, "documents must be true, false or an object",
                 "documents");
  }
  auto named = [](Error e) {
    e.param = e.param.empty() ? "documents" : "documents." + e.param;
    return e;
  };
  auto body = JsonBody::Parse(
      value, {"enabled", "query", "document_id", "limit", "score_threshold", "mode", "metadata"});
  if (!body) return named(body.error());
  const std::optional<std::string_view> enabled = body->Raw("enabled");
  if (enabled && *enabled != "true" && *enabled != "false" && *enabled != "null") {
    return named(Error(ErrorCode::kInvalidRequest, "enabled must be true or false", "enabled"));
  }
  auto query = body->OptionalString("query");
  if (!query) return named(query.error());
  if (auto options = ReadSearchOptions(*body, search); !options) return named(options.error());
  if (*query) {
    if (query->value().empty()) {
      return named(Error(ErrorCode::kInvalidRequest, "query must not be empty", "query"));
    }
    search.query = std::move(**query);
  }
  return !enabled || *enabled != "false";
}

// The text of the conversation's last user message: what is searched for when the option
// names no query.
Result<std::string> LastUserText(wire::ChatRequest request) {
  if (auto parsed = request.Parse(); !parsed) return parsed.error();
  for (auto m = request.messages.rbegin(); m != request.messages.rend(); ++m) {
    if (m->role == "user" && !m->content.empty()) return std::move(m->content);
  }
  return Error(ErrorCode::kInvalidRequest,
               "documents: no user message with text to search for (or give documents.query)",
               "documents");
}

// How the retrieved passages reach the model: as the first message, a system one. An LLM is
// told what they are and to cite them by their numbers; the extractive local model reads its
// context from system messages and gets the passages alone.
std::string ContextMessage(const documents::Retrieval& found) {
  if (found.context.empty()) return {};
  if (!found.numbered) return found.context;
  return "Passages from the user's documents that may help with this conversation. Use them "
         "where they are relevant and cite them by number, like [1].\n\n" +
         found.context;
}

// A chat completion with the `documents` option: admitted like any other, then the caller's
// documents are searched (documents::Service::Retrieve, as /answer-question does), the passages
// go in as a system message, the option itself is removed (providers never see it), and the
// answer carries the chunk ids as `citations` (streams: on the chunk that ends a choice).
asio::awaitable<void> ChatWithDocuments(orchestration::Orchestrator& orchestrator,
                                        documents::Service* documents, RequestContext& ctx,
                                        wire::ChatRequest& request) {
  documents::SearchRequest search;
  auto enabled = ReadDocumentsOption(request, search);
  if (!enabled) {
    ctx.Fail(enabled.error());
    co_return;
  }
  if (*enabled && documents == nullptr) {
    ctx.Fail(Error(ErrorCode::kNotImplemented, "documents are not served here", "documents"));
    co_return;
  }
  if (*enabled && search.query.empty()) {
    auto text = LastUserText(request);
    if (!text) {
      ctx.Fail(text.error());
      co_return;
    }
    search.query = std::move(*text);
  }
  bool admitted = ctx.Admit({request.model, EstimateTokens(request.raw_body), request.stream});
  if (ctx.admission_pending()) admitted = co_await ctx.CompleteAdmission();
  if (!admitted) co_return;
  std::array<char, 55> traceparent_buffer;
  const orchestration::RequestInfo info = InfoFor(ctx, ctx.trace.Traceparent(traceparent_buffer));
  ctx.exchange.WatchClientDisconnect();

  std::string message;
  std::string citations;
  if (*enabled) {
    auto found = co_await documents->Retrieve(std::string(ctx.tenant()), std::move(search),
                                              request.model, info);
    if (!found) {
      ctx.Fail(found.error());
      co_return;
    }
    message = ContextMessage(*found);
    citations = boost::json::serialize(Citations(found->hits));
  }
  auto forwarded = wire::openai::WithoutDocuments(request, message);
  if (!forwarded) {
    ctx.Fail(forwarded.error());
    co_return;
  }
  if (!forwarded->stream) {
    auto result = co_await orchestrator.Chat(*forwarded, info);
    if (!result) {
      ctx.Fail(result.error());
      co_return;
    }
    ReplyChat(ctx, *result, citations);
    co_return;
  }
  co_await StreamCompletion(orchestrator, ctx, *forwarded, info, citations);
}

asio::awaitable<void> ChatCompletions(orchestration::Orchestrator& orchestrator,
                                      documents::Service* documents, RequestContext& ctx) {
  auto request = wire::openai::ScanChatRequest(ctx.exchange.TakeBody());
  if (!request) {
    ctx.Fail(request.error());
    co_return;
  }
  if (request->documents_end != 0) {
    // By reference: a ChatRequest passed by value would sit in this frame, which must stay
    // under the 1,020 bytes Asio recycles (bench/frame_sizes.sh).
    co_await ChatWithDocuments(orchestrator, documents, ctx, *request);
    co_return;
  }
  bool admitted = ctx.Admit({request->model, EstimateTokens(request->raw_body), request->stream});
  if (ctx.admission_pending()) admitted = co_await ctx.CompleteAdmission();
  if (!admitted) co_return;
  std::array<char, 55> traceparent_buffer;
  const orchestration::RequestInfo info = InfoFor(ctx, ctx.trace.Traceparent(traceparent_buffer));
  ctx.exchange.WatchClientDisconnect();

  if (!request->stream) {
    auto result = co_await orchestrator.Chat(*request, info);
    if (!result) {
      ctx.Fail(result.error());
      co_return;
    }
    ReplyChat(ctx, *result);
    co_return;
  }

  co_await StreamCompletion(orchestrator, ctx, *request, info);
}

asio::awaitable<void> Embeddings(orchestration::Orchestrator& orchestrator, RequestContext& ctx) {
  auto request = wire::openai::ParseEmbeddingRequest(ctx.exchange.TakeBody());
  if (!request) {
    ctx.Fail(request.error());
    co_return;
  }
  bool admitted = ctx.Admit({request->model, EstimateTokens(request->raw_body), false});
  if (ctx.admission_pending()) admitted = co_await ctx.CompleteAdmission();
  if (!admitted) co_return;
  std::array<char, 55> traceparent_buffer;
  const std::string_view traceparent = ctx.trace.Traceparent(traceparent_buffer);
  ctx.exchange.WatchClientDisconnect();
  auto result = co_await orchestrator.Embed(*request, InfoFor(ctx, traceparent));
  if (!result) {
    ctx.Fail(result.error());
    co_return;
  }
  std::string body = result->response.raw.empty() ? wire::openai::EncodeEmbeddingResponse(
                                                        result->response, request->encoding_format)
                                                  : std::move(result->response.raw);
  AddServedHeaders(ctx.response, result->served, OverheadUs(ctx.request, result->served));
  ctx.served = std::move(result->served);
  ctx.Json(std::move(body));
}

// `{"id":…,"object":"model","created":0,"owned_by":…,"usable":…[,"reason":…]}`: OpenAI's model
// object with Orchestra's two fields.
std::string ModelObject(const ModelStatus& m) {
  std::string out = R"({"id":")";
  AppendJsonEscaped(out, m.id);
  out += R"(","object":"model","created":0,"owned_by":")";
  AppendJsonEscaped(out, m.owned_by);
  if (m.unusable.empty()) {
    out += R"(","usable":true})";
  } else {
    out += R"(","usable":false,"reason":")";
    AppendJsonEscaped(out, m.unusable);
    out += R"("})";
  }
  return out;
}

// Why none of `route`'s own targets can serve (their providers' reasons, each once); empty when
// one can.
std::string TargetsUnusable(const orchestration::ModelRoute& route) {
  std::string reasons;
  for (const orchestration::RouteTarget& t : route.plan().targets) {
    const std::string_view why = t.target->provider().UnusableReason();
    if (why.empty()) return {};
    if (reasons.find(why) != std::string::npos) continue;
    if (!reasons.empty()) reasons += "; ";
    reasons += why;
  }
  return reasons;
}

}  // namespace

std::vector<ModelStatus> ListModels(const orchestration::RouteTable& routes,
                                    const std::vector<std::string_view>& local_models) {
  std::vector<ModelStatus> out;
  for (const orchestration::ModelRoute* r : routes.public_routes()) {
    ModelStatus m{r->name, "orchestra", TargetsUnusable(*r)};
    if (!m.unusable.empty()) {
      // Say where its requests go instead, when a fallback can take them.
      for (std::size_t i = 1; i < r->chain.size(); ++i) {
        if (TargetsUnusable(*r->chain[i]).empty()) {
          m.unusable += " (requests fall back to " + r->chain[i]->name + ")";
          break;
        }
      }
    }
    out.push_back(std::move(m));
  }
  for (std::string_view id : local_models)
    out.push_back({std::string(id), "local", ""});
  return out;
}

namespace {

std::string ModelList(const std::vector<ModelStatus>& models) {
  std::string out = R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < models.size(); ++i) {
    if (i > 0) out += ',';
    out += ModelObject(models[i]);
  }
  out += "]}";
  return out;
}

}  // namespace

void AddOpenAIRoutes(Router& router, orchestration::Orchestrator& orchestrator,
                     const std::vector<std::string_view>& local_models,
                     documents::Service* documents) {
  router
      .Add(http::verb::post, "/v1/chat/completions",
           [&orchestrator, documents](RequestContext& ctx) {
             return ChatCompletions(orchestrator, documents, ctx);
           })
      .admits_in_handler = true;
  router
      .Add(http::verb::post, "/v1/embeddings",
           [&orchestrator](RequestContext& ctx) { return Embeddings(orchestrator, ctx); })
      .admits_in_handler = true;
  // Built once: the models and whether their providers have keys are fixed at start-up.
  const std::vector<ModelStatus> statuses = ListModels(orchestrator.routes(), local_models);
  const std::string models = ModelList(statuses);
  // A key restricted to some models (issue 13) sees only those: built per request, only for
  // such keys.
  router.Add(http::verb::get, "/v1/models",
             [models, statuses](RequestContext& ctx) -> asio::awaitable<void> {
               const limits::KeyPolicy& policy = ctx.principal.policy;
               if (policy.models.empty()) {
                 ctx.Json(models);
                 co_return;
               }
               std::vector<ModelStatus> allowed;
               for (const ModelStatus& m : statuses) {
                 if (auth::ModelAllowed(policy, m.id)) allowed.push_back(m);
               }
               ctx.Json(ModelList(allowed));
               co_return;
             });
  // The SDKs' models.retrieve: one model object, for the ids /v1/models lists.
  auto objects = std::make_shared<std::map<std::string, std::string, std::less<>>>();
  for (const ModelStatus& m : statuses)
    objects->emplace(m.id, ModelObject(m));
  router.Add(
      http::verb::get, "/v1/models/{model}",
      [objects](RequestContext& ctx) -> asio::awaitable<void> {
        const std::string_view id = ctx.Param("model");
        if (!auth::ModelAllowed(ctx.principal.policy, id)) {
          ctx.Fail(Error(ErrorCode::kModelNotAllowed,
                         "this API key may not call the model '" + std::string(ShownName(id)) + "'",
                         "model"));
        } else if (auto it = objects->find(id); it != objects->end()) {
          ctx.Json(it->second);
        } else {
          std::string message = "The model '";
          message += ShownName(id);
          message += "' does not exist (GET /v1/models lists the models)";
          ctx.Fail(Error(ErrorCode::kNotFound, std::move(message), "model"));
        }
        co_return;
      });
}

}  // namespace orchestra::api
