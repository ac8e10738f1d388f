#include "providers/local/tokens.hpp"

#include <algorithm>
#include <iterator>

namespace orchestra::providers::local {
namespace {

bool IsWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// Sorted, for a binary search (checked below).
constexpr std::string_view kStopwords[] = {
    "a",       "about",   "above",   "after",      "again",    "against",   "all",     "also",
    "am",      "an",      "and",     "any",        "are",      "as",        "at",      "be",
    "because", "been",    "before",  "being",      "below",    "between",   "both",    "but",
    "by",      "can",     "could",   "d",          "did",      "do",        "does",    "doing",
    "down",    "during",  "each",    "few",        "for",      "from",      "further", "had",
    "has",     "have",    "having",  "he",         "her",      "here",      "hers",    "herself",
    "him",     "himself", "his",     "how",        "i",        "if",        "in",      "into",
    "is",      "it",      "its",     "itself",     "just",     "let",       "ll",      "m",
    "many",    "may",     "me",      "might",      "more",     "most",      "much",    "must",
    "my",      "myself",  "no",      "nor",        "not",      "now",       "of",      "off",
    "on",      "once",    "only",    "or",         "other",    "our",       "ours",    "ourselves",
    "out",     "over",    "own",     "re",         "s",        "same",      "shall",   "she",
    "should",  "so",      "some",    "such",       "t",        "than",      "that",    "the",
    "their",   "theirs",  "them",    "themselves", "then",     "there",     "these",   "they",
    "this",    "those",   "through", "to",         "too",      "under",     "until",   "up",
    "us",      "ve",      "very",    "was",        "we",       "were",      "what",    "when",
    "where",   "which",   "while",   "who",        "whom",     "why",       "will",    "with",
    "would",   "you",     "your",    "yours",      "yourself", "yourselves"};
static_assert(std::is_sorted(std::begin(kStopwords), std::end(kStopwords)));

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsVowel(char c) {
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

}  // namespace

Tokens Tokenize(std::string_view text) {
  Tokens t;
  t.storage.assign(text);
  for (char& ch : t.storage) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  const std::string_view s = t.storage;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && !IsWordByte(static_cast<unsigned char>(s[i])))
      ++i;
    const std::size_t start = i;
    while (i < s.size() && IsWordByte(static_cast<unsigned char>(s[i])))
      ++i;
    if (i > start) t.words.push_back(s.substr(start, i - start));
  }
  return t;
}

std::size_t CountWords(std::string_view text) {
  std::size_t n = 0;
  bool in_word = false;
  for (char ch : text) {
    const bool w = IsWordByte(static_cast<unsigned char>(ch));
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

bool IsStopword(std::string_view word) {
  return std::binary_search(std::begin(kStopwords), std::end(kStopwords), word);
}

std::string Stem(std::string_view w) {
  std::string s(w);
  if (s.size() <= 3) return s;
  if (EndsWith(s, "ies") && s.size() > 4) {
    s.replace(s.size() - 3, 3, "y");
  } else if (EndsWith(s, "sses") || EndsWith(s, "shes") || EndsWith(s, "ches") ||
             EndsWith(s, "xes")) {
    s.resize(s.size() - 2);
  } else if (EndsWith(s, "s") && !EndsWith(s, "ss") && !EndsWith(s, "us") && !EndsWith(s, "is")) {
    s.pop_back();
  }
  auto strip = [&](std::string_view suffix, std::size_t min_left) {
    if (!EndsWith(s, suffix) || s.size() < suffix.size() + min_left) return false;
    const std::string_view rest = std::string_view(s).substr(0, s.size() - suffix.size());
    if (std::none_of(rest.begin(), rest.end(), IsVowel)) return false;
    s.resize(rest.size());
    return true;
  };
  if (strip("ing", 3) || strip("ed", 3)) {
    // "running" → "runn" → "run"; "hoped" → "hop" stays distinct from "hope": fine for matching
    if (s.size() > 3 && s[s.size() - 1] == s[s.size() - 2] && !IsVowel(s.back()) &&
        s.back() != 'l' && s.back() != 's' && s.back() != 'z') {
      s.pop_back();
    }
  } else {
    strip("ly", 4);
  }
  return s;
}

std::uint64_t Fnv1a64(std::string_view s, std::uint64_t seed) {
  std::uint64_t h = seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace orchestra::providers::local
