#include "providers/local/answerer.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "providers/local/sentences.hpp"
#include "providers/local/tokens.hpp"

namespace orchestra::providers::local {
namespace {

constexpr double kBm25K1 = 1.2;
constexpr double kBm25B = 0.75;
// Partial credit for a question word the sentence lacks (answerer.hpp).
constexpr double kSoftFrom = 0.4;
constexpr double kSoftFull = 0.8;
constexpr double kSoftMax = 0.9;
constexpr double kNameNear = 0.8;
constexpr double kPrefixCredit = 0.8;
constexpr double kReferCredit = 0.8;
constexpr double kNameCredit = 0.7;
constexpr double kTopicCredit = 0.3;
constexpr double kTopicDiscount = 0.5;
// The ranking score's weights (they sum to 1).
constexpr double kCoverageWeight = 0.4;
constexpr double kTypeWeight = 0.2;
constexpr double kNoveltyWeight = 0.2;
constexpr double kBm25Weight = 0.12;
constexpr double kSemanticWeight = 0.08;

// What kind of answer a question asks for, from its wording.
enum class AnswerType : std::uint8_t { kAny, kTime, kQuantity, kPerson, kPlace, kReason };

struct Term {
  std::string stem;
  std::vector<float> vector;  // unit, or empty
  double weight = 1;
  bool name = false;  // capitalised inside the question, or a number: must appear as written
};

struct Question {
  std::vector<Term> terms;
  AnswerType type = AnswerType::kAny;
};

bool IsUpperAscii(char c) {
  return c >= 'A' && c <= 'Z';
}
bool IsDigitAscii(char c) {
  return c >= '0' && c <= '9';
}

bool Has(const std::vector<std::string_view>& words, std::string_view w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

AnswerType TypeOf(const std::vector<std::string_view>& w) {
  auto pair = [&](std::string_view a, std::string_view b) {
    for (std::size_t i = 0; i + 1 < w.size(); ++i) {
      if (w[i] == a && w[i + 1] == b) return true;
    }
    return false;
  };
  if (pair("how", "many") || pair("how", "much") || pair("how", "long") || pair("how", "old") ||
      pair("how", "far") || pair("what", "percentage")) {
    return AnswerType::kQuantity;
  }
  if (Has(w, "when") || pair("what", "year") || pair("which", "year") || pair("what", "date")) {
    return AnswerType::kTime;
  }
  if (Has(w, "who") || Has(w, "whom") || Has(w, "whose")) return AnswerType::kPerson;
  if (Has(w, "where")) return AnswerType::kPlace;
  if (Has(w, "why")) return AnswerType::kReason;
  return AnswerType::kAny;
}

Question Parse(const Embedder& embedder, std::string_view question) {
  Question q;
  const Tokens tokens = Tokenize(question);
  q.type = TypeOf(tokens.words);
  std::unordered_set<std::string> seen;
  for (std::size_t i = 0; i < tokens.words.size(); ++i) {
    const std::string_view w = tokens.words[i];
    // "how long", "how old": the adjective says what kind of answer, not what it is about.
    if (i > 0 && tokens.words[i - 1] == "how") continue;
    const auto at = static_cast<std::size_t>(w.data() - tokens.storage.data());
    std::size_t p = at;
    while (p > 0 && (question[p - 1] == ' ' || question[p - 1] == '\t' || question[p - 1] == '"'))
      --p;
    // The first word of a sentence is capitalised anyway.
    const bool sentence_start = p == 0 || question[p - 1] == '.' || question[p - 1] == '?' ||
                                question[p - 1] == '!' || question[p - 1] == '\n' ||
                                question[p - 1] == ':';
    if (IsStopword(w)) continue;
    std::string stem = Stem(w);
    if (!seen.insert(stem).second) continue;
    Term t;
    t.name = (IsUpperAscii(question[at]) && !sentence_start) || IsDigitAscii(question[at]);
    t.vector = embedder.WordVector(w);
    t.weight = embedder.WordWeight(w);
    t.stem = std::move(stem);
    q.terms.push_back(std::move(t));
  }
  return q;
}

struct Candidate {
  Segment segment;
  std::vector<std::string> stems;  // content words' stems
  std::vector<std::string> words;  // content words
  bool refers_back = false;        // starts with a pronoun: about the sentence before
  bool has_number = false;
  bool has_time = false;
  bool has_name = false;    // a capitalised word after the first
  bool has_place = false;   // a locative preposition
  bool has_reason = false;  // "because", "in order to", ...
};

constexpr std::string_view kReferring[] = {"he",  "her",   "his",   "it",   "its",
                                           "she", "their", "these", "they", "this"};
constexpr std::string_view kTimeWords[] = {
    "january",   "february",  "march",   "april",    "may",      "june",      "july",
    "august",    "september", "october", "november", "december", "monday",    "tuesday",
    "wednesday", "thursday",  "friday",  "saturday", "sunday",   "yesterday", "today",
    "tomorrow",  "century",   "decade",  "year",     "years",    "month",     "months",
    "week",      "weeks",     "day",     "days",     "hour",     "hours",     "minute",
    "minutes",   "seconds",   "ago",     "since",    "until",    "before",    "after"};
constexpr std::string_view kNumberWords[] = {"one",     "two",     "three", "four",    "five",
                                             "six",     "seven",   "eight", "nine",    "ten",
                                             "eleven",  "twelve",  "dozen", "hundred", "thousand",
                                             "million", "billion", "half",  "twice",   "percent"};
constexpr std::string_view kReasonWords[] = {"because",  "since",    "due",    "order",
                                             "designed", "intended", "so",     "reason",
                                             "purpose",  "aim",      "caused", "therefore"};
constexpr std::string_view kPlaceWords[] = {"in",     "at",      "inside", "near",
                                            "within", "outside", "from",   "on"};

template <std::size_t N>
bool In(const std::string_view (&list)[N], std::string_view w) {
  return std::find(std::begin(list), std::end(list), w) != std::end(list);
}

Candidate Describe(const Segment& s) {
  Candidate c;
  c.segment = s;
  const Tokens tokens = Tokenize(s.text);
  for (std::size_t i = 0; i < tokens.words.size(); ++i) {
    const std::string_view w = tokens.words[i];
    const auto at = static_cast<std::size_t>(w.data() - tokens.storage.data());
    if (i == 0) c.refers_back = In(kReferring, w);
    if (IsDigitAscii(w.front()) || In(kNumberWords, w)) c.has_number = true;
    if (In(kTimeWords, w) ||
        (w.size() == 4 && IsDigitAscii(w[0]) && (w.starts_with("1") || w.starts_with("20")))) {
      c.has_time = true;
    }
    if (i > 0 && IsUpperAscii(s.text[at])) c.has_name = true;
    if (In(kPlaceWords, w)) c.has_place = true;
    if (In(kReasonWords, w)) c.has_reason = true;
    if (IsStopword(w)) continue;
    c.words.emplace_back(w);
    c.stems.push_back(Stem(w));
  }
  return c;
}

bool Fits(AnswerType type, const Candidate& c) {
  switch (type) {
    case AnswerType::kAny:
      return true;
    case AnswerType::kTime:
      return c.has_time;
    case AnswerType::kQuantity:
      return c.has_number;
    case AnswerType::kPerson:
      return c.has_name;
    case AnswerType::kPlace:
      return c.has_place || c.has_name;
    case AnswerType::kReason:
      return c.has_reason;
  }
  return true;
}

// Stems that share a long prefix are forms of one word the stemmer missed: "employ" and
// "employee", "organiz" and "organisation" do not, but "applic" and "applied" do not either.
bool SharePrefix(std::string_view a, std::string_view b) {
  const std::size_t shorter = std::min(a.size(), b.size());
  if (shorter < 5) return false;
  std::size_t i = 0;
  while (i < shorter && a[i] == b[i])
    ++i;
  return i >= 5 && i * 10 >= shorter * 8;
}

bool Contains(const std::vector<std::string>& stems, std::string_view stem) {
  return std::find(stems.begin(), stems.end(), stem) != stems.end();
}

}  // namespace

AnswerResult Answer(const Embedder& embedder, std::string_view question, std::string_view context,
                    std::size_t max_words) {
  AnswerResult result;
  Question q = Parse(embedder, question);
  if (q.terms.empty()) return result;
  std::vector<Candidate> candidates;
  for (const Segment& s : Segments(context)) {
    if (s.kind == SegmentKind::kHeading) continue;
    Candidate c = Describe(s);
    if (!c.words.empty()) candidates.push_back(std::move(c));
  }
  if (candidates.empty()) return result;

  // BM25 statistics over the context's sentences.
  const auto n = static_cast<double>(candidates.size());
  std::unordered_map<std::string, int> df;
  double total_length = 0;
  for (const Candidate& c : candidates) {
    std::unordered_set<std::string_view> once(c.stems.begin(), c.stems.end());
    for (std::string_view s : once)
      ++df[std::string(s)];
    total_length += static_cast<double>(c.stems.size());
  }
  const double average_length = total_length / n;

  // Soft matches: the best word-vector cosine of each term with each sentence's words.
  std::unordered_map<std::string, std::vector<float>> vectors;
  auto nearest = [&](const Term& t, const Candidate& c) {
    double best = 0;
    if (t.vector.empty()) return best;
    for (const std::string& w : c.words) {
      auto [it, inserted] = vectors.try_emplace(w);
      if (inserted) it->second = embedder.WordVector(w);
      best = std::max(best, Dot(t.vector, it->second));
    }
    return best;
  };

  // A name or number the context never mentions (nor anything very like it) means the context
  // is about something else.
  double total_weight = 0;
  for (Term& t : q.terms) {
    // The context's topic (a word in several of its sentences) says little about which sentence
    // answers: it weighs half.
    if (auto it = df.find(t.stem); it != df.end() && it->second >= 2 && n >= 3) {
      t.weight *= kTopicDiscount;
    }
    total_weight += t.weight;
    if (!t.name || df.contains(t.stem)) continue;
    const bool near = std::any_of(candidates.begin(), candidates.end(),
                                  [&](const Candidate& c) { return nearest(t, c) >= kNameNear; });
    if (!near) return result;
  }

  const Embedder::Analysis qa = embedder.Analyze(question);
  std::vector<double> coverage(candidates.size());
  std::vector<double> bm25(candidates.size());
  double best_bm25 = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    double covered = 0;
    double score = 0;
    for (const Term& t : q.terms) {
      const auto tf = static_cast<double>(std::count(c.stems.begin(), c.stems.end(), t.stem));
      if (tf > 0) {
        covered += t.weight;
        const double d = df[t.stem];
        const double idf = std::log(1 + (n - d + 0.5) / (d + 0.5));
        const double length = static_cast<double>(c.stems.size());
        score += idf * tf * (kBm25K1 + 1) /
                 (tf + kBm25K1 * (1 - kBm25B + kBm25B * length / average_length));
        continue;
      }
      double credit = 0;
      if (std::any_of(c.stems.begin(), c.stems.end(),
                      [&](const std::string& w) { return SharePrefix(w, t.stem); })) {
        credit = kPrefixCredit;
      }
      if (c.refers_back && i > 0 && Contains(candidates[i - 1].stems, t.stem)) {
        credit = std::max(credit, kReferCredit);
      } else if (df.contains(t.stem)) {
        credit = std::max(credit, t.name ? kNameCredit : kTopicCredit);
      }
      const double near = nearest(t, c);
      if (!t.name) {
        const double soft = std::clamp((near - kSoftFrom) / (kSoftFull - kSoftFrom), 0.0, 1.0);
        credit = std::max(credit, kSoftMax * soft);
      } else if (near >= kNameNear) {
        credit = std::max(credit, kSoftMax);
      }
      covered += t.weight * credit;
    }
    coverage[i] = total_weight > 0 ? covered / total_weight : 0;
    bm25[i] = score;
    best_bm25 = std::max(best_bm25, score);
  }
  std::size_t best = 0;
  double best_score = -1;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const double semantic =
        std::max(0.0, embedder.Similarity(qa, embedder.Analyze(candidates[i].segment.text)));
    std::size_t novel = 0;
    for (const std::string& st : candidates[i].stems) {
      if (std::none_of(q.terms.begin(), q.terms.end(), [&](const Term& t) { return t.stem == st; }))
        ++novel;
    }
    const double novelty =
        static_cast<double>(novel) / static_cast<double>(candidates[i].stems.size());
    const double s = kCoverageWeight * coverage[i] + kSemanticWeight * semantic +
                     kBm25Weight * (best_bm25 > 0 ? bm25[i] / best_bm25 : 0) +
                     kTypeWeight * (Fits(q.type, candidates[i]) ? 1.0 : 0.0) +
                     kNoveltyWeight * novelty;
    if (s > best_score) {
      best_score = s;
      best = i;
    }
  }
  result.score = best_score;
  result.coverage = coverage[best];
  if (result.coverage < kMinCoverage) return result;
  const Segment& s = candidates[best].segment;
  result.found = true;
  result.answer = max_words > 0 ? FirstWords(s.text, max_words) : Collapse(s.text);
  result.begin = s.begin;
  result.end = s.begin + s.text.size();
  return result;
}

}  // namespace orchestra::providers::local
