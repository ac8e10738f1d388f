#include "providers/local/classifier.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <numeric>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "unit/providers/local/support.hpp"

namespace orchestra::providers::local {
namespace {

struct Labelled {
  std::string_view text;
  std::size_t label;  // index into kLabels
};

const std::vector<Category> kLabels = {
    {"sports", "", {}}, {"politics", "", {}}, {"technology", "", {}},
    {"food", "", {}},   {"health", "", {}},
};

// Short texts, each clearly about one of the labels, mostly without naming it.
const std::vector<Labelled> kTexts = {
    {"The striker scored twice in the second half.", 0},
    {"She won the gold medal in the 200 metres.", 0},
    {"The coach was sacked after five straight defeats.", 0},
    {"Federer served an ace to take the final set.", 0},
    {"The quarterback threw three touchdowns on Sunday.", 0},
    {"Our team reached the playoffs for the first time.", 0},
    {"The marathon runners crossed the finish line in heavy rain.", 0},
    {"The goalkeeper saved a penalty in extra time.", 0},
    {"He hit a home run in the ninth inning.", 0},
    {"The cyclists climbed the mountain stage of the tour.", 0},
    {"The referee showed him a red card.", 0},
    {"The league season starts next weekend with a derby.", 0},
    {"The boxer knocked out his opponent in round four.", 0},

    {"The senate passed the budget bill late last night.", 1},
    {"Voters head to the polls in the presidential election.", 1},
    {"The prime minister resigned after the scandal.", 1},
    {"Parliament debated the new immigration law.", 1},
    {"The governor vetoed the tax proposal.", 1},
    {"The opposition party won a majority of seats.", 1},
    {"Diplomats met to negotiate a ceasefire treaty.", 1},
    {"The campaign released a new advertisement attacking the candidate.", 1},
    {"Congress held hearings on the impeachment.", 1},
    {"The mayor announced she will seek a second term.", 1},
    {"Lawmakers voted to raise the minimum wage.", 1},
    {"The embassy issued a statement about the sanctions.", 1},
    {"The coalition government collapsed after the vote.", 1},

    {"The new smartphone has a faster processor and better camera.", 2},
    {"Engineers released a software update that fixes the bug.", 2},
    {"The startup trains machine learning models in the cloud.", 2},
    {"Our database servers were migrated to a new data center.", 2},
    {"The laptop ships with more memory and a longer battery life.", 2},
    {"Hackers exploited a vulnerability in the browser.", 2},
    {"The company unveiled a chip for artificial intelligence.", 2},
    {"Developers can now use the programming language on the web.", 2},
    {"The internet provider upgraded its fiber network.", 2},
    {"The robot uses sensors and algorithms to navigate.", 2},
    {"Install the app and connect it to your wifi.", 2},
    {"The operating system now supports encrypted backups.", 2},
    {"Semiconductor makers struggle to keep up with demand.", 2},

    {"Add the garlic and onions to the pan and fry them gently.", 3},
    {"This pasta recipe needs fresh basil and parmesan.", 3},
    {"The bakery sells warm bread and croissants every morning.", 3},
    {"We ordered sushi and miso soup for dinner.", 3},
    {"Season the steak with salt and pepper before grilling.", 3},
    {"The chocolate cake was rich and moist.", 3},
    {"Mix the flour, sugar and butter into a dough.", 3},
    {"The restaurant serves spicy curry and rice.", 3},
    {"She made a salad with tomatoes, cucumbers and olive oil.", 3},
    {"Roast the chicken for an hour until golden.", 3},
    {"The cheese platter came with grapes and crackers.", 3},
    {"He cooked a vegetable stew with beans and carrots.", 3},
    {"Breakfast was pancakes with maple syrup.", 3},

    {"Regular exercise lowers the risk of heart disease.", 4},
    {"The doctor prescribed antibiotics for the infection.", 4},
    {"Patients with diabetes should monitor their blood sugar.", 4},
    {"The vaccine reduces the chance of severe illness.", 4},
    {"Getting enough sleep helps the immune system.", 4},
    {"The hospital opened a new cancer treatment ward.", 4},
    {"Symptoms include fever, cough and fatigue.", 4},
    {"Nurses checked her blood pressure every hour.", 4},
    {"Smoking damages the lungs.", 4},
    {"The clinic offers free mental health counselling.", 4},
    {"Stretching can relieve back pain.", 4},
    {"The surgeon repaired a torn ligament in his knee.", 4},
    {"Drinking water keeps you hydrated and prevents headaches.", 4},
};

TEST(Classifier, OneWordLabelsAreClassifiedAccurately) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  ASSERT_GE(kTexts.size(), 60u);
  const Embedder e;
  std::size_t right = 0;
  std::size_t confident = 0;
  std::size_t confident_right = 0;
  for (const Labelled& l : kTexts) {
    const ClassifyResult r = Classify(e, l.text, kLabels);
    ASSERT_EQ(r.scores.size(), kLabels.size());
    confident += r.confident ? 1 : 0;
    confident_right += r.confident && r.best == l.label ? 1 : 0;
    if (r.best == l.label) {
      ++right;
    } else {
      std::cout << "misclassified as " << kLabels[r.best].name << " (not " << kLabels[l.label].name
                << "): " << l.text << "\n";
    }
  }
  const double accuracy = static_cast<double>(right) / static_cast<double>(kTexts.size());
  std::cout << "accuracy " << accuracy << " (" << right << "/" << kTexts.size() << "); "
            << confident << " confident, of which " << confident_right << " right\n";
  EXPECT_GE(accuracy, 0.8);
}

TEST(Classifier, ScoresAreProbabilities) {
  const Embedder e;
  for (std::string_view text : {"The striker scored twice.", "zzqx blorp", ""}) {
    const ClassifyResult r = Classify(e, text, kLabels);
    ASSERT_EQ(r.scores.size(), kLabels.size());
    double total = 0;
    for (double p : r.scores) {
      EXPECT_GE(p, 0.0);
      EXPECT_LE(p, 1.0);
      total += p;
    }
    EXPECT_NEAR(total, 1.0, 1e-9) << text;
    EXPECT_EQ(r.scores[r.best], *std::max_element(r.scores.begin(), r.scores.end()));
  }
  EXPECT_TRUE(Classify(e, "x", {}).scores.empty());
}

TEST(Classifier, NoSignalIsNotConfident) {
  const Embedder e;
  // No word with a vector and nothing shared with a label: every similarity is 0, every score
  // equal, and the first label is not silently the answer.
  const ClassifyResult gibberish = Classify(e, "zzqx blorp wibblet", kLabels);
  EXPECT_FALSE(gibberish.confident);
  EXPECT_NEAR(gibberish.scores[0], 1.0 / static_cast<double>(kLabels.size()), 1e-9);
  EXPECT_FALSE(Classify(e, "", kLabels).confident);
  EXPECT_FALSE(Classify(e, "it is what it is", kLabels).confident);
  // Lexical features only: a one-word label the text does not use gives no signal.
  const Embedder lexical(nullptr);
  EXPECT_FALSE(Classify(lexical, "The striker scored twice.", kLabels).confident);
  const ClassifyResult named = Classify(lexical, "A sports report: the striker scored.", kLabels);
  EXPECT_TRUE(named.confident);
  EXPECT_EQ(named.best, 0u);
}

TEST(Classifier, DescriptionsAndExamplesSteerTheChoice) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const Embedder e;
  // Labels that say little by themselves ("a", "b"), defined by description or example.
  const std::vector<Category> described = {
      {"a", "billing: invoices, charges, payments and refunds", {}},
      {"b", "shipping: delivery of parcels, couriers and tracking numbers", {}}};
  EXPECT_EQ(Classify(e, "I was charged twice on my card", described).best, 0u);
  EXPECT_EQ(Classify(e, "The courier lost my package", described).best, 1u);
  const std::vector<Category> by_example = {
      {"a", "", {"My invoice is wrong", "Please refund my payment"}},
      {"b", "", {"Where is my parcel?", "The delivery is late"}}};
  EXPECT_EQ(Classify(e, "I was charged twice on my card", by_example).best, 0u);
  EXPECT_EQ(Classify(e, "The courier lost my package", by_example).best, 1u);
  EXPECT_TRUE(Classify(e, "The courier lost my package", by_example).confident);
}

}  // namespace
}  // namespace orchestra::providers::local
