#include "api/tasks.hpp"

#include <array>
#include <cmath>

#include <boost/json.hpp>

#include "api/context.hpp"
#include "api/json_body.hpp"
#include "api/request_info.hpp"
#include "providers/local/local_provider.hpp"
#include "wire/openai_codec.hpp"
#include "wire/openai_scan.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr std::size_t kMaxLabels = 100;

bool IsLocal(std::string_view model) {
  return model.rfind("local-", 0) == 0;
}

// A positive whole number member, or `fallback` when absent.
Result<std::int64_t> Count(const JsonBody& body, std::string_view name, std::int64_t fallback,
                           std::int64_t max) {
  auto v = body.OptionalNumber(name);
  if (!v) return v.error();
  if (!*v) return fallback;
  if (**v < 1 || **v > static_cast<double>(max) || std::floor(**v) != **v) {
    return Error(ErrorCode::kInvalidRequest,
                 std::string(name) + " must be a whole number from 1 to " + std::to_string(max),
                 std::string(name));
  }
  return static_cast<std::int64_t>(**v);
}

Result<std::string> ModelFor(const JsonBody& body, const std::string& task_model,
                             const config::TasksConfig& tasks) {
  auto model = body.OptionalString("model");
  if (!model) return model.error();
  if (*model && !(*model)->empty()) return std::move(**model);
  return task_model.empty() ? tasks.default_model : task_model;
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
  auto request = wire::openai::ScanChatRequest(json::serialize(body));
  if (!request) co_return request.error();
  std::array<char, 55> trace_buffer;
  ctx.exchange.WatchClientDisconnect();
  auto result =
      co_await orchestrator.Chat(*request, InfoFor(ctx, ctx.trace.Traceparent(trace_buffer)));
  if (!result) co_return result.error();
  Completion out;
  out.served = std::move(result->served);
  if (!result->response.raw.empty()) {
    auto parsed = wire::openai::ParseChatResponse(result->response.raw);
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
  auto request = wire::openai::ParseEmbeddingRequest(json::serialize(body));
  if (!request) co_return request.error();
  std::array<char, 55> trace_buffer;
  auto result =
      co_await orchestrator.Embed(*request, InfoFor(ctx, ctx.trace.Traceparent(trace_buffer)));
  if (!result) co_return result.error();
  served = std::move(result->served);
  if (!result->response.raw.empty()) {
    auto parsed = wire::openai::ParseEmbeddingResponse(result->response.raw);
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

// Answers the error and returns true when `r` failed.
template <class T>
bool Failed(RequestContext& ctx, const Result<T>& r) {
  if (r) return false;
  ctx.Fail(r.error());
  return true;
}

}  // namespace

void AddTaskRoutes(Router& router, orchestration::Orchestrator& orchestrator,
                   const config::TasksConfig& tasks) {
  auto& orch = orchestrator;

  router.Add(http::verb::post, "/generate-text",
             [&orch, &tasks](RequestContext& ctx) -> asio::awaitable<void> {
               auto body = JsonBody::Parse(
                   ctx.request.body(), {"prompt", "system", "model", "max_tokens", "temperature"});
               if (Failed(ctx, body)) co_return;
               auto prompt = body->RequiredString("prompt");
               auto system = body->OptionalString("system");
               auto max_tokens = Count(*body, "max_tokens", 256, 1'000'000);
               auto temperature = body->OptionalNumber("temperature");
               auto model = ModelFor(*body, tasks.generate_model, tasks);
               if (Failed(ctx, prompt) || Failed(ctx, system) || Failed(ctx, max_tokens) ||
                   Failed(ctx, temperature) || Failed(ctx, model)) {
                 co_return;
               }
               json::array messages;
               if (*system && !(*system)->empty()) messages.push_back(Message("system", **system));
               messages.push_back(Message("user", *prompt));
               auto done = co_await Complete(orch, ctx, *model, std::move(messages), *max_tokens,
                                             *temperature);
               if (Failed(ctx, done)) co_return;
               json::object out;
               out["text"] = done->text;
               Reply(ctx, std::move(out), done->served);
             });

  router.Add(http::verb::post, "/generate-embeddings",
             [&orch, &tasks](RequestContext& ctx) -> asio::awaitable<void> {
               auto body = JsonBody::Parse(ctx.request.body(), {"text", "texts", "model"});
               if (Failed(ctx, body)) co_return;
               auto many = body->OptionalStringArray("texts");
               auto one = body->OptionalString("text");
               auto model = ModelFor(
                   *body, tasks.embeddings_model.empty() ? "local-embed" : tasks.embeddings_model,
                   tasks);
               if (Failed(ctx, many) || Failed(ctx, one) || Failed(ctx, model)) co_return;
               std::vector<std::string> texts = many->value_or(std::vector<std::string>());
               if (*one) texts.push_back(**one);
               if (texts.empty()) {
                 ctx.Fail(Error(ErrorCode::kInvalidRequest,
                                "give 'text' (a string) or 'texts' (strings)", "texts"));
                 co_return;
               }
               orchestration::Served served;
               auto vectors = co_await EmbedTexts(orch, ctx, *model, texts, served);
               if (Failed(ctx, vectors)) co_return;
               json::array embeddings;
               for (const auto& v : *vectors)
                 embeddings.emplace_back(json::value_from(v));
               json::object out;
               out["dimensions"] = vectors->empty() ? 0 : vectors->front().size();
               out["embeddings"] = std::move(embeddings);
               Reply(ctx, std::move(out), served);
             });

  router.Add(
      http::verb::post, "/classify-text",
      [&orch, &tasks](RequestContext& ctx) -> asio::awaitable<void> {
        auto body = JsonBody::Parse(ctx.request.body(), {"text", "labels", "model"});
        if (Failed(ctx, body)) co_return;
        auto text = body->RequiredString("text");
        auto given = body->OptionalStringArray("labels");
        auto model = ModelFor(*body, tasks.classify_model, tasks);
        if (Failed(ctx, text) || Failed(ctx, given) || Failed(ctx, model)) co_return;
        std::vector<std::string> labels;
        for (auto& l : given->value_or(std::vector<std::string>())) {
          if (!l.empty()) labels.push_back(std::move(l));
        }
        if (labels.size() < 2 || labels.size() > kMaxLabels) {
          ctx.Fail(Error(ErrorCode::kInvalidRequest,
                         "'labels' must hold 2 to 100 non-empty strings", "labels"));
          co_return;
        }
        json::object out;
        if (IsLocal(*model)) {
          // Locally: the label whose embedding is nearest the text's (lexical, not semantic).
          std::vector<std::string> texts{*text};
          texts.insert(texts.end(), labels.begin(), labels.end());
          orchestration::Served served;
          auto vectors = co_await EmbedTexts(
              orch, ctx, std::string(providers::LocalProvider::kEmbedModel), texts, served);
          if (Failed(ctx, vectors)) co_return;
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
          out["label"] = labels[best];
          out["scores"] = std::move(scores);
          Reply(ctx, std::move(out), served);
          co_return;
        }
        std::string list;
        for (const auto& l : labels)
          list += (list.empty() ? "" : ", ") + l;
        json::array messages;
        messages.push_back(Message("system",
                                   "You are a text classifier. Answer with exactly one label "
                                   "from this list and nothing else: " +
                                       list));
        messages.push_back(Message("user", *text));
        auto done = co_await Complete(orch, ctx, *model, std::move(messages), 20, 0.0);
        if (Failed(ctx, done)) co_return;
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
        out["label"] = label;
        out["answer"] = done->text;
        Reply(ctx, std::move(out), done->served);
      });

  router.Add(
      http::verb::post, "/answer-question",
      [&orch, &tasks](RequestContext& ctx) -> asio::awaitable<void> {
        auto body =
            JsonBody::Parse(ctx.request.body(), {"question", "context", "model", "max_tokens"});
        if (Failed(ctx, body)) co_return;
        auto question = body->RequiredString("question");
        auto context = body->OptionalString("context");
        auto max_tokens = Count(*body, "max_tokens", 256, 1'000'000);
        auto model = ModelFor(*body, tasks.answer_model, tasks);
        if (Failed(ctx, question) || Failed(ctx, context) || Failed(ctx, max_tokens) ||
            Failed(ctx, model)) {
          co_return;
        }
        const std::string given = context->value_or("");
        json::array messages;
        if (IsLocal(*model)) {
          std::string q = *question;
          if (q.back() != '?') q += '?';
          if (!given.empty()) messages.push_back(Message("system", given));
          messages.push_back(Message("user", q));
        } else {
          messages.push_back(Message("system",
                                     "Answer the question using only the context given. If the "
                                     "context does not contain the answer, say that it does not."));
          messages.push_back(Message("user", "Context:\n" + given + "\n\nQuestion: " + *question));
        }
        auto done = co_await Complete(orch, ctx, *model, std::move(messages), *max_tokens, 0.0);
        if (Failed(ctx, done)) co_return;
        json::object out;
        out["answer"] = done->text;
        Reply(ctx, std::move(out), done->served);
      });

  router.Add(http::verb::post, "/summarize-text",
             [&orch, &tasks](RequestContext& ctx) -> asio::awaitable<void> {
               auto body = JsonBody::Parse(ctx.request.body(), {"text", "max_words", "model"});
               if (Failed(ctx, body)) co_return;
               auto text = body->RequiredString("text");
               auto max_words = Count(*body, "max_words", 60, 10'000);
               auto model = ModelFor(*body, tasks.summarize_model, tasks);
               if (Failed(ctx, text) || Failed(ctx, max_words) || Failed(ctx, model)) co_return;
               json::array messages;
               if (IsLocal(*model)) {
                 messages.push_back(Message("system", *text));  // no question: a summary
               } else {
                 messages.push_back(Message("system", "Summarize the user's text in at most " +
                                                          std::to_string(*max_words) + " words."));
                 messages.push_back(Message("user", *text));
               }
               auto done = co_await Complete(orch, ctx, *model, std::move(messages),
                                             IsLocal(*model) ? *max_words : *max_words * 2, 0.2);
               if (Failed(ctx, done)) co_return;
               json::object out;
               out["summary"] = done->text;
               Reply(ctx, std::move(out), done->served);
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
