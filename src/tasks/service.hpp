#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"
#include "config/config.hpp"
#include "orchestration/orchestrator.hpp"

// The AI Orchestra task API as a service (DESIGN.md §4): text generation, embeddings,
// classification, question answering and summaries, in native types. Each task is served
// natively by the offline local models, or as one prompted chat completion (or embeddings call)
// through the orchestrator on any other model, so it gets routing, fallbacks, retries, the
// cache and usage accounting like any OpenAI-compatible request. The HTTP edge (api/tasks.cpp)
// only decodes and encodes.
//
// Thread-safety: one Service serves every worker; calls run on the caller's event loop.
namespace orchestra::tasks {

enum class Task : std::uint8_t { kGenerate, kEmbed, kClassify, kAnswer, kSummarize };
std::string_view ToString(Task task);

struct GenerateRequest {
  std::string prompt;
  std::string system;  // optional system message
  std::string model;   // "" = the task's default model
  std::optional<std::int64_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string> stop;
};

struct EmbedRequest {
  std::vector<std::string> texts;
  std::string model;
};

struct ClassifyRequest {
  std::string text;
  std::vector<std::string> categories;  // 2 to kMaxCategories, non-empty, distinct
  std::string model;
};

struct AnswerRequest {
  std::string question;
  std::string context;
  std::string model;
  std::optional<std::int64_t> max_tokens;
};

struct SummarizeRequest {
  std::string text;
  std::optional<std::int64_t> max_words;  // AI Orchestra's max_length, in words
  std::string model;
};

struct TextResult {
  std::string text;
  std::string model;  // the model asked for (or the task's default)
  orchestration::Served served;
  // The model said the context it was given does not hold the answer
  // (wire::ChatResponse::answer_not_found).
  bool answer_not_found = false;
};

struct EmbedResult {
  std::vector<std::vector<float>> vectors;
  std::string model;
  orchestration::Served served;
};

struct ClassifyResult {
  std::vector<double> scores;       // per category, in [0, 1], summing to 1
  std::optional<std::size_t> best;  // the winning category, when there is one
  bool confident = false;  // false: no category had a clear signal (scores are then uniform-ish)
  std::string answer;      // an LLM's raw answer ("" for local models)
  std::string model;
  orchestration::Served served;
};

struct AnswerResult {
  std::string answer;
  bool found = true;  // false: the context does not hold the answer (answer is then "")
  std::string model;
  orchestration::Served served;
};

inline constexpr std::size_t kMaxCategories = 100;

class Service {
 public:
  // `orchestrator` and `config` must outlive the service.
  Service(orchestration::Orchestrator& orchestrator, const config::TasksConfig& config);

  // The model a task uses when the request names none.
  const std::string& DefaultModel(Task task) const;

  // Every failure is an Error in the one error shape: invalid input (400), unknown model
  // (404), the upstream's failure (502/504/429...), the client gone (kCancelled).
  boost::asio::awaitable<Result<TextResult>> Generate(GenerateRequest request,
                                                      const orchestration::RequestInfo& info);
  boost::asio::awaitable<Result<EmbedResult>> Embed(EmbedRequest request,
                                                    const orchestration::RequestInfo& info);
  boost::asio::awaitable<Result<ClassifyResult>> Classify(ClassifyRequest request,
                                                          const orchestration::RequestInfo& info);
  boost::asio::awaitable<Result<AnswerResult>> Answer(AnswerRequest request,
                                                      const orchestration::RequestInfo& info);
  boost::asio::awaitable<Result<TextResult>> Summarize(SummarizeRequest request,
                                                       const orchestration::RequestInfo& info);

 private:
  static wire::ChatRequest Chat(std::string model, std::vector<wire::Message> messages,
                                std::optional<std::int64_t> max_tokens,
                                std::optional<double> temperature);
  // One chat completion through the orchestrator; the text of its first choice.
  boost::asio::awaitable<Result<TextResult>> Complete(wire::ChatRequest request,
                                                      const orchestration::RequestInfo& info);

  orchestration::Orchestrator& orchestrator_;
  std::string defaults_[5];
};

// The label an LLM named in its answer to a classification prompt, as a probability
// distribution: a JSON object of category → probability when the model wrote one (normalised),
// else the category the answer names (the whole answer, else the earliest mentioned), else
// none (uniform, not confident). Exposed for tests.
ClassifyResult ScoresFromAnswer(std::string_view answer,
                                const std::vector<std::string>& categories);

// What an LLM is told to reply, and nothing else, when the context of a question does not hold
// its answer.
inline constexpr std::string_view kNotFoundMarker = "NOT_FOUND";
// Whether an LLM's reply to the answer prompt is that marker (give or take case, quotes,
// backticks, a final full stop and surrounding white space). Exposed for tests.
bool IsNotFoundReply(std::string_view reply);

}  // namespace orchestra::tasks
