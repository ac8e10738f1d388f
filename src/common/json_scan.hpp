#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// A validating, allocation-free single pass over JSON text that reports where the top-level
// object's members are, without building a document. The gateway's hot path uses it to read
// `model` and `stream` from a request it forwards untouched, and `usage` from a response it
// forwards untouched (DESIGN.md §5: no parse-and-reserialise on the hot path).
namespace orchestra {

enum class JsonKind : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

struct JsonSpan {
  std::size_t begin = 0;  // first byte of the value
  std::size_t end = 0;    // one past its last byte (a string's span includes its quotes)
  JsonKind kind = JsonKind::kNull;
  bool present = false;

  std::string_view In(std::string_view text) const { return text.substr(begin, end - begin); }
};

struct JsonScanError {
  std::size_t offset = 0;
  const char* what = "";
};

namespace json_scan_detail {
class Scanner {
 public:
  explicit Scanner(std::string_view text) : s_(text) {}
  bool Value(int depth);
  bool String();
  void SkipSpace() {
    // Most tokens follow their separator directly: one compare and out.
    while (i_ < s_.size() && static_cast<unsigned char>(s_[i_]) <= ' ' &&
           (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) {
      ++i_;
    }
  }
  bool AtEnd() const { return i_ == s_.size(); }
  bool Fail(const char* what) {
    if (error_.what[0] == '\0') error_ = {i_, what};
    return false;
  }
  std::string_view s_;
  std::size_t i_ = 0;
  JsonScanError error_{};
};
}  // namespace json_scan_detail

// Validates `text` as one JSON value. When it is an object, calls
// `on_member(std::string_view raw_key, const JsonSpan& value)` for each top-level member (the
// key as written, escapes not decoded — compare it with plain ASCII names). Returns the
// top-level kind, or the error with its byte offset. With `end`, text may follow the value
// (JSON embedded in other text): `*end` is where the value ended.
template <class OnMember>
std::optional<JsonKind> ScanJson(std::string_view text, OnMember&& on_member,
                                 JsonScanError* error = nullptr, std::size_t* end = nullptr);

// Where the JSON value starting at `pos` (after optional whitespace) ends, when it is well
// formed; for reading one value inside text that is not otherwise validated.
std::optional<std::size_t> JsonValueEnd(std::string_view text, std::size_t pos);

// The text of a JSON string value (quotes included in `raw`), escapes decoded.
std::optional<std::string> DecodeJsonString(std::string_view raw);

// A member name as ScanJson reports it (without quotes, escapes not decoded), decoded: the name
// itself when it has no escape (no allocation, the common case), else its decoding in
// `scratch` ("mod\u0065l" is "model"; an undecodable name decodes to ""). Compare member names
// through this, or an escaped spelling slips past a check the plain one meets.
std::string_view JsonMemberName(std::string_view raw_key, std::string& scratch);
// A JSON number value as an integer, when it is one.
std::optional<std::int64_t> JsonInteger(std::string_view raw);

// Implementation.
template <class OnMember>
std::optional<JsonKind> ScanJson(std::string_view text, OnMember&& on_member, JsonScanError* error,
                                 std::size_t* end) {
  using json_scan_detail::Scanner;
  Scanner sc(text);
  auto fail = [&]() -> std::optional<JsonKind> {
    if (error != nullptr) *error = sc.error_;
    return std::nullopt;
  };
  sc.SkipSpace();
  if (sc.AtEnd()) {
    sc.Fail("empty document");
    return fail();
  }
  if (text[sc.i_] != '{') {
    const char c = text[sc.i_];
    if (!sc.Value(0)) return fail();
    if (end != nullptr) *end = sc.i_;
    sc.SkipSpace();
    if (end == nullptr && !sc.AtEnd()) {
      sc.Fail("unexpected text after the JSON value");
      return fail();
    }
    switch (c) {
      case '[':
        return JsonKind::kArray;
      case '"':
        return JsonKind::kString;
      case 't':
      case 'f':
        return JsonKind::kBool;
      case 'n':
        return JsonKind::kNull;
      default:
        return JsonKind::kNumber;
    }
  }
  ++sc.i_;
  sc.SkipSpace();
  if (!sc.AtEnd() && text[sc.i_] == '}') {
    ++sc.i_;
  } else {
    while (true) {
      sc.SkipSpace();
      if (sc.AtEnd() || text[sc.i_] != '"') {
        sc.Fail("expected a member name");
        return fail();
      }
      const std::size_t key_begin = sc.i_ + 1;
      if (!sc.String()) return fail();
      const std::string_view key = text.substr(key_begin, sc.i_ - 1 - key_begin);
      sc.SkipSpace();
      if (sc.AtEnd() || text[sc.i_] != ':') {
        sc.Fail("expected ':'");
        return fail();
      }
      ++sc.i_;
      sc.SkipSpace();
      JsonSpan value;
      value.begin = sc.i_;
      if (sc.AtEnd()) {
        sc.Fail("expected a value");
        return fail();
      }
      switch (text[sc.i_]) {
        case '{':
          value.kind = JsonKind::kObject;
          break;
        case '[':
          value.kind = JsonKind::kArray;
          break;
        case '"':
          value.kind = JsonKind::kString;
          break;
        case 't':
        case 'f':
          value.kind = JsonKind::kBool;
          break;
        case 'n':
          value.kind = JsonKind::kNull;
          break;
        default:
          value.kind = JsonKind::kNumber;
      }
      if (!sc.Value(1)) return fail();
      value.end = sc.i_;
      value.present = true;
      on_member(key, value);
      sc.SkipSpace();
      if (sc.AtEnd()) {
        sc.Fail("unterminated object");
        return fail();
      }
      if (text[sc.i_] == ',') {
        ++sc.i_;
        continue;
      }
      if (text[sc.i_] == '}') {
        ++sc.i_;
        break;
      }
      sc.Fail("expected ',' or '}'");
      return fail();
    }
  }
  if (end != nullptr) {
    *end = sc.i_;
    return JsonKind::kObject;
  }
  sc.SkipSpace();
  if (!sc.AtEnd()) {
    sc.Fail("unexpected text after the JSON value");
    return fail();
  }
  return JsonKind::kObject;
}

}  // namespace orchestra
