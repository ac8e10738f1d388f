#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "providers/local/embedder.hpp"

// Extractive summaries (`/summarize-text` on the local models, and local-extractive's answer to
// "summarize this"): TextRank over the text's sentences.
//
// The sentences (sentences.hpp: headings and list fragments are never chosen) are the nodes of
// a graph whose edges weigh how alike two sentences are (Embedder::Similarity, negative values
// cut to 0); PageRank (damping 0.85) over it scores each sentence by how central it is to the
// text. The best-scored sentences are taken greedily while they fit the budget — a sentence too
// long for what is left is skipped and shorter ones after it are still considered, and one
// nearly identical to a sentence already taken is skipped — and returned in the text's order.
//
// The budget is `max_words` words as a reader counts them (sentences.hpp WordCount; this is AI
// Orchestra's `max_length`). The summary never exceeds it, with one exception: when no whole
// sentence fits, the best sentence is cut at a word boundary to exactly `max_words` words and
// ends with "…". A larger budget never gives a shorter summary on the same text. A text of at
// most `max_words` words is its own summary (headings left out).
//
// A text without any sentence (only headings or fragments) is summarised from those instead.
// Texts of more than kMaxGraphSentences sentences score sentences by their similarity to the
// whole text's centroid instead of PageRank (linear instead of quadratic time).
namespace orchestra::providers::local {

struct SummaryResult {
  std::string summary;                 // the chosen sentences, collapsed and joined by spaces
  std::vector<std::size_t> sentences;  // their indices among the sentences, in text order
  std::size_t words = 0;               // WordCount(summary)
  bool truncated = false;              // the one sentence was cut to fit
};

inline constexpr std::size_t kMaxGraphSentences = 2000;

SummaryResult Summarize(const Embedder& embedder, std::string_view text, std::size_t max_words);

// The TextRank score of each sentence (they sum to 1), for tests and explanations.
std::vector<double> RankSentences(const Embedder& embedder,
                                  const std::vector<std::string_view>& sentences);

}  // namespace orchestra::providers::local
