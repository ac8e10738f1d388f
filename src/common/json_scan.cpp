#include "common/json_scan.hpp"

#include <array>
#include <charconv>

#include "common/text.hpp"
#include "common/utf8.hpp"

namespace orchestra {
namespace json_scan_detail {
namespace {

constexpr int kMaxDepth = 128;

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsHexDigit(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

bool Scanner::String() {
  ++i_;  // the opening quote
  const char* const data = s_.data();
  const std::size_t size = s_.size();
  while (i_ < size) {
    // The common case: a run of plain characters, eight at a time.
    i_ += JsonPlainPrefix(std::string_view(data + i_, size - i_));
    if (i_ >= size) break;
    const auto c = static_cast<unsigned char>(data[i_]);
    if (c == '"') {
      ++i_;
      return true;
    }
    if (c < 0x20) return Fail("control character in a string");
    // A backslash escape.
    if (++i_ >= size) break;
    switch (data[i_]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        ++i_;
        break;
      case 'u':
        if (i_ + 4 >= size) return Fail("truncated \\u escape");
        for (std::size_t k = 1; k <= 4; ++k) {
          if (!IsHexDigit(data[i_ + k])) return Fail("bad \\u escape");
        }
        i_ += 5;
        break;
      default:
        return Fail("bad escape in a string");
    }
  }
  return Fail("unterminated string");
}

bool Scanner::Value(int depth) {
  if (depth > kMaxDepth) return Fail("nesting too deep");
  SkipSpace();
  if (i_ >= s_.size()) return Fail("expected a value");
  const char c = s_[i_];
  switch (c) {
    case '"':
      return String();
    case '{': {
      ++i_;
      SkipSpace();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return true;
      }
      while (true) {
        SkipSpace();
        if (i_ >= s_.size() || s_[i_] != '"') return Fail("expected a member name");
        if (!String()) return false;
        SkipSpace();
        if (i_ >= s_.size() || s_[i_] != ':') return Fail("expected ':'");
        ++i_;
        if (!Value(depth + 1)) return false;
        SkipSpace();
        if (i_ >= s_.size()) return Fail("unterminated object");
        if (s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (s_[i_] == '}') {
          ++i_;
          return true;
        }
        return Fail("expected ',' or '}'");
      }
    }
    case '[': {
      ++i_;
      SkipSpace();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return true;
      }
      while (true) {
        if (!Value(depth + 1)) return false;
        SkipSpace();
        if (i_ >= s_.size()) return Fail("unterminated array");
        if (s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (s_[i_] == ']') {
          ++i_;
          return true;
        }
        return Fail("expected ',' or ']'");
      }
    }
    case 't':
      if (s_.substr(i_, 4) == "true") {
        i_ += 4;
        return true;
      }
      return Fail("bad literal");
    case 'f':
      if (s_.substr(i_, 5) == "false") {
        i_ += 5;
        return true;
      }
      return Fail("bad literal");
    case 'n':
      if (s_.substr(i_, 4) == "null") {
        i_ += 4;
        return true;
      }
      return Fail("bad literal");
    default: {
      // number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
      if (s_[i_] == '-') ++i_;
      if (i_ >= s_.size() || !IsDigit(s_[i_])) return Fail("expected a value");
      if (s_[i_] == '0') {
        ++i_;
      } else {
        while (i_ < s_.size() && IsDigit(s_[i_]))
          ++i_;
      }
      if (i_ < s_.size() && s_[i_] == '.') {
        ++i_;
        if (i_ >= s_.size() || !IsDigit(s_[i_])) return Fail("bad number");
        while (i_ < s_.size() && IsDigit(s_[i_]))
          ++i_;
      }
      if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
        ++i_;
        if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
        if (i_ >= s_.size() || !IsDigit(s_[i_])) return Fail("bad number");
        while (i_ < s_.size() && IsDigit(s_[i_]))
          ++i_;
      }
      return true;
    }
  }
}

}  // namespace json_scan_detail

std::optional<std::size_t> JsonValueEnd(std::string_view text, std::size_t pos) {
  json_scan_detail::Scanner sc(text);
  sc.i_ = pos;
  if (!sc.Value(0)) return std::nullopt;
  return sc.i_;
}

std::optional<std::string> DecodeJsonString(std::string_view raw) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return std::nullopt;
  std::string_view body = raw.substr(1, raw.size() - 2);
  std::string out;
  out.reserve(body.size());
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= body.size()) return std::nullopt;
    switch (body[i]) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        auto hex4 = [&](std::size_t at, unsigned& v) {
          if (at + 4 > body.size()) return false;
          auto [p, ec] = std::from_chars(body.data() + at, body.data() + at + 4, v, 16);
          return ec == std::errc() && p == body.data() + at + 4;
        };
        unsigned cp = 0;
        if (!hex4(i + 1, cp)) return std::nullopt;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < body.size() && body[i + 1] == '\\' &&
            body[i + 2] == 'u') {
          unsigned lo = 0;
          if (hex4(i + 3, lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          }
        }
        // An unpaired surrogate becomes U+FFFD: the decoded text is always valid UTF-8.
        utf8::Append(out, cp);
        break;
      }
      default:
        return std::nullopt;
    }
  }
  return out;
}

std::optional<std::int64_t> JsonInteger(std::string_view raw) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
  if (ec != std::errc() || p != raw.data() + raw.size()) return std::nullopt;
  return v;
}

std::string_view JsonMemberName(std::string_view raw_key, std::string& scratch) {
  if (raw_key.find('\\') == std::string_view::npos) return raw_key;
  scratch.assign(1, '"');
  scratch.append(raw_key);
  scratch += '"';
  auto decoded = DecodeJsonString(scratch);
  scratch = decoded.value_or(std::string());
  return scratch;
}

}  // namespace orchestra
