#include "tokens/split.hpp"

#include <initializer_list>

#include "tokens/unicode_classes.hpp"

namespace orchestra::tokens {
namespace {

using C = CharClass;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

// Sets of classes as bit masks: a run of characters "in a set" is one loop over bytes.
using ClassSet = unsigned;
constexpr ClassSet Set(std::initializer_list<C> classes) {
  ClassSet set = 0;
  for (const C c : classes) {
    set |= 1u << static_cast<unsigned>(c);
  }
  return set;
}
constexpr bool In(ClassSet set, C c) {
  return (set >> static_cast<unsigned>(c)) & 1u;
}

constexpr ClassSet kLetter = Set({C::kUpper, C::kLower, C::kOtherLetter});  // \p{L}
constexpr ClassSet kSpace = Set({C::kSpace, C::kNewline});                  // \s
constexpr ClassSet kPunct = Set({C::kOther, C::kMark});                     // [^\s\p{L}\p{N}]
constexpr ClassSet kPrefix = Set({C::kOther, C::kMark, C::kSpace});         // [^\r\n\p{L}\p{N}]
// o200k_base's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}], and their overlap.
constexpr ClassSet kUpperSet = Set({C::kUpper, C::kOtherLetter, C::kMark});
constexpr ClassSet kLowerSet = Set({C::kLower, C::kOtherLetter, C::kMark});
constexpr ClassSet kBothSets = Set({C::kOtherLetter, C::kMark});

class Text {
 public:
  explicit Text(std::string_view text)
      : s_(reinterpret_cast<const unsigned char*>(text.data())), n_(text.size()) {}

  std::size_t Size() const { return n_; }
  Utf8Char At(std::size_t i) const {
    const unsigned char b = s_[i];
    if (b < 0x80) [[likely]] {
      return {b, 1, AsciiClass(b)};
    }
    return DecodeUtf8(s_ + i, n_ - i);
  }
  static C AsciiClass(unsigned char b) { return static_cast<C>(unicode_detail::kBlocks[b] - '0'); }

  // Where the run of characters in `set` that starts at i ends.
  std::size_t RunEnd(std::size_t i, ClassSet set) const {
    while (i < n_) {
      const unsigned char b = s_[i];
      if (b < 0x80) {
        if (!In(set, AsciiClass(b))) break;
        ++i;
        continue;
      }
      const Utf8Char c = DecodeUtf8(s_ + i, n_ - i);
      if (!In(set, c.cls)) break;
      i += c.len;
    }
    return i;
  }

  // The length of 's|'t|'re|'ve|'m|'ll|'d (ASCII letters in either case) at i, or 0.
  // (x | 0x20) == 's' holds exactly for 'S' and 's'.
  std::size_t Contraction(std::size_t i) const {
    if (i + 1 >= n_ || s_[i] != '\'') return 0;
    const unsigned a = s_[i + 1] | 0x20u;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= n_) return 0;
    const unsigned b = s_[i + 2] | 0x20u;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  }

  // \p{N}{1,3} at i, where a number starts.
  std::size_t NumberEnd(std::size_t i) const {
    for (int k = 0; k < 3 && i < n_; ++k) {
      const Utf8Char c = At(i);
      if (c.cls != C::kNumber) break;
      i += c.len;
    }
    return i;
  }

  // ` ?[^\s\p{L}\p{N}]+` followed by any of the `tail` bytes, at p; kNone when it does not match.
  template <class Tail>
  std::size_t PunctEnd(std::size_t p, Tail tail) const {
    std::size_t q = p;
    if (s_[p] == ' ' && p + 1 < n_ && In(kPunct, At(p + 1).cls)) q = p + 1;
    if (!In(kPunct, At(q).cls)) return kNone;
    std::size_t i = RunEnd(q, kPunct);
    while (i < n_ && tail(s_[i])) {
      ++i;
    }
    return i;
  }

  // \s*[\r\n]+ | \s+(?!\S) | \s+ at p, where a space starts.
  std::size_t WhitespaceEnd(std::size_t p) const {
    std::size_t i = p;
    std::size_t last_start = p;
    std::size_t newline_end = kNone;
    while (i < n_) {
      const Utf8Char c = At(i);
      if (!In(kSpace, c.cls)) break;
      if (c.cls == C::kNewline) newline_end = i + c.len;
      last_start = i;
      i += c.len;
    }
    // \s*[\r\n]+: \s* backs off to the last newline of the run, [\r\n]+ takes it.
    if (newline_end != kNone) return newline_end;
    // \s+(?!\S): the whole run at the end of the text; otherwise all of it but its last
    // character, which then prefixes the next word or punctuation.
    if (i == n_) return i;
    if (last_start > p) return last_start;
    // \s+: a single space before a non-space that could not take it as a prefix.
    return i;
  }

  // o200k_base: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(contraction)? at q.
  // The greedy first run takes every upper-set character; if no lower-case letter follows, the
  // regex backs off to the last character that is in both sets and lets the second run take
  // just that one.
  std::size_t LowerWordEnd(std::size_t q) const {
    std::size_t i = q;
    std::size_t last_both_end = kNone;
    while (i < n_) {
      const Utf8Char c = At(i);
      if (!In(kUpperSet, c.cls)) break;
      i += c.len;
      if (In(kBothSets, c.cls)) last_both_end = i;
    }
    std::size_t end;
    if (i < n_ && At(i).cls == C::kLower) {
      end = RunEnd(i, kLowerSet);
    } else if (last_both_end != kNone) {
      end = last_both_end;
    } else {
      return kNone;
    }
    return end + Contraction(end);
  }

  // o200k_base: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(contraction)? at q.
  std::size_t UpperWordEnd(std::size_t q) const {
    if (q >= n_ || !In(kUpperSet, At(q).cls)) return kNone;
    const std::size_t end = RunEnd(RunEnd(q, kUpperSet), kLowerSet);
    return end + Contraction(end);
  }

 private:
  const unsigned char* s_;
  std::size_t n_;
};

bool IsNewlineByte(unsigned char b) {
  return b == '\r' || b == '\n';
}
bool IsNewlineOrSlashByte(unsigned char b) {
  return b == '\r' || b == '\n' || b == '/';
}

}  // namespace

std::size_t Cl100kPieceEnd(std::string_view text, std::size_t pos) {
  const Text t(text);
  const Utf8Char c0 = t.At(pos);
  if (c0.cp == '\'') {
    if (const std::size_t k = t.Contraction(pos)) return pos + k;
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (In(kLetter, c0.cls)) return t.RunEnd(pos + c0.len, kLetter);
  if (In(kPrefix, c0.cls) && pos + c0.len < t.Size()) {
    const Utf8Char c1 = t.At(pos + c0.len);
    if (In(kLetter, c1.cls)) return t.RunEnd(pos + c0.len + c1.len, kLetter);
  }
  if (c0.cls == C::kNumber) return t.NumberEnd(pos);
  if (const std::size_t end = t.PunctEnd(pos, IsNewlineByte); end != kNone) return end;
  return t.WhitespaceEnd(pos);
}

std::size_t O200kPieceEnd(std::string_view text, std::size_t pos) {
  const Text t(text);
  const Utf8Char c0 = t.At(pos);
  // The two word alternatives in order, each first with its optional prefix character, then
  // without it (which matters when that character is a combining mark).
  const bool prefix = In(kPrefix, c0.cls);
  std::size_t end = kNone;
  if (prefix) end = t.LowerWordEnd(pos + c0.len);
  if (end == kNone) end = t.LowerWordEnd(pos);
  if (end == kNone && prefix) end = t.UpperWordEnd(pos + c0.len);
  if (end == kNone) end = t.UpperWordEnd(pos);
  if (end != kNone) return end;
  if (c0.cls == C::kNumber) return t.NumberEnd(pos);
  if (end = t.PunctEnd(pos, IsNewlineOrSlashByte); end != kNone) return end;
  return t.WhitespaceEnd(pos);
}

}  // namespace orchestra::tokens
