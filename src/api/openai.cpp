#include "api/openai.hpp"

#include <array>
#include <chrono>
#include <map>
#include <memory>

#include "api/context.hpp"
#include "api/json_body.hpp"
#include "api/request_info.hpp"
#include "auth/key_record.hpp"
#include "common/text.hpp"
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
class SseWriter final : public orchestration::StreamWriter {
 public:
  SseWriter(RequestContext& ctx, bool client_wants_usage)
      : ctx_(ctx), client_wants_usage_(client_wants_usage) {}

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
    buffer_ += "\n\n";
    co_return co_await ctx_.exchange.WriteChunk(buffer_);
  }

  asio::awaitable<void> Finish() {
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
  RequestContext& ctx_;
  bool client_wants_usage_;
  std::string buffer_;
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
                                       const orchestration::RequestInfo& info) {
  SseWriter writer(ctx, request.client_wants_usage);
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

asio::awaitable<void> ChatCompletions(orchestration::Orchestrator& orchestrator,
                                      RequestContext& ctx) {
  auto request = wire::openai::ScanChatRequest(ctx.exchange.TakeBody());
  if (!request) {
    ctx.Fail(request.error());
    co_return;
  }
  bool admitted = ctx.Admit({request->model, EstimateTokens(request->raw_body), request->stream});
  if (ctx.admission_pending()) admitted = co_await ctx.CompleteAdmission();
  if (!admitted) co_return;
  std::array<char, 55> traceparent_buffer;
  const std::string_view traceparent = ctx.trace.Traceparent(traceparent_buffer);
  const orchestration::RequestInfo info = InfoFor(ctx, traceparent);
  ctx.exchange.WatchClientDisconnect();

  if (!request->stream) {
    auto result = co_await orchestrator.Chat(*request, info);
    if (!result) {
      ctx.Fail(result.error());
      co_return;
    }
    std::string body = result->response.raw.empty()
                           ? wire::openai::EncodeChatResponse(result->response)
                           : std::move(result->response.raw);
    AddServedHeaders(ctx.response, result->served, OverheadUs(ctx.request, result->served));
    ctx.served = std::move(result->served);
    ctx.Json(std::move(body));
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
                     const std::vector<std::string_view>& local_models) {
  router
      .Add(http::verb::post, "/v1/chat/completions",
           [&orchestrator](RequestContext& ctx) { return ChatCompletions(orchestrator, ctx); })
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
