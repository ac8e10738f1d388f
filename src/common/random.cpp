#include "common/random.hpp"

#include <array>
#include <chrono>
#include <cstring>

#include <sys/random.h>

namespace orchestra {
namespace {

struct Xoshiro256 {
  Xoshiro256() {
    if (getrandom(state.data(), sizeof(state), 0) != static_cast<ssize_t>(sizeof(state))) {
      // No entropy source: fall back to the clock and this object's address.
      auto t =
          static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
      auto a = reinterpret_cast<std::uintptr_t>(this);
      state = {t, a, t ^ 0x9E3779B97F4A7C15ULL, a ^ 0xD1B54A32D192ED03ULL};
    }
    if ((state[0] | state[1] | state[2] | state[3]) == 0) state[0] = 1;
  }

  static std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  std::uint64_t Next() {
    const std::uint64_t result = Rotl(state[1] * 5, 7) * 9;
    const std::uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = Rotl(state[3], 45);
    return result;
  }

  std::array<std::uint64_t, 4> state{};
};

Xoshiro256& Generator() {
  thread_local Xoshiro256 generator;
  return generator;
}

}  // namespace

std::uint64_t RandomU64() {
  return Generator().Next();
}

double RandomUnit() {
  return static_cast<double>(RandomU64() >> 11) * 0x1.0p-53;
}

namespace {

// Eight hex digits from the 32 bits of `bits`, in one 64-bit word (a digit per byte), without a
// table or a loop: the nibbles are spread one per byte, then each becomes '0'..'9' or 'a'..'f'.
// The nibbles land in the bytes in a shuffled order, which is as random as any other for random
// bits (this is only used for random identifiers).
std::uint64_t HexDigits(std::uint64_t bits) {
  std::uint64_t x = bits & 0xFFFFFFFFULL;
  x = (x | (x << 16)) & 0x0000FFFF0000FFFFULL;
  x = (x | (x << 8)) & 0x00FF00FF00FF00FFULL;
  x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0FULL;
  // 1 in the bytes whose nibble is 10 or more: those become letters ('a' - '0' - 10 = 39).
  const std::uint64_t letters = ((x + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL;
  return x + 0x3030303030303030ULL + letters * 39;
}

}  // namespace

void FillRandomHex(char* out, std::size_t bytes) {
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    const std::uint64_t word = RandomU64();
    const std::uint64_t digits[2] = {HexDigits(word), HexDigits(word >> 32)};
    std::memcpy(out + 2 * i, digits, 16);
  }
  if (i < bytes) {
    const std::uint64_t word = RandomU64();
    const std::uint64_t digits[2] = {HexDigits(word), HexDigits(word >> 32)};
    std::memcpy(out + 2 * i, digits, 2 * (bytes - i));
  }
}

std::string RandomHex(std::size_t bytes) {
  std::string out(bytes * 2, '0');
  FillRandomHex(out.data(), bytes);
  return out;
}
}  // namespace orchestra
