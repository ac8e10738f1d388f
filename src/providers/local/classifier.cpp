#include "providers/local/classifier.hpp"

#include <algorithm>
#include <cmath>

namespace orchestra::providers::local {
ClassifyResult Classify(const Embedder& embedder, std::string_view text,
                        const std::vector<Category>& categories) {
  ClassifyResult result;
  const std::size_t k = categories.size();
  if (k == 0) return result;
  const Embedder::Analysis t = embedder.Analyze(text);
  for (const Category& c : categories) {
    std::string about = c.name;
    if (!c.description.empty()) about += ". " + c.description;
    double sim = embedder.Similarity(t, embedder.Analyze(about));
    if (!c.examples.empty()) {
      // The examples as a prototype: their mean similarity, which one odd example cannot sway.
      double sum = 0;
      for (const std::string& e : c.examples)
        sum += embedder.Similarity(t, embedder.Analyze(e));
      sim = std::max(sim, sum / static_cast<double>(c.examples.size()));
    }
    result.similarities.push_back(sim);
  }
  const double top = *std::max_element(result.similarities.begin(), result.similarities.end());
  double total = 0;
  for (double s : result.similarities) {
    result.scores.push_back(std::exp((s - top) / kTemperature));
    total += result.scores.back();
  }
  for (double& s : result.scores)
    s /= total;
  result.best = static_cast<std::size_t>(
      std::max_element(result.similarities.begin(), result.similarities.end()) -
      result.similarities.begin());
  double second = -2;
  for (std::size_t i = 0; i < k; ++i) {
    if (i != result.best) second = std::max(second, result.similarities[i]);
  }
  // Signal: the text has a semantic part (a word with a vector) or shares a word with a
  // category; without either every similarity is 0.
  const bool signal = !t.semantic.empty() || top > 0;
  result.confident = signal && (k == 1 || top - second >= kMinMargin);
  return result;
}

}  // namespace orchestra::providers::local
