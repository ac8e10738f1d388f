#include "providers/local/summarizer.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "providers/local/sentences.hpp"

namespace orchestra::providers::local {
namespace {

constexpr double kDamping = 0.85;
constexpr int kMaxIterations = 100;
constexpr double kConvergence = 1e-9;
constexpr double kDuplicate = 0.95;

std::vector<double> PageRank(const std::vector<std::vector<double>>& w) {
  const std::size_t n = w.size();
  std::vector<double> out_weight(n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    out_weight[i] = std::accumulate(w[i].begin(), w[i].end(), 0.0);
  std::vector<double> rank(n, 1.0 / static_cast<double>(n));
  std::vector<double> next(n);
  for (int iteration = 0; iteration < kMaxIterations; ++iteration) {
    // A sentence like no other spreads its rank evenly (a dangling node).
    double dangling = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (out_weight[i] <= 0) dangling += rank[i];
    }
    const double base = (1 - kDamping + kDamping * dangling) / static_cast<double>(n);
    std::fill(next.begin(), next.end(), base);
    for (std::size_t j = 0; j < n; ++j) {
      if (out_weight[j] <= 0) continue;
      const double share = kDamping * rank[j] / out_weight[j];
      for (std::size_t i = 0; i < n; ++i)
        next[i] += share * w[j][i];
    }
    double delta = 0;
    for (std::size_t i = 0; i < n; ++i)
      delta += std::fabs(next[i] - rank[i]);
    rank.swap(next);
    if (delta < kConvergence) break;
  }
  return rank;
}

}  // namespace

std::vector<double> RankSentences(const Embedder& embedder,
                                  const std::vector<std::string_view>& sentences) {
  const std::size_t n = sentences.size();
  if (n == 0) return {};
  std::vector<Embedder::Analysis> a;
  a.reserve(n);
  for (std::string_view s : sentences)
    a.push_back(embedder.Analyze(s));
  if (n > kMaxGraphSentences) {
    // Similarity to the whole text: the centroid of the sentences' embeddings.
    std::string all;
    for (std::string_view s : sentences) {
      all += s;
      all += ' ';
    }
    const Embedder::Analysis whole = embedder.Analyze(all);
    std::vector<double> score(n);
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      score[i] = std::max(0.0, embedder.Similarity(a[i], whole)) + 1e-9;
      total += score[i];
    }
    for (double& s : score)
      s /= total;
    return score;
  }
  std::vector<std::vector<double>> w(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      const double s = std::max(0.0, embedder.Similarity(a[i], a[j]));
      w[i][j] = s;
      w[j][i] = s;
    }
  }
  return PageRank(w);
}

SummaryResult Summarize(const Embedder& embedder, std::string_view text, std::size_t max_words) {
  SummaryResult result;
  std::vector<Segment> segments = Sentences(text);
  if (segments.empty()) segments = Segments(text);  // only headings or fragments
  if (segments.empty() || max_words == 0) return result;
  std::vector<std::string_view> sentences;
  std::vector<std::size_t> words;
  for (const Segment& s : segments) {
    sentences.push_back(s.text);
    words.push_back(WordCount(s.text));
  }
  const std::size_t n = sentences.size();
  std::vector<std::size_t> chosen;
  const std::size_t total = std::accumulate(words.begin(), words.end(), std::size_t{0});
  if (total <= max_words) {
    chosen.resize(n);
    std::iota(chosen.begin(), chosen.end(), 0);
  } else {
    const std::vector<double> rank = RankSentences(embedder, sentences);
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    // Best first; an earlier sentence wins a tie.
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t x, std::size_t y) { return rank[x] > rank[y]; });
    std::size_t used = 0;
    std::vector<Embedder::Analysis> taken;
    for (std::size_t i : order) {
      if (used + words[i] > max_words) continue;
      Embedder::Analysis a = embedder.Analyze(sentences[i]);
      const bool duplicate = std::any_of(taken.begin(), taken.end(), [&](const auto& t) {
        return embedder.Similarity(a, t) > kDuplicate;
      });
      if (duplicate) continue;
      taken.push_back(std::move(a));
      chosen.push_back(i);
      used += words[i];
      if (used == max_words) break;
    }
    if (chosen.empty()) {
      result.summary = FirstWords(sentences[order[0]], max_words) + "\xE2\x80\xA6";
      result.sentences = {order[0]};
      result.words = WordCount(result.summary);
      result.truncated = true;
      return result;
    }
    std::sort(chosen.begin(), chosen.end());
  }
  for (std::size_t i : chosen) {
    if (!result.summary.empty()) result.summary += ' ';
    result.summary += Collapse(sentences[i]);
  }
  result.sentences = std::move(chosen);
  result.words = WordCount(result.summary);
  return result;
}

}  // namespace orchestra::providers::local
