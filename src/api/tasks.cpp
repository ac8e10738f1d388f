#include "api/tasks.hpp"

#include <array>
#include <cmath>
#include <sstream>

#include <boost/json.hpp>

#include "api/context.hpp"
#include "api/documents.hpp"
#include "api/json_body.hpp"
#include "api/request_info.hpp"
#include "auth/key_record.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr std::int64_t kMaxTokensLimit = 1'000'000;

// A positive whole number member, nullopt when absent.
Result<std::optional<std::int64_t>> Count(const JsonBody& body, std::string_view name,
                                          std::int64_t max) {
  auto v = body.OptionalNumber(name);
  if (!v) return v.error();
  if (!*v) return std::optional<std::int64_t>();
  if (**v < 1 || **v > static_cast<double>(max) || std::floor(**v) != **v) {
    return Error(ErrorCode::kInvalidRequest,
                 std::string(name) + " must be a whole number from 1 to " + std::to_string(max),
                 std::string(name));
  }
  return std::optional<std::int64_t>(static_cast<std::int64_t>(**v));
}

// A number in [min, max], or `fallback` when absent.
Result<std::optional<double>> Number(const JsonBody& body, std::string_view name, double min,
                                     double max, std::optional<double> fallback) {
  auto v = body.OptionalNumber(name);
  if (!v) return v.error();
  if (!*v) return fallback;
  if (!(**v >= min && **v <= max)) {
    std::ostringstream text;
    text << name << " must be between " << min << " and " << max;
    return Error(ErrorCode::kInvalidRequest, text.str(), std::string(name));
  }
  return *v;
}

// A member that has two names (Orchestra's and AI Orchestra's): either may be given, not both
// with different values.
template <class T, class Read>
Result<std::optional<T>> Either(std::string_view ours, std::string_view theirs, Read read) {
  auto a = read(ours);
  if (!a) return a.error();
  auto b = read(theirs);
  if (!b) return b.error();
  if (*a && *b && **a != **b) {
    return Error(ErrorCode::kInvalidRequest,
                 "give '" + std::string(ours) + "' or '" + std::string(theirs) + "', not both",
                 std::string(theirs));
  }
  return *a ? std::move(*a) : std::move(*b);
}

Result<std::optional<std::string>> ModelOf(const JsonBody& body) {
  return Either<std::string>("model", "model_id",
                             [&](std::string_view n) { return body.OptionalString(n); });
}

// Answers the error and returns true when `r` failed.
template <class T>
bool Failed(RequestContext& ctx, const Result<T>& r) {
  if (r) return false;
  ctx.Fail(r.error());
  return true;
}

// Answers the error of a task the service built a chat request for, with `param` named as the
// client knows it: the chat request's "messages" is the task's `as` field (the prompt, the
// context, the text). Returns true when `r` failed.
template <class T>
bool FailedTask(RequestContext& ctx, const Result<T>& r, std::string_view as) {
  if (r) return false;
  Error e = r.error();
  if (e.param == "messages") e.param = std::string(as);
  ctx.Fail(e);
  return true;
}

// Admission with the task's model and a token estimate (bytes / 4 plus the completion asked).
asio::awaitable<bool> Admit(RequestContext& ctx, std::string_view model,
                            std::int64_t completion_tokens) {
  bool admitted = ctx.Admit(
      {model, static_cast<std::int64_t>(ctx.request.body().size() / 4) + completion_tokens, false});
  if (ctx.admission_pending()) admitted = co_await ctx.CompleteAdmission();
  co_return admitted;
}

// The fields every task response carries: the model asked for (AI Orchestra's `model_id`), the
// model that answered (`model`, a fallback's name when one did), its provider and the usage.
void Reply(RequestContext& ctx, json::object body, std::string_view model_id,
           const orchestration::Served& served) {
  body["model_id"] = model_id;
  body["model"] = served.model.empty() ? model_id : served.model;
  body["provider"] = served.provider;
  json::object usage;
  usage["prompt_tokens"] = served.usage.prompt_tokens;
  usage["completion_tokens"] = served.usage.completion_tokens;
  usage["total_tokens"] = served.usage.total_tokens;
  body["usage"] = std::move(usage);
  if (served.cache_hit) {
    ctx.response.AddHeader("x-orchestra-cache", "hit");
  } else if (served.cache_miss) {
    ctx.response.AddHeader("x-orchestra-cache", "miss");
  }
  ctx.served = served;
  ctx.Json(json::serialize(body));
}

struct Handlers {
  tasks::Service& service;
  documents::Service* documents;

  asio::awaitable<void> Generate(RequestContext& ctx) {
    auto body =
        JsonBody::Parse(ctx.request.body(), {"prompt", "system", "model", "model_id", "max_tokens",
                                             "temperature", "top_p", "stop", "stop_sequences"});
    if (Failed(ctx, body)) co_return;
    tasks::GenerateRequest request;
    auto prompt = body->RequiredString("prompt");
    auto system = body->OptionalString("system");
    auto model = ModelOf(*body);
    auto max_tokens = Count(*body, "max_tokens", kMaxTokensLimit);
    // AI Orchestra's defaults: temperature 0.7, top_p 1.0.
    auto temperature = Number(*body, "temperature", 0, 2, 0.7);
    auto top_p = Number(*body, "top_p", 0, 1, 1.0);
    auto stop = Either<std::vector<std::string>>(
        "stop", "stop_sequences", [&](std::string_view n) { return body->OptionalStringArray(n); });
    if (Failed(ctx, prompt) || Failed(ctx, system) || Failed(ctx, model) ||
        Failed(ctx, max_tokens) || Failed(ctx, temperature) || Failed(ctx, top_p) ||
        Failed(ctx, stop)) {
      co_return;
    }
    request.prompt = std::move(*prompt);
    request.system = system->value_or("");
    request.model = model->value_or(service.DefaultModel(tasks::Task::kGenerate));
    request.max_tokens = *max_tokens;
    request.temperature = *temperature;
    request.top_p = *top_p;
    request.stop = stop->value_or(std::vector<std::string>());
    if (!co_await Admit(ctx, request.model, max_tokens->value_or(256))) co_return;
    std::array<char, 55> trace;
    auto result =
        co_await service.Generate(std::move(request), InfoFor(ctx, ctx.trace.Traceparent(trace)));
    if (FailedTask(ctx, result, "prompt")) co_return;
    json::object out;
    out["text"] = result->text;
    Reply(ctx, std::move(out), result->model, result->served);
  }

  asio::awaitable<void> Embed(RequestContext& ctx) {
    auto body = JsonBody::Parse(ctx.request.body(), {"text", "texts", "model", "model_id"});
    if (Failed(ctx, body)) co_return;
    auto many = body->OptionalStringArray("texts");
    auto one = body->OptionalString("text");
    auto model = ModelOf(*body);
    if (Failed(ctx, many) || Failed(ctx, one) || Failed(ctx, model)) co_return;
    tasks::EmbedRequest request;
    request.texts = many->value_or(std::vector<std::string>());
    if (*one) request.texts.push_back(std::move(**one));
    request.model = model->value_or(service.DefaultModel(tasks::Task::kEmbed));
    if (!co_await Admit(ctx, request.model, 0)) co_return;
    std::array<char, 55> trace;
    auto result =
        co_await service.Embed(std::move(request), InfoFor(ctx, ctx.trace.Traceparent(trace)));
    if (Failed(ctx, result)) co_return;
    json::array embeddings;
    for (const auto& v : result->vectors)
      embeddings.emplace_back(json::value_from(v));
    json::object out;
    out["dimensions"] = result->vectors.empty() ? 0 : result->vectors.front().size();
    out["embeddings"] = std::move(embeddings);
    Reply(ctx, std::move(out), result->model, result->served);
  }

  asio::awaitable<void> Classify(RequestContext& ctx) {
    auto body =
        JsonBody::Parse(ctx.request.body(), {"text", "labels", "categories", "model", "model_id"});
    if (Failed(ctx, body)) co_return;
    auto text = body->RequiredString("text");
    auto categories = Either<std::vector<std::string>>(
        "labels", "categories", [&](std::string_view n) { return body->OptionalStringArray(n); });
    auto model = ModelOf(*body);
    if (Failed(ctx, text) || Failed(ctx, categories) || Failed(ctx, model)) co_return;
    if (!*categories) {
      ctx.Fail(Error(ErrorCode::kInvalidRequest, "categories is required", "categories"));
      co_return;
    }
    tasks::ClassifyRequest request;
    request.text = std::move(*text);
    request.categories = std::move(**categories);
    request.model = model->value_or(service.DefaultModel(tasks::Task::kClassify));
    if (!co_await Admit(ctx, request.model, 64)) co_return;
    std::array<char, 55> trace;
    const std::vector<std::string> names = request.categories;
    const bool as_labels = body->Raw("labels").has_value();
    auto result =
        co_await service.Classify(std::move(request), InfoFor(ctx, ctx.trace.Traceparent(trace)));
    if (!result) {
      Error e = result.error();
      if (as_labels && e.param == "categories") e.param = "labels";  // the name the client used
      ctx.Fail(e);
      co_return;
    }
    json::object scores;
    for (std::size_t i = 0; i < names.size(); ++i)
      scores[names[i]] = result->scores[i];
    json::object out;
    out["classifications"] = scores;
    out["scores"] = std::move(scores);
    out["label"] = result->best ? json::value(names[*result->best]) : json::value(nullptr);
    out["confident"] = result->confident;
    if (!result->answer.empty()) out["answer"] = result->answer;
    Reply(ctx, std::move(out), result->model, result->served);
  }

  asio::awaitable<void> Answer(RequestContext& ctx) {
    auto body = JsonBody::Parse(
        ctx.request.body(), {"question", "context", "model", "model_id", "max_tokens",
                             "use_documents", "document_id", "limit", "score_threshold", "mode"});
    if (Failed(ctx, body)) co_return;
    auto question = body->RequiredString("question");
    auto context = body->OptionalString("context");
    auto max_tokens = Count(*body, "max_tokens", kMaxTokensLimit);
    auto model = ModelOf(*body);
    documents::SearchRequest search;
    auto options = ReadSearchOptions(*body, search);
    if (Failed(ctx, question) || Failed(ctx, context) || Failed(ctx, max_tokens) ||
        Failed(ctx, model) || Failed(ctx, options)) {
      co_return;
    }
    const std::optional<std::string_view> use = body->Raw("use_documents");
    if (use && *use != "true" && *use != "false" && *use != "null") {
      ctx.Fail(Error(ErrorCode::kInvalidRequest, "use_documents must be true or false",
                     "use_documents"));
      co_return;
    }
    const bool use_documents = use && *use == "true";
    auto given = [&](std::string_view name) {
      const std::optional<std::string_view> raw = body->Raw(name);
      return raw && *raw != "null";
    };
    if (!use_documents &&
        (given("document_id") || given("limit") || given("score_threshold") || given("mode"))) {
      ctx.Fail(Error(ErrorCode::kInvalidRequest,
                     "document_id, limit, score_threshold and mode need use_documents: true",
                     "use_documents"));
      co_return;
    }
    if (use_documents && documents == nullptr) {
      ctx.Fail(Error(ErrorCode::kNotImplemented, "documents are not served here", "use_documents"));
      co_return;
    }
    tasks::AnswerRequest request;
    request.question = std::move(*question);
    request.context = context->value_or("");
    request.max_tokens = *max_tokens;
    request.model = model->value_or(service.DefaultModel(tasks::Task::kAnswer));
    if (!co_await Admit(ctx, request.model, max_tokens->value_or(256))) co_return;
    std::array<char, 55> trace;
    const orchestration::RequestInfo info = InfoFor(ctx, ctx.trace.Traceparent(trace));
    json::array citations;
    json::array sources;
    if (use_documents) {
      if (request.question.empty()) {
        ctx.Fail(Error(ErrorCode::kInvalidRequest, "question must not be empty", "question"));
        co_return;
      }
      search.query = request.question;
      auto found = co_await documents->Retrieve(std::string(ctx.tenant()), std::move(search),
                                                request.model, info);
      if (Failed(ctx, found)) co_return;
      ctx.served = found->served;  // the query's embedding, until the answer's call replaces it
      request.context = request.context.empty() ? std::move(found->context)
                                                : request.context + "\n\n" + found->context;
      citations = Citations(found->hits);
      for (const documents::Hit& hit : found->hits)
        sources.push_back(HitJson(hit));
      if (found->hits.empty()) {
        // Nothing to answer from: say so without asking a model to invent an answer.
        json::object out;
        out["answer"] = "";
        out["found"] = false;
        out["citations"] = std::move(citations);
        out["sources"] = std::move(sources);
        orchestration::Served none;
        Reply(ctx, std::move(out), request.model, none);
        co_return;
      }
    }
    auto result = co_await service.Answer(std::move(request), info);
    if (FailedTask(ctx, result, "context")) co_return;
    json::object out;
    out["answer"] = result->answer;
    out["found"] = result->found;
    if (use_documents) {
      out["citations"] = std::move(citations);
      out["sources"] = std::move(sources);
    }
    Reply(ctx, std::move(out), result->model, result->served);
  }

  asio::awaitable<void> Summarize(RequestContext& ctx) {
    auto body = JsonBody::Parse(ctx.request.body(),
                                {"text", "max_words", "max_length", "model", "model_id"});
    if (Failed(ctx, body)) co_return;
    auto text = body->RequiredString("text");
    auto max_words = Either<std::int64_t>(
        "max_words", "max_length", [&](std::string_view n) { return Count(*body, n, 10'000); });
    auto model = ModelOf(*body);
    if (Failed(ctx, text) || Failed(ctx, max_words) || Failed(ctx, model)) co_return;
    tasks::SummarizeRequest request;
    request.text = std::move(*text);
    request.max_words = *max_words;
    request.model = model->value_or(service.DefaultModel(tasks::Task::kSummarize));
    if (!co_await Admit(ctx, request.model, 2 * max_words->value_or(60))) co_return;
    std::array<char, 55> trace;
    auto result =
        co_await service.Summarize(std::move(request), InfoFor(ctx, ctx.trace.Traceparent(trace)));
    if (FailedTask(ctx, result, "text")) co_return;
    json::object out;
    out["summary"] = result->text;
    Reply(ctx, std::move(out), result->model, result->served);
  }
};

}  // namespace

void AddTaskRoutes(Router& router, tasks::Service& service,
                   orchestration::Orchestrator& orchestrator,
                   const std::vector<std::string_view>& local_models,
                   documents::Service* documents) {
  // The handlers hold only pointers to the services.
  static_assert(sizeof(Handlers) == 2 * sizeof(void*));
  auto add = [&](std::string_view path,
                 asio::awaitable<void> (Handlers::*handler)(RequestContext&)) {
    Handlers h{service, documents};
    router
        .Add(http::verb::post, std::string(path),
             [h, handler](RequestContext& ctx) mutable { return (h.*handler)(ctx); })
        .admits_in_handler = true;
  };
  add("/generate-text", &Handlers::Generate);
  add("/generate-embeddings", &Handlers::Embed);
  add("/classify-text", &Handlers::Classify);
  add("/answer-question", &Handlers::Answer);
  add("/summarize-text", &Handlers::Summarize);

  json::object listing;
  json::object by_task;
  for (tasks::Task t : {tasks::Task::kGenerate, tasks::Task::kEmbed, tasks::Task::kClassify,
                        tasks::Task::kAnswer, tasks::Task::kSummarize}) {
    by_task[tasks::ToString(t)] = service.DefaultModel(t);
  }
  listing["tasks"] = std::move(by_task);
  json::array models;
  for (const orchestration::ModelRoute* r : orchestrator.routes().public_routes())
    models.emplace_back(r->name);
  for (std::string_view m : local_models)
    models.emplace_back(m);
  listing["models"] = std::move(models);
  const std::string models_body = json::serialize(listing);
  // A key restricted to some models (issue 13) sees only those in "models".
  router.Add(http::verb::get, "/models",
             [models_body, listing](RequestContext& ctx) -> asio::awaitable<void> {
               const limits::KeyPolicy& policy = ctx.principal.policy;
               if (policy.models.empty()) {
                 ctx.Json(models_body);
                 co_return;
               }
               json::object restricted = listing;
               json::array allowed;
               for (const json::value& m : listing.at("models").as_array()) {
                 if (auth::ModelAllowed(policy, m.as_string())) allowed.push_back(m);
               }
               restricted["models"] = std::move(allowed);
               ctx.Json(json::serialize(restricted));
               co_return;
             });
}

}  // namespace orchestra::api
