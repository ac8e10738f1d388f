#include "upstream/json_scan.hpp"

#include <charconv>
#include <cstring>

namespace orchestra::testing::upstream {
namespace {

constexpr int kMaxDepth = 64;

bool IsWhitespace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::uint32_t> ParseHex4(const char* p, const char* end) {
  if (end - p < 4) return std::nullopt;
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    int h = HexValue(p[i]);
    if (h < 0) return std::nullopt;
    v = (v << 4) | static_cast<std::uint32_t>(h);
  }
  return v;
}

void AppendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

const char* SkipLiteral(const char* p, const char* end, std::string_view literal) {
  if (static_cast<std::size_t>(end - p) < literal.size()) return nullptr;
  if (std::memcmp(p, literal.data(), literal.size()) != 0) return nullptr;
  return p + literal.size();
}

const char* SkipNumber(const char* p, const char* end) {
  const char* start = p;
  if (p != end && *p == '-') ++p;
  while (p != end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
                      *p == '+' || *p == '-')) {
    ++p;
  }
  if (p == start || (p - start == 1 && *start == '-')) return nullptr;
  return p;
}

}  // namespace

namespace detail {

const char* SkipString(const char* p, const char* end) {
  // p is at the opening quote.
  ++p;
  while (p != end) {
    auto c = static_cast<unsigned char>(*p);
    if (c == '"') return p + 1;
    if (c == '\\') {
      if (end - p < 2) return nullptr;
      p += 2;
      continue;
    }
    if (c < 0x20) return nullptr;
    ++p;
  }
  return nullptr;
}

}  // namespace detail

const char* SkipWhitespace(const char* p, const char* end) {
  while (p != end && IsWhitespace(*p))
    ++p;
  return p;
}

const char* SkipValue(const char* p, const char* end, int depth) {
  if (depth > kMaxDepth) return nullptr;
  p = SkipWhitespace(p, end);
  if (p == end) return nullptr;
  switch (*p) {
    case '"':
      return detail::SkipString(p, end);
    case '{':
    case '[': {
      const char close = *p == '{' ? '}' : ']';
      const bool is_object = *p == '{';
      p = SkipWhitespace(p + 1, end);
      if (p != end && *p == close) return p + 1;
      for (;;) {
        if (is_object) {
          if (p == end || *p != '"') return nullptr;
          p = detail::SkipString(p, end);
          if (p == nullptr) return nullptr;
          p = SkipWhitespace(p, end);
          if (p == end || *p != ':') return nullptr;
          ++p;
        }
        p = SkipValue(p, end, depth + 1);
        if (p == nullptr) return nullptr;
        p = SkipWhitespace(p, end);
        if (p == end) return nullptr;
        if (*p == close) return p + 1;
        if (*p != ',') return nullptr;
        p = SkipWhitespace(p + 1, end);
      }
    }
    case 't':
      return SkipLiteral(p, end, "true");
    case 'f':
      return SkipLiteral(p, end, "false");
    case 'n':
      return SkipLiteral(p, end, "null");
    default:
      return SkipNumber(p, end);
  }
}

bool IsSingleValue(std::string_view text) {
  const char* end = text.data() + text.size();
  const char* p = SkipValue(text.data(), end, 0);
  return p != nullptr && SkipWhitespace(p, end) == end;
}

JsonKind KindOf(std::string_view value) {
  if (value.empty()) return JsonKind::kInvalid;
  switch (value.front()) {
    case '{':
      return JsonKind::kObject;
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

bool KeyEquals(std::string_view raw_key, std::string_view name) {
  if (raw_key.find('\\') == std::string_view::npos) return raw_key == name;
  std::string decoded;
  std::string quoted;
  quoted.reserve(raw_key.size() + 2);
  quoted += '"';
  quoted += raw_key;
  quoted += '"';
  return DecodeString(quoted, decoded) && decoded == name;
}

bool DecodeString(std::string_view value, std::string& out) {
  if (value.size() < 2 || value.front() != '"' || value.back() != '"') return false;
  const char* p = value.data() + 1;
  const char* end = value.data() + value.size() - 1;
  while (p != end) {
    const char* run = p;
    while (p != end && *p != '\\')
      ++p;
    out.append(run, static_cast<std::size_t>(p - run));
    if (p == end) break;
    if (end - p < 2) return false;
    char esc = p[1];
    p += 2;
    switch (esc) {
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
        auto cp = ParseHex4(p, end);
        if (!cp) return false;
        p += 4;
        std::uint32_t code = *cp;
        if (code >= 0xD800 && code <= 0xDBFF) {
          // A high surrogate must be followed by an escaped low one; a lone one becomes U+FFFD.
          if (end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            auto low = ParseHex4(p + 2, end);
            if (low && *low >= 0xDC00 && *low <= 0xDFFF) {
              code = 0x10000 + ((code - 0xD800) << 10) + (*low - 0xDC00);
              p += 6;
            } else {
              code = 0xFFFD;
            }
          } else {
            code = 0xFFFD;
          }
        } else if (code >= 0xDC00 && code <= 0xDFFF) {
          code = 0xFFFD;
        }
        AppendUtf8(out, code);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

std::optional<std::int64_t> ToInt(std::string_view value) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size()) return std::nullopt;
  return v;
}

std::string_view FindMember(std::string_view object, std::string_view name) {
  std::string_view found;
  ForEachMember(object, [&](std::string_view key, std::string_view value) {
    // The last duplicate wins, as in most JSON parsers.
    if (KeyEquals(key, name)) found = value;
    return true;
  });
  return found;
}

}  // namespace orchestra::testing::upstream
