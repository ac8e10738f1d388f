// The split patterns on the cases that show each alternative at work. Expected pieces are
// js-tiktoken's (the regex run by Node.js); js_tiktoken_test compares thousands more.
#include "tokens/split.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tokens/unicode_classes.hpp"

namespace orchestra::tokens {
namespace {

std::vector<std::string> Pieces(PieceEndFn split, std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t end = split(text, pos);
    EXPECT_GT(end, pos);
    EXPECT_LE(end, text.size());
    out.emplace_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

using V = std::vector<std::string>;

struct Case {
  std::string_view text;
  V cl100k;
  V o200k;
};

TEST(Split, MatchesJsTiktokenOnEachAlternative) {
  const Case cases[] = {
      {"Hello world", {"Hello", " world"}, {"Hello", " world"}},
      // Contractions: pieces of their own in cl100k_base, suffixes of the word in o200k_base.
      {"I'm here, they'll DON'T",
       {"I", "'m", " here", ",", " they", "'ll", " DON", "'T"},
       {"I'm", " here", ",", " they'll", " DON'T"}},
      // \s+(?!\S) leaves the last space to prefix the next word; \s*[\r\n]+ ends at a newline.
      {"  foo\n\n  bar  ",
       {" ", " foo", "\n\n", " ", " bar", "  "},
       {" ", " foo", "\n\n", " ", " bar", "  "}},
      {"a  \n  b", {"a", "  \n", " ", " b"}, {"a", "  \n", " ", " b"}},
      {"x\t!", {"x", "\t", "!"}, {"x", "\t", "!"}},
      {"1234567", {"123", "456", "7"}, {"123", "456", "7"}},
      {"$100,000.00", {"$", "100", ",", "000", ".", "00"}, {"$", "100", ",", "000", ".", "00"}},
      {"HELLOworld HELLO", {"HELLOworld", " HELLO"}, {"HELLOworld", " HELLO"}},
      // o200k_base splits an upper-case letter after letters that have no case.
      {"中文A B", {"中文A", " B"}, {"中文", "A", " B"}},
      // Combining marks: punctuation to cl100k_base, letters to o200k_base.
      {"\u0301A b", {"\u0301A", " b"}, {"\u0301", "A", " b"}},
      {"e\u0301t\u00e9", {"e", "\u0301t\u00e9"}, {"e\u0301t\u00e9"}},
      {" \u0301!", {" \u0301!"}, {" \u0301", "!"}},
      // o200k_base keeps slashes after punctuation and newlines.
      {"!!\n//x", {"!!\n", "//", "x"}, {"!!\n//", "x"}},
      {"path/to/file\n//",
       {"path", "/to", "/file", "\n", "//"},
       {"path", "/to", "/file", "\n", "//"}},
      {"\u01c5ungla", {"\u01c5ungla"}, {"\u01c5ungla"}},  // a title-case letter
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Pieces(&Cl100kPieceEnd, c.text), c.cl100k) << c.text;
    EXPECT_EQ(Pieces(&O200kPieceEnd, c.text), c.o200k) << c.text;
  }
}

TEST(Split, TakesInvalidUtf8ByteByByteAsPunctuation) {
  // A lone continuation byte, a truncated sequence, an overlong form and a surrogate.
  const std::string text = "a\x80\xE2\x82 b\xC0\xAF\xED\xA0\x80";
  for (const PieceEndFn split : {&Cl100kPieceEnd, &O200kPieceEnd}) {
    const V pieces = Pieces(split, text);
    std::string joined;
    for (const std::string& p : pieces) {
      joined += p;
    }
    EXPECT_EQ(joined, text);
    EXPECT_EQ(pieces, (V{"a", "\x80\xE2\x82", " b", "\xC0\xAF\xED\xA0\x80"}));
  }
}

TEST(Utf8, DecodesValidSequencesAndRejectsInvalidOnes) {
  auto decode = [](std::string_view s) {
    return DecodeUtf8(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  EXPECT_EQ(decode("A").cp, U'A');
  EXPECT_EQ(decode("\u00e9").len, 2);
  EXPECT_EQ(decode("\u4e2d").cp, U'\u4e2d');
  EXPECT_EQ(decode("\U0001F600").len, 4);
  EXPECT_EQ(decode("\U0010FFFF").cp, U'\U0010FFFF');
  for (const std::string_view bad :
       {std::string_view("\x80"), std::string_view("\xC1\x81"), std::string_view("\xE0\x80\x80"),
        std::string_view("\xED\xA0\x80"), std::string_view("\xF4\x90\x80\x80"),
        std::string_view("\xF5\x80\x80\x80"), std::string_view("\xE4\xB8")}) {
    const Utf8Char c = decode(bad);
    EXPECT_EQ(c.len, 1) << bad.size();
    EXPECT_EQ(c.cls, CharClass::kOther);
  }
}

TEST(UnicodeClasses, ClassifiesAsTheEcmaScriptRegexEngineDoes) {
  EXPECT_EQ(ClassOf(U'a'), CharClass::kLower);
  EXPECT_EQ(ClassOf(U'Z'), CharClass::kUpper);
  EXPECT_EQ(ClassOf(U'\u01c5'), CharClass::kUpper);        // Lt
  EXPECT_EQ(ClassOf(U'\u02b0'), CharClass::kOtherLetter);  // Lm
  EXPECT_EQ(ClassOf(U'\u4e2d'), CharClass::kOtherLetter);  // Lo
  EXPECT_EQ(ClassOf(U'\u0301'), CharClass::kMark);
  EXPECT_EQ(ClassOf(U'\u0903'), CharClass::kMark);  // Mc
  EXPECT_EQ(ClassOf(U'7'), CharClass::kNumber);
  EXPECT_EQ(ClassOf(U'\u00bd'), CharClass::kNumber);  // No
  EXPECT_EQ(ClassOf(U'\u216b'), CharClass::kNumber);  // Nl
  EXPECT_EQ(ClassOf(U'\n'), CharClass::kNewline);
  EXPECT_EQ(ClassOf(U'\r'), CharClass::kNewline);
  for (const char32_t space :
       {U'\t', U'\v', U'\f', U' ', U'\u00a0', U'\u1680', U'\u2000', U'\u200a', U'\u2028', U'\u2029',
        U'\u202f', U'\u205f', U'\u3000', U'\ufeff'}) {
    EXPECT_EQ(ClassOf(space), CharClass::kSpace) << std::hex << static_cast<unsigned>(space);
  }
  EXPECT_EQ(ClassOf(U'\u0085'), CharClass::kOther);  // not \s in ECMAScript
  EXPECT_EQ(ClassOf(U'\u200b'), CharClass::kOther);  // Cf
  EXPECT_EQ(ClassOf(U'!'), CharClass::kOther);
  EXPECT_EQ(ClassOf(U'\U0001F600'), CharClass::kOther);
  EXPECT_EQ(ClassOf(U'\U0010FFFF'), CharClass::kOther);  // unassigned
}

}  // namespace
}  // namespace orchestra::tokens
