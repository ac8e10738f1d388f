#include "tasks/service.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <boost/json.hpp>

#include "common/text.hpp"
#include "providers/local/classifier.hpp"
#include "wire/openai_codec.hpp"

namespace orchestra::tasks {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr std::int64_t kDefaultMaxTokens = 256;
constexpr std::int64_t kDefaultSummaryWords = 60;

Error Invalid(std::string message, std::string param) {
  return Error(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
}

wire::Message MakeMessage(std::string role, std::string content) {
  wire::Message m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

}  // namespace

std::string_view ToString(Task task) {
  switch (task) {
    case Task::kGenerate:
      return "generate-text";
    case Task::kEmbed:
      return "generate-embeddings";
    case Task::kClassify:
      return "classify-text";
    case Task::kAnswer:
      return "answer-question";
    case Task::kSummarize:
      return "summarize-text";
  }
  return "?";
}

ClassifyResult ScoresFromAnswer(std::string_view answer,
                                const std::vector<std::string>& categories) {
  ClassifyResult out;
  out.answer = std::string(answer);
  out.scores.assign(categories.size(), categories.empty() ? 0 : 1.0 / categories.size());
  // A JSON object of category → probability, possibly inside a code fence.
  const auto open = answer.find('{');
  const auto close = answer.rfind('}');
  if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
    boost::system::error_code ec;
    json::value doc = json::parse(answer.substr(open, close - open + 1), ec);
    if (!ec && doc.is_object()) {
      std::vector<double> scores(categories.size(), 0);
      double sum = 0;
      for (std::size_t i = 0; i < categories.size(); ++i) {
        const json::value* v = doc.as_object().if_contains(categories[i]);
        if (v == nullptr || !v->is_number()) continue;
        const double x = v->to_number<double>();
        if (std::isfinite(x) && x > 0) {
          scores[i] = x;
          sum += x;
        }
      }
      if (sum > 0) {
        for (double& x : scores)
          x /= sum;
        out.scores = std::move(scores);
        out.best = static_cast<std::size_t>(std::max_element(out.scores.begin(), out.scores.end()) -
                                            out.scores.begin());
        out.confident = true;
        return out;
      }
    }
  }
  // Otherwise the label it named: the whole answer first, else the earliest mentioned.
  std::string text = AsciiLower(answer);
  const auto first = text.find_first_not_of(" \n\t.\"'`*");
  const auto last = text.find_last_not_of(" \n\t.\"'`*");
  text = first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
  std::size_t earliest = std::string::npos;
  for (std::size_t i = 0; i < categories.size(); ++i) {
    const std::string lower = AsciiLower(categories[i]);
    if (text == lower) {
      out.best = i;
      break;
    }
    if (auto at = text.find(lower); at != std::string::npos && at < earliest) {
      earliest = at;
      out.best = i;
    }
  }
  if (out.best) {
    std::fill(out.scores.begin(), out.scores.end(), 0.0);
    out.scores[*out.best] = 1.0;
    out.confident = true;
  }
  return out;
}

bool IsNotFoundReply(std::string_view reply) {
  const auto first = reply.find_first_not_of(" \t\r\n\"'`*");
  if (first == std::string_view::npos) return false;
  const auto last = reply.find_last_not_of(" \t\r\n\"'`*.");
  if (last == std::string_view::npos || last < first) return false;
  const std::string_view core = reply.substr(first, last - first + 1);
  return AsciiLower(core) == AsciiLower(kNotFoundMarker);
}

Service::Service(orchestration::Orchestrator& orchestrator, const config::TasksConfig& config)
    : orchestrator_(orchestrator) {
  auto or_default = [&](const std::string& m) { return m.empty() ? config.default_model : m; };
  defaults_[static_cast<int>(Task::kGenerate)] = or_default(config.generate_model);
  defaults_[static_cast<int>(Task::kEmbed)] = config.embeddings_model.empty()
                                                  ? std::string(config::kLocalEmbedModel)
                                                  : config.embeddings_model;
  defaults_[static_cast<int>(Task::kClassify)] = or_default(config.classify_model);
  defaults_[static_cast<int>(Task::kAnswer)] = or_default(config.answer_model);
  defaults_[static_cast<int>(Task::kSummarize)] = or_default(config.summarize_model);
}

const std::string& Service::DefaultModel(Task task) const {
  return defaults_[static_cast<int>(task)];
}

asio::awaitable<Result<TextResult>> Service::Complete(wire::ChatRequest request,
                                                      const orchestration::RequestInfo& info) {
  wire::openai::EncodeChatRequest(request);
  auto result = co_await orchestrator_.Chat(request, info);
  if (!result) co_return result.error();
  TextResult out;
  out.model = std::move(request.model);
  out.served = result->served;
  out.answer_not_found = result->response.answer_not_found;  // not in the raw body: read first
  if (!result->response.raw.empty()) {
    // An OpenAI-compatible upstream's own body: its text is read here, once.
    auto parsed = wire::openai::ParseChatResponse(result->response.raw);
    if (!parsed) {
      co_return Error(ErrorCode::kUpstreamError,
                      "unreadable completion: " + parsed.error().message);
    }
    result->response = std::move(*parsed);
  }
  if (result->response.choices.empty()) {
    co_return Error(ErrorCode::kUpstreamError, "the model returned no choice");
  }
  out.text = std::move(result->response.choices[0].content);
  co_return out;
}

// A chat request for `model` with `messages` and the sampling fields the tasks set.
wire::ChatRequest Service::Chat(std::string model, std::vector<wire::Message> messages,
                                std::optional<std::int64_t> max_tokens,
                                std::optional<double> temperature) {
  wire::ChatRequest request;
  request.model = std::move(model);
  request.messages = std::move(messages);
  request.max_tokens = max_tokens;
  request.temperature = temperature;
  return request;
}

asio::awaitable<Result<TextResult>> Service::Generate(GenerateRequest request,
                                                      const orchestration::RequestInfo& info) {
  if (request.prompt.empty()) co_return Invalid("prompt must not be empty", "prompt");
  std::string model = request.model.empty() ? DefaultModel(Task::kGenerate) : request.model;
  std::vector<wire::Message> messages;
  if (!request.system.empty()) messages.push_back(MakeMessage("system", request.system));
  messages.push_back(MakeMessage("user", std::move(request.prompt)));
  wire::ChatRequest chat =
      Chat(std::move(model), std::move(messages), request.max_tokens.value_or(kDefaultMaxTokens),
           request.temperature);
  chat.top_p = request.top_p;
  chat.stop = std::move(request.stop);
  co_return co_await Complete(std::move(chat), info);
}

asio::awaitable<Result<EmbedResult>> Service::Embed(EmbedRequest request,
                                                    const orchestration::RequestInfo& info) {
  if (request.texts.empty()) co_return Invalid("give 'texts' (strings) or 'text'", "texts");
  EmbedResult out;
  out.model = request.model.empty() ? DefaultModel(Task::kEmbed) : request.model;
  wire::EmbeddingRequest embed;
  embed.model = out.model;
  embed.inputs = std::move(request.texts);
  wire::openai::EncodeEmbeddingRequest(embed);
  auto result = co_await orchestrator_.Embed(embed, info);
  if (!result) co_return result.error();
  out.served = result->served;
  if (!result->response.raw.empty()) {
    auto parsed = wire::openai::ParseEmbeddingResponse(result->response.raw);
    if (!parsed) {
      co_return Error(ErrorCode::kUpstreamError,
                      "unreadable embeddings: " + parsed.error().message);
    }
    out.vectors = std::move(parsed->vectors);
  } else {
    out.vectors = std::move(result->response.vectors);
  }
  co_return out;
}

asio::awaitable<Result<ClassifyResult>> Service::Classify(ClassifyRequest request,
                                                          const orchestration::RequestInfo& info) {
  if (request.text.empty()) co_return Invalid("text must not be empty", "text");
  if (request.categories.size() < 2 || request.categories.size() > kMaxCategories) {
    co_return Invalid("'categories' must hold 2 to 100 non-empty strings", "categories");
  }
  for (std::size_t i = 0; i < request.categories.size(); ++i) {
    if (request.categories[i].empty()) {
      co_return Invalid("categories must not be empty strings", "categories");
    }
    for (std::size_t k = 0; k < i; ++k) {
      if (request.categories[k] == request.categories[i]) {
        co_return Invalid("category '" + request.categories[i] + "' is given twice", "categories");
      }
    }
  }
  std::string model = request.model.empty() ? DefaultModel(Task::kClassify) : request.model;

  if (config::IsLocalModelName(model)) {
    // Locally: the local models' zero-shot classifier (providers/local/classifier.hpp, whose
    // accuracy tests/unit/providers/local/classifier_test.cpp measures): word-level similarity
    // of the text to each category, softmax at its documented temperature, and `confident`
    // false when no category has a clear lead. The embeddings call through the orchestrator
    // routes and accounts the work (local-embed's route, usage, metrics) like any task's; the
    // classifier, not the cosine of those hashed vectors, decides.
    EmbedRequest embed;
    embed.model = std::string(config::kLocalEmbedModel);
    embed.texts.push_back(request.text);
    embed.texts.insert(embed.texts.end(), request.categories.begin(), request.categories.end());
    auto vectors = co_await Embed(std::move(embed), info);
    if (!vectors) co_return vectors.error();
    std::vector<providers::local::Category> categories;
    categories.reserve(request.categories.size());
    for (const std::string& name : request.categories)
      categories.push_back({name, {}, {}});
    const providers::local::Embedder embedder;
    const providers::local::ClassifyResult local =
        providers::local::Classify(embedder, request.text, categories);
    ClassifyResult out;
    out.scores = local.scores;
    out.confident = local.confident;
    if (out.confident) out.best = local.best;
    out.model = std::move(model);
    out.served = vectors->served;
    co_return out;
  }

  std::string list;
  for (const auto& c : request.categories)
    list += (list.empty() ? "\"" : ", \"") + c + "\"";
  std::vector<wire::Message> messages;
  messages.push_back(MakeMessage(
      "system",
      "You are a text classifier. Reply with only a JSON object that maps each of these "
      "categories to the probability that the user's text belongs to it (the probabilities "
      "add up to 1): " +
          list));
  messages.push_back(MakeMessage("user", request.text));
  auto done =
      co_await Complete(Chat(model, std::move(messages),
                             static_cast<std::int64_t>(16 * request.categories.size() + 32), 0.0),
                        info);
  if (!done) co_return done.error();
  ClassifyResult out = ScoresFromAnswer(done->text, request.categories);
  out.model = std::move(model);
  out.served = done->served;
  co_return out;
}

asio::awaitable<Result<AnswerResult>> Service::Answer(AnswerRequest request,
                                                      const orchestration::RequestInfo& info) {
  if (request.question.empty()) co_return Invalid("question must not be empty", "question");
  std::string model = request.model.empty() ? DefaultModel(Task::kAnswer) : request.model;
  std::vector<wire::Message> messages;
  if (config::IsLocalModelName(model)) {
    std::string q = request.question;
    if (q.back() != '?') q += '?';
    if (!request.context.empty()) messages.push_back(MakeMessage("system", request.context));
    messages.push_back(MakeMessage("user", std::move(q)));
  } else {
    messages.push_back(
        MakeMessage("system",
                    "Answer the question using only the context given. If the context does not "
                    "contain the answer, reply with exactly " +
                        std::string(kNotFoundMarker) + " and nothing else."));
    messages.push_back(
        MakeMessage("user", "Context:\n" + request.context + "\n\nQuestion: " + request.question));
  }
  auto done = co_await Complete(
      Chat(model, std::move(messages), request.max_tokens.value_or(kDefaultMaxTokens), 0.0), info);
  if (!done) co_return done.error();
  AnswerResult out;
  // Not found: the local model says so out of band; an LLM with the marker it was asked for.
  out.found = !done->answer_not_found && !IsNotFoundReply(done->text);
  if (out.found) out.answer = std::move(done->text);
  out.model = std::move(model);
  out.served = done->served;
  co_return out;
}

asio::awaitable<Result<TextResult>> Service::Summarize(SummarizeRequest request,
                                                       const orchestration::RequestInfo& info) {
  if (request.text.empty()) co_return Invalid("text must not be empty", "text");
  std::string model = request.model.empty() ? DefaultModel(Task::kSummarize) : request.model;
  const std::int64_t words = request.max_words.value_or(kDefaultSummaryWords);
  std::vector<wire::Message> messages;
  const bool local = config::IsLocalModelName(model);
  if (local) {
    messages.push_back(MakeMessage("system", std::move(request.text)));  // no question: a summary
  } else {
    messages.push_back(MakeMessage(
        "system", "Summarize the user's text in at most " + std::to_string(words) + " words."));
    messages.push_back(MakeMessage("user", std::move(request.text)));
  }
  co_return co_await Complete(
      Chat(std::move(model), std::move(messages), local ? words : words * 2, 0.2), info);
}

}  // namespace orchestra::tasks
