#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "providers/local/embedder.hpp"

// Extractive answers (`/answer-question` on the local models, and local-extractive's answer to a
// question about its context): the context's sentence that answers the question best, or an
// explicit "not found".
//
// The question's content words (stop words and the adjective of "how long/old/far" left out)
// are its terms, each weighing its smooth-inverse-frequency weight (Embedder::WordWeight),
// halved for the context's topic (a word in two or more of its sentences). A term is a *name*
// when it is written capitalised after the first word of a sentence ("Tokyo", "CEO") or starts
// with a digit ("2020").
//
// Each sentence and list fragment of the context (sentences.hpp; headings are left out) gets:
//   coverage  the weighted share of the terms it speaks to: 1 for the same stem; else the best
//             of: 0.8 for a stem sharing a long prefix ("employ"/"employee"); 0.8 when the
//             sentence starts with a pronoun ("It", "Its") and the sentence before has the
//             term; 0.7 for a name, 0.3 for another term, found elsewhere in the context; for a
//             term that is not a name, up to 0.9 for its nearest word in the sentence by
//             word-vector cosine (nothing below 0.4, the most from 0.8); for a name, 0.9 when a
//             word of the sentence is that close (≥ 0.8: "CEO" / "executive").
//   type      1 when the sentence has what the question asks for: a year, date or time word
//             for "when"; a number for "how many/much/long"; a capitalised name for "who"; a
//             place preposition or a name for "where"; "because", "in order", "designed" ... for
//             "why"; always 1 otherwise;
//   novelty   the share of its content words the question does not have (an answer adds
//             something; a sentence that restates the question does not);
//   bm25      Okapi BM25 (k1 = 1.2, b = 0.75) of the terms' stems, with the context's sentences
//             as the collection, divided by the best sentence's;
//   semantic  Embedder::Similarity of question and sentence (negative cut to 0).
// score = 0.4 coverage + 0.2 type + 0.2 novelty + 0.12 bm25 + 0.08 semantic, in [0, 1].
//
// The best-scored sentence (the first of equals) is the answer when its coverage is at least
// kMinCoverage. Otherwise — and whenever a name of the question appears nowhere in the context
// and no word of it is that close — the result is "not found": an empty answer and
// found = false, never a guess. What this cannot do: resolve references beyond the sentence
// before, or tell a sentence that names the topic from one that answers when both use the
// question's words (answerer_test.cpp has the measured accuracy).
namespace orchestra::providers::local {

struct AnswerResult {
  std::string answer;     // the answering sentence (white space collapsed), or empty
  bool found = false;     // false: the context does not answer the question
  double score = 0;       // the best sentence's score, in [0, 1] (0 when vetoed by a name)
  double coverage = 0;    // the best sentence's coverage of the question, in [0, 1]
  std::size_t begin = 0;  // the answer's byte range [begin, end) in the context
  std::size_t end = 0;
};

inline constexpr double kMinCoverage = 0.5;

// `max_words` > 0 cuts a longer answer at a word boundary (sentences.hpp WordCount).
AnswerResult Answer(const Embedder& embedder, std::string_view question, std::string_view context,
                    std::size_t max_words = 0);

}  // namespace orchestra::providers::local
