#include "documents/chunker.hpp"

#include <cctype>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/utf8.hpp"

namespace orchestra::documents {
namespace {

// The test's tokenizer: whitespace-separated words.
std::size_t CountWords(std::string_view text) {
  std::size_t n = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

std::vector<std::string> Texts(std::string_view source, const std::vector<Chunk>& chunks) {
  std::vector<std::string> out;
  for (const Chunk& c : chunks)
    out.emplace_back(c.Text(source));
  return out;
}

std::vector<Chunk> Chunks(std::string_view text, ChunkStrategy strategy,
                          std::optional<std::size_t> size = std::nullopt,
                          std::optional<std::size_t> overlap = std::nullopt) {
  ChunkingOptions options;
  options.strategy = strategy;
  options.size = size;
  options.overlap = overlap;
  auto chunks = ChunkText(text, options, CountWords);
  EXPECT_TRUE(chunks) << chunks.error().message;
  return chunks ? *chunks : std::vector<Chunk>{};
}

// What every chunking must keep, whatever the input: order, offsets inside the text and on
// code point boundaries, no surrounding whitespace, no empty chunk, sizes within the limit.
void ExpectWellFormed(std::string_view text, const std::vector<Chunk>& chunks, std::size_t size,
                      bool tokens) {
  std::size_t last_begin = 0;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    ASSERT_EQ(c.sequence, i);
    ASSERT_LT(c.begin, c.end);
    ASSERT_LE(c.end, text.size());
    ASSERT_GE(c.begin, last_begin);
    last_begin = c.begin;
    ASSERT_EQ(utf8::FloorBoundary(text, c.begin), c.begin);
    ASSERT_EQ(utf8::FloorBoundary(text, c.end), c.end);
    const std::string_view t = c.Text(text);
    ASSERT_FALSE(std::isspace(static_cast<unsigned char>(t.front())));
    ASSERT_FALSE(std::isspace(static_cast<unsigned char>(t.back())));
    if (tokens) {
      ASSERT_LE(CountWords(t), size) << t;
    } else {
      ASSERT_LE(utf8::CountCodePoints(t), size) << t;
    }
  }
}

TEST(Chunker, ParagraphsArePackedUpToTheSize) {
  const std::string text =
      "First paragraph here.\n\n"
      "Second one, a little longer.\n"
      "It has two lines.\n\n\n"
      "   Third.   \n\n"
      "Fourth paragraph closes.";
  // 21 + 2 + 46 chars fit in 70, the third would not.
  const auto chunks = Chunks(text, ChunkStrategy::kParagraph, 70, 0);
  EXPECT_EQ(Texts(text, chunks),
            (std::vector<std::string>{
                "First paragraph here.\n\nSecond one, a little longer.\nIt has two lines.",
                "Third.   \n\nFourth paragraph closes."}));
  ExpectWellFormed(text, chunks, 70, false);
}

TEST(Chunker, OverlapRepeatsTrailingUnitsThatFit) {
  const std::string text = "One. Two two. Three three three. Four. Five five.";
  // Sentences: "One." 4, "Two two." 8, "Three three three." 18, "Four." 5, "Five five." 10.
  const auto chunks = Chunks(text, ChunkStrategy::kSentence, 30, 20);
  EXPECT_EQ(Texts(text, chunks),
            (std::vector<std::string>{"One. Two two.", "Two two. Three three three.",
                                      "Three three three. Four.", "Four. Five five."}));
  ExpectWellFormed(text, chunks, 30, false);
  // Without overlap each sentence appears once.
  EXPECT_EQ(Texts(text, Chunks(text, ChunkStrategy::kSentence, 30, 0)),
            (std::vector<std::string>{"One. Two two.", "Three three three. Four.", "Five five."}));
}

TEST(Chunker, SentencesEndWhereTheyShould) {
  struct Case {
    std::string text;
    std::vector<std::string> sentences;
  };
  const std::vector<Case> cases = {
      {"Hello there. How are you? Fine!", {"Hello there.", "How are you?", "Fine!"}},
      {"It costs 3.14 dollars. Really.", {"It costs 3.14 dollars.", "Really."}},
      {"Use e.g. this one. Done.", {"Use e.g. this one.", "Done."}},
      {"He said \"stop.\" Then left.", {"He said \"stop.\"", "Then left."}},
      {"Wait... What?! Yes.", {"Wait...", "What?!", "Yes."}},
      {"第一句。第二句！第三句", {"第一句。", "第二句！", "第三句"}},
      {"No terminator\nacross lines", {"No terminator\nacross lines"}},
      {"Para one\n\nPara two.", {"Para one", "Para two."}},
      {"Ellipsis\xE2\x80\xA6 Next.", {"Ellipsis\xE2\x80\xA6", "Next."}},
  };
  for (const Case& c : cases) {
    std::vector<std::string> got;
    for (const Span& s : SplitSentences(c.text, 0, c.text.size()))
      got.emplace_back(c.text.substr(s.begin, s.end - s.begin));
    EXPECT_EQ(got, c.sentences) << c.text;
  }
}

TEST(Chunker, OversizedUnitsAreCutBySentenceThenWordThenCodePoint) {
  const std::string text =
      "Short. " + std::string(30, 'x') + " tail words here. \xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9";
  const auto chunks = Chunks(text, ChunkStrategy::kParagraph, 12, 0);
  ExpectWellFormed(text, chunks, 12, false);
  const auto texts = Texts(text, chunks);
  EXPECT_EQ(texts.front(), "Short.");
  EXPECT_EQ(texts[1], std::string(12, 'x'));
  EXPECT_EQ(texts[2], std::string(12, 'x'));
  EXPECT_EQ(texts[3], std::string(6, 'x') + " tail");  // words pack like any unit
  EXPECT_EQ(texts[4], "words here.");
  EXPECT_EQ(texts.back(), "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");  // 4 code points, 8 bytes
}

TEST(Chunker, NeverCutsInsideACodePoint) {
  std::string text;
  for (int i = 0; i < 500; ++i)
    text += "\xF0\x9F\x98\x80\xC3\xA9\xE2\x82\xAC";  // no spaces
  for (std::size_t size : {1u, 2u, 3u, 7u, 50u}) {
    const auto chunks = Chunks(text, ChunkStrategy::kSentence, size, 0);
    ExpectWellFormed(text, chunks, size, false);
    EXPECT_EQ(chunks.size(), (1500 + size - 1) / size) << size;
  }
}

TEST(Chunker, TokensStrategyCountsWithTheInjectedCounter) {
  std::string text;
  for (int s = 0; s < 40; ++s) {
    for (int w = 0; w < 7; ++w)
      text += "W" + std::to_string(s) + "_" + std::to_string(w) + " ";
    text += "end.\n";
  }
  const auto chunks = Chunks(text, ChunkStrategy::kTokens, 20, 8);
  ExpectWellFormed(text, chunks, 20, true);
  // Sentences of 8 words: two per chunk, the second repeated as the next chunk's overlap.
  ASSERT_GE(chunks.size(), 39u);
  for (std::size_t i = 0; i + 1 < chunks.size(); ++i) {
    EXPECT_EQ(CountWords(chunks[i].Text(text)), 16u);
    EXPECT_LT(chunks[i + 1].begin, chunks[i].end);  // overlapping
  }
  // Defaults: 200 tokens, 40 overlap.
  const auto defaults = Chunks(text, ChunkStrategy::kTokens);
  ExpectWellFormed(text, defaults, 200, true);
  EXPECT_EQ(defaults.size(), 2u);
}

TEST(Chunker, TokensStrategyCutsAWordThatIsTooLongByItsTokens) {
  // A counter where every 4 bytes are a token (like BPE on a long identifier).
  const TokenCounter bytes4 = [](std::string_view t) { return (t.size() + 3) / 4; };
  const std::string text = std::string(1000, 'a') + " b";
  ChunkingOptions options;
  options.strategy = ChunkStrategy::kTokens;
  options.size = 10;
  options.overlap = 0;
  auto chunks = ChunkText(text, options, bytes4);
  ASSERT_TRUE(chunks);
  for (const Chunk& c : *chunks)
    EXPECT_LE(bytes4(c.Text(text)), 10u);
  EXPECT_EQ((*chunks)[0].end - (*chunks)[0].begin, 40u);  // the longest prefix that fits
  EXPECT_EQ(Texts(text, *chunks).back(), "b");
}

TEST(Chunker, MarkdownHeadingsKeepSectionsApartWithTheirPaths) {
  const std::string text =
      "Preamble text.\n\n"
      "# Guide\n\n"
      "## Install\n"
      "Run the installer.\n\n"
      "Then reboot.\n\n"
      "## Use\n"
      "```\n# not a heading\n```\n"
      "Open it.\n";
  const auto chunks = Chunks(text, ChunkStrategy::kMarkdownHeadings);
  ASSERT_EQ(chunks.size(), 3u);  // "# Guide" alone makes no chunk
  EXPECT_EQ(chunks[0].Text(text), "Preamble text.");
  EXPECT_TRUE(chunks[0].heading_path.empty());
  EXPECT_EQ(chunks[1].Text(text), "## Install\nRun the installer.\n\nThen reboot.");
  EXPECT_EQ(chunks[1].heading_path, (std::vector<std::string>{"Guide", "Install"}));
  EXPECT_EQ(chunks[2].Text(text), "## Use\n```\n# not a heading\n```\nOpen it.");
  EXPECT_EQ(chunks[2].heading_path, (std::vector<std::string>{"Guide", "Use"}));
  // A small size splits inside a section but never across sections.
  const auto small = Chunks(text, ChunkStrategy::kMarkdownHeadings, 30, 0);
  ExpectWellFormed(text, small, 30, false);
  for (const Chunk& c : small) {
    if (c.Text(text).find("reboot") != std::string_view::npos) {
      EXPECT_EQ(c.heading_path, (std::vector<std::string>{"Guide", "Install"}));
    }
  }
}

TEST(Chunker, EmptyAndBlankTextsHaveNoChunks) {
  for (auto strategy : {ChunkStrategy::kParagraph, ChunkStrategy::kSentence, ChunkStrategy::kTokens,
                        ChunkStrategy::kMarkdownHeadings}) {
    EXPECT_TRUE(Chunks("", strategy).empty());
    EXPECT_TRUE(Chunks(" \n\n\t \r\n", strategy).empty());
  }
  EXPECT_TRUE(
      Chunks("# Only a heading\n\n## And another\n", ChunkStrategy::kMarkdownHeadings).empty());
}

TEST(Chunker, OptionsAreCheckedWithPreciseErrors) {
  struct Case {
    ChunkingOptions options;
    bool with_counter;
    const char* param;
    const char* says;
  };
  auto opts = [](ChunkStrategy s, std::optional<std::size_t> size,
                 std::optional<std::size_t> overlap) {
    ChunkingOptions o;
    o.strategy = s;
    o.size = size;
    o.overlap = overlap;
    return o;
  };
  const Case cases[] = {
      {opts(ChunkStrategy::kParagraph, 0, 0), true, "chunking.size", "between 1 and 65536"},
      {opts(ChunkStrategy::kParagraph, 70'000, 0), true, "chunking.size", "characters"},
      {opts(ChunkStrategy::kSentence, 100, 100), true, "chunking.overlap", "smaller than"},
      {opts(ChunkStrategy::kTokens, 50, 60), true, "chunking.overlap", "50 tokens"},
      {opts(ChunkStrategy::kTokens, 50, 10), false, "chunking.strategy", "tokenizer"},
  };
  for (const Case& c : cases) {
    auto r = ChunkText("some text", c.options, c.with_counter ? TokenCounter(CountWords) : nullptr);
    ASSERT_FALSE(r) << c.param;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest);
    EXPECT_EQ(r.error().param, c.param);
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
  // An overlap left unset is the default, but never half the size or more.
  auto r = ChunkText("a b c", opts(ChunkStrategy::kParagraph, 10, std::nullopt));
  EXPECT_TRUE(r);
  EXPECT_EQ(ParseChunkStrategy("markdown_headings"), ChunkStrategy::kMarkdownHeadings);
  EXPECT_EQ(ParseChunkStrategy("Paragraph"), std::nullopt);
  EXPECT_EQ(ToString(ChunkStrategy::kTokens), "tokens");
}

TEST(Chunker, TooManyChunksIsRefusedEarly) {
  std::string text;
  for (int i = 0; i < 2000; ++i)
    text += "Paragraph number " + std::to_string(i) + ".\n\n";
  ChunkingOptions options;
  options.size = 30;  // one paragraph per chunk
  options.overlap = 0;
  options.max_chunks = 100;
  auto r = ChunkText(text, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kPayloadTooLarge);
  EXPECT_EQ(r.error().param, "chunking");
  options.max_chunks = 2000;
  EXPECT_EQ(ChunkText(text, options)->size(), 2000u);
  options.strategy = ChunkStrategy::kMarkdownHeadings;
  options.max_chunks = 1999;
  EXPECT_FALSE(ChunkText(text, options));
}

// Hostile shapes. Each is linear (well under a second); a quadratic path would run into the
// test's timeout.
TEST(Chunker, HostileInputsStayLinear) {
  const std::size_t big = 2 << 20;
  const std::vector<std::string> inputs = {
      std::string(big, 'x'),   // one enormous word
      std::string(big, '\n'),  // nothing but blank lines
      std::string(big, '.'),   // one endless terminator run
  };
  std::string sentences;
  while (sentences.size() < big)
    sentences += "A. ";
  std::string headings;
  while (headings.size() < big)
    headings += "# h\nx\n";
  for (const std::string& text : {inputs[0], inputs[1], inputs[2], sentences, headings}) {
    for (auto strategy : {ChunkStrategy::kParagraph, ChunkStrategy::kSentence,
                          ChunkStrategy::kTokens, ChunkStrategy::kMarkdownHeadings}) {
      ChunkingOptions options;
      options.strategy = strategy;
      options.max_chunks = 1'000'000;
      auto r = ChunkText(text, options, CountWords);
      ASSERT_TRUE(r) << r.error().message;
      ExpectWellFormed(text, *r, strategy == ChunkStrategy::kTokens ? 200 : 800,
                       strategy == ChunkStrategy::kTokens);
    }
  }
}

}  // namespace
}  // namespace orchestra::documents
