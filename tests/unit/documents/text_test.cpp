// UTF-8 helpers and Markdown sections.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "documents/markdown.hpp"
#include "documents/utf8.hpp"

namespace orchestra::documents {
namespace {

TEST(Utf8, BoundariesNeverSplitACodePoint) {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";  // a é € 😀 z
  // Byte offsets: a 0, é 1-2, € 3-5, 😀 6-9, z 10.
  const std::size_t floors[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11};
  const std::size_t ceils[] = {0, 1, 3, 3, 6, 6, 6, 10, 10, 10, 10, 11};
  for (std::size_t i = 0; i <= s.size(); ++i) {
    EXPECT_EQ(utf8::FloorBoundary(s, i), floors[i]) << i;
    EXPECT_EQ(utf8::CeilBoundary(s, i), ceils[i]) << i;
  }
  EXPECT_EQ(utf8::CountCodePoints(s), 5u);
  EXPECT_EQ(utf8::AdvanceCodePoints(s, 0, 3), 6u);
  EXPECT_EQ(utf8::AdvanceCodePoints(s, 1, 100), s.size());
}

TEST(Utf8, DecodeRefusesWhatIsNotUtf8) {
  struct Case {
    std::string bytes;
    char32_t cp;
    std::size_t length;
  };
  const Case cases[] = {
      {"A", 'A', 1},
      {"\xC3\xA9", 0xE9, 2},
      {"\xF4\x8F\xBF\xBF", 0x10FFFF, 4},
      {"\xC0\xAF", utf8::kReplacement, 1},          // overlong '/'
      {"\xE0\x80\xAF", utf8::kReplacement, 1},      // overlong
      {"\xED\xA0\x80", utf8::kReplacement, 1},      // a surrogate
      {"\xF4\x90\x80\x80", utf8::kReplacement, 1},  // past U+10FFFF
      {"\xE2\x82", utf8::kReplacement, 1},          // truncated
      {"\x80", utf8::kReplacement, 1},              // a lone continuation byte
      {"\xFF", utf8::kReplacement, 1},
  };
  for (const Case& c : cases) {
    std::size_t len = 0;
    EXPECT_EQ(utf8::Decode(c.bytes, 0, len), c.cp) << c.bytes;
    EXPECT_EQ(len, c.length) << c.bytes;
  }
  EXPECT_TRUE(utf8::IsValid("plain ascii text that is long enough for the word loop"));
  EXPECT_TRUE(utf8::IsValid("caf\xC3\xA9 \xEF\xBF\xBD"));  // a real U+FFFD is valid
  EXPECT_FALSE(utf8::IsValid("ascii ascii ascii \xC3"));
  EXPECT_FALSE(utf8::IsValid("\xED\xA0\x80"));
  EXPECT_EQ(utf8::ToValid("a\xFF"
                          "b\xC3"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  EXPECT_TRUE(utf8::IsValid(utf8::ToValid("\xE0\x80\xAF\xF0\x9F\x98")));
}

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
