#include "common/utf8.hpp"

#include <cstring>

namespace orchestra::utf8 {

std::size_t FloorBoundary(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return text.size();
  // A well-formed sequence has at most three continuation bytes; past that the bytes are
  // malformed and any of them is a boundary.
  for (std::size_t back = 0; back < 4 && pos > 0; ++back) {
    if (!IsContinuation(static_cast<unsigned char>(text[pos]))) return pos;
    --pos;
  }
  return pos;
}

std::size_t CeilBoundary(std::string_view text, std::size_t pos) {
  for (std::size_t ahead = 0; ahead < 4 && pos < text.size(); ++ahead) {
    if (!IsContinuation(static_cast<unsigned char>(text[pos]))) return pos;
    ++pos;
  }
  return pos < text.size() ? pos : text.size();
}

std::size_t CountCodePoints(std::string_view text) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t len = 0;
    Decode(text, i, len);
    i += len;
    ++count;
  }
  return count;
}

std::size_t AdvanceCodePoints(std::string_view text, std::size_t from, std::size_t count) {
  std::size_t i = from;
  for (; count > 0 && i < text.size(); --count) {
    std::size_t len = 0;
    Decode(text, i, len);
    i += len;
  }
  return i;
}

char32_t Decode(std::string_view text, std::size_t pos, std::size_t& length) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  const std::size_t left = text.size() - pos;
  length = 1;
  const unsigned char c = p[0];
  if (c < 0x80) return c;
  std::size_t need;
  char32_t cp;
  char32_t min;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
    cp = c & 0x1F;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    cp = c & 0x0F;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    cp = c & 0x07;
    min = 0x10000;
  } else {
    return kReplacement;
  }
  if (left <= need) return kReplacement;
  for (std::size_t i = 1; i <= need; ++i) {
    if (!IsContinuation(p[i])) return kReplacement;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return kReplacement;
  length = need + 1;
  return cp;
}

void Append(std::string& out, char32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacement;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValid(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  while (p < end) {
    // Runs of ASCII, the common case, eight bytes at a time.
    while (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & 0x8080808080808080ull) != 0) break;
      p += 8;
    }
    if (p == end) break;
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;  // bounds of the second byte (overlongs, surrogates, > U+10FFFF)
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < len) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (std::size_t i = 2; i < len; ++i) {
      if (!IsContinuation(p[i])) return false;
    }
    p += len;
  }
  return true;
}

bool DecodeAll(std::string_view text, std::u32string& out) {
  out.clear();
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::size_t len = 0;
    const char32_t cp = Decode(text, i, len);
    // A malformed byte decodes as U+FFFD of length 1; U+FFFD itself is three bytes.
    if (cp == kReplacement && len == 1) return false;
    out.push_back(cp);
    i += len;
  }
  return true;
}

std::string ToValid(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::size_t len = 0;
    const char32_t cp = Decode(text, i, len);
    if (cp == kReplacement && len == 1 && static_cast<unsigned char>(text[i]) >= 0x80)
      Append(out, kReplacement);
    else
      out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

}  // namespace orchestra::utf8
