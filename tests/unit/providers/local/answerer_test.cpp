#include "providers/local/answerer.hpp"

#include <iostream>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "unit/providers/local/support.hpp"

namespace orchestra::providers::local {
namespace {

constexpr std::string_view kParis =
    "Paris is the capital and largest city of France. The city has a population of about 2.1 "
    "million people. The Eiffel Tower was completed in 1889 for the World's Fair. The Seine "
    "river flows through the centre of the city. Paris hosted the Summer Olympic Games in 1900, "
    "1924 and 2024.";

constexpr std::string_view kCompany =
    "Acme Robotics was founded in 2012 by two engineers in Boston. The company builds "
    "warehouse robots that move shelves to human pickers. Its headquarters moved to Austin in "
    "2019. Acme employs around 800 people and sells to retailers in twelve countries. The chief "
    "executive is Maria Lopez, who joined from a logistics firm in 2016.";

constexpr std::string_view kSupport =
    "# Account help\n\n"
    "To reset your password, open Settings and choose Security, then click Reset password. A "
    "link valid for 30 minutes is sent to your email address. Two-factor authentication can be "
    "turned on in the same Security page. If you are locked out after five failed attempts, "
    "wait fifteen minutes before trying again. Refunds are processed within 5 business days of "
    "the request.\n";

constexpr std::string_view kBiology =
    "Photosynthesis is the process by which plants turn light into chemical energy. It takes "
    "place mainly in the leaves, inside organelles called chloroplasts. The green pigment "
    "chlorophyll absorbs red and blue light. Oxygen is released as a by-product of splitting "
    "water. Most of the sugar produced is used to build cellulose and starch.";

constexpr std::string_view kRelease =
    "Version 3.2 of the server was released on 4 March. It adds streaming responses for every "
    "provider. The default request timeout was raised from 30 to 60 seconds. Support for "
    "Python 3.7 has been dropped. Upgrading requires running the database migration first.";

constexpr std::string_view kWall =
    "The Great Wall of China was built over many centuries. Most of the existing wall dates from "
    "the Ming dynasty, which ruled from 1368 to 1644. The wall stretches for more than 21,000 "
    "kilometres. It was designed to protect Chinese states from raids by nomadic groups. Today "
    "it is one of the most visited tourist attractions in the world.";

constexpr std::string_view kRecipe =
    "Preheat the oven to 180 degrees. Whisk the eggs with the sugar until pale. Fold in the "
    "flour and a pinch of salt. Pour the batter into a greased tin and bake for 25 minutes. Let "
    "the cake cool before removing it from the tin.";

struct Case {
  std::string_view context;
  std::string_view question;
  std::string_view expected;  // the start of the answering sentence
};

const std::vector<Case> kAnswerable = {
    {kParis, "What is the capital of France?", "Paris is the capital"},
    {kParis, "How many people live in Paris?", "The city has a population"},
    {kParis, "When was the Eiffel Tower built?", "The Eiffel Tower was completed"},
    {kParis, "Which river runs through Paris?", "The Seine river"},
    {kParis, "In which years did Paris host the Olympics?", "Paris hosted the Summer"},
    {kCompany, "When was Acme Robotics founded?", "Acme Robotics was founded"},
    {kCompany, "What does the company make?", "The company builds warehouse robots"},
    {kCompany, "Where is the headquarters of Acme?", "Its headquarters moved"},
    {kCompany, "How many employees does Acme have?", "Acme employs around 800"},
    {kCompany, "Who is the CEO?", "The chief executive is Maria Lopez"},
    {kSupport, "How do I reset my password?", "To reset your password"},
    {kSupport, "How long is the reset link valid?", "A link valid for 30 minutes"},
    {kSupport, "Where can I enable two-factor authentication?", "Two-factor authentication"},
    {kSupport, "What happens after too many failed login attempts?", "If you are locked out"},
    {kSupport, "How long do refunds take?", "Refunds are processed"},
    {kBiology, "Where does photosynthesis happen in a plant?", "It takes place mainly"},
    {kBiology, "Which pigment absorbs light?", "The green pigment chlorophyll"},
    {kBiology, "What gas is released during photosynthesis?", "Oxygen is released"},
    {kBiology, "What is the sugar used for?", "Most of the sugar produced"},
    {kRelease, "When was version 3.2 released?", "Version 3.2 of the server"},
    {kRelease, "What is the new default timeout?", "The default request timeout"},
    {kRelease, "Is Python 3.7 still supported?", "Support for Python 3.7"},
    {kRelease, "What must I do before upgrading?", "Upgrading requires running"},
    {kWall, "How long is the Great Wall?", "The wall stretches"},
    {kWall, "Which dynasty built most of the wall?", "Most of the existing wall"},
    {kWall, "Why was the wall built?", "It was designed to protect"},
    {kWall, "Is the Great Wall popular with tourists?", "Today it is one of"},
    {kRecipe, "What temperature should the oven be?", "Preheat the oven"},
    {kRecipe, "How long does the cake bake?", "Pour the batter"},
    {kRecipe, "What do I mix with the eggs?", "Whisk the eggs"},
    {kRecipe, "When can I take the cake out of the tin?", "Let the cake cool"},
};

const std::vector<Case> kUnanswerable = {
    {kParis, "What is the population of Tokyo?", ""},
    {kParis, "Who painted the Mona Lisa?", ""},
    {kCompany, "What is the stock price of Acme?", ""},
    {kCompany, "How many robots did Acme sell in 2020?", ""},
    {kSupport, "How do I change my shipping address?", ""},
    {kBiology, "How do animals digest food?", ""},
    {kRelease, "Which databases are supported?", ""},
    {kRelease, "Who won the football match yesterday?", ""},
    {kWall, "How many workers died building the wall?", ""},
    {kRecipe, "How many calories does the cake have?", ""},
    {kRecipe, "Can I use almond flour instead?", ""},
};

// Written before the scorer was tuned; the last two contexts' cases were added afterwards and
// checked once (5 of 8 right) before the answer-type and novelty features were added. Known
// misses: "What gas is released during photosynthesis?" picks the sentence that names
// photosynthesis, and "Which databases are supported?" takes the database migration sentence
// for an answer. Hence rates, not every case.
TEST(Answerer, FindsTheAnsweringSentence) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  ASSERT_GE(kAnswerable.size(), 20u);
  const Embedder e;
  std::size_t right = 0;
  for (const Case& c : kAnswerable) {
    const AnswerResult r = Answer(e, c.question, c.context);
    const bool ok = r.found && r.answer.starts_with(c.expected) &&
                    c.context.substr(r.begin, c.expected.size()) == c.expected &&
                    r.end - r.begin >= r.answer.size();
    right += ok ? 1 : 0;
    if (!ok) {
      std::cout << "missed: " << c.question << " -> " << (r.found ? r.answer : "(not found)")
                << " (coverage " << r.coverage << ")\n";
    }
  }
  const double accuracy = static_cast<double>(right) / static_cast<double>(kAnswerable.size());
  std::cout << "answer accuracy " << accuracy << " (" << right << "/" << kAnswerable.size()
            << ")\n";
  EXPECT_GE(accuracy, 0.9);
}

TEST(Answerer, SaysNotFoundRatherThanGuess) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  ASSERT_GE(kUnanswerable.size(), 5u);
  const Embedder e;
  std::size_t right = 0;
  for (const Case& c : kUnanswerable) {
    const AnswerResult r = Answer(e, c.question, c.context);
    if (r.found) {
      std::cout << "guessed: " << c.question << " -> " << r.answer << " (coverage " << r.coverage
                << ")\n";
    } else {
      ++right;
      EXPECT_TRUE(r.answer.empty());
    }
  }
  const double rate = static_cast<double>(right) / static_cast<double>(kUnanswerable.size());
  std::cout << "not found " << right << "/" << kUnanswerable.size() << "\n";
  EXPECT_GE(rate, 0.9);
}

TEST(Answerer, NothingToGoOnIsNotFound) {
  const Embedder e;
  EXPECT_FALSE(Answer(e, "What is it?", kParis).found);  // no content word
  EXPECT_FALSE(Answer(e, "What is the capital of France?", "").found);
  EXPECT_FALSE(Answer(e, "What is the capital of France?", "# France\n\n## Capital\n").found);
}

TEST(Answerer, ANameTheContextNeverMentionsMeansNotFound) {
  const Embedder lexical(nullptr);  // no word vectors needed for this rule
  const AnswerResult r = Answer(lexical, "What is the population of Lyon?", kParis);
  EXPECT_FALSE(r.found);
  EXPECT_TRUE(Answer(lexical, "What is the population of Paris?", kParis).found);
}

TEST(Answerer, AnswersAreCutToTheWordBudget) {
  const Embedder lexical(nullptr);
  const AnswerResult r = Answer(lexical, "When was the Eiffel Tower completed?", kParis, 4);
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.answer, "The Eiffel Tower was");
}

}  // namespace
}  // namespace orchestra::providers::local
