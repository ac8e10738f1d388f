#include "api/tasks.hpp"

#include <array>
#include <cmath>

#include <boost/json.hpp>

#include "api/context.hpp"
#include "providers/local/local_provider.hpp"
#include "providers/openai/codec.hpp"
#include "providers/openai/scan.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr std::size_t kMaxLabels = 100;

bool IsLocal(std::string_view model) {
  return model.rfind("local-", 0) == 0;
}

Result<json::object> ParseObject(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec)
    return Error(ErrorCode::kInvalidRequest, "request body is not valid JSON: " + ec.message());
  if (!v.is_object())
    return Error(ErrorCode::kInvalidRequest, "request body must be a JSON object");
  return std::move(v.as_object());
}

Result<std::string> RequiredString(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string() || v->as_string().empty()) {
    return Error(ErrorCode::kInvalidRequest,
                 "'" + std::string(key) + "' must be a non-empty string", std::string(key));
  }
  return std::string(v->as_string());
}

Result<std::string> OptionalString(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string()) {
    return Error(ErrorCode::kInvalidRequest, "'" + std::string(key) + "' must be a string",
                 std::string(key));
  }
  return std::string(v->as_string());
}

// A positive integer field, or `fallback` when absent.
Result<std::int64_t> OptionalCount(const json::object& o, std::string_view key,
                                   std::int64_t fallback, std::int64_t max) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_int64() || v->as_int64() < 1 || v->as_int64() > max) {
    return Error(ErrorCode::kInvalidRequest,
                 "'" + std::string(key) + "' must be an integer from 1 to " + std::to_string(max),
                 std::string(key));
  }
  return v->as_int64();
}

std::string ModelFor(const json::object& request, const std::string& task_model,
                     const config::TasksConfig& tasks) {
  if (const json::value* m = request.if_contains("model"); m != nullptr && m->is_string()) {
    return std::string(m->as_string());
  }
  return task_model.empty() ? tasks.default_model : task_model;
}

orchestration::RequestInfo InfoFor(RequestContext& ctx, std::string_view traceparent) {
  orchestration::RequestInfo info;
  info.traceparent = traceparent;
  info.request_id = ctx.request_id;
  info.tenant = ctx.tenant();
  info.worker = ctx.exchange.worker_index();
  info.start = ctx.request.start;
  return info;
}

struct Completion {
  std::string text;
  orchestration::Served served;
};

// One chat completion through the orchestrator, as the OpenAI API would receive it.
asio::awaitable<Result<Completion>> Complete(orchestration::Orchestrator& orchestrator,
                                             RequestContext& ctx, const std::string& model,
                                             json::array messages, std::int64_t max_tokens,
                                             std::optional<double> temperature) {
  json::object body;
  body["model"] = model;
  body["messages"] = std::move(messages);
  body["max_tokens"] = max_tokens;
  if (temperature) body["temperature"] = *temperature;
  auto request = providers::openai::ScanChatRequest(json::serialize(body));
  if (!request) co_return request.error();
  std::array<char, 55> trace_buffer;
  ctx.exchange.WatchClientDisconnect();
  auto result =
      co_await orchestrator.Chat(*request, InfoFor(ctx, ctx.trace.Traceparent(trace_buffer)));
  if (!result) co_return result.error();
  Completion out;
  out.served = std::move(result->served);
  if (!result->response.raw.empty()) {
    auto parsed = providers::openai::ParseChatResponse(result->response.raw);
    if (!parsed)
      co_return Error(ErrorCode::kUpstreamError,
                      "unreadable completion: " + parsed.error().message);
    result->response = std::move(*parsed);
  }
  if (result->response.choices.empty())
    co_return Error(ErrorCode::kUpstreamError, "the model returned no choice");
  out.text = std::move(result->response.choices[0].content);
  co_return out;
}

asio::awaitable<Result<std::vector<std::vector<float>>>> EmbedTexts(
    orchestration::Orchestrator& orchestrator, RequestContext& ctx, const std::string& model,
    const std::vector<std::string>& texts, orchestration::Served& served) {
  json::object body;
  body["model"] = model;
  json::array input;
  for (const auto& t : texts)
    input.emplace_back(t);
  body["input"] = std::move(input);
  auto request = providers::openai::ParseEmbeddingRequest(json::serialize(body));
  if (!request) co_return request.error();
  std::array<char, 55> trace_buffer;
  auto result =
      co_await orchestrator.Embed(*request, InfoFor(ctx, ctx.trace.Traceparent(trace_buffer)));
  if (!result) co_return result.error();
  served = std::move(result->served);
  if (!result->response.raw.empty()) {
    auto parsed = providers::openai::ParseEmbeddingResponse(result->response.raw);
    if (!parsed)
      co_return Error(ErrorCode::kUpstreamError,
                      "unreadable embeddings: " + parsed.error().message);
    co_return std::move(parsed->vectors);
  }
  co_return std::move(result->response.vectors);
}

json::object UsageJson(const orchestration::Served& s) {
  json::object usage;
  usage["prompt_tokens"] = s.usage.prompt_tokens;
  usage["completion_tokens"] = s.usage.completion_tokens;
  usage["total_tokens"] = s.usage.total_tokens;
  return usage;
}

void Reply(RequestContext& ctx, json::object body, const orchestration::Served& served) {
  body["model"] = served.model;
  body["provider"] = served.provider;
  body["usage"] = UsageJson(served);
  ctx.Json(json::serialize(body));
}

json::object Message(std::string_view role, std::string_view content) {
  json::object m;
  m["role"] = role;
  m["content"] = content;
  return m;
}

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : 0;
}

std::string Lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

void AddTaskRoutes(Router& router, orchestration::Orchestrator& orchestrator,
                   const config::TasksConfig& tasks) {
  auto& orch = orchestrator;

  router.Add(http::verb::post, "/generate-text",
             [&orch, &tasks](RequestContext& ctx) -> asio::awaitable<void> {
               auto o = ParseObject(ctx.request.body());
               if (!o) co_return ctx.Fail(o.error());
               auto prompt = RequiredString(*o, "prompt");
               if (!prompt) co_return ctx.Fail(prompt.error());
               auto system = OptionalString(*o, "system");
               if (!system) co_return ctx.Fail(system.error());
               auto max_tokens = OptionalCount(*o, "max_tokens", 256, 1'000'000);
               if (!max_tokens) co_return ctx.Fail(max_tokens.error());
               std::optional<double> temperature;
               if (const json::value* t = o->if_contains("temperature"); t && t->is_number()) {
                 temperature = t->to_number<double>();
               }
               json::array messages;
               if (!system->empty()) messages.push_back(Message("system", *system));
               messages.push_back(Message("user", *prompt));
               auto done = co_await Complete(orch, ctx, ModelFor(*o, tasks.generate_model, tasks),
                                             std::move(messages), *max_tokens, temperature);
               if (!done) co_return ctx.Fail(done.error());
               json::object body;
               body["text"] = done->text;
               Reply(ctx, std::move(body), done->served);
             });

  router.Add(
      http::verb::post, "/generate-embeddings",
      [&orch, &tasks](RequestContext& ctx) -> asio::awaitable<void> {
        auto o = ParseObject(ctx.request.body());
        if (!o) co_return ctx.Fail(o.error());
        std::vector<std::string> texts;
        if (const json::value* t = o->if_contains("texts"); t && t->is_array()) {
          for (const json::value& v : t->as_array()) {
            if (!v.is_string())
              co_return ctx.Fail(
                  Error(ErrorCode::kInvalidRequest, "'texts' must be strings", "texts"));
            texts.emplace_back(v.as_string());
          }
        } else if (const json::value* one = o->if_contains("text"); one && one->is_string()) {
          texts.emplace_back(one->as_string());
        }
        if (texts.empty()) {
          co_return ctx.Fail(Error(ErrorCode::kInvalidRequest,
                                   "give 'text' (a string) or 'texts' (strings)", "texts"));
        }
        const std::string model = ModelFor(
            *o, tasks.embeddings_model.empty() ? "local-embed" : tasks.embeddings_model, tasks);
        orchestration::Served served;
        auto vectors = co_await EmbedTexts(orch, ctx, model, texts, served);
        if (!vectors) co_return ctx.Fail(vectors.error());
        json::array out;
        for (const auto& v : *vectors)
          out.emplace_back(json::value_from(v));
        json::object body;
        body["dimensions"] = vectors->empty() ? 0 : vectors->front().size();
        body["embeddings"] = std::move(out);
        Reply(ctx, std::move(body), served);
      });

  router.Add(
      http::verb::post, "/classify-text",
      [&orch, &tasks](RequestContext& ctx) -> asio::awaitable<void> {
        auto o = ParseObject(ctx.request.body());
        if (!o) co_return ctx.Fail(o.error());
        auto text = RequiredString(*o, "text");
        if (!text) co_return ctx.Fail(text.error());
        std::vector<std::string> labels;
        if (const json::value* l = o->if_contains("labels"); l && l->is_array()) {
          for (const json::value& v : l->as_array()) {
            if (v.is_string() && !v.as_string().empty()) labels.emplace_back(v.as_string());
          }
        }
        if (labels.size() < 2 || labels.size() > kMaxLabels) {
          co_return ctx.Fail(Error(ErrorCode::kInvalidRequest,
                                   "'labels' must hold 2 to 100 non-empty strings", "labels"));
        }
        const std::string model = ModelFor(*o, tasks.classify_model, tasks);
        json::object body;
        if (IsLocal(model)) {
          // Locally: the label whose embedding is nearest the text's.
          std::vector<std::string> texts{*text};
          texts.insert(texts.end(), labels.begin(), labels.end());
          orchestration::Served served;
          auto vectors = co_await EmbedTexts(
              orch, ctx, std::string(providers::LocalProvider::kEmbedModel), texts, served);
          if (!vectors) co_return ctx.Fail(vectors.error());
          json::object scores;
          std::size_t best = 0;
          double best_score = -2;
          for (std::size_t i = 0; i < labels.size(); ++i) {
            const double score = Cosine((*vectors)[0], (*vectors)[i + 1]);
            scores[labels[i]] = score;
            if (score > best_score) {
              best_score = score;
              best = i;
            }
          }
          body["label"] = labels[best];
          body["scores"] = std::move(scores);
          Reply(ctx, std::move(body), served);
          co_return;
        }
        std::string list;
        for (const auto& l : labels)
          list += (list.empty() ? "" : ", ") + l;
        json::array messages;
        messages.push_back(
            Message("system",
                    "You are a text classifier. Answer with exactly one label from this "
                    "list and nothing else: " +
                        list));
        messages.push_back(Message("user", *text));
        auto done = co_await Complete(orch, ctx, model, std::move(messages), 20, 0.0);
        if (!done) co_return ctx.Fail(done.error());
        // The label the model named: the whole answer first, else the earliest mentioned.
        std::string answer = Lower(done->text);
        const auto first_char = answer.find_first_not_of(" \n\t.\"'`");
        const auto last_char = answer.find_last_not_of(" \n\t.\"'`");
        answer = first_char == std::string::npos
                     ? std::string()
                     : answer.substr(first_char, last_char - first_char + 1);
        json::value label = nullptr;
        std::size_t earliest = std::string::npos;
        for (const auto& l : labels) {
          const std::string lower = Lower(l);
          if (answer == lower) {
            label = json::string(l);
            break;
          }
          if (auto at = answer.find(lower); at < earliest) {
            earliest = at;
            label = json::string(l);
          }
        }
        body["label"] = label;
        body["answer"] = done->text;
        Reply(ctx, std::move(body), done->served);
      });

  router.Add(http::verb::post, "/answer-question",
             [&orch, &tasks](RequestContext& ctx) -> asio::awaitable<void> {
               auto o = ParseObject(ctx.request.body());
               if (!o) co_return ctx.Fail(o.error());
               auto question = RequiredString(*o, "question");
               if (!question) co_return ctx.Fail(question.error());
               auto context = OptionalString(*o, "context");
               if (!context) co_return ctx.Fail(context.error());
               auto max_tokens = OptionalCount(*o, "max_tokens", 256, 1'000'000);
               if (!max_tokens) co_return ctx.Fail(max_tokens.error());
               const std::string model = ModelFor(*o, tasks.answer_model, tasks);
               json::array messages;
               if (IsLocal(model)) {
                 std::string q = *question;
                 if (q.back() != '?') q += '?';
                 if (!context->empty()) messages.push_back(Message("system", *context));
                 messages.push_back(Message("user", q));
               } else {
                 messages.push_back(Message(
                     "system",
                     "Answer the question using only the context given. If the context does not "
                     "contain the answer, say that it does not."));
                 messages.push_back(
                     Message("user", "Context:\n" + *context + "\n\nQuestion: " + *question));
               }
               auto done =
                   co_await Complete(orch, ctx, model, std::move(messages), *max_tokens, 0.0);
               if (!done) co_return ctx.Fail(done.error());
               json::object body;
               body["answer"] = done->text;
               Reply(ctx, std::move(body), done->served);
             });

  router.Add(http::verb::post, "/summarize-text",
             [&orch, &tasks](RequestContext& ctx) -> asio::awaitable<void> {
               auto o = ParseObject(ctx.request.body());
               if (!o) co_return ctx.Fail(o.error());
               auto text = RequiredString(*o, "text");
               if (!text) co_return ctx.Fail(text.error());
               auto max_words = OptionalCount(*o, "max_words", 60, 10'000);
               if (!max_words) co_return ctx.Fail(max_words.error());
               const std::string model = ModelFor(*o, tasks.summarize_model, tasks);
               json::array messages;
               if (IsLocal(model)) {
                 messages.push_back(Message("system", *text));  // no question: a summary
               } else {
                 messages.push_back(Message("system", "Summarize the user's text in at most " +
                                                          std::to_string(*max_words) + " words."));
                 messages.push_back(Message("user", *text));
               }
               auto done = co_await Complete(orch, ctx, model, std::move(messages),
                                             IsLocal(model) ? *max_words : *max_words * 2, 0.2);
               if (!done) co_return ctx.Fail(done.error());
               json::object body;
               body["summary"] = done->text;
               Reply(ctx, std::move(body), done->served);
             });

  json::object listing;
  auto task = [&](const std::string& m) { return m.empty() ? tasks.default_model : m; };
  json::object by_task;
  by_task["generate-text"] = task(tasks.generate_model);
  by_task["generate-embeddings"] =
      tasks.embeddings_model.empty() ? std::string("local-embed") : tasks.embeddings_model;
  by_task["classify-text"] = task(tasks.classify_model);
  by_task["answer-question"] = task(tasks.answer_model);
  by_task["summarize-text"] = task(tasks.summarize_model);
  listing["tasks"] = std::move(by_task);
  json::array models;
  for (const orchestration::ModelRoute* r : orchestrator.routes().public_routes())
    models.emplace_back(r->name);
  for (std::string_view m : providers::LocalProvider::Models())
    models.emplace_back(m);
  listing["models"] = std::move(models);
  const std::string models_body = json::serialize(listing);
  router.Add(http::verb::get, "/models",
             [models_body](RequestContext& ctx) -> asio::awaitable<void> {
               ctx.Json(models_body);
               co_return;
             });
}

}  // namespace orchestra::api
