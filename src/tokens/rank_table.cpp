#include "tokens/rank_table.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace orchestra::tokens {
namespace {

// Ranks share a 32-bit word with the token's length (8 bits).
constexpr std::size_t kMaxTokens = 0x00FFFFFF;
constexpr std::size_t kMaxTokenLength = 0xFF;

constexpr std::array<std::int8_t, 256> kBase64Value = [] {
  std::array<std::int8_t, 256> t{};
  t.fill(-1);
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) {
    t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return t;
}();

// Standard base64 with padding; appends to `out`. False when malformed.
bool DecodeBase64(std::string_view in, std::vector<unsigned char>& out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  std::size_t padding = 0;
  if (in.back() == '=') padding = in[in.size() - 2] == '=' ? 2 : 1;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const unsigned char ch = static_cast<unsigned char>(in[i + k]);
      if (last && k >= 4 - padding) {
        v <<= 6;
        continue;
      }
      const std::int8_t d = kBase64Value[ch];
      if (d < 0) return false;
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    out.push_back(static_cast<unsigned char>(v >> 16));
    if (!last || padding < 2) out.push_back(static_cast<unsigned char>(v >> 8));
    if (!last || padding < 1) out.push_back(static_cast<unsigned char>(v));
  }
  return true;
}

Error DataError(std::string message) {
  return Error(ErrorCode::kUnavailable, std::move(message));
}

}  // namespace

Result<RankTable> RankTable::Parse(std::string_view text, std::size_t expected_count) {
  if (expected_count == 0 || expected_count > kMaxTokens) {
    return DataError("unsupported vocabulary size " + std::to_string(expected_count));
  }
  RankTable table;
  std::fill(std::begin(table.byte_rank_), std::end(table.byte_rank_), kNoRank);
  table.meta_.reserve(expected_count);
  table.pair_rank_.assign(1 << 16, kNoRank);
  table.bytes_.reserve(text.size() / 2);
  std::size_t pos = 0;
  std::size_t line_no = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    auto bad = [&](const char* what) {
      return DataError("line " + std::to_string(line_no) + ": " + what);
    };
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) return bad("expected \"<base64> <rank>\"");
    const std::string_view digits = line.substr(space + 1);
    Rank rank = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), rank);
    if (ec != std::errc() || end != digits.data() + digits.size()) return bad("bad rank");
    if (rank != table.meta_.size()) return bad("ranks are not 0, 1, 2, ... in order");
    if (table.meta_.size() == expected_count) return bad("more tokens than the encoding has");
    const std::size_t offset = table.bytes_.size();
    if (!DecodeBase64(line.substr(0, space), table.bytes_)) return bad("bad base64");
    const std::size_t len = table.bytes_.size() - offset;
    if (len > kMaxTokenLength) return bad("token longer than 255 bytes");
    table.meta_.push_back(static_cast<std::uint32_t>(offset << 8 | len));
    table.max_token_bytes_ = std::max(table.max_token_bytes_, len);
    if (len == 1) table.byte_rank_[table.bytes_[offset]] = rank;
    if (len == 2) {
      Rank& pair = table.pair_rank_[table.bytes_[offset] | (table.bytes_[offset + 1] << 8)];
      if (pair != kNoRank) return DataError("token " + std::to_string(rank) + " appears twice");
      pair = rank;
    }
  }
  if (table.meta_.size() != expected_count) {
    return DataError(std::to_string(table.meta_.size()) + " tokens where " +
                     std::to_string(expected_count) + " were expected (truncated file?)");
  }
  for (int b = 0; b < 256; ++b) {
    if (table.byte_rank_[b] == kNoRank) {
      return DataError("byte " + std::to_string(b) + " is not a token");
    }
  }
  table.bytes_.shrink_to_fit();
  table.BuildIndex();
  for (Rank r = 0; r < table.meta_.size(); ++r) {
    const std::string_view bytes = table.Bytes(r);
    if (table.Find(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) != r) {
      return DataError("token " + std::to_string(r) + " appears twice");
    }
  }
  return table;
}

Result<RankTable> RankTable::Load(const std::filesystem::path& path, std::size_t expected_count) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) return DataError("cannot read " + path.string() + ": " + std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) {
    text.append(buffer, n);
  }
  if (std::ferror(file.get())) {
    return DataError("cannot read " + path.string() + ": " + std::strerror(errno));
  }
  auto table = Parse(text, expected_count);
  if (!table) return DataError(path.string() + ": " + table.error().message);
  return table;
}

void RankTable::BuildIndex() {
  const std::size_t capacity = std::max(kGroup, std::bit_ceil(meta_.size() + meta_.size() / 4));
  ctrl_.assign(capacity, kEmptyTag);
  slots_.assign(capacity, Slot{});
  group_mask_ = capacity / kGroup - 1;
  for (Rank r = 0; r < meta_.size(); ++r) {
    const std::string_view bytes = Bytes(r);
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::uint64_t head = rank_detail::Head(p, bytes.size());
    const std::uint64_t h = rank_detail::Hash(head, p, bytes.size());
    std::size_t i = ((h >> 8) & group_mask_) * kGroup;
    while (ctrl_[i] != kEmptyTag) {
      i = (i + 1) & (capacity - 1);
    }
    ctrl_[i] = TagOf(h);
    slots_[i] = Slot{static_cast<std::uint32_t>(head), static_cast<std::uint32_t>(head >> 32),
                     static_cast<std::uint32_t>(r << 8 | bytes.size())};
  }
}

std::size_t RankTable::MemoryBytes() const {
  return bytes_.capacity() + meta_.capacity() * sizeof(std::uint32_t) + ctrl_.capacity() +
         slots_.capacity() * sizeof(Slot) + pair_rank_.capacity() * sizeof(Rank);
}

}  // namespace orchestra::tokens
