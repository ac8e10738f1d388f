#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// What every fuzz target shares: an invariant check that libFuzzer records as a crash (the
// input is saved as an artifact and the run stops), and the input as text.
namespace orchestra::fuzz {

[[noreturn]] inline void InvariantFailed(const char* file, int line, const char* condition,
                                         const std::string& detail) {
  std::fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, condition);
  if (!detail.empty()) std::fprintf(stderr, "  %s\n", detail.c_str());
  std::fflush(stderr);
  std::abort();
}

inline std::string_view AsText(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Printable for a failure message: at most `max` bytes, control bytes escaped.
inline std::string Shown(std::string_view text, std::size_t max = 200) {
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace orchestra::fuzz

// Checks an invariant; on failure prints it (and `detail`, a std::string expression evaluated
// only then) and aborts, which libFuzzer reports as a crash with the input saved.
#define FUZZ_CHECK(condition, detail)                                                          \
  do {                                                                                         \
    if (!(condition))                                                                          \
      ::orchestra::fuzz::InvariantFailed(__FILE__, __LINE__, #condition, std::string(detail)); \
  } while (false)
