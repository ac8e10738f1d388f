// storage::Glob (GET /memory/keys?pattern=): the pattern a client sends, matched the same way by
// every backend.
//
// Input: a pattern, then NUL-separated texts to match it against.
//
// Invariants:
// - Matches agrees with a reference reading of the documented syntax (* ? [..] [!..] [^..]
//   ranges and \x, over UTF-8 code points) matched by dynamic programming, and Parse accepts
//   what the reference can read (and only valid UTF-8 up to kMaxPatternBytes);
// - every match starts with literal_prefix();
// - every match (behind a namespace) matches ToRedisMatch, read as Redis reads a MATCH pattern;
// - on ASCII, ToPostgresRegex read as a regular expression accepts exactly the matches.
#include "storage/glob.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "common/utf8.hpp"
#include "fuzz/fuzz_support.hpp"

namespace {

using orchestra::fuzz::Shown;

struct Element {
  enum Kind { kChar, kAny, kClass, kRun } kind = kChar;
  char32_t c = 0;
  std::vector<std::pair<char32_t, char32_t>> ranges;
  bool negated = false;
};

// The syntax as glob.hpp documents it: an empty pattern is "*"; in a class, a '-' between two
// characters (the second not the closing ']') makes a range, '\' escapes the next character.
std::optional<std::vector<Element>> ReferenceParse(std::string_view pattern) {
  std::u32string p;
  if (!orchestra::utf8::DecodeAll(pattern, p)) return std::nullopt;
  if (p.empty()) p = U"*";
  std::vector<Element> out;
  std::size_t i = 0;
  while (i < p.size()) {
    Element e;
    if (p[i] == '*') {
      e.kind = Element::kRun;
      ++i;
    } else if (p[i] == '?') {
      e.kind = Element::kAny;
      ++i;
    } else if (p[i] == '\\') {
      if (i + 1 == p.size()) return std::nullopt;
      e.c = p[i + 1];
      i += 2;
    } else if (p[i] == '[') {
      e.kind = Element::kClass;
      ++i;
      if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
        e.negated = true;
        ++i;
      }
      auto one = [&](char32_t& c) {
        if (i < p.size() && p[i] == '\\') ++i;
        if (i >= p.size()) return false;
        c = p[i++];
        return true;
      };
      bool closed = false;
      while (i < p.size()) {
        if (p[i] == ']') {
          closed = true;
          ++i;
          break;
        }
        char32_t lo = 0;
        if (!one(lo)) return std::nullopt;
        char32_t hi = lo;
        if (i + 1 < p.size() && p[i] == '-' && p[i + 1] != ']') {
          ++i;
          if (!one(hi)) return std::nullopt;
          if (hi < lo) return std::nullopt;
        }
        e.ranges.emplace_back(lo, hi);
      }
      if (!closed || e.ranges.empty()) return std::nullopt;
    } else {
      e.c = p[i++];
    }
    out.push_back(std::move(e));
  }
  return out;
}

bool ReferenceMatch(const std::vector<Element>& elements, std::string_view text) {
  std::u32string s;
  if (!orchestra::utf8::DecodeAll(text, s)) return false;
  // can[j]: the first k elements match the first j characters.
  std::vector<char> can(s.size() + 1, 0);
  can[0] = 1;
  for (const Element& e : elements) {
    std::vector<char> next(s.size() + 1, 0);
    for (std::size_t j = 0; j <= s.size(); ++j) {
      if (e.kind == Element::kRun) {
        next[j] = can[j] || (j > 0 && next[j - 1]);
        continue;
      }
      if (j == 0 || !can[j - 1]) continue;
      const char32_t c = s[j - 1];
      bool ok = e.kind == Element::kAny || (e.kind == Element::kChar && e.c == c);
      if (e.kind == Element::kClass) {
        bool in = false;
        for (const auto& [lo, hi] : e.ranges)
          in = in || (c >= lo && c <= hi);
        ok = in != e.negated;
      }
      next[j] = ok;
    }
    can.swap(next);
  }
  return can[s.size()];
}

// Redis's MATCH over bytes, for the patterns ToRedisMatch writes: escaped bytes and stars
// (dynamic programming, as ReferenceMatch).
bool RedisMatch(std::string_view pattern, std::string_view text) {
  std::vector<int> tokens;  // a byte, or -1 for a star
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*') {
      tokens.push_back(-1);
      continue;
    }
    if (c == '\\' && i + 1 < pattern.size()) {
      c = pattern[++i];
    } else {
      FUZZ_CHECK(c != '?' && c != '[' && c != ']' && c != '^' && c != '-',
                 "an unescaped metacharacter in a Redis pattern: " + Shown(pattern));
    }
    tokens.push_back(static_cast<unsigned char>(c));
  }
  std::vector<char> can(text.size() + 1, 0);
  can[0] = 1;
  for (int t : tokens) {
    std::vector<char> next(text.size() + 1, 0);
    for (std::size_t j = 0; j <= text.size(); ++j) {
      if (t < 0) {
        next[j] = can[j] || (j > 0 && next[j - 1]);
      } else {
        next[j] = j > 0 && can[j - 1] && static_cast<unsigned char>(text[j - 1]) == t;
      }
    }
    can.swap(next);
  }
  return can[text.size()];
}

bool IsAscii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80 || c == '\n' || c == '\r' || c == '\0') return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = orchestra::fuzz::AsText(data, size);
  const std::size_t nul = input.find('\0');
  const std::string_view pattern = input.substr(0, nul);
  std::vector<std::string_view> texts;
  if (nul != std::string_view::npos) {
    std::string_view rest = input.substr(nul + 1);
    while (true) {
      const std::size_t next = rest.find('\0');
      texts.push_back(rest.substr(0, next));
      if (next == std::string_view::npos) break;
      rest = rest.substr(next + 1);
    }
  }

  const auto glob = orchestra::storage::Glob::Parse(pattern);
  const auto reference = pattern.size() <= orchestra::storage::kMaxPatternBytes
                             ? ReferenceParse(pattern)
                             : std::nullopt;
  FUZZ_CHECK(glob.has_value() == reference.has_value(),
             std::string("Parse ") + (glob ? "accepts" : "refuses (" + glob.error().message + ")") +
                 ", the reference " + (reference ? "reads" : "refuses") + ": " + Shown(pattern));
  if (!glob) return 0;
  const std::string redis = glob->ToRedisMatch("ns:*[x]");
  std::optional<std::regex> regex;
  if (IsAscii(pattern) && pattern.size() <= 64) {
    regex.emplace(glob->ToPostgresRegex(), std::regex::ECMAScript);
  }
  for (std::string_view text : texts) {
    const bool matches = glob->Matches(text);
    FUZZ_CHECK(matches == ReferenceMatch(*reference, text),
               "Matches(" + Shown(pattern) + ", " + Shown(text) + ") = " + std::to_string(matches));
    if (!matches) continue;
    FUZZ_CHECK(text.substr(0, glob->literal_prefix().size()) == glob->literal_prefix(),
               "a match without the literal prefix " + Shown(glob->literal_prefix()));
    if (text.size() <= 64) {
      FUZZ_CHECK(RedisMatch(redis, "ns:*[x]" + std::string(text)),
                 "Redis pattern " + Shown(redis) + " misses " + Shown(text));
    }
  }
  if (regex) {
    for (std::string_view text : texts) {
      if (!IsAscii(text) || text.size() > 64) continue;
      FUZZ_CHECK(
          std::regex_search(std::string(text), *regex) == glob->Matches(text),
          "regex " + Shown(glob->ToPostgresRegex()) + " and the glob differ on " + Shown(text));
    }
  }
  return 0;
}
