#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// Word-level text analysis shared by the local models: one tokenizer, one stop-word list and one
// stemmer, so that embeddings, summaries, answers and classification agree on what a word is.
namespace orchestra::providers::local {

// The words of a text: maximal runs of ASCII letters and digits or non-ASCII bytes (UTF-8
// letters are kept whole), ASCII letters lower-cased. The views point into `storage`.
struct Tokens {
  std::string storage;  // the text with ASCII letters lower-cased
  std::vector<std::string_view> words;
};
Tokens Tokenize(std::string_view text);
// How many words Tokenize would find, without allocating.
std::size_t CountWords(std::string_view text);

// Function words ("the", "of", "what", ...) that say little about a text's topic.
bool IsStopword(std::string_view word);

// A light suffix-stripping stemmer (plurals, -ing, -ed, -ly): "passwords" → "password",
// "running" → "runn", "stories" → "story". Good enough to match the inflections of a word with
// each other; the result is not always a word.
std::string Stem(std::string_view word);

// FNV-1a, 64 bits: the hashed lexical features.
std::uint64_t Fnv1a64(std::string_view s, std::uint64_t seed = 14695981039346656037ULL);

}  // namespace orchestra::providers::local
