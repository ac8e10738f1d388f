#pragma once

// A tiny JSON scanner for the test upstream's hot path: it finds top-level members and walks
// arrays as views into the request body, without building a DOM or allocating. It checks the
// structure (strings, nesting, literals, number characters) so that malformed bodies get a 400,
// but it is not a full validator: "1.2.3" passes as a number. Good enough for a test double
// whose inputs come from Orchestra and tests; never use it on the server's own request path.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace orchestra::testing::upstream {

enum class JsonKind : std::uint8_t { kObject, kArray, kString, kNumber, kBool, kNull, kInvalid };

// The kind of a value view (as handed out by ForEachMember / ForEachElement / ScanTopLevel).
JsonKind KindOf(std::string_view value);

// The end of the value that starts at `p` (leading whitespace allowed), or nullptr when the
// value is malformed or nested deeper than 64 levels.
const char* SkipValue(const char* p, const char* end, int depth = 0);
const char* SkipWhitespace(const char* p, const char* end);

// True when `text` is exactly one JSON value, surrounded by optional whitespace.
bool IsSingleValue(std::string_view text);

// Compares an undecoded member key (the characters between the quotes) with `name`; keys with
// escapes are decoded first, so "\u006dodel" matches "model".
bool KeyEquals(std::string_view raw_key, std::string_view name);

// Appends the decoded contents of a string value (quotes included in `value`) to `out`,
// turning \uXXXX escapes (and surrogate pairs) into UTF-8. False when malformed.
bool DecodeString(std::string_view value, std::string& out);

// An integer value, when `value` is a number without fraction or exponent that fits.
std::optional<std::int64_t> ToInt(std::string_view value);
inline bool IsTrue(std::string_view value) {
  return value == "true";
}

namespace detail {
const char* SkipString(const char* p, const char* end);
}

// Calls fn(raw_key, value) for each member of the object view `object`; fn returns false to
// stop early. Returns false when `object` is not a well-formed object.
// `object_end`, when given, receives the end of the object (after a complete walk).
template <class Fn>
bool ForEachMember(std::string_view object, Fn&& fn, const char** object_end = nullptr) {
  const char* p = object.data();
  const char* end = p + object.size();
  p = SkipWhitespace(p, end);
  if (p == end || *p != '{') return false;
  p = SkipWhitespace(p + 1, end);
  if (p != end && *p == '}') {
    if (object_end != nullptr) *object_end = p + 1;
    return true;
  }
  for (;;) {
    if (p == end || *p != '"') return false;
    const char* key_end = detail::SkipString(p, end);
    if (key_end == nullptr) return false;
    std::string_view key(p + 1, static_cast<std::size_t>(key_end - p - 2));
    p = SkipWhitespace(key_end, end);
    if (p == end || *p != ':') return false;
    const char* value_begin = SkipWhitespace(p + 1, end);
    const char* value_end = SkipValue(value_begin, end, 1);
    if (value_end == nullptr) return false;
    if (!fn(key, std::string_view(value_begin, static_cast<std::size_t>(value_end - value_begin))))
      return true;
    p = SkipWhitespace(value_end, end);
    if (p == end) return false;
    if (*p == '}') {
      if (object_end != nullptr) *object_end = p + 1;
      return true;
    }
    if (*p != ',') return false;
    p = SkipWhitespace(p + 1, end);
  }
}

// Calls fn(value) for each element of the array view `array`; like ForEachMember.
template <class Fn>
bool ForEachElement(std::string_view array, Fn&& fn) {
  const char* p = array.data();
  const char* end = p + array.size();
  p = SkipWhitespace(p, end);
  if (p == end || *p != '[') return false;
  p = SkipWhitespace(p + 1, end);
  if (p != end && *p == ']') return true;
  for (;;) {
    const char* value_end = SkipValue(p, end, 1);
    if (value_end == nullptr) return false;
    if (!fn(std::string_view(p, static_cast<std::size_t>(value_end - p)))) return true;
    p = SkipWhitespace(value_end, end);
    if (p == end) return false;
    if (*p == ']') return true;
    if (*p != ',') return false;
    p = SkipWhitespace(p + 1, end);
  }
}

// The value of the top-level member `name` of the object `object`, or an empty view.
std::string_view FindMember(std::string_view object, std::string_view name);

}  // namespace orchestra::testing::upstream
