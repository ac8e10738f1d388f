#include "providers/local/sentences.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace orchestra::providers::local {
namespace {

std::vector<std::string> Texts(const std::vector<Segment>& segments) {
  std::vector<std::string> out;
  for (const Segment& s : segments)
    out.emplace_back(s.text);
  return out;
}

std::vector<std::string> Of(std::string_view text, SegmentKind kind) {
  std::vector<std::string> out;
  for (const Segment& s : Segments(text)) {
    if (s.kind == kind) out.emplace_back(s.text);
  }
  return out;
}

using V = std::vector<std::string>;

TEST(Sentences, SplitsAfterFinalPunctuation) {
  EXPECT_EQ(Texts(Sentences("Really? Yes! Fine. The end")),
            (V{"Really?", "Yes!", "Fine.", "The end"}));
  EXPECT_EQ(Texts(Sentences("He said \"stop.\" Then he left. Wait\xE2\x80\xA6 What?")),
            (V{"He said \"stop.\"", "Then he left.", "Wait\xE2\x80\xA6", "What?"}));
  EXPECT_EQ(Texts(Sentences("Prices rose 3.5 percent in 2024. Then they fell.")),
            (V{"Prices rose 3.5 percent in 2024.", "Then they fell."}));
}

TEST(Sentences, AbbreviationsInitialsAndLowerCaseDoNotEndASentence) {
  EXPECT_EQ(Texts(Sentences("Dr. Smith met J. R. Tolkien at 3 p.m. yesterday. They talked.")),
            (V{"Dr. Smith met J. R. Tolkien at 3 p.m. yesterday.", "They talked."}));
  EXPECT_EQ(Texts(Sentences("The U.S. Army arrived, e.g. in May. It rained.")),
            (V{"The U.S. Army arrived, e.g. in May.", "It rained."}));
  EXPECT_EQ(Texts(Sentences("Use v2. it is faster.")), (V{"Use v2. it is faster."}));
}

TEST(Sentences, OffsetsPointIntoTheText) {
  const std::string_view text = "  First one.\n\nSecond  one is here.  Third.\n";
  for (const Segment& s : Segments(text))
    EXPECT_EQ(text.substr(s.begin, s.text.size()), s.text);
  EXPECT_EQ(Segments(text).size(), 3u);
}

TEST(Sentences, HeadingsAreNotSentences) {
  const std::string_view text =
      "# Orchestra\n\n"
      "Overview\n========\n\n"
      "Orchestra routes requests. It keeps memory.\n\n"
      "Key Features\n\n"
      "Introduction\n"
      "The server starts in milliseconds. It uses little memory.\n\n"
      "The reasons are these:\n"
      "- it is small\n"
      "- it is fast\n";
  EXPECT_EQ(Of(text, SegmentKind::kHeading),
            (V{"Orchestra", "Overview", "Key Features", "Introduction", "The reasons are these:"}));
  EXPECT_EQ(Of(text, SegmentKind::kSentence),
            (V{"Orchestra routes requests.", "It keeps memory.",
               "The server starts in milliseconds.", "It uses little memory."}));
  EXPECT_EQ(Of(text, SegmentKind::kFragment), (V{"it is small", "it is fast"}));
}

TEST(Sentences, ListItemsAreFragmentsUnlessTheyEndLikeSentences) {
  const std::string_view text =
      "1. Install the package\n"
      "2) Run the server\n"
      "* The server restarts nightly. It takes a minute.\n"
      "- A long item that goes on\n"
      "  to a second line.\n"
      "\xE2\x80\xA2 bullet\n";
  EXPECT_EQ(Of(text, SegmentKind::kFragment),
            (V{"Install the package", "Run the server", "bullet"}));
  EXPECT_EQ(Of(text, SegmentKind::kSentence),
            (V{"The server restarts nightly.", "It takes a minute.",
               "A long item that goes on\n  to a second line."}));
}

TEST(Sentences, WrappedProseIsJoinedAndCodeIsAFragment) {
  const std::string_view text =
      "This is a long sentence that an editor wrapped at\n"
      "some column before it ended. And here is another one.\n\n"
      "```\n"
      "int x = 1;\n"
      "```\n"
      "| a | b |\n";
  EXPECT_EQ(Texts(Sentences(text)),
            (V{"This is a long sentence that an editor wrapped at\nsome column before it ended.",
               "And here is another one."}));
  EXPECT_EQ(Of(text, SegmentKind::kFragment), (V{"```", "int x = 1;", "```", "| a | b |"}));
}

TEST(Sentences, AShortLineAloneIsAHeadingButALongOneIsASentence) {
  EXPECT_EQ(Of("Release notes", SegmentKind::kHeading), (V{"Release notes"}));
  const std::string_view long_line =
      "this line has no final punctuation but it has far more words than any heading would have";
  EXPECT_EQ(Of(long_line, SegmentKind::kSentence), (V{std::string(long_line)}));
  EXPECT_TRUE(Segments("").empty());
  EXPECT_TRUE(Segments(" \n\n \n").empty());
}

TEST(Words, CountedAsAReaderCountsThem) {
  EXPECT_EQ(WordCount("GPT-4o costs $0.15, per 1k tokens."), 6u);
  EXPECT_EQ(WordCount("  "), 0u);
  EXPECT_EQ(Collapse("  a \n\n b\tc  "), "a b c");
  EXPECT_EQ(FirstWords("one two\nthree four", 3), "one two three");
  EXPECT_EQ(FirstWords("one two", 5), "one two");
  EXPECT_EQ(FirstWords("one two", 0), "");
}

}  // namespace
}  // namespace orchestra::providers::local
