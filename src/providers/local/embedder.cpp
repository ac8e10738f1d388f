#include "providers/local/embedder.hpp"

#include <algorithm>
#include <cmath>

#include "providers/local/tokens.hpp"

namespace orchestra::providers::local {
namespace {

// Smooth inverse frequency: weight = (r+1) / (r+1+kSifRank) for the word of frequency rank r
// (Zipf: p(w) ∝ 1/(r+1), so this is Arora et al.'s a/(a + p(w))). Words among the few hundred
// most frequent count for little; rare words count fully.
constexpr double kSifRank = 200;
constexpr float kStopwordLexicalWeight = 0.1f;
constexpr float kBigramWeight = 0.5f;
constexpr std::uint64_t kBigramSeed = 0x9e3779b97f4a7c15ULL;

void Normalize(std::vector<float>& v) {
  double norm = 0;
  for (float x : v)
    norm += static_cast<double>(x) * x;
  if (norm <= 1e-20) {
    std::fill(v.begin(), v.end(), 0.0f);
    return;
  }
  const auto inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (float& x : v)
    x *= inv;
}

}  // namespace

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    s += static_cast<double>(a[i]) * b[i];
  return s;
}

std::string Embedder::Status() const {
  if (vectors_ == nullptr) return "lexical features only (no word vectors configured)";
  vectors_->Preload();
  return vectors_->Status();
}

std::optional<std::uint32_t> Embedder::Lookup(std::string_view word) const {
  if (!semantic()) return std::nullopt;
  if (auto i = vectors_->Find(word)) return i;
  const std::string stem = Stem(word);
  if (stem != word) return vectors_->Find(stem);
  return std::nullopt;
}

double Embedder::WordWeight(std::string_view word) const {
  auto i = Lookup(word);
  if (!i) return 1.0;
  const double r = vectors_->Rank(*i) + 1.0;
  return r / (r + kSifRank);
}

std::vector<float> Embedder::WordVector(std::string_view word) const {
  auto i = Lookup(word);
  if (!i) return {};
  std::vector<float> v(vectors_->dims());
  vectors_->Vector(*i, v);
  Normalize(v);
  return v;
}

double Embedder::WordSimilarity(std::string_view a, std::string_view b) const {
  if (a == b || Stem(a) == Stem(b)) return 1.0;
  return Dot(WordVector(a), WordVector(b));
}

Embedder::Analysis Embedder::Analyze(std::string_view text) const {
  Analysis out;
  const Tokens tokens = Tokenize(text);
  const bool with_vectors = semantic();
  std::vector<float> sum;
  if (with_vectors) sum.assign(vectors_->dims(), 0.0f);
  bool any_vector = false;
  std::uint64_t previous = 0;  // the previous content word's stem hashed for a bigram, or 0
  auto& lexical = out.lexical;
  lexical.reserve(2 * tokens.words.size());
  for (std::string_view word : tokens.words) {
    if (IsStopword(word)) {
      lexical.emplace_back(Fnv1a64(word), kStopwordLexicalWeight);
      continue;
    }
    std::string stem = Stem(word);
    lexical.emplace_back(Fnv1a64(stem), 1.0f);
    if (previous != 0) lexical.emplace_back(Fnv1a64(stem, previous), kBigramWeight);
    if (with_vectors) {
      std::optional<std::uint32_t> i = vectors_->Find(word);
      if (!i && stem != word) i = vectors_->Find(stem);
      if (i) {
        const double r = vectors_->Rank(*i) + 1.0;
        vectors_->AddTo(*i, static_cast<float>(r / (r + kSifRank)), sum);
        any_vector = true;
      }
    }
    previous = Fnv1a64(stem, kBigramSeed);
  }
  // Lexical: merge repeated features, then unit length.
  std::sort(lexical.begin(), lexical.end());
  std::size_t kept = 0;
  for (std::size_t i = 0; i < lexical.size(); ++i) {
    if (kept > 0 && lexical[kept - 1].first == lexical[i].first) {
      lexical[kept - 1].second += lexical[i].second;
    } else {
      lexical[kept++] = lexical[i];
    }
  }
  lexical.resize(kept);
  double norm = 0;
  for (const auto& f : lexical)
    norm += static_cast<double>(f.second) * f.second;
  if (norm > 0) {
    const auto inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (auto& f : lexical)
      f.second *= inv;
  }
  // Semantic: remove the common component, then unit length.
  if (any_vector) {
    const std::span<const float> u = vectors_->common();
    double along = 0;
    for (std::size_t i = 0; i < sum.size(); ++i)
      along += static_cast<double>(sum[i]) * u[i];
    for (std::size_t i = 0; i < sum.size(); ++i)
      sum[i] -= static_cast<float>(along) * u[i];
    Normalize(sum);
    if (std::any_of(sum.begin(), sum.end(), [](float x) { return x != 0.0f; })) {
      out.semantic = std::move(sum);
    }
  }
  return out;
}

double Embedder::Similarity(const Analysis& a, const Analysis& b) const {
  double lexical = 0;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.lexical.size() && j < b.lexical.size()) {
    if (a.lexical[i].first < b.lexical[j].first) {
      ++i;
    } else if (b.lexical[j].first < a.lexical[i].first) {
      ++j;
    } else {
      lexical += static_cast<double>(a.lexical[i++].second) * b.lexical[j++].second;
    }
  }
  if (a.semantic.empty() || b.semantic.empty()) return lexical;
  return kSemanticShare * Dot(a.semantic, b.semantic) + (1 - kSemanticShare) * lexical;
}

std::vector<float> Embedder::Embed(std::string_view text, std::size_t dimensions) const {
  dimensions = std::clamp<std::size_t>(dimensions, 1, kMaxDimensions);
  std::vector<float> v(dimensions, 0.0f);
  const Analysis a = Analyze(text);
  const std::size_t semantic_dims =
      semantic() ? std::min<std::size_t>(vectors_->dims(), dimensions / 2) : 0;
  double lexical_scale = 1.0;
  if (!a.semantic.empty() && semantic_dims > 0) {
    // Truncated below 200 dimensions: the kept part is made unit length again.
    double norm = 0;
    for (std::size_t i = 0; i < semantic_dims; ++i)
      norm += static_cast<double>(a.semantic[i]) * a.semantic[i];
    if (norm > 0) {
      const double scale = std::sqrt(kSemanticShare / norm);
      for (std::size_t i = 0; i < semantic_dims; ++i)
        v[i] = static_cast<float>(a.semantic[i] * scale);
      lexical_scale = std::sqrt(1 - kSemanticShare);
    }
  }
  const std::size_t lexical_dims = dimensions - semantic_dims;
  if (lexical_dims > 0) {
    for (const auto& [hash, weight] : a.lexical) {
      const std::size_t slot = semantic_dims + (hash >> 1) % lexical_dims;
      const float value = static_cast<float>(weight * lexical_scale);
      v[slot] += (hash & 1) != 0 ? -value : value;
    }
  }
  Normalize(v);
  return v;
}

}  // namespace orchestra::providers::local
