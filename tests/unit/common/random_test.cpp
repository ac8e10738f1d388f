#include "common/random.hpp"

#include <array>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace orchestra {
namespace {

TEST(RandomHex, WritesOnlyLowercaseHexDigitsEvenlySpread) {
  std::array<int, 16> seen{};
  for (int n = 0; n < 4000; ++n) {
    const std::string hex = RandomHex(1 + n % 20);  // whole and partial words
    ASSERT_EQ(hex.size(), static_cast<std::size_t>(2 * (1 + n % 20)));
    for (char c : hex) {
      const bool digit = c >= '0' && c <= '9';
      const bool letter = c >= 'a' && c <= 'f';
      ASSERT_TRUE(digit || letter) << hex;
      ++seen[static_cast<std::size_t>(digit ? c - '0' : c - 'a' + 10)];
    }
  }
  // 84,000 digits: each of the 16 expected 5,250 times; a digit mapping that loses or merges
  // values would be far off.
  for (int count : seen) {
    EXPECT_GT(count, 4700);
    EXPECT_LT(count, 5800);
  }
}

TEST(RandomHex, DoesNotRepeat) {
  std::set<std::string> ids;
  for (int n = 0; n < 10000; ++n)
    ids.insert(RandomHex(8));
  EXPECT_EQ(ids.size(), 10000u);
}

}  // namespace
}  // namespace orchestra
