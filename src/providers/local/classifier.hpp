#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "providers/local/embedder.hpp"

// Zero-shot classification (`/classify-text` on the local models): how alike the text is to
// each category, turned into probabilities.
//
// A category is its name, plus optionally a description and example texts. Its similarity to
// the text is the larger of: the text against the name and description together, and the mean
// of the text against each example (Embedder::Similarity, so one-word names such as "sports"
// work through their word vectors). Scores are softmax(similarity / kTemperature): in [0, 1],
// summing to 1.
//
// kTemperature = 0.05: a lead of 0.05 in similarity makes a category e (≈ 2.7) times as likely
// as the next. `confident` is false when no category has any signal — the text has no word
// with a vector and shares no word with any category, so every similarity is 0 — or when the
// best similarity leads the second by less than kMinMargin (the best is then less than
// e^(kMinMargin/kTemperature) ≈ 1.5 times as likely as the next): the caller should not act on
// `best` then. `best` is still the highest score, never a default.
namespace orchestra::providers::local {

struct Category {
  std::string name;
  std::string description;            // optional
  std::vector<std::string> examples;  // optional texts of this category
};

struct ClassifyResult {
  std::vector<double> scores;        // one per category, in their order; in [0, 1], sum 1
  std::vector<double> similarities;  // the raw similarities the scores come from, in [-1, 1]
  std::size_t best = 0;              // the index of the highest score (the first of equals)
  bool confident = false;
};

inline constexpr double kTemperature = 0.05;
inline constexpr double kMinMargin = 0.02;

// `categories` must not be empty.
ClassifyResult Classify(const Embedder& embedder, std::string_view text,
                        const std::vector<Category>& categories);

}  // namespace orchestra::providers::local
