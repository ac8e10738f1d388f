#include "tokens/rank_table.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

// Standard base64 with padding, into `out` (room for in.size() / 4 * 3 bytes). Returns the
// number of bytes written, or -1 when malformed.
std::ptrdiff_t DecodeBase64(std::string_view in, unsigned char* out) {
  if (in.empty() || in.size() % 4 != 0) return -1;
  std::size_t padding = 0;
  if (in.back() == '=') padding = in[in.size() - 2] == '=' ? 2 : 1;
  unsigned char* const start = out;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const std::size_t digits = last ? 4 - padding : 4;
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      std::int8_t d = 0;
      if (k < digits) {
        d = kBase64Value[static_cast<unsigned char>(in[i + k])];
        if (d < 0) return -1;
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    *out++ = static_cast<unsigned char>(v >> 16);
    if (digits > 2) *out++ = static_cast<unsigned char>(v >> 8);
    if (digits > 3) *out++ = static_cast<unsigned char>(v);
  }
  return out - start;
}

Error DataError(std::string message) {
  return {ErrorCode::kUnavailable, std::move(message)};
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
  // The tokens' bytes take at most 3/4 of the text (their base64 is part of it).
  table.bytes_.resize(text.size() / 4 * 3 + 3);
  std::size_t used = 0;
  std::size_t line_no = 0;
  const char* p = text.data();
  const char* const end = p + text.size();
  while (p < end) {
    ++line_no;
    auto bad = [&](const char* what) {
      return DataError("line " + std::to_string(line_no) + ": " + what);
    };
    const char* const b64 = p;
    while (p < end && *p != ' ' && *p != '\n')
      ++p;
    if (p == end || *p != ' ') return bad("expected \"<base64> <rank>\"");
    const std::string_view base64(b64, static_cast<std::size_t>(p - b64));
    ++p;
    std::uint64_t rank = 0;
    const char* const digits = p;
    while (p < end && *p >= '0' && *p <= '9' && p - digits < 9)
      rank = rank * 10 + (*p++ - '0');
    if (p == digits || (p < end && *p != '\n')) return bad("bad rank");
    ++p;
    if (rank != table.meta_.size()) return bad("ranks are not 0, 1, 2, ... in order");
    if (table.meta_.size() == expected_count) return bad("more tokens than the encoding has");
    const std::ptrdiff_t decoded = DecodeBase64(base64, &table.bytes_[used]);
    if (decoded < 0) return bad("bad base64");
    const auto len = static_cast<std::size_t>(decoded);
    if (len > kMaxTokenLength) return bad("token longer than 255 bytes");
    const unsigned char* token = &table.bytes_[used];
    table.meta_.push_back(static_cast<std::uint32_t>(used << 8 | len));
    used += len;
    table.max_token_bytes_ = std::max(table.max_token_bytes_, len);
    if (len == 1) table.byte_rank_[token[0]] = static_cast<Rank>(rank);
    if (len == 2) {
      Rank& pair = table.pair_rank_[token[0] | (token[1] << 8)];
      if (pair != kNoRank) return DataError("token " + std::to_string(rank) + " appears twice");
      pair = static_cast<Rank>(rank);
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
  table.bytes_.resize(used);
  table.bytes_.shrink_to_fit();
  if (const Rank duplicate = table.BuildIndex(); duplicate != kNoRank) {
    return DataError("token " + std::to_string(duplicate) + " appears twice");
  }
  return table;
}

Result<RankTable> RankTable::Load(const std::filesystem::path& path, std::size_t expected_count) {
  auto fail = [&] {
    return DataError("cannot read " + path.string() + ": " + std::strerror(errno));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail();
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const auto size = static_cast<std::size_t>(st.st_size);
  // Mapped rather than read: no copy of the text, and its pages stay in the page cache.
  void* const map =
      stat_ok && size > 0 ? ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  const int map_errno = errno;
  ::close(fd);
  if (!stat_ok || (size > 0 && map == MAP_FAILED)) {
    errno = map_errno;
    return fail();
  }
  std::string_view text;
  if (size > 0) {
    ::madvise(map, size, MADV_SEQUENTIAL);
    text = std::string_view(static_cast<const char*>(map), size);
  }
  auto table = Parse(text, expected_count);
  if (size > 0) ::munmap(map, size);
  if (!table) return DataError(path.string() + ": " + table.error().message);
  return table;
}

Rank RankTable::BuildIndex() {
  const std::size_t capacity = std::max(kGroup, std::bit_ceil(meta_.size() + meta_.size() / 4));
  ctrl_.assign(capacity, kEmptyTag);
  slots_.assign(capacity, Slot{});
  group_mask_ = capacity / kGroup - 1;
  // The table is larger than the caches and each insert lands somewhere random: hash kAhead
  // tokens ahead and prefetch where they will go, so that the misses overlap.
  constexpr std::size_t kAhead = 16;
  struct Pending {
    std::uint64_t head;
    std::uint64_t hash;
  };
  Pending ring[kAhead];
  const std::size_t n = meta_.size();
  auto prepare = [&](std::size_t r) {
    const std::string_view bytes = Bytes(static_cast<Rank>(r));
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::uint64_t head = rank_detail::Head(p, bytes.size());
    const std::uint64_t h = rank_detail::Hash(head, p, bytes.size());
    const std::size_t first = ((h >> 8) & group_mask_) * kGroup;
    __builtin_prefetch(&ctrl_[first], 1);
    __builtin_prefetch(&slots_[first], 1);
    ring[r % kAhead] = {head, h};
  };
  for (std::size_t r = 0; r < std::min(n, kAhead); ++r)
    prepare(r);
  for (std::size_t r = 0; r < n; ++r) {
    const Pending pending = ring[r % kAhead];
    if (r + kAhead < n) prepare(r + kAhead);
    const std::string_view bytes = Bytes(static_cast<Rank>(r));
    const std::uint8_t tag = TagOf(pending.hash);
    std::size_t i = ((pending.hash >> 8) & group_mask_) * kGroup;
    // Every key with this hash lies between its home group and the first empty slot.
    for (; ctrl_[i] != kEmptyTag; i = (i + 1) & (capacity - 1)) {
      if (ctrl_[i] != tag || slots_[i].Head() != pending.head) continue;
      if (Bytes(slots_[i].rank_len >> 8) == bytes) return static_cast<Rank>(r);
    }
    ctrl_[i] = tag;
    slots_[i] = Slot{static_cast<std::uint32_t>(pending.head),
                     static_cast<std::uint32_t>(pending.head >> 32),
                     static_cast<std::uint32_t>(r << 8 | bytes.size())};
  }
  return kNoRank;
}

std::size_t RankTable::MemoryBytes() const {
  return bytes_.capacity() + meta_.capacity() * sizeof(std::uint32_t) + ctrl_.capacity() +
         slots_.capacity() * sizeof(Slot) + pair_rank_.capacity() * sizeof(Rank);
}

}  // namespace orchestra::tokens
