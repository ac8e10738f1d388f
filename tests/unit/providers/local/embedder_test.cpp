#include "providers/local/embedder.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <numeric>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "unit/providers/local/support.hpp"

namespace orchestra::providers::local {
namespace {

using Pair = std::pair<std::string_view, std::string_view>;

// Pairs that say the same thing, mostly in other words.
const std::vector<Pair> kParaphrases = {
    {"reset my password", "forgot my login credentials"},
    {"How do I cancel my subscription?", "I want to stop my monthly plan"},
    {"The car would not start this morning", "My vehicle failed to turn on today"},
    {"Where is the nearest hospital?", "I need to find a clinic close by"},
    {"The movie was fantastic", "I loved the film"},
    {"It is raining heavily outside", "There is a downpour right now"},
    {"The stock market fell sharply", "Shares dropped steeply on the exchange"},
    {"Can you recommend a good restaurant?", "Suggest a nice place to eat"},
    {"My package has not arrived yet", "The delivery is still missing"},
    {"The child is sleeping", "The kid is asleep"},
    {"How much does the ticket cost?", "What is the price of admission?"},
    {"The president gave a speech", "The leader addressed the nation"},
    {"I am feeling sick", "I feel ill"},
    {"The laptop battery dies quickly", "My notebook computer loses charge fast"},
    {"She bought a new house", "She purchased a home"},
    {"The meeting was postponed", "The appointment was delayed"},
    {"Turn off the lights", "Switch off the lamps"},
    {"The team won the championship", "The squad took the title"},
    {"I lost my wallet", "I can't find my purse"},
    {"The doctor prescribed antibiotics", "The physician gave me medication for the infection"},
    {"Book a flight to Paris", "Reserve a plane ticket to France"},
    {"The soup is too salty", "This broth has too much salt"},
    {"The server is down", "The website is not responding"},
    {"He is a talented musician", "He plays instruments very well"},
    {"Prices keep rising", "Inflation is increasing"},
    {"The kids played in the garden", "The children were playing in the yard"},
    {"Please send me the invoice", "Could you email the bill"},
    {"The road is blocked by snow", "Snowfall has closed the highway"},
    {"I need to charge my phone", "My mobile battery is empty"},
    {"The lecture was boring", "The class was dull"},
    {"Update the software to the latest version", "Install the newest release of the program"},
    {"Our sales grew last quarter", "Revenue increased in the previous three months"},
};

// Pairs about different things.
const std::vector<Pair> kUnrelated = {
    {"reset my password", "the weather is sunny today"},
    {"How do I cancel my subscription?", "Elephants live in large herds"},
    {"The car would not start this morning", "She plays the violin beautifully"},
    {"Where is the nearest hospital?", "The recipe needs two cups of flour"},
    {"The movie was fantastic", "Interest rates were raised by the central bank"},
    {"It is raining heavily outside", "My keyboard has a broken key"},
    {"The stock market fell sharply", "The kitten chased a ball of yarn"},
    {"Can you recommend a good restaurant?", "The volcano erupted last century"},
    {"My package has not arrived yet", "Photosynthesis converts light into energy"},
    {"The child is sleeping", "The tax deadline is in April"},
    {"How much does the ticket cost?", "Glaciers are melting in the Arctic"},
    {"The president gave a speech", "Add garlic to the hot oil"},
    {"I am feeling sick", "The printer is out of paper"},
    {"The laptop battery dies quickly", "The wedding was held in a garden"},
    {"She bought a new house", "The compiler reported a syntax error"},
    {"The meeting was postponed", "Sharks have several rows of teeth"},
    {"Turn off the lights", "The novel won a literary prize"},
    {"The team won the championship", "Vaccines train the immune system"},
    {"I lost my wallet", "The orchestra rehearsed a symphony"},
    {"The doctor prescribed antibiotics", "The bridge spans a wide river"},
    {"Book a flight to Paris", "My tomatoes need more water"},
    {"The soup is too salty", "The election results were contested"},
    {"The server is down", "Bake the bread for forty minutes"},
    {"He is a talented musician", "The mortgage rate is fixed for ten years"},
    {"Prices keep rising", "The puppy learned to sit"},
    {"The kids played in the garden", "Encrypt the database backups"},
    {"Please send me the invoice", "Mountains were covered in fog"},
    {"The road is blocked by snow", "She studies ancient philosophy"},
    {"I need to charge my phone", "The museum displays Roman coins"},
    {"The lecture was boring", "The dog buried a bone in the yard"},
    {"Update the software to the latest version", "The soup was served cold"},
    {"Our sales grew last quarter", "The cat sleeps on the windowsill"},
};

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  return Dot(a, b);  // unit vectors
}

std::vector<double> Scores(const Embedder& e, const std::vector<Pair>& pairs) {
  std::vector<double> out;
  for (const auto& [a, b] : pairs)
    out.push_back(Cosine(e.Embed(a), e.Embed(b)));
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

TEST(Embedder, ParaphrasesScoreClearlyAboveUnrelatedText) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  ASSERT_GE(kParaphrases.size(), 30u);
  ASSERT_GE(kUnrelated.size(), 30u);
  const Embedder e;
  const std::vector<double> same = Scores(e, kParaphrases);
  const std::vector<double> other = Scores(e, kUnrelated);
  const double median_unrelated = Median(other);
  for (std::size_t i = 0; i < same.size(); ++i) {
    EXPECT_GT(same[i], median_unrelated)
        << '"' << kParaphrases[i].first << "\" / \"" << kParaphrases[i].second << '"';
  }
  const double gap = Mean(same) - Mean(other);
  EXPECT_GE(gap, 0.2);
  std::cout << "paraphrases: mean " << Mean(same) << ", min "
            << *std::min_element(same.begin(), same.end()) << "; unrelated: mean " << Mean(other)
            << ", median " << median_unrelated << ", max "
            << *std::max_element(other.begin(), other.end()) << "; mean gap " << gap << "\n";
}

TEST(Embedder, WithoutWordVectorsParaphrasesThatShareNoWordLookUnrelated) {
  // What the semantic part adds: the lexical features alone see no likeness here.
  const Embedder lexical(nullptr);
  EXPECT_FALSE(lexical.semantic());
  // (Not exactly 0: signed feature hashing into 256 slots collides.)
  EXPECT_LT(std::fabs(Cosine(lexical.Embed("reset my password"),
                             lexical.Embed("forgot my login credentials"))),
            0.2);
  EXPECT_GT(Cosine(lexical.Embed("reset my password"), lexical.Embed("reset the password")), 0.5);
}

TEST(Embedder, EmbeddingsAreUnitVectorsOfTheAskedDimensions) {
  const Embedder with_vectors;
  const Embedder lexical(nullptr);
  for (const Embedder* e : {&with_vectors, &lexical}) {
    for (std::size_t dims : {8u, 64u, 199u, 256u, 1536u}) {
      std::vector<float> v = e->Embed("Semantic search finds related documents.", dims);
      ASSERT_EQ(v.size(), dims);
      EXPECT_NEAR(std::sqrt(Dot(v, v)), 1.0, 1e-5) << dims;
    }
    // One dimension holds the signed sum of the features: it can cancel out.
    std::vector<float> one = e->Embed("Semantic search", 1);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_TRUE(one[0] == 0.0f || std::fabs(one[0]) == 1.0f) << one[0];
    std::vector<float> empty = e->Embed("  ... !!", 32);
    EXPECT_TRUE(std::all_of(empty.begin(), empty.end(), [](float x) { return x == 0.0f; }));
  }
}

TEST(Embedder, EmbeddingsAreDeterministicAndSimilarityMatchesTheirCosine) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const Embedder e;
  const std::string_view a = "The invoice shows a double charge on my card";
  const std::string_view b = "I was billed twice for the same order";
  EXPECT_EQ(e.Embed(a), e.Embed(a));
  // Up to hash collisions in the lexical slots, the embedding's cosine is Similarity().
  EXPECT_NEAR(Cosine(e.Embed(a, 4096), e.Embed(b, 4096)), e.Similarity(e.Analyze(a), e.Analyze(b)),
              0.02);
}

TEST(Embedder, WordSimilarityKnowsRelatedWords) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const Embedder e;
  EXPECT_DOUBLE_EQ(e.WordSimilarity("passwords", "password"), 1.0);
  EXPECT_GT(e.WordSimilarity("password", "login"), e.WordSimilarity("password", "banana") + 0.3);
  EXPECT_GT(e.WordSimilarity("doctor", "physician"), 0.5);
  EXPECT_EQ(e.WordSimilarity("zzqxv", "password"), 0.0);
  // Frequent words weigh less than rare ones.
  EXPECT_LT(e.WordWeight("said"), e.WordWeight("photosynthesis"));
}

}  // namespace
}  // namespace orchestra::providers::local
