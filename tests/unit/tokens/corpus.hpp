#pragma once

#include <cstdint>
#include <string>
#include <vector>

// A deterministic corpus of varied text for comparing the tokenizers with js-tiktoken: prose,
// code, numbers, whitespace runs, CJK, emoji, combining marks, mixed scripts, adversarial mixes
// of the characters the split patterns tell apart, long pieces (the heap merge), special-token
// text, and random code points. Every string is valid UTF-8 (JSON can carry it to Node.js).
namespace orchestra::tokens::testing {

enum class Family : std::uint8_t {
  kProse,
  kCode,
  kNumbers,
  kWhitespace,
  kCjk,
  kEmoji,
  kCombiningMarks,
  kMixedScripts,
  kAdversarial,
  kLongPieces,
  kSpecialTokenText,
  kAnyCodePoint,  // depends on the Unicode version of both sides
};

const char* FamilyName(Family family);

struct Sample {
  Family family;
  std::string text;
};

std::vector<Sample> MakeCorpus();

// Appends the UTF-8 form of a code point (not a surrogate).
void AppendUtf8(std::string& out, char32_t cp);

}  // namespace orchestra::tokens::testing
