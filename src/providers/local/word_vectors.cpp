#include "providers/local/word_vectors.hpp"

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <openssl/evp.h>

#include "common/model_files.hpp"
#include "common/text.hpp"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace orchestra::providers::local {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the word-vector file is little-endian and mapped as is");

constexpr std::string_view kMagic = "ORCHWV01";
constexpr std::size_t kHeaderSize = 128;

struct Header {
  std::uint32_t version, dims, count, slots;
  std::uint64_t common, offsets, strings, strings_size, ranks, scales, table, vectors, file_size;
};

Header ReadHeader(const unsigned char* p) {
  Header h{};
  std::memcpy(&h.version, p + 8, 4);
  std::memcpy(&h.dims, p + 12, 4);
  std::memcpy(&h.count, p + 16, 4);
  std::memcpy(&h.slots, p + 20, 4);
  std::uint64_t* fields[] = {&h.common, &h.offsets, &h.strings, &h.strings_size, &h.ranks,
                             &h.scales, &h.table,   &h.vectors, &h.file_size};
  for (std::size_t i = 0; i < std::size(fields); ++i)
    std::memcpy(fields[i], p + 24 + 8 * i, 8);
  return h;
}

std::uint32_t Fnv1a32(std::string_view s) {
  std::uint32_t h = 0x811c9dc5u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x01000193u;
  }
  return h;
}

// [offset, offset + bytes) lies inside a file of `length` bytes, `align`-aligned.
bool Fits(std::uint64_t offset, std::uint64_t bytes, std::uint64_t length, std::uint64_t align) {
  return offset % align == 0 && offset >= kHeaderSize && offset <= length &&
         bytes <= length - offset;
}

}  // namespace

std::string_view ToString(WordVectors::State state) {
  switch (state) {
    case WordVectors::State::kNotLoaded:
      return "not_loaded";
    case WordVectors::State::kLoaded:
      return "loaded";
    case WordVectors::State::kMissing:
      return "missing";
    case WordVectors::State::kInvalid:
      return "invalid";
  }
  return "invalid";
}

std::optional<std::string> FileSha256(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return std::nullopt;
  std::vector<unsigned char> block(1 << 16);
  for (;;) {
    const ssize_t n = ::read(fd, block.data(), block.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), block.data(), static_cast<std::size_t>(n));
  }
  std::array<std::uint8_t, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &size) != 1) return std::nullopt;
  return HexEncode(std::span<const std::uint8_t>(digest.data(), size));
}

WordVectors& WordVectors::Default() {
  // Deliberately leaked: requests may still use it while the process exits.
  static WordVectors* const instance = new WordVectors({}, std::string(kSha256));
  return *instance;
}

WordVectors::WordVectors(std::filesystem::path path, std::string sha256_hex)
    : path_(std::move(path)), sha256_(std::move(sha256_hex)) {}

WordVectors::~WordVectors() {
  if (base_ != nullptr) ::munmap(const_cast<unsigned char*>(base_), length_);
}

bool WordVectors::Available() const {
  if (state() == State::kNotLoaded) std::call_once(once_, [this] { Load(); });
  return state() == State::kLoaded;
}

std::string WordVectors::Status() const {
  switch (state()) {
    case State::kNotLoaded:
      return "word vectors not loaded yet";
    case State::kLoaded:
    case State::kMissing:
    case State::kInvalid:
      return status_;  // written before state_ was released
  }
  return status_;
}

void WordVectors::Load() const {
  std::filesystem::path path = path_;
  if (path.empty()) {
    auto found = FindModelFile(kFileName);
    if (!found) {
      status_ = std::string(kFileName) +
                " not found (run scripts/setup.sh, or set ORCHESTRA_MODELS_DIR): lexical "
                "features only";
      state_.store(State::kMissing, std::memory_order_release);
      return;
    }
    path = std::move(*found);
  }
  std::string why;
  if (!sha256_.empty()) {
    auto digest = FileSha256(path);
    if (!digest) {
      status_ = path.string() + " cannot be read: lexical features only";
      state_.store(State::kMissing, std::memory_order_release);
      return;
    }
    if (*digest != sha256_) {
      status_ = path.string() + " has SHA-256 " + *digest + ", not the pinned " + sha256_ +
                " (run scripts/setup.sh again): lexical features only";
      state_.store(State::kInvalid, std::memory_order_release);
      return;
    }
  }
  if (!Map(path, why)) {
    status_ = path.string() + " is not a word-vector file (" + why + "): lexical features only";
    state_.store(State::kInvalid, std::memory_order_release);
    return;
  }
  status_ = "semantic: " + std::to_string(count_) + " word vectors of " + std::to_string(dims_) +
            " dimensions from " + path.string();
  state_.store(State::kLoaded, std::memory_order_release);
}

bool WordVectors::Map(const std::filesystem::path& path, std::string& why) const {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    why = std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(kHeaderSize)) {
    ::close(fd);
    why = "shorter than its header";
    return false;
  }
  const auto length = static_cast<std::size_t>(st.st_size);
  void* mapped = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapped == MAP_FAILED) {
    why = std::string("mmap: ") + std::strerror(errno);
    return false;
  }
  // Lookups touch a few scattered pages: no read-ahead of neighbours nobody asked for.
  ::madvise(mapped, length, MADV_RANDOM);
  const auto* p = static_cast<const unsigned char*>(mapped);
  auto fail = [&](std::string reason) {
    ::munmap(mapped, length);
    why = std::move(reason);
    return false;
  };
  if (std::memcmp(p, kMagic.data(), kMagic.size()) != 0) return fail("bad magic");
  const Header h = ReadHeader(p);
  if (h.version != 1) return fail("version " + std::to_string(h.version));
  if (h.dims == 0 || h.dims > kMaxDims) return fail("dimensions");
  if (h.count == 0 || h.slots < h.count || (h.slots & (h.slots - 1)) != 0) return fail("counts");
  if (h.file_size != length) return fail("size");
  const std::uint64_t n = h.count;
  if (!Fits(h.common, 4 * std::uint64_t{h.dims}, length, 4) ||
      !Fits(h.offsets, 4 * (n + 1), length, 4) || !Fits(h.strings, h.strings_size, length, 1) ||
      !Fits(h.ranks, 4 * n, length, 4) || !Fits(h.scales, 4 * n, length, 4) ||
      !Fits(h.table, 4 * std::uint64_t{h.slots}, length, 4) ||
      !Fits(h.vectors, n * h.dims, length, 1)) {
    return fail("a section lies outside the file");
  }
  base_ = p;
  length_ = length;
  dims_ = h.dims;
  count_ = h.count;
  slots_ = h.slots;
  strings_size_ = h.strings_size;
  common_ = reinterpret_cast<const float*>(p + h.common);
  offsets_ = reinterpret_cast<const std::uint32_t*>(p + h.offsets);
  strings_ = reinterpret_cast<const char*>(p + h.strings);
  ranks_ = reinterpret_cast<const std::uint32_t*>(p + h.ranks);
  scales_ = reinterpret_cast<const float*>(p + h.scales);
  table_ = reinterpret_cast<const std::uint32_t*>(p + h.table);
  vectors_ = reinterpret_cast<const std::int8_t*>(p + h.vectors);
  return true;
}

std::string_view WordVectors::Word(std::uint32_t index) const {
  if (index >= count_) return {};
  const std::uint32_t begin = offsets_[index];
  const std::uint32_t end = offsets_[index + 1];
  // The checksum vouches for the file; the bounds check keeps an unchecked one harmless.
  if (begin > end || end > strings_size_) return {};
  return {strings_ + begin, end - begin};
}

std::optional<std::uint32_t> WordVectors::Find(std::string_view word) const {
  if (word.empty() || !Available()) return std::nullopt;
  const std::size_t mask = slots_ - 1;
  std::size_t slot = Fnv1a32(word) & mask;
  for (std::size_t probes = 0; probes < slots_; ++probes, slot = (slot + 1) & mask) {
    const std::uint32_t entry = table_[slot];
    if (entry == 0) return std::nullopt;
    if (Word(entry - 1) == word) return entry - 1;
  }
  return std::nullopt;
}

void WordVectors::Vector(std::uint32_t index, std::span<float> out) const {
  const std::int8_t* row = vectors_ + std::size_t{index} * dims_;
  const float scale = scales_[index];
  for (std::size_t i = 0; i < dims_; ++i)
    out[i] = scale * static_cast<float>(row[i]);
}

void WordVectors::AddTo(std::uint32_t index, float weight, std::span<float> sum) const {
  const std::int8_t* row = vectors_ + std::size_t{index} * dims_;
  const float w = weight * scales_[index];
  for (std::size_t i = 0; i < dims_; ++i)
    sum[i] += w * static_cast<float>(row[i]);
}

}  // namespace orchestra::providers::local
