#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "providers/local/word_vectors.hpp"

// `local-embed`: text embeddings from static word vectors plus hashed lexical features.
//
// A text becomes two unit vectors:
//   semantic  the average of its words' GloVe vectors, each weighted by a/(a + p(w)) with p(w)
//             the word's frequency estimated from its rank (Arora et al.'s "smooth inverse
//             frequency": frequent words count little), stop words left out, the component all
//             such averages share removed (WordVectors::common()), L2-normalised. Words the
//             vocabulary lacks are looked up by their stem, else skipped.
//   lexical   signed feature hashing of the stems of its content words (weight 1) and of pairs
//             of adjacent content words (weight 0.5), L2-normalised: texts that share words.
// The embedding is [√s · semantic ; √(1−s) · lexical] with s = kSemanticShare, so the cosine of
// two embeddings is s × (semantic cosine) + (1−s) × (lexical cosine): paraphrases that share no
// word still score high, and shared rare words still count. A text with no known word (or
// without the word-vector file) has only the lexical part, at full weight.
//
// Layout of a D-dimensional embedding: the first min(100, D/2) values are the semantic part (the
// vector truncated when D < 200), the rest the lexical part. Embeddings made without the
// word-vector file (lexical only, in all D values) are not comparable with those made with it:
// Status() says which kind this process makes.
//
// Thread-safe: an Embedder holds only a pointer to immutable word vectors.
namespace orchestra::providers::local {

class Embedder {
 public:
  static constexpr std::size_t kDefaultDimensions = 256;
  static constexpr std::size_t kMaxDimensions = 4096;
  static constexpr double kSemanticShare = 0.75;

  // `vectors` == nullptr: lexical features only.
  explicit Embedder(const WordVectors* vectors = &WordVectors::Default()) : vectors_(vectors) {}

  // Whether embeddings have their semantic part (loads the word vectors on first call).
  bool semantic() const { return vectors_ != nullptr && vectors_->Available(); }
  // One line for logs and GET /models: semantic (from which file) or lexical only, and why.
  // Loads the word vectors if that was not tried yet (WordVectors::state() does not).
  std::string Status() const;

  // The `local-embed` vector of `text`: `dimensions` floats (1 to kMaxDimensions), unit length,
  // or all zero for a text without a word.
  std::vector<float> Embed(std::string_view text,
                           std::size_t dimensions = kDefaultDimensions) const;

  // A text analysed once, for comparing it with many others (summaries, answers, classes).
  struct Analysis {
    std::vector<float> semantic;  // unit length, or empty when no word had a vector
    // Hashed lexical features: (feature hash, weight), sorted by hash, unit length overall.
    std::vector<std::pair<std::uint64_t, float>> lexical;
  };
  Analysis Analyze(std::string_view text) const;
  // The cosine of the two texts' embeddings (before hashing into slots): kSemanticShare ×
  // semantic cosine + the rest × lexical cosine, or the lexical cosine alone when either text
  // has no semantic part. In [-1, 1].
  double Similarity(const Analysis& a, const Analysis& b) const;

  // How alike two words are: 1 for the same stem, else the cosine of their word vectors (0 when
  // either has none).
  double WordSimilarity(std::string_view a, std::string_view b) const;
  // The word's unit vector (dims() floats), or empty when the vocabulary lacks it and its stem.
  std::vector<float> WordVector(std::string_view word) const;
  // The weight the semantic part gives a word (smooth inverse frequency), in (0, 1]; 1 for a
  // word without a vector.
  double WordWeight(std::string_view word) const;

 private:
  std::optional<std::uint32_t> Lookup(std::string_view word) const;

  const WordVectors* vectors_;
};

double Dot(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace orchestra::providers::local
