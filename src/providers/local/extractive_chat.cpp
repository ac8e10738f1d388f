#include "providers/local/extractive_chat.hpp"

#include <algorithm>
#include <iterator>
#include <vector>

#include "providers/local/answerer.hpp"
#include "providers/local/sentences.hpp"
#include "providers/local/summarizer.hpp"
#include "providers/local/tokens.hpp"

namespace orchestra::providers::local {
namespace {

constexpr std::string_view kCannotGenerate =
    "the local provider (local-extractive) cannot generate text: it only answers questions and "
    "summarises from the context it is given (a system message or earlier messages). Configure "
    "a generative provider (OpenAI, Anthropic or Gemini) for this request";
constexpr std::string_view kNothingToExtract =
    "the local provider (local-extractive) has nothing to extract from: it answers questions "
    "and summarises from the context it is given, and this conversation has none. Give it "
    "context (a system message or earlier messages) and a question, or configure a generative "
    "provider (OpenAI, Anthropic or Gemini) to generate text";

// Verbs that ask for new text, as the first word of a request.
constexpr std::string_view kGenerate[] = {
    "brainstorm", "complete", "compose", "continue",  "create", "design",
    "draft",      "generate", "imagine", "implement", "invent", "paraphrase",
    "rephrase",   "reword",   "rewrite", "translate", "write"};
// Words that may come first: "please write", "can you translate", "could you please draft".
constexpr std::string_view kPolite[] = {"can",    "could", "kindly", "now",
                                        "please", "pls",   "would",  "you"};
constexpr std::string_view kQuestionWords[] = {
    "am",    "are", "can",  "could",  "did", "do",   "does", "has",  "have",
    "how",   "is",  "may",  "should", "was", "were", "what", "when", "where",
    "which", "who", "whom", "whose",  "why", "will", "would"};

template <std::size_t N>
bool In(const std::string_view (&list)[N], std::string_view w) {
  return std::find(std::begin(list), std::end(list), w) != std::end(list);
}

bool AsksToGenerate(std::string_view sentence) {
  const Tokens t = Tokenize(sentence);
  for (std::string_view w : t.words) {
    if (In(kPolite, w)) continue;
    return In(kGenerate, w);
  }
  return false;
}

bool AsksToSummarize(std::string_view sentence) {
  const Tokens t = Tokenize(sentence);
  for (std::size_t i = 0; i < t.words.size(); ++i) {
    const std::string_view w = t.words[i];
    if (w.starts_with("summar") || w == "tldr" || w == "gist" || w == "recap") return true;
    const std::string_view next = i + 1 < t.words.size() ? t.words[i + 1] : "";
    if ((w == "tl" && next == "dr") || (w == "sum" && next == "up") ||
        ((w == "main" || w == "key") && (next == "points" || next == "ideas"))) {
      return true;
    }
  }
  return false;
}

bool IsQuestion(std::string_view sentence) {
  if (sentence.ends_with('?')) return true;
  const Tokens t = Tokenize(sentence);
  return !t.words.empty() && In(kQuestionWords, t.words.front());
}

// Words of explanation that make a request a question: "explain X", "tell me about X".
bool AsksToExplain(std::string_view sentence) {
  const Tokens t = Tokenize(sentence);
  for (std::string_view w : t.words) {
    if (In(kPolite, w)) continue;
    return w == "explain" || w == "describe" || w == "tell" || w == "define" || w == "list" ||
           w == "name" || w == "give" || w == "show" || w == "find";
  }
  return false;
}

std::string Join(const std::vector<std::string_view>& parts) {
  std::string out;
  for (std::string_view p : parts) {
    if (!out.empty()) out += "\n\n";
    out += p;
  }
  return out;
}

}  // namespace

Result<ChatReply> ExtractiveReply(const Embedder& embedder, std::span<const ChatTurn> turns,
                                  std::size_t max_words) {
  std::size_t last_user = turns.size();
  for (std::size_t i = turns.size(); i-- > 0;) {
    if (turns[i].role == "user") {
      last_user = i;
      break;
    }
  }
  std::vector<std::string_view> context;
  for (std::size_t i = 0; i < std::min(last_user, turns.size()); ++i) {
    const ChatTurn& t = turns[i];
    if (t.role == "assistant" || t.content.find_first_not_of(" \t\r\n") == std::string_view::npos)
      continue;
    context.push_back(t.content);
  }
  const std::size_t summary_words = max_words > 0 ? max_words : kDefaultSummaryWords;
  auto summary = [&](const std::vector<std::string_view>& parts) -> Result<ChatReply> {
    const SummaryResult s = Summarize(embedder, Join(parts), summary_words);
    if (s.summary.empty()) {
      return Error(ErrorCode::kUnprocessable, std::string(kNothingToExtract), "messages");
    }
    return ChatReply{s.summary, ReplyKind::kSummary};
  };
  if (last_user == turns.size()) {
    if (context.empty()) {
      return Error(ErrorCode::kUnprocessable, std::string(kNothingToExtract), "messages");
    }
    return summary(context);
  }

  // The last user message: its requests, and the rest of it as context.
  const std::string_view request = turns[last_user].content;
  std::vector<std::string_view> questions;
  std::vector<std::string_view> rest;
  bool summarize = false;
  bool generate = false;
  for (const Segment& s : Segments(request)) {
    if (AsksToGenerate(s.text)) {
      generate = true;
    } else if (AsksToSummarize(s.text)) {
      summarize = true;
    } else if (IsQuestion(s.text) || AsksToExplain(s.text)) {
      questions.push_back(s.text);
    } else {
      rest.push_back(s.text);
    }
  }
  if (generate) return Error(ErrorCode::kUnprocessable, std::string(kCannotGenerate), "messages");
  if (summarize) {
    // What to summarise: the rest of the request ("Summarize this: ...") or else the context.
    if (!rest.empty()) {
      std::string own;
      for (std::string_view r : rest) {
        if (!own.empty()) own += ' ';
        own += r;
      }
      const SummaryResult s = Summarize(embedder, own, summary_words);
      return ChatReply{s.summary, ReplyKind::kSummary};
    }
    if (context.empty()) {
      return Error(ErrorCode::kUnprocessable, std::string(kNothingToExtract), "messages");
    }
    return summary(context);
  }
  if (questions.empty()) {
    // No question: the whole request is the query ("refund policy"), the context what is
    // searched.
    questions = std::move(rest);
    rest.clear();
  }
  std::string searched = Join(context);
  for (std::string_view r : rest) {
    if (!searched.empty()) searched += "\n\n";
    searched += r;
  }
  if (searched.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Error(ErrorCode::kUnprocessable, std::string(kNothingToExtract), "messages");
  }
  std::vector<std::string> answers;
  for (std::string_view q : questions) {
    AnswerResult a = Answer(embedder, q, searched);
    if (a.found && std::find(answers.begin(), answers.end(), a.answer) == answers.end()) {
      answers.push_back(std::move(a.answer));
    }
  }
  if (answers.empty()) return ChatReply{std::string(kNotFoundReply), ReplyKind::kNotFound};
  std::string text;
  for (const std::string& a : answers) {
    if (!text.empty()) text += ' ';
    text += a;
  }
  if (max_words > 0 && WordCount(text) > max_words) text = FirstWords(text, max_words);
  return ChatReply{std::move(text), ReplyKind::kAnswer};
}

}  // namespace orchestra::providers::local
