#include "unit/providers/local/support.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>

#include <unistd.h>

namespace orchestra::providers::local::testing {
namespace {

std::uint32_t Fnv1a32(std::string_view s) {
  std::uint32_t h = 0x811c9dc5u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x01000193u;
  }
  return h;
}

template <class T>
void Put(std::string& out, std::size_t at, T value) {
  std::memcpy(out.data() + at, &value, sizeof value);
}

std::size_t Align(std::size_t n) {
  return (n + 63) / 64 * 64;
}

}  // namespace

void WriteVectorsFile(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, std::vector<float>>>& words,
                      const std::vector<float>& common) {
  const std::size_t n = words.size();
  const std::size_t dims = common.size();
  std::size_t slots = 1;
  while (slots < 2 * n)
    slots *= 2;
  std::size_t strings_size = 0;
  for (const auto& w : words)
    strings_size += w.first.size();
  std::size_t at = 128;
  const std::size_t common_off = at;
  at = Align(at + 4 * dims);
  const std::size_t offsets_off = at;
  at = Align(at + 4 * (n + 1));
  const std::size_t strings_off = at;
  at = Align(at + strings_size);
  const std::size_t ranks_off = at;
  at = Align(at + 4 * n);
  const std::size_t scales_off = at;
  at = Align(at + 4 * n);
  const std::size_t table_off = at;
  at = Align(at + 4 * slots);
  const std::size_t vectors_off = at;
  const std::size_t file_size = vectors_off + n * dims;

  std::string out(file_size, '\0');
  std::memcpy(out.data(), "ORCHWV01", 8);
  Put<std::uint32_t>(out, 8, 1);
  Put<std::uint32_t>(out, 12, static_cast<std::uint32_t>(dims));
  Put<std::uint32_t>(out, 16, static_cast<std::uint32_t>(n));
  Put<std::uint32_t>(out, 20, static_cast<std::uint32_t>(slots));
  const std::size_t sections[] = {common_off, offsets_off, strings_off, strings_size, ranks_off,
                                  scales_off, table_off,   vectors_off, file_size};
  for (std::size_t i = 0; i < std::size(sections); ++i)
    Put<std::uint64_t>(out, 24 + 8 * i, sections[i]);
  for (std::size_t i = 0; i < dims; ++i)
    Put<float>(out, common_off + 4 * i, common[i]);
  std::size_t s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& [word, vector] = words[i];
    Put<std::uint32_t>(out, offsets_off + 4 * i, static_cast<std::uint32_t>(s));
    std::memcpy(out.data() + strings_off + s, word.data(), word.size());
    s += word.size();
    Put<std::uint32_t>(out, ranks_off + 4 * i, static_cast<std::uint32_t>(i));
    float max = 0;
    for (float x : vector)
      max = std::max(max, std::fabs(x));
    const float scale = max > 0 ? max / 127 : 1;
    Put<float>(out, scales_off + 4 * i, scale);
    for (std::size_t d = 0; d < dims; ++d) {
      out[vectors_off + i * dims + d] = static_cast<char>(
          static_cast<std::int8_t>(std::clamp(std::lround(vector[d] / scale), -127L, 127L)));
    }
    std::size_t slot = Fnv1a32(word) & (slots - 1);
    std::uint32_t entry = 0;
    for (;;) {
      std::memcpy(&entry, out.data() + table_off + 4 * slot, 4);
      if (entry == 0) break;
      slot = (slot + 1) & (slots - 1);
    }
    Put<std::uint32_t>(out, table_off + 4 * slot, static_cast<std::uint32_t>(i + 1));
  }
  Put<std::uint32_t>(out, offsets_off + 4 * n, static_cast<std::uint32_t>(s));
  std::ofstream(path, std::ios::binary).write(out.data(), static_cast<std::streamsize>(out.size()));
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("orchestra-local-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace orchestra::providers::local::testing
