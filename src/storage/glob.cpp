#include "storage/glob.hpp"

#include <algorithm>

#include "common/utf8.hpp"

namespace orchestra::storage {
namespace {

Error BadPattern(std::string message) {
  return MakeError(ErrorCode::kInvalidRequest, "invalid pattern: " + std::move(message), "pattern");
}

bool IsAsciiAlnum(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// A character inside a PostgreSQL ARE, outside or inside brackets: every ASCII character that is
// not alphanumeric is escaped ("\" + non-alphanumeric is that character in an ARE).
void AppendRegexChar(std::string& out, char32_t c) {
  if (c < 0x80 && !IsAsciiAlnum(c)) out.push_back('\\');
  utf8::Append(out, c);
}

}  // namespace

std::string EscapeRedisGlob(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\' || c == '^' || c == '-') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

Result<Glob> Glob::Parse(std::string_view pattern) {
  if (pattern.size() > kMaxPatternBytes) {
    return BadPattern("longer than " + std::to_string(kMaxPatternBytes) + " bytes");
  }
  std::u32string chars;
  if (!utf8::DecodeAll(pattern, chars)) return BadPattern("not valid UTF-8");
  if (chars.empty()) chars.push_back(U'*');

  Glob glob;
  bool in_prefix = true;
  std::size_t i = 0;
  while (i < chars.size()) {
    const char32_t c = chars[i];
    Element e;
    if (c == '*') {
      e.kind = Kind::kAnyRun;
      ++i;
      // Consecutive stars are one star.
      if (!glob.elements_.empty() && glob.elements_.back().kind == Kind::kAnyRun) continue;
    } else if (c == '?') {
      e.kind = Kind::kAnyOne;
      ++i;
    } else if (c == '\\') {
      if (i + 1 >= chars.size()) return BadPattern("ends with a lone backslash");
      e.kind = Kind::kChar;
      e.c = chars[i + 1];
      i += 2;
    } else if (c == '[') {
      e.kind = Kind::kClass;
      std::size_t j = i + 1;
      if (j < chars.size() && (chars[j] == '!' || chars[j] == '^')) {
        e.negated = true;
        ++j;
      }
      bool closed = false;
      while (j < chars.size()) {
        char32_t lo = chars[j];
        if (lo == ']') {
          closed = true;
          ++j;
          break;
        }
        if (lo == '\\') {
          if (j + 1 >= chars.size()) return BadPattern("ends with a lone backslash");
          lo = chars[++j];
        }
        ++j;
        char32_t hi = lo;
        if (j + 1 < chars.size() && chars[j] == '-' && chars[j + 1] != ']') {
          hi = chars[j + 1];
          j += 2;
          if (hi == '\\') {
            if (j >= chars.size()) return BadPattern("ends with a lone backslash");
            hi = chars[j++];
          }
          if (hi < lo) return BadPattern("reversed range in [...]");
        }
        e.ranges.push_back({lo, hi});
      }
      if (!closed) return BadPattern("unterminated [");
      if (e.ranges.empty()) return BadPattern("empty []");
      i = j;
    } else {
      e.kind = Kind::kChar;
      e.c = c;
      ++i;
    }
    if (e.kind == Kind::kChar && in_prefix) {
      utf8::Append(glob.prefix_, e.c);
    } else {
      in_prefix = false;
    }
    glob.elements_.push_back(std::move(e));
  }
  return glob;
}

bool Glob::matches_everything() const {
  return elements_.size() == 1 && elements_[0].kind == Kind::kAnyRun;
}

bool Glob::MatchesOne(const Element& e, char32_t c) {
  switch (e.kind) {
    case Kind::kChar:
      return e.c == c;
    case Kind::kAnyOne:
      return true;
    case Kind::kClass: {
      const bool in = std::any_of(e.ranges.begin(), e.ranges.end(),
                                  [c](const Range& r) { return c >= r.lo && c <= r.hi; });
      return in != e.negated;
    }
    case Kind::kAnyRun:
      break;
  }
  return false;
}

bool Glob::Matches(std::string_view text) const {
  std::u32string s;
  if (!utf8::DecodeAll(text, s)) return false;
  // Greedy matching with one backtrack point (the last star): O(pattern × text).
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::u32string::npos;
  std::size_t star_t = 0;
  while (t < s.size()) {
    if (p < elements_.size() && elements_[p].kind == Kind::kAnyRun) {
      star = p++;
      star_t = t;
    } else if (p < elements_.size() && MatchesOne(elements_[p], s[t])) {
      ++p;
      ++t;
    } else if (star != std::u32string::npos) {
      p = star + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < elements_.size() && elements_[p].kind == Kind::kAnyRun)
    ++p;
  return p == elements_.size();
}

std::string Glob::ToRedisMatch(std::string_view key_namespace) const {
  std::string out = EscapeRedisGlob(key_namespace);
  bool last_was_star = false;
  for (const Element& e : elements_) {
    if (e.kind == Kind::kChar) {
      std::string one;
      utf8::Append(one, e.c);
      out += EscapeRedisGlob(one);
      last_was_star = false;
    } else if (!last_was_star) {
      // ?, [...] and * all widen to * (Redis counts bytes, a character may be several).
      out.push_back('*');
      last_was_star = true;
    }
  }
  return out;
}

std::string Glob::ToPostgresRegex() const {
  std::string out = "^";
  for (const Element& e : elements_) {
    switch (e.kind) {
      case Kind::kChar:
        AppendRegexChar(out, e.c);
        break;
      case Kind::kAnyOne:
        out += ".";
        break;
      case Kind::kAnyRun:
        out += ".*";
        break;
      case Kind::kClass:
        out += e.negated ? "[^" : "[";
        for (const Range& r : e.ranges) {
          AppendRegexChar(out, r.lo);
          if (r.hi != r.lo) {
            out.push_back('-');
            AppendRegexChar(out, r.hi);
          }
        }
        out += "]";
        break;
    }
  }
  out += "$";
  return out;
}

}  // namespace orchestra::storage
