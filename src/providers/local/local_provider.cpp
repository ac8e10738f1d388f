#include "providers/local/local_provider.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "wire/codec_util.hpp"

namespace orchestra::providers {
namespace {

namespace asio = boost::asio;

constexpr std::size_t kDefaultDimensions = 256;
constexpr std::size_t kMaxDimensions = 4096;
constexpr std::size_t kDefaultMaxWords = 120;

bool IsStopword(std::string_view w) {
  static const std::set<std::string_view> kStop{
      "a",     "an",   "and",  "are",   "as",    "at",   "be",    "been", "but",  "by",
      "can",   "did",  "do",   "does",  "for",   "from", "had",   "has",  "have", "how",
      "i",     "if",   "in",   "into",  "is",    "it",   "its",   "me",   "my",   "no",
      "not",   "of",   "on",   "or",    "our",   "she",  "so",    "than", "that", "the",
      "their", "them", "then", "there", "these", "they", "this",  "to",   "was",  "we",
      "were",  "what", "when", "where", "which", "who",  "why",   "will", "with", "would",
      "you",   "your", "he",   "his",   "her",   "also", "about", "all",  "any",  "more"};
  return kStop.contains(w);
}

std::uint64_t Fnv1a(std::string_view s, std::uint64_t seed = 1469598103934665603ULL) {
  std::uint64_t h = seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::int64_t CountWords(std::string_view text) {
  return static_cast<std::int64_t>(local::Words(text).size());
}

ProviderError Invalid(std::string message, std::string param) {
  ProviderError e;
  e.kind = FailureKind::kStatus;
  e.status = 400;
  e.error = Error(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
  return e;
}

ProviderError UnknownModel(std::string_view model) {
  ProviderError e;
  e.kind = FailureKind::kStatus;
  e.status = 404;
  e.error = Error(ErrorCode::kNotFound,
                  "the local provider has no model '" + std::string(model) +
                      "' (it serves local-extractive and local-embed)",
                  "model");
  return e;
}

std::string RoundTripWords(const std::vector<std::string_view>& sentences) {
  std::string out;
  for (std::string_view s : sentences) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

}  // namespace

namespace local {

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  std::string current;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) {
      current += static_cast<char>(std::tolower(c));
    } else if (!current.empty()) {
      words.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

std::vector<std::string_view> Sentences(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  auto flush = [&](std::size_t end) {
    std::string_view s = text.substr(start, end - start);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
      s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
      s.remove_suffix(1);
    if (!s.empty()) out.push_back(s);
    start = end;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' && i + 1 < text.size() && text[i + 1] == '\n') {
      flush(i);
    } else if ((c == '.' || c == '!' || c == '?') &&
               (i + 1 == text.size() || std::isspace(static_cast<unsigned char>(text[i + 1])))) {
      flush(i + 1);
    }
  }
  flush(text.size());
  return out;
}

std::string Answer(const std::vector<wire::Message>& messages, std::size_t max_words) {
  // The question: the last user message's questions; the context: everything else said.
  std::string_view last_user;
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->role == "user") {
      last_user = it->content;
      break;
    }
  }
  std::vector<std::string_view> questions;
  std::vector<std::string_view> context;
  for (const wire::Message& m : messages) {
    if (m.role == "assistant" || m.role == "tool") continue;
    for (std::string_view s : Sentences(m.content)) {
      const bool is_question = !s.empty() && s.back() == '?';
      if (is_question && m.content.data() == last_user.data()) {
        questions.push_back(s);
      } else if (!is_question) {
        context.push_back(s);
      }
    }
  }
  if (context.empty()) {
    if (last_user.empty()) return "There is nothing to answer.";
    return "I have no context to answer from: " + std::string(last_user);
  }
  std::vector<double> score(context.size(), 0);
  if (!questions.empty()) {
    std::set<std::string> asked;
    for (std::string_view q : questions) {
      for (auto& w : Words(q)) {
        if (!IsStopword(w)) asked.insert(w);
      }
    }
    for (std::size_t i = 0; i < context.size(); ++i) {
      auto words = Words(context[i]);
      std::set<std::string> seen;
      for (auto& w : words) {
        // A shared word counts once per sentence; a plural or -ing form of an asked word too.
        if (IsStopword(w) || !seen.insert(w).second) continue;
        for (const std::string& a : asked) {
          if (w == a ||
              (w.size() > 3 && a.size() > 3 && (w.rfind(a, 0) == 0 || a.rfind(w, 0) == 0))) {
            score[i] += 1;
            break;
          }
        }
      }
      if (!words.empty()) score[i] /= std::sqrt(static_cast<double>(words.size()));
    }
  } else {
    // Summary: sentences rich in the text's most frequent content words.
    std::unordered_map<std::string, int> freq;
    for (std::string_view s : context) {
      for (auto& w : Words(s)) {
        if (!IsStopword(w)) ++freq[w];
      }
    }
    for (std::size_t i = 0; i < context.size(); ++i) {
      auto words = Words(context[i]);
      for (auto& w : words) {
        if (!IsStopword(w)) score[i] += freq[w];
      }
      if (!words.empty()) score[i] /= static_cast<double>(words.size());
      score[i] += 1e-3 * static_cast<double>(context.size() - i);  // earlier wins a tie
    }
  }
  std::vector<std::size_t> order(context.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
  if (!questions.empty() && score[order[0]] <= 0) {
    return "The conversation does not say.";
  }
  // Up to three sentences within the word budget, in their original order.
  std::vector<std::size_t> chosen;
  std::size_t words = 0;
  for (std::size_t i : order) {
    if (chosen.size() == 3 || (!questions.empty() && score[i] <= 0)) break;
    std::size_t n = Words(context[i]).size();
    if (!chosen.empty() && words + n > max_words) break;
    chosen.push_back(i);
    words += n;
    if (!questions.empty() && score[i] < score[order[0]] * 0.5) break;
  }
  std::sort(chosen.begin(), chosen.end());
  std::vector<std::string_view> picked;
  for (std::size_t i : chosen)
    picked.push_back(context[i]);
  std::string answer = RoundTripWords(picked);
  // Respect the word budget even for one long sentence.
  auto all = Words(answer);
  if (all.size() > max_words) {
    std::size_t kept = 0;
    std::size_t cut = answer.size();
    bool in_word = false;
    for (std::size_t i = 0; i < answer.size(); ++i) {
      const bool alnum = std::isalnum(static_cast<unsigned char>(answer[i])) != 0;
      if (alnum && !in_word && ++kept > max_words) {
        cut = i;
        break;
      }
      in_word = alnum;
    }
    answer.resize(cut);
    while (!answer.empty() && std::isspace(static_cast<unsigned char>(answer.back())))
      answer.pop_back();
  }
  return answer;
}

std::vector<float> Embed(std::string_view text, std::size_t dimensions) {
  std::vector<float> v(dimensions, 0.0f);
  auto words = Words(text);
  auto add = [&](std::string_view feature, float weight) {
    const std::uint64_t h = Fnv1a(feature);
    const std::size_t slot = h % dimensions;
    v[slot] += ((h >> 63) != 0 ? -weight : weight);
  };
  for (std::size_t i = 0; i < words.size(); ++i) {
    add(words[i], IsStopword(words[i]) ? 0.25f : 1.0f);
    if (i + 1 < words.size()) add(words[i] + " " + words[i + 1], 0.5f);
  }
  double norm = 0;
  for (float x : v)
    norm += static_cast<double>(x) * x;
  if (norm > 0) {
    const auto inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (float& x : v)
      x *= inv;
  }
  return v;
}

}  // namespace local

LocalProvider::LocalProvider(std::string name) : name_(std::move(name)) {}

asio::awaitable<ProviderResult<wire::ChatResponse>> LocalProvider::Chat(
    const wire::ChatRequest& request, const CallOptions& options) {
  if (options.upstream_model != kChatModel) co_return UnknownModel(options.upstream_model);
  if (!request.parsed) co_return Invalid("the request's messages were not parsed", "messages");
  const std::size_t max_words =
      request.max_tokens ? static_cast<std::size_t>(*request.max_tokens) : kDefaultMaxWords;
  wire::ChatResponse response;
  response.id = wire::NewChatCompletionId();
  response.created = wire::UnixNow();
  response.model = std::string(kChatModel);
  wire::ChatChoice choice;
  choice.content = local::Answer(request.messages, max_words);
  choice.finish_reason = "stop";
  std::int64_t prompt = 0;
  for (const wire::Message& m : request.messages)
    prompt += CountWords(m.content);
  response.usage = {prompt, CountWords(choice.content), 0, true};
  response.usage.total_tokens = response.usage.prompt_tokens + response.usage.completion_tokens;
  response.choices.push_back(std::move(choice));
  co_return response;
}

asio::awaitable<ProviderResult<StreamSummary>> LocalProvider::ChatStream(
    const wire::ChatRequest& request, const CallOptions& options, ChunkSink& sink) {
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
  if (options.upstream_model != kEmbedModel) co_return UnknownModel(options.upstream_model);
  if (request.token_input)
    co_return Invalid("local-embed takes text input, not token ids", "input");
  std::size_t dims = kDefaultDimensions;
  if (request.dimensions) {
    if (*request.dimensions < 1 ||
        *request.dimensions > static_cast<std::int64_t>(kMaxDimensions)) {
      co_return Invalid("dimensions must be between 1 and 4096", "dimensions");
    }
    dims = static_cast<std::size_t>(*request.dimensions);
  }
  wire::EmbeddingResponse response;
  response.model = std::string(kEmbedModel);
  std::int64_t tokens = 0;
  for (const std::string& input : request.inputs) {
    response.vectors.push_back(local::Embed(input, dims));
    tokens += CountWords(input);
  }
  response.usage = {tokens, 0, tokens, true};
  co_return response;
}

asio::awaitable<Result<std::string>> LocalProvider::Warmup(int /*worker*/) {
  co_return std::string("local models loaded");
}

}  // namespace orchestra::providers
