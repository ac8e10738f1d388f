#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "common/error.hpp"

// The mergeable ranks of a byte-level BPE encoding: every token's bytes and the inverse map from
// bytes to rank. Internal to the tokens area (encoding.cpp); exposed for tests.
namespace orchestra::tokens {

using Rank = std::uint32_t;
inline constexpr Rank kNoRank = 0xFFFFFFFF;

static_assert(std::endian::native == std::endian::little, "ctrl groups are read little-endian");

namespace rank_detail {

inline std::uint64_t Load64(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline std::uint64_t Load32(const unsigned char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The first (up to) 8 bytes as a little-endian integer, zero above `len`; reads only
// [p, p + len). With the length, it identifies a string of up to 8 bytes exactly.
inline std::uint64_t Head(const unsigned char* p, std::size_t len) {
  if (len >= 8) return Load64(p);
  if (len >= 4) return Load32(p) | (Load32(p + len - 4) << (8 * (len - 4)));
  return std::uint64_t{p[0]} | (std::uint64_t{p[len >> 1]} << (8 * (len >> 1))) |
         (std::uint64_t{p[len - 1]} << (8 * (len - 1)));
}

// 64 x 64 -> 128-bit multiply, folded: a fast mixer with full avalanche (one mul instruction on
// x86-64 and arm64).
using Uint128 = __uint128_t;
inline std::uint64_t Mix(std::uint64_t a, std::uint64_t b) {
  const Uint128 r = static_cast<Uint128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline constexpr std::uint64_t kK0 = 0x9E3779B97F4A7C15;
inline constexpr std::uint64_t kK1 = 0xC2B2AE3D27D4EB4F;
inline constexpr std::uint64_t kK2 = 0x165667B19E3779F9;

// Up to 8 bytes (almost every lookup) hash from their head alone; longer ones fold in the
// rest 8 bytes at a time.
inline std::uint64_t Hash(std::uint64_t head, const unsigned char* p, std::size_t len) {
  std::uint64_t seed = kK0 ^ len;
  for (std::size_t i = 8; i < len; i += 8) {
    const std::size_t at = i + 8 <= len ? i : len - 8;  // the last block overlaps: len > 8
    seed = Mix(Load64(p + at) ^ kK1, seed ^ kK2);
  }
  return Mix(head ^ kK1, seed);
}

}  // namespace rank_detail

class RankTable {
 public:
  // Parses tiktoken's text format: one "<base64 of the token's bytes> <rank>" per line, ranks
  // 0, 1, 2, ... in order (the published files are written so). `expected_count` guards against
  // a truncated or foreign file; every single byte must be a token (byte-level BPE needs them).
  static Result<RankTable> Parse(std::string_view text, std::size_t expected_count);
  static Result<RankTable> Load(const std::filesystem::path& path, std::size_t expected_count);

  // The rank of exactly these bytes, or kNoRank. No allocation; reads only [p, p + len).
  Rank Find(const unsigned char* p, std::size_t len) const {
    using namespace rank_detail;
    if (len == 2) return pair_rank_[p[0] | (p[1] << 8)];
    if (len == 0 || len > max_token_bytes_) return kNoRank;
    const std::uint64_t head = Head(p, len);
    const std::uint64_t h = Hash(head, p, len);
    const std::uint64_t tags = kLowBits * TagOf(h);
    for (std::size_t g = (h >> 8) & group_mask_;; g = (g + 1) & group_mask_) {
      std::uint64_t ctrl;
      std::memcpy(&ctrl, ctrl_.data() + g * kGroup, sizeof ctrl);
      for (std::uint64_t match = ZeroBytes(ctrl ^ tags); match != 0; match &= match - 1) {
        const std::size_t i = g * kGroup + (static_cast<std::size_t>(std::countr_zero(match)) >> 3);
        const Slot& s = slots_[i];
        if (s.Head() != head || (s.rank_len & 0xFF) != len) continue;
        const Rank rank = s.rank_len >> 8;
        if (len <= 8 || std::memcmp(bytes_.data() + (meta_[rank] >> 8) + 8, p + 8, len - 8) == 0) {
          return rank;
        }
      }
      if (ZeroBytes(ctrl) != 0) return kNoRank;  // the group has an empty slot: the key is absent
    }
  }
  Rank ByteRank(unsigned char b) const { return byte_rank_[b]; }

  std::size_t Size() const { return meta_.size(); }
  // The bytes of a token; rank < Size().
  std::string_view Bytes(Rank rank) const {
    const std::uint32_t m = meta_[rank];
    return {reinterpret_cast<const char*>(bytes_.data()) + (m >> 8), m & 0xFFu};
  }
  // The longest token, in bytes: a longer piece is never a single token.
  std::size_t MaxTokenBytes() const { return max_token_bytes_; }
  // Bytes held, for the load report.
  std::size_t MemoryBytes() const;

 private:
  // An open-addressing index in groups of 8 slots, probed group after group, about 3/4 full (the
  // layout of Abseil's SwissTable, with 8-byte groups read as one integer instead of SIMD).
  // ctrl_ holds one byte per slot: kEmptyTag or 8 bits of the key's hash; a group is checked
  // for its tag and for an empty slot with two word operations, so a lookup that misses (most
  // lookups during merges) rarely reads a slot. A slot holds the key's first 8 bytes, its length
  // and its rank: a hit on a token of up to 8 bytes reads one slot and nothing else. Keys are
  // only ever added, so a group with an empty slot ends the probe.
  static constexpr std::size_t kGroup = 8;
  static constexpr std::uint64_t kLowBits = 0x0101010101010101;
  static constexpr std::uint64_t kHighBits = 0x8080808080808080;
  static constexpr std::uint8_t kEmptyTag = 0;
  static std::uint8_t TagOf(std::uint64_t h) {
    const auto t = static_cast<std::uint8_t>(h >> 56);
    return t == kEmptyTag ? 1 : t;
  }
  // A high bit in each byte of x that is zero; may also flag a byte right above a zero one,
  // which only ever adds a candidate that is checked anyway (or a group that has an empty slot).
  static std::uint64_t ZeroBytes(std::uint64_t x) { return (x - kLowBits) & ~x & kHighBits; }
  struct Slot {
    std::uint32_t head_lo;
    std::uint32_t head_hi;
    std::uint32_t rank_len;  // rank << 8 | length
    std::uint64_t Head() const { return head_lo | (std::uint64_t{head_hi} << 32); }
  };
  // Fills ctrl_ and slots_; returns the rank of a token whose bytes repeat an earlier one's,
  // or kNoRank.
  Rank BuildIndex();

  std::vector<unsigned char> bytes_;  // every token's bytes, in rank order
  std::vector<std::uint32_t> meta_;   // per rank: offset in bytes_ << 8 | length (≤ 255)
  std::vector<std::uint8_t> ctrl_;
  std::vector<Slot> slots_;
  std::size_t group_mask_ = 0;
  // Every 2-byte string, indexed by its two bytes: the first lookups of every merge.
  std::vector<Rank> pair_rank_;
  Rank byte_rank_[256] = {};
  std::size_t max_token_bytes_ = 0;
};

}  // namespace orchestra::tokens
