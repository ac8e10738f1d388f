// The text helpers of common/text.hpp that read client or config input: PercentDecode (paths
// and query strings), the JSON string escaper (every encoder), and durations and sizes (config
// and environment values).
//
// Invariants:
// - PercentDecode is never longer than its input, agrees with a reference decoder (strict: a
//   '%' without two hex digits fails), and undoes a percent-encoding of any bytes;
// - JsonPlainPrefix stops at the first byte JSON must escape, and AppendJsonEscaped makes a JSON
//   string that the scanner and Boost.JSON both read back as the original bytes;
// - a parsed duration is non-negative and survives FormatDuration; a parsed size is the number
//   times its unit; neither is undefined behaviour on any text (UBSan watches the casts);
// - EditDistance is a distance (symmetric, bounded by the lengths).
#include "common/text.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "common/json_scan.hpp"
#include "fuzz/fuzz_support.hpp"

namespace {

using orchestra::PlusSign;
using orchestra::fuzz::Shown;

std::optional<std::string> ReferenceDecode(std::string_view text, bool plus_is_space) {
  auto value = [](char c) -> int {
    const std::string_view digits = "0123456789abcdef";
    const auto at = digits.find(static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c));
    return at == std::string_view::npos ? -1 : static_cast<int>(at);
  };
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '%') {
      if (text.size() - i < 3 || value(text[i + 1]) < 0 || value(text[i + 2]) < 0) {
        return std::nullopt;
      }
      out += static_cast<char>(value(text[i + 1]) * 16 + value(text[i + 2]));
      i += 3;
    } else {
      out += plus_is_space && text[i] == '+' ? ' ' : text[i];
      ++i;
    }
  }
  return out;
}

std::string PercentEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += '%';
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
  }
  return out;
}

void CheckPercent(std::string_view text) {
  for (const PlusSign plus : {PlusSign::kLiteral, PlusSign::kSpace}) {
    const auto decoded = orchestra::PercentDecode(text, plus);
    const auto expected = ReferenceDecode(text, plus == PlusSign::kSpace);
    FUZZ_CHECK(decoded == expected, "PercentDecode(" + Shown(text) +
                                        ") = " + (decoded ? Shown(*decoded) : "nullopt") +
                                        ", expected " + (expected ? Shown(*expected) : "nullopt"));
    if (decoded) FUZZ_CHECK(decoded->size() <= text.size(), "decoded longer than the input");
    FUZZ_CHECK(orchestra::PercentDecode(PercentEncode(text), plus) == std::string(text),
               "decode(encode(x)) != x");
  }
}

void CheckJsonEscape(std::string_view text) {
  std::size_t plain = 0;
  while (plain < text.size()) {
    const auto c = static_cast<unsigned char>(text[plain]);
    if (c < 0x20 || c == '"' || c == '\\') break;
    ++plain;
  }
  FUZZ_CHECK(orchestra::JsonPlainPrefix(text) == plain,
             "JsonPlainPrefix " + std::to_string(orchestra::JsonPlainPrefix(text)) + ", expected " +
                 std::to_string(plain) + ": " + Shown(text));
  std::string quoted = "\"";
  orchestra::AppendJsonEscaped(quoted, text);
  quoted += '"';
  const auto kind =
      orchestra::ScanJson(quoted, [](std::string_view, const orchestra::JsonSpan&) {});
  FUZZ_CHECK(kind == orchestra::JsonKind::kString, "not a JSON string: " + Shown(quoted));
  FUZZ_CHECK(orchestra::DecodeJsonString(quoted) == std::string(text),
             "the escaped string decodes to other bytes: " + Shown(quoted));
  boost::json::parse_options options;
  options.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(quoted, ec, {}, options);
  FUZZ_CHECK(!ec && v.is_string() && v.get_string() == text,
             "Boost.JSON reads the escaped string otherwise: " + Shown(quoted));
}

void CheckDurationAndSize(std::string_view text) {
  if (const auto d = orchestra::ParseDuration(text)) {
    FUZZ_CHECK(d->count() >= 0, "negative duration from " + Shown(text));
    const std::string formatted = orchestra::FormatDuration(*d);
    FUZZ_CHECK(orchestra::ParseDuration(formatted) == *d,
               "FormatDuration(" + Shown(text) + ") = " + formatted + " reads back otherwise");
  }
  if (const auto size = orchestra::ParseSize(text)) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
      ++digits;
    FUZZ_CHECK(digits > 0, "a size without digits: " + Shown(text));
    const std::string_view unit = text.substr(digits);
    const std::uint64_t scale = unit == "KiB"                  ? 1ULL << 10
                                : unit == "MiB"                ? 1ULL << 20
                                : unit == "GiB"                ? 1ULL << 30
                                : unit == "KB" || unit == "kB" ? 1000
                                : unit == "MB"                 ? 1000000
                                : unit == "GB"                 ? 1000000000
                                                               : 1;
    FUZZ_CHECK(
        *size % scale == 0 &&
            std::to_string(*size / scale) ==
                std::string(text.substr(0, digits))
                    .erase(0, std::min(text.substr(0, digits).find_first_not_of('0'), digits - 1)),
        "ParseSize(" + Shown(text) + ") = " + std::to_string(*size));
  }
}

void CheckEditDistance(std::string_view text) {
  const std::string_view a = text.substr(0, std::min<std::size_t>(text.size() / 2, 64));
  const std::string_view b = text.substr(a.size(), 64);
  const std::size_t d = orchestra::EditDistance(a, b);
  FUZZ_CHECK(d == orchestra::EditDistance(b, a), "EditDistance is not symmetric");
  FUZZ_CHECK(d <= std::max(a.size(), b.size()) &&
                 d >= std::max(a.size(), b.size()) - std::min(a.size(), b.size()),
             "EditDistance out of bounds");
  FUZZ_CHECK(orchestra::EditDistance(a, a) == 0, "EditDistance(a, a) != 0");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = orchestra::fuzz::AsText(data, size);
  CheckPercent(text);
  CheckJsonEscape(text);
  CheckDurationAndSize(text);
  CheckEditDistance(text);
  return 0;
}
