#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace orchestra {

// "250ms", "8s", "5m", "1h", "100us", "0" → a duration; nullopt when malformed or negative.
std::optional<std::chrono::nanoseconds> ParseDuration(std::string_view text);
// The inverse, choosing the largest unit that keeps the value whole ("8s", "250ms").
std::string FormatDuration(std::chrono::nanoseconds d);

// "8388608", "8MiB", "512KiB", "1GiB", "10MB" → bytes; nullopt when malformed.
std::optional<std::uint64_t> ParseSize(std::string_view text);

// Levenshtein distance, for "did you mean ...?" suggestions.
std::size_t EditDistance(std::string_view a, std::string_view b);
// The candidate closest to `word`, when it is close enough to be a plausible typo.
std::optional<std::string_view> ClosestMatch(std::string_view word,
                                             std::span<const std::string_view> candidates);

// Lower-case hex of the bytes.
std::string HexEncode(std::span<const std::uint8_t> bytes);
bool IsHex(std::string_view text);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// `s` with ASCII letters lowered (other bytes as they are).
std::string AsciiLower(std::string_view s);
// `s` without leading and trailing spaces and tabs (HTTP's optional whitespace).
std::string_view TrimOws(std::string_view s);

// Percent-decoding (RFC 3986 §2.1), strict: nullopt when a '%' is not followed by two hex
// digits, so that "%zz" or a lone "%" is refused rather than taken literally. In a form-encoded
// query component ('+' means a space, as curl --data-urlencode, Python's urlencode and
// URLSearchParams write it) pass kSpace; in a path, '+' stays '+'.
enum class PlusSign : std::uint8_t { kLiteral, kSpace };
std::optional<std::string> PercentDecode(std::string_view text, PlusSign plus = PlusSign::kLiteral);

// The length of the prefix of `text` that needs no JSON escaping: no '"', no '\\' and no
// control character. Eight bytes at a time.
std::size_t JsonPlainPrefix(std::string_view text);

// Appends `text` as the contents of a JSON string (without the quotes), escaping what JSON
// requires and any control character.
void AppendJsonEscaped(std::string& out, std::string_view text);

// `text` as a JSON string, quotes included.
std::string JsonQuoted(std::string_view text);

}  // namespace orchestra
