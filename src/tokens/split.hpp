#pragma once

#include <cstddef>
#include <string_view>

// The pre-tokenisers of cl100k_base and o200k_base: the text is cut into pieces by the published
// split regex before byte-pair encoding, and no token crosses a piece boundary. Internal to the
// tokens area; exposed for tests.
//
// Each function is a hand-written matcher equivalent to js-tiktoken's pattern (ECMAScript regex,
// `u` flag, matchAll) at `pos`: it returns where the piece that starts at `pos` ends. Every
// position starts a piece (the alternatives cover every character), so pieces tile the text.
// Requires pos < text.size(). Invalid UTF-8 bytes are kOther characters (unicode_classes.hpp).
//
// cl100k_base:
//   's|'t|'re|'ve|'m|'ll|'d  (ASCII either case) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3} |
//    ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
// o200k_base:
//   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(contraction)? |
//   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(contraction)? |
//   \p{N}{1,3} |  ?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//
// Where these differ from OpenAI's tiktoken (Rust regex): \s is ECMAScript's (U+FEFF is a space,
// U+0085 is not; Rust has it the other way round), the contractions are ASCII only (Rust's (?i)
// also lets 'ſ match 's), and the Unicode version is the class table's (UnicodeVersion()).
// Text with none of U+0085, U+FEFF, 'ſ or characters newer than either Unicode version splits
// identically.
namespace orchestra::tokens {

std::size_t Cl100kPieceEnd(std::string_view text, std::size_t pos);
std::size_t O200kPieceEnd(std::string_view text, std::size_t pos);

using PieceEndFn = std::size_t (*)(std::string_view text, std::size_t pos);

}  // namespace orchestra::tokens
