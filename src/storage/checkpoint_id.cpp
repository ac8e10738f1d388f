#include "storage/checkpoint_id.hpp"

#include <array>
#include <cstdint>
#include <mutex>

#include "common/random.hpp"

namespace orchestra::storage {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// 128 bits as two halves; the id is the 130-bit big-endian base-32 form (top two bits zero).
struct U128 {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
};

int DigitValue(char c) {
  const auto pos = kAlphabet.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

std::string Encode(U128 v) {
  std::string out(kCheckpointIdLength, '0');
  for (std::size_t i = kCheckpointIdLength; i-- > 0;) {
    out[i] = kAlphabet[v.lo & 31];
    v.lo = (v.lo >> 5) | (v.hi << 59);
    v.hi >>= 5;
  }
  return out;
}

U128 Decode(std::string_view id) {
  U128 v;
  for (char c : id) {
    const auto d = static_cast<std::uint64_t>(DigitValue(c));
    v.hi = (v.hi << 5) | (v.lo >> 59);
    v.lo = (v.lo << 5) | d;
  }
  return v;
}

U128 Increment(U128 v) {
  if (++v.lo == 0) ++v.hi;
  return v;
}

}  // namespace

std::string NewCheckpointId(std::chrono::system_clock::time_point now) {
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  U128 v;
  v.hi = (ms & 0xFFFF'FFFF'FFFFULL) << 16 | (RandomU64() & 0xFFFF);
  v.lo = RandomU64();
  // Strictly increasing within the process: a clock that did not move (or stepped back) yields
  // the previous id plus one, like a monotonic ULID generator.
  static std::mutex mutex;
  static U128 last;
  std::lock_guard lock(mutex);
  if ((v.hi >> 16) <= (last.hi >> 16)) v = Increment(last);
  last = v;
  return Encode(v);
}

bool IsCheckpointId(std::string_view id) {
  if (id.size() != kCheckpointIdLength) return false;
  if (id[0] > '7') return false;  // the top two of 130 bits are zero
  for (char c : id) {
    if (DigitValue(c) < 0) return false;
  }
  return true;
}

std::string NextCheckpointId(std::string_view id) {
  return Encode(Increment(Decode(id)));
}

std::chrono::system_clock::time_point CheckpointIdTime(std::string_view id) {
  const U128 v = Decode(id);
  return std::chrono::system_clock::time_point(
      std::chrono::milliseconds(static_cast<std::int64_t>(v.hi >> 16)));
}

}  // namespace orchestra::storage
