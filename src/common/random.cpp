#include "common/random.hpp"

#include <array>
#include <chrono>

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

void FillRandomHex(char* out, std::size_t bytes) {
  // Two hex digits per byte from one table lookup.
  static constexpr auto kPairs = [] {
    std::array<char, 512> t{};
    constexpr char kDigits[] = "0123456789abcdef";
    for (int b = 0; b < 256; ++b) {
      t[static_cast<std::size_t>(2 * b)] = kDigits[b >> 4];
      t[static_cast<std::size_t>(2 * b + 1)] = kDigits[b & 0xF];
    }
    return t;
  }();
  std::uint64_t word = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    if (i % 8 == 0) word = RandomU64();
    const auto b = static_cast<std::size_t>(word & 0xFF);
    word >>= 8;
    out[2 * i] = kPairs[2 * b];
    out[2 * i + 1] = kPairs[2 * b + 1];
  }
}

std::string RandomHex(std::size_t bytes) {
  std::string out(bytes * 2, '0');
  FillRandomHex(out.data(), bytes);
  return out;
}
}  // namespace orchestra
