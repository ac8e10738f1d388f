#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// UTF-8, the one implementation: validation (every request body, stored names, documents),
// decoding and encoding (globs, JSON escapes, text processing). A "code point boundary" is any
// position whose byte is not a continuation byte (10xxxxxx): cutting there never splits a
// well-formed sequence, and on malformed input it is still a cut between bytes that decode to
// U+FFFD on their own.
namespace orchestra::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

inline bool IsContinuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// The largest boundary ≤ pos (pos itself when it is one, or text.size()).
std::size_t FloorBoundary(std::string_view text, std::size_t pos);
// The smallest boundary ≥ pos.
std::size_t CeilBoundary(std::string_view text, std::size_t pos);

// The number of code points (each malformed byte counts as one).
std::size_t CountCodePoints(std::string_view text);

// The byte offset after `count` code points from `from`, or text.size().
std::size_t AdvanceCodePoints(std::string_view text, std::size_t from, std::size_t count);

// Decodes the code point at `pos`; `length` receives its byte length (1 for a malformed byte,
// which decodes as U+FFFD). Rejects overlong forms, surrogates and values past U+10FFFF.
char32_t Decode(std::string_view text, std::size_t pos, std::size_t& length);

// Appends the UTF-8 encoding of `cp` (U+FFFD for a surrogate or a value past U+10FFFF).
void Append(std::string& out, char32_t cp);

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF), without
// allocating; runs of ASCII eight bytes at a time.
bool IsValid(std::string_view text);

// Every code point of valid UTF-8 into `out`; false (and `out` unspecified) when `text` is not
// valid.
bool DecodeAll(std::string_view text, std::u32string& out);

// `text` with every malformed sequence replaced by U+FFFD (a copy only when needed is the
// caller's choice: check IsValid first).
std::string ToValid(std::string_view text);

}  // namespace orchestra::utf8
