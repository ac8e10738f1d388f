#include "storage/firestore/encoding.hpp"

#include <array>
#include <cstdint>
#include <cstdio>

#include <openssl/sha.h>

namespace orchestra::storage::firestore {
namespace {

constexpr char kHexUpper[] = "0123456789ABCDEF";
constexpr std::size_t kMaxDocumentIdBytes = 1500;

}  // namespace

std::string KeyToDocumentId(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 8);
  for (std::size_t i = 0; i < key.size(); ++i) {
    const auto b = static_cast<unsigned char>(key[i]);
    if (b <= 0x2F) {
      out.push_back('!');
      out.push_back(static_cast<char>(0x30 + b));
    } else if (b == 0x7E || b == 0x7F) {
      out.push_back('~');
      out.push_back(static_cast<char>('0' + (b - 0x7E)));
    } else if (b == '_' && i == 0) {
      out += "_=";
    } else {
      out.push_back(static_cast<char>(b));
    }
  }
  return out;
}

std::optional<std::string> DocumentIdToKey(std::string_view id) {
  std::string out;
  out.reserve(id.size());
  for (std::size_t i = 0; i < id.size(); ++i) {
    const auto c = static_cast<unsigned char>(id[i]);
    if (c == '!' || c == '~') {
      if (i + 1 >= id.size()) return std::nullopt;
      const auto next = static_cast<unsigned char>(id[++i]);
      if (c == '!' && next >= 0x30 && next <= 0x5F) {
        out.push_back(static_cast<char>(next - 0x30));
      } else if (c == '~' && (next == '0' || next == '1')) {
        out.push_back(static_cast<char>(0x7E + (next - '0')));
      } else {
        return std::nullopt;
      }
    } else if (c == '_' && i == 0) {
      if (id.size() < 2 || id[1] != '=') return std::nullopt;
      out.push_back('_');
      ++i;
    } else if (c <= 0x2F || c == 0x7F) {
      return std::nullopt;  // always escaped
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::string NameToDocumentId(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char ch : name) {
    const auto b = static_cast<unsigned char>(ch);
    const bool plain =
        (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '-';
    if (plain) {
      out.push_back(ch);
    } else {
      out.push_back('~');
      out.push_back(kHexUpper[b >> 4]);
      out.push_back(kHexUpper[b & 0xF]);
    }
  }
  if (out.size() <= kMaxDocumentIdBytes) return out;
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(name.data()), name.size(), digest.data());
  out = "~H";
  for (unsigned char b : digest) {
    out.push_back(kHexUpper[b >> 4]);
    out.push_back(kHexUpper[b & 0xF]);
  }
  return out;
}

std::string FormatTimestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = time_point_cast<milliseconds>(t);
  const auto days = floor<std::chrono::days>(ms);
  const year_month_day ymd(days);
  const hh_mm_ss hms(ms - days);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

std::optional<std::chrono::system_clock::time_point> ParseTimestamp(std::string_view text) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z
  auto digits = [&](std::size_t at, std::size_t n, int& out) {
    if (at + n > text.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (text.size() < 20 || !digits(0, 4, y) || text[4] != '-' || !digits(5, 2, mo) ||
      text[7] != '-' || !digits(8, 2, d) || (text[10] != 'T' && text[10] != 't') ||
      !digits(11, 2, h) || text[13] != ':' || !digits(14, 2, mi) || text[16] != ':' ||
      !digits(17, 2, s)) {
    return std::nullopt;
  }
  std::size_t i = 19;
  std::int64_t micros = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    std::size_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n < 6) micros = micros * 10 + (text[i] - '0');
      ++n;
      ++i;
    }
    if (n == 0 || n > 9) return std::nullopt;
    for (std::size_t k = n; k < 6; ++k)
      micros *= 10;
  }
  if (i + 1 != text.size() || (text[i] != 'Z' && text[i] != 'z')) return std::nullopt;
  const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)),
                           day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return sys_days(ymd) + hours(h) + minutes(mi) + seconds(s) + microseconds(micros);
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=')
    text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

}  // namespace orchestra::storage::firestore
