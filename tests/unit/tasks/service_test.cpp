// The task service's reading of an LLM's answers: the classification it names, and the marker it
// was told to reply with when a question's context does not hold the answer.

#include "tasks/service.hpp"

#include <gtest/gtest.h>

namespace orchestra::tasks {
namespace {

TEST(IsNotFoundReply, TheMarkerAloneGiveOrTakeQuotesCaseAndAFullStop) {
  for (std::string_view reply : {"NOT_FOUND", "not_found", " NOT_FOUND.\n", "\"NOT_FOUND\"",
                                 "`NOT_FOUND`", "**NOT_FOUND**"}) {
    EXPECT_TRUE(IsNotFoundReply(reply)) << reply;
  }
  // An answer that mentions it, or anything else, is an answer.
  for (std::string_view reply : {"", " ", ".", "NOT_FOUND in the context, but the sky is blue",
                                 "The answer is NOT_FOUND", "NOT FOUND", "The sky is blue."}) {
    EXPECT_FALSE(IsNotFoundReply(reply)) << reply;
  }
}

TEST(ScoresFromAnswer, AJsonObjectOfProbabilitiesIsNormalised) {
  const std::vector<std::string> categories{"billing", "shipping"};
  const ClassifyResult r =
      ScoresFromAnswer("```json\n{\"billing\": 3, \"shipping\": 1}\n```", categories);
  ASSERT_EQ(r.scores.size(), 2u);
  EXPECT_DOUBLE_EQ(r.scores[0], 0.75);
  EXPECT_EQ(r.best, 0u);
  EXPECT_TRUE(r.confident);
}

TEST(ScoresFromAnswer, ANamedLabelWinsAndNoneIsNotConfident) {
  const std::vector<std::string> categories{"billing", "shipping"};
  EXPECT_EQ(ScoresFromAnswer("Shipping.", categories).best, 1u);
  const ClassifyResult none = ScoresFromAnswer("I cannot tell.", categories);
  EXPECT_FALSE(none.best.has_value());
  EXPECT_FALSE(none.confident);
  EXPECT_DOUBLE_EQ(none.scores[0], 0.5);
}

}  // namespace
}  // namespace orchestra::tasks
