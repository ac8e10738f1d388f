#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

// Glob patterns for ListKeys, matched the same way on every backend.
//
//   *       any run of characters, possibly empty
//   ?       exactly one character
//   [abc]   one of the characters; [a-z] a range; [!abc] or [^abc] none of them
//   \x      the character x itself (also inside brackets)
//
// Characters are UTF-8 code points and ranges compare code points. Each backend filters by the
// pattern on the server where it can (PostgreSQL: an equivalent regular expression; Redis: a
// wider SCAN MATCH pattern) and Matches() gives the exact answer.
namespace orchestra::storage {

inline constexpr std::size_t kMaxPatternBytes = 1024;

class Glob {
 public:
  // Empty means `*`. kInvalidRequest (param "pattern") on an unterminated or empty class, a
  // reversed range, a trailing backslash, invalid UTF-8, or more than kMaxPatternBytes.
  static Result<Glob> Parse(std::string_view pattern);

  bool Matches(std::string_view text) const;

  // The literal text every match starts with ("user:" for "user:*"); backends scan from it.
  const std::string& literal_prefix() const { return prefix_; }
  bool matches_everything() const;

  // A Redis MATCH pattern accepting at least every key this glob accepts (Redis matches bytes,
  // we match characters), preceded by `escaped_namespace` taken literally.
  std::string ToRedisMatch(std::string_view key_namespace) const;
  // An anchored PostgreSQL ARE regular expression accepting exactly the same keys.
  std::string ToPostgresRegex() const;

 private:
  // One element per pattern character: each matches exactly one character, except kAnyRun.
  enum class Kind : std::uint8_t { kChar, kAnyOne, kClass, kAnyRun };
  struct Range {
    char32_t lo;
    char32_t hi;
  };
  struct Element {
    Kind kind = Kind::kChar;
    char32_t c = 0;             // kChar
    std::vector<Range> ranges;  // kClass
    bool negated = false;       // kClass
  };

  static bool MatchesOne(const Element& e, char32_t c);

  std::vector<Element> elements_;
  std::string prefix_;
};

// Escapes every glob metacharacter of `text` so that Redis MATCH takes it literally.
std::string EscapeRedisGlob(std::string_view text);

}  // namespace orchestra::storage
