// Micro-benchmarks of the offline local models (src/providers/local/), on one core:
//   BM_Embed1000Texts    local-embed over 1,000 texts of about 200 words (texts/s in items/s)
//   BM_Summarize50KB     an extractive summary of a 50 KB text
//   BM_Answer / BM_Classify   one question over a 5 KB context; one text over 5 labels
// Run: build/release/orchestra_bench_local_models (the word vectors must be installed:
// scripts/setup.sh). Figures go in notes, never into tests.

#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "providers/local/answerer.hpp"
#include "providers/local/classifier.hpp"
#include "providers/local/embedder.hpp"
#include "providers/local/sentences.hpp"
#include "providers/local/summarizer.hpp"

namespace {

using namespace orchestra::providers::local;

// Common English words, drawn at random: the cost per word is what matters (vector lookups).
constexpr std::string_view kWords[] = {
    "the",       "server",     "routes",    "requests",  "to",        "providers", "and",
    "keeps",     "memory",     "of",        "agents",    "a",         "model",     "answers",
    "questions", "about",      "documents", "in",        "seconds",   "while",     "users",
    "wait",      "for",        "results",   "company",   "revenue",   "grew",      "last",
    "quarter",   "because",    "customers", "bought",    "more",      "phones",    "weather",
    "was",       "cold",       "rain",      "fell",      "on",        "city",      "streets",
    "team",      "won",        "the",       "match",     "after",     "extra",     "time",
    "doctor",    "prescribed", "medicine",  "patients",  "recovered", "quickly",   "market",
    "prices",    "rose",       "sharply",   "investors", "worried",   "inflation", "government",
    "announced", "new",        "policy",    "schools",   "teachers",  "students",  "learn",
    "history",   "science",    "music",     "art",       "food",      "bread",     "cheese",
    "travel",    "train",      "station",   "airport",   "flight",    "delayed",   "hours"};

std::string RandomText(std::mt19937& rng, std::size_t words) {
  std::uniform_int_distribution<std::size_t> pick(0, std::size(kWords) - 1);
  std::uniform_int_distribution<int> sentence(8, 20);
  std::string out;
  int left = sentence(rng);
  for (std::size_t i = 0; i < words; ++i) {
    out += kWords[pick(rng)];
    if (--left == 0) {
      out += ". ";
      left = sentence(rng);
    } else {
      out += ' ';
    }
  }
  return out;
}

// Capitalises sentence starts so that the segmenter sees sentences.
std::string Capitalised(std::string text) {
  bool start = true;
  for (char& c : text) {
    if (start && c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
      start = false;
    } else if (c == '.') {
      start = true;
    }
  }
  return text;
}

const Embedder& Loaded() {
  static const Embedder e = [] {
    Embedder embedder;
    WordVectors::Default().Preload();
    return embedder;
  }();
  return e;
}

void BM_Embed1000Texts(benchmark::State& state) {
  const Embedder& e = Loaded();
  std::mt19937 rng(42);
  std::vector<std::string> texts;
  for (int i = 0; i < 1000; ++i)
    texts.push_back(RandomText(rng, 200));
  for (auto _ : state) {
    for (const std::string& t : texts)
      benchmark::DoNotOptimize(e.Embed(t));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(texts.size()));
  state.SetLabel(e.semantic() ? "semantic" : "lexical only (no word vectors)");
}
BENCHMARK(BM_Embed1000Texts)->Unit(benchmark::kMillisecond);

void BM_Summarize50KB(benchmark::State& state) {
  const Embedder& e = Loaded();
  std::mt19937 rng(7);
  std::string text;
  while (text.size() < 50 * 1024)
    text += Capitalised(RandomText(rng, 120)) + "\n\n";
  for (auto _ : state)
    benchmark::DoNotOptimize(Summarize(e, text, 200));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
  state.SetLabel(std::to_string(Sentences(text).size()) + " sentences");
}
BENCHMARK(BM_Summarize50KB)->Unit(benchmark::kMillisecond);

void BM_Answer(benchmark::State& state) {
  const Embedder& e = Loaded();
  std::mt19937 rng(9);
  std::string context;
  while (context.size() < 5 * 1024)
    context += Capitalised(RandomText(rng, 60)) + "\n\n";
  for (auto _ : state)
    benchmark::DoNotOptimize(Answer(e, "Why did the company revenue grow last quarter?", context));
}
BENCHMARK(BM_Answer)->Unit(benchmark::kMicrosecond);

void BM_Classify(benchmark::State& state) {
  const Embedder& e = Loaded();
  const std::vector<Category> labels = {{"sports", "", {}},
                                        {"politics", "", {}},
                                        {"technology", "", {}},
                                        {"food", "", {}},
                                        {"health", "", {}}};
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        Classify(e, "The striker scored twice in the second half of the final.", labels));
  }
}
BENCHMARK(BM_Classify)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
