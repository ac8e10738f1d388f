#include "providers/local/summarizer.hpp"

#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "providers/local/sentences.hpp"
#include "unit/providers/local/support.hpp"

namespace orchestra::providers::local {
namespace {

// One sentence states the theme; each of the others develops one part of it; one is off topic.
constexpr std::string_view kRemoteWork =
    "# Remote work\n\n"
    "Remote work changes how teams communicate, how managers measure output and how companies "
    "pay for offices. "
    "Teams that communicate in writing keep better records of their decisions. "
    "Video calls replace many meetings, but they tire people more than talking in a room. "
    "Managers who measure output instead of hours report higher trust in their teams. "
    "Companies spend less on offices and more on home equipment for their staff. "
    "My neighbour's dog barked all afternoon.\n\n"
    "## Costs\n\n"
    "Office leases are often the second largest cost after salaries. "
    "Some companies now pay a monthly allowance for internet and electricity at home.\n";

constexpr std::string_view kCentral =
    "Remote work changes how teams communicate, how managers measure output and how companies "
    "pay for offices.";

TEST(Summarizer, ChoosesTheMostCentralSentence) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const Embedder e;
  const SummaryResult r = Summarize(e, kRemoteWork, WordCount(kCentral));
  EXPECT_EQ(r.summary, kCentral);
  const SummaryResult longer = Summarize(e, kRemoteWork, 40);
  EXPECT_NE(longer.summary.find(kCentral), std::string::npos) << longer.summary;
  EXPECT_EQ(longer.summary.find("dog"), std::string::npos) << longer.summary;
}

TEST(Summarizer, ALongerBudgetGivesALongerSummaryAndNeverExceedsIt) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const Embedder e;
  const std::size_t total = WordCount(kRemoteWork);
  std::size_t previous = 0;
  for (std::size_t budget = 1; budget <= total + 10; ++budget) {
    const SummaryResult r = Summarize(e, kRemoteWork, budget);
    EXPECT_EQ(r.words, WordCount(r.summary));
    EXPECT_LE(r.words, budget) << r.summary;
    EXPECT_GE(r.words, previous) << "budget " << budget;
    previous = r.words;
  }
  EXPECT_LT(Summarize(e, kRemoteWork, 20).words, Summarize(e, kRemoteWork, 40).words);
  EXPECT_LT(Summarize(e, kRemoteWork, 40).words, Summarize(e, kRemoteWork, 80).words);
}

TEST(Summarizer, HeadingsAreNeverChosenAndOrderIsKept) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const Embedder e;
  const std::vector<Segment> sentences = Sentences(kRemoteWork);
  for (std::size_t budget : {10u, 25u, 50u, 100u, 1000u}) {
    const SummaryResult r = Summarize(e, kRemoteWork, budget);
    EXPECT_TRUE(std::is_sorted(r.sentences.begin(), r.sentences.end()));
    EXPECT_EQ(r.summary.find('#'), std::string::npos) << r.summary;
    EXPECT_EQ(r.summary.find("Costs"), std::string::npos) << r.summary;  // the "## Costs" heading
    EXPECT_EQ(r.summary.find("Remote work Remote"), std::string::npos) << r.summary;
    std::size_t at = 0;
    for (std::size_t i : r.sentences) {
      const std::string s = Collapse(sentences[i].text);
      const std::size_t found = r.summary.find(s, at);
      ASSERT_NE(found, std::string::npos) << s;
      at = found + s.size();
    }
  }
  // The whole text fits: every sentence, in order, without the headings.
  const SummaryResult all = Summarize(e, kRemoteWork, 1000);
  EXPECT_EQ(all.sentences.size(), sentences.size());
  EXPECT_EQ(all.summary.find("Costs"), std::string::npos);
}

TEST(Summarizer, OnlyASentenceTooLongForTheBudgetIsCut) {
  const Embedder lexical(nullptr);
  const std::string_view text =
      "The first sentence of this text is far too long to fit into a budget of five words. "
      "The second sentence is just as long and would not fit into five words either.";
  const SummaryResult r = Summarize(lexical, text, 5);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.words, 5u);
  EXPECT_TRUE(r.summary.ends_with("\xE2\x80\xA6")) << r.summary;
  EXPECT_FALSE(Summarize(lexical, text, 20).truncated);
}

TEST(Summarizer, TextsWithoutSentences) {
  const Embedder lexical(nullptr);
  EXPECT_EQ(Summarize(lexical, "", 10).summary, "");
  EXPECT_EQ(Summarize(lexical, "Some text.", 0).summary, "");
  // Only fragments: summarised from them.
  EXPECT_EQ(Summarize(lexical, "- fast start\n- small memory\n", 10).summary,
            "fast start small memory");
}

TEST(Summarizer, RanksSumToOne) {
  const Embedder lexical(nullptr);
  const std::vector<double> ranks =
      RankSentences(lexical, {"cats purr", "cats sleep", "dogs bark", "stocks fell"});
  ASSERT_EQ(ranks.size(), 4u);
  double total = 0;
  for (double r : ranks)
    total += r;
  EXPECT_NEAR(total, 1.0, 1e-6);
  EXPECT_GT(ranks[0], ranks[3]);  // connected beats isolated
}

}  // namespace
}  // namespace orchestra::providers::local
