#pragma once

#include <cstdint>
#include <string>

namespace orchestra {

// A fast per-thread pseudo-random generator (xoshiro256**), seeded once per thread from the
// kernel. For identifiers, jitter and load balancing; never for secrets.
std::uint64_t RandomU64();
// Uniform in [0, 1).
double RandomUnit();
// `bytes` random bytes as lower-case hex (request ids, trace and span ids).
std::string RandomHex(std::size_t bytes);
// The same written into `out` (2 × `bytes` characters), without allocating.
void FillRandomHex(char* out, std::size_t bytes);

}  // namespace orchestra
