// UTF-8: boundaries, decoding, strict validation (the request bodies' check), DecodeAll.
#include "common/utf8.hpp"

#include <string>

#include <gtest/gtest.h>

namespace orchestra {
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

TEST(Utf8, IsValidAcceptsWellFormedTextOnly) {
  EXPECT_TRUE(utf8::IsValid(""));
  EXPECT_TRUE(utf8::IsValid("plain ascii"));
  EXPECT_TRUE(utf8::IsValid("é€😀\xf4\x8f\xbf\xbf"));  // up to U+10FFFF
  EXPECT_FALSE(utf8::IsValid("\x80"));                // a lone continuation byte
  EXPECT_FALSE(utf8::IsValid("\xc3"));                // truncated
  EXPECT_FALSE(utf8::IsValid("\xc0\xaf"));            // overlong '/'
  EXPECT_FALSE(utf8::IsValid("\xe0\x80\xaf"));        // overlong
  EXPECT_FALSE(utf8::IsValid("\xed\xa0\x80"));        // a surrogate
  EXPECT_FALSE(utf8::IsValid("\xf4\x90\x80\x80"));    // past U+10FFFF
  EXPECT_FALSE(utf8::IsValid("\xe2\x82"));            // truncated
  EXPECT_FALSE(utf8::IsValid("\xe2\x28\xa1"));        // bad continuation
  EXPECT_FALSE(utf8::IsValid("\xff"));
}

TEST(Utf8, DecodeAllDecodesValidTextAndRefusesTheRest) {
  std::u32string out;
  ASSERT_TRUE(utf8::DecodeAll("a\xC3\xA9\xEF\xBF\xBD\xF0\x9F\x98\x80", out));
  EXPECT_EQ(out, (std::u32string{U'a', 0xE9, 0xFFFD, 0x1F600}));
  for (const char* bad : {"\xC3", "\xC0\xAF", "\xED\xA0\x80", "ok\xFF", "\xF4\x90\x80\x80"})
    EXPECT_FALSE(utf8::DecodeAll(bad, out)) << bad;
  std::string encoded;
  for (char32_t cp : {U'a', char32_t{0xE9}, char32_t{0x20AC}, char32_t{0x1F600}})
    utf8::Append(encoded, cp);
  EXPECT_EQ(encoded, "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  encoded.clear();
  utf8::Append(encoded, 0xD800);  // a surrogate is not encoded
  EXPECT_EQ(encoded, "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace orchestra
