// Markdown sections.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/utf8.hpp"
#include "documents/markdown.hpp"

namespace orchestra::documents {
namespace {

struct Section {
  int level;
  std::string text;
  std::vector<std::string> path;
  friend bool operator==(const Section&, const Section&) = default;
};

void PrintTo(const Section& s, std::ostream* os) {
  *os << "{" << s.level << ", \"" << s.text << "\", [";
  for (const auto& p : s.path)
    *os << "\"" << p << "\" ";
  *os << "]}";
}

std::vector<Section> Sections(std::string_view text) {
  std::vector<Section> out;
  std::size_t expected_begin = 0;
  ForEachMarkdownSection(text, [&](const MarkdownSection& s) {
    EXPECT_EQ(s.begin, expected_begin);  // the sections tile the text
    expected_begin = s.end;
    out.push_back({s.level, std::string(text.substr(s.begin, s.end - s.begin)),
                   std::vector<std::string>(s.heading_path.begin(), s.heading_path.end())});
    return true;
  });
  EXPECT_EQ(expected_begin, text.size());
  return out;
}

TEST(Markdown, SectionsFollowAtxHeadingsWithTheirPath) {
  const std::string doc =
      "intro\n"
      "# Guide #\n"
      "text\n"
      "## Install\n"
      "steps\n"
      "### On Linux ###   \n"
      "apt\n"
      "## Use\n"
      "# Appendix\n";
  const std::vector<Section> want = {
      {0, "intro\n", {}},
      {1, "# Guide #\ntext\n", {"Guide"}},
      {2, "## Install\nsteps\n", {"Guide", "Install"}},
      {3, "### On Linux ###   \napt\n", {"Guide", "Install", "On Linux"}},
      {2, "## Use\n", {"Guide", "Use"}},
      {1, "# Appendix\n", {"Appendix"}},
  };
  EXPECT_EQ(Sections(doc), want);
}

TEST(Markdown, WhatIsNotAHeading) {
  const std::string doc =
      "# Real\n"
      "#hashtag\n"        // no space after the hashes
      "####### seven\n"   // too many
      "    # indented\n"  // code
      "\\# escaped\n"
      "```python\n"
      "# a comment in code\n"
      "```\n"
      "~~~~\n"
      "# still code\n"
      "~~~\n"  // shorter than the opening fence: not a close
      "# more code\n"
      "~~~~~\n"
      "   ## Three spaces\n"
      "#\n";  // an empty heading
  const auto sections = Sections(doc);
  ASSERT_EQ(sections.size(), 3u);
  EXPECT_EQ(sections[0].path, std::vector<std::string>{"Real"});
  EXPECT_EQ(sections[1].path, (std::vector<std::string>{"Real", "Three spaces"}));
  EXPECT_EQ(sections[2].path, (std::vector<std::string>{""}));
  EXPECT_EQ(sections[2].level, 1);
}

TEST(Markdown, UnclosedFenceRunsToTheEndAndCrLfWorks) {
  const auto a = Sections("# A\r\n```\r\n# not\r\n");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].path, std::vector<std::string>{"A"});
  const auto b = Sections("# A\r\ntext\r\n## B\r\n");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[1].path, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(Sections("").size(), 1u);
  EXPECT_EQ(Sections("no headings at all").size(), 1u);
}

TEST(Markdown, HostileInputCostsNoMemoryPerSection) {
  std::string many;
  for (int i = 0; i < 200'000; ++i)
    many += "#\n";
  std::size_t count = 0;
  ForEachMarkdownSection(many, [&](const MarkdownSection& s) {
    EXPECT_LE(s.heading_path.size(), 6u);
    ++count;
    return true;
  });
  EXPECT_EQ(count, 200'000u);
  // A long title is cut at a code point boundary.
  std::string long_title = "# " + std::string(300, 'x') + "\xC3\xA9\xC3\xA9\n";
  long_title.insert(2 + 255, "\xC3\xA9");
  const auto s = Sections(long_title);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_LE(s[0].path[0].size(), kMaxHeadingBytes);
  EXPECT_TRUE(utf8::IsValid(s[0].path[0]));
  // Stopping early.
  std::size_t seen = 0;
  ForEachMarkdownSection(many, [&](const MarkdownSection&) { return ++seen < 3; });
  EXPECT_EQ(seen, 3u);
}

}  // namespace
}  // namespace orchestra::documents
