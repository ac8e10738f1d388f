#include "common/text.hpp"

#include <gtest/gtest.h>

namespace orchestra {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(ParseDuration("250ms"), 250ms);
  EXPECT_EQ(ParseDuration("8s"), 8s);
  EXPECT_EQ(ParseDuration("5m"), 5min);
  EXPECT_EQ(ParseDuration("1h"), 1h);
  EXPECT_EQ(ParseDuration("100us"), 100us);
  EXPECT_EQ(ParseDuration("1.5s"), 1500ms);
  EXPECT_EQ(ParseDuration("0"), 0s);
}

TEST(ParseDuration, RejectsMissingOrUnknownUnitsAndNegatives) {
  for (const char* bad : {"", "10", "s", "10 s", "-1s", "10d", "abc", "1e30h"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
}

// Found by tests/fuzz/text (UBSan): "nan" reads as a number, and NaN nanoseconds cast to an
// integer is undefined (INT64_MIN on x86: a negative timeout from `drain_timeout: nans`).
TEST(ParseDuration, RejectsNotANumberAndInfinity) {
  for (const char* bad : {"nans", "nanms", "NaNs", "-nans", "infs", "infh"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
}

TEST(FormatDuration, PicksTheLargestWholeUnit) {
  EXPECT_EQ(FormatDuration(8s), "8s");
  EXPECT_EQ(FormatDuration(250ms), "250ms");
  EXPECT_EQ(FormatDuration(90s), "90s");
  EXPECT_EQ(FormatDuration(2min), "2m");
  EXPECT_EQ(FormatDuration(0s), "0s");
}

TEST(ParseSize, AcceptsBytesAndBinaryUnits) {
  EXPECT_EQ(ParseSize("8388608"), 8388608u);
  EXPECT_EQ(ParseSize("8MiB"), 8u << 20);
  EXPECT_EQ(ParseSize("16KiB"), 16u << 10);
  EXPECT_EQ(ParseSize("10MB"), 10'000'000u);
  EXPECT_FALSE(ParseSize("8 MiB").has_value());
  EXPECT_FALSE(ParseSize("-1").has_value());
  EXPECT_FALSE(ParseSize("99999999999999999999").has_value());
}

TEST(ClosestMatch, SuggestsATypoButNotAnUnrelatedWord) {
  std::vector<std::string_view> keys{"listen", "threads", "max_inflight", "max_body_bytes"};
  EXPECT_EQ(ClosestMatch("listn", keys), "listen");
  EXPECT_EQ(ClosestMatch("max_inflihgt", keys), "max_inflight");
  EXPECT_FALSE(ClosestMatch("database", keys).has_value());
}

TEST(AppendJsonEscaped, EscapesQuotesBackslashesAndControlCharacters) {
  std::string out;
  AppendJsonEscaped(out, std::string_view("a\"b\\c\nd\x01\te", 10));
  EXPECT_EQ(out, "a\\\"b\\\\c\\nd\\u0001\\te");
}

TEST(HexEncode, EncodesLowerCase) {
  const std::uint8_t bytes[] = {0x00, 0xAB, 0xFF};
  EXPECT_EQ(HexEncode(bytes), "00abff");
  EXPECT_TRUE(IsHex("00abFF"));
  EXPECT_FALSE(IsHex("0x"));
}

}  // namespace
}  // namespace orchestra

namespace orchestra {
namespace {

TEST(JsonPlainPrefix, FindsTheFirstByteNeedingAnEscapeAtEveryPosition) {
  for (char stop : {'"', '\\', '\n', '\x01', '\x1f'}) {
    for (std::size_t at = 0; at < 40; ++at) {
      std::string text(48, 'a');
      text[7] = '\xc3';  // UTF-8 bytes are plain
      text[8] = '\xa9';
      if (at == 7 || at == 8) continue;
      text[at] = stop;
      text[at + 3] = '"';  // a later stop must not win
      EXPECT_EQ(JsonPlainPrefix(text), at) << int(stop) << " at " << at;
    }
  }
  EXPECT_EQ(JsonPlainPrefix("plain text with spaces and ~ \x7f"), 30u);
  EXPECT_EQ(JsonPlainPrefix(""), 0u);
}

TEST(JsonPlainPrefix, AgreesWithAByteByByteScanOnEveryLengthAndOffset) {
  // Lengths and offsets around the 8- and 16-byte steps, every kind of byte (0x80 and up are
  // plain: UTF-8).
  std::uint32_t seed = 7;
  auto next = [&seed] { return seed = seed * 1664525u + 1013904223u; };
  const std::string bytes{'a', '"',    '\\',   '\0',   '\x01', '\x1f',
                          ' ', '\x7f', '\x80', '\xff', '\xc3', '~'};
  for (int round = 0; round < 3000; ++round) {
    std::string text(next() % 70, 'x');
    for (char& c : text) {
      if (next() % 23 == 0) c = bytes[next() % bytes.size()];
    }
    const std::size_t offset = text.empty() ? 0 : next() % text.size();
    const std::string_view view = std::string_view(text).substr(offset);
    std::size_t expected = 0;
    while (expected < view.size()) {
      const auto c = static_cast<unsigned char>(view[expected]);
      if (c < 0x20 || c == '"' || c == '\\') break;
      ++expected;
    }
    ASSERT_EQ(JsonPlainPrefix(view), expected) << round;
  }
}

TEST(PercentDecode, DecodesEscapesAndRefusesBrokenOnes) {
  EXPECT_EQ(PercentDecode("a%20b"), "a b");
  EXPECT_EQ(PercentDecode("%41%62"), "Ab");
  EXPECT_EQ(PercentDecode("a+b"), "a+b");
  EXPECT_EQ(PercentDecode("a+b", PlusSign::kSpace), "a b");
  EXPECT_EQ(PercentDecode("%zz"), std::nullopt);
  EXPECT_EQ(PercentDecode("100%"), std::nullopt);
  EXPECT_EQ(PercentDecode("%4"), std::nullopt);
  EXPECT_EQ(PercentDecode(""), "");
  EXPECT_EQ(PercentDecode("%00"), std::string(1, '\0'));
}

}  // namespace
}  // namespace orchestra
