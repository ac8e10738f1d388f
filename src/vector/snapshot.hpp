#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"

// The snapshot file both index kinds write (internal to src/vector/).
//
//   header   "ORCHVIDX" · u32 format version (1) · u32 byte-order mark 0x01020304 · u32 kind
//            (1 flat, 2 hnsw) · u32 metric · u64 dimension
//   body     the kind's own fields (flat_index.cpp, hnsw_index.cpp)
//   trailer  u64 checksum of every byte before it
//
// Integers and floats are written in the machine's byte order; the byte-order mark makes a
// snapshot from a machine of the other order an error instead of garbage. Snapshots are a cache
// of what the storage holds (an index can always be rebuilt from it), so there is no migration
// between format versions: another version is refused and the caller rebuilds.
namespace orchestra::vector::snapshot {

inline constexpr char kMagic[8] = {'O', 'R', 'C', 'H', 'V', 'I', 'D', 'X'};
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::uint32_t kByteOrderMark = 0x01020304;
inline constexpr std::uint32_t kKindFlat = 1;
inline constexpr std::uint32_t kKindHnsw = 2;

// A streaming 64-bit checksum (four xxHash64-style lanes over 32-byte stripes): several GB/s,
// so that checking a 150 MB snapshot costs little of the start-up. It detects torn and damaged
// files, it is not a defence against forgery (the structural checks on load are that).
class Checksum {
 public:
  void Update(const void* data, std::size_t size);
  std::uint64_t Finish() const;

 private:
  void Stripe(const unsigned char* p);

  std::uint64_t lanes_[4] = {0x9E3779B185EBCA87ull, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull,
                             0x85EBCA77C2B2AE63ull};
  unsigned char pending_[32] = {};
  std::size_t pending_size_ = 0;
  std::uint64_t total_ = 0;
};

// Writes `path` through a temporary file in the same directory; Commit() appends the checksum,
// fsyncs, renames over `path` and fsyncs the directory. Without Commit() the temporary file is
// removed. Errors are sticky: the first failed write is reported by Commit().
class Writer {
 public:
  explicit Writer(std::filesystem::path path);
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  ~Writer();

  void Write(const void* data, std::size_t size);
  template <class T>
  void Pod(const T& value) {
    Write(&value, sizeof(T));
  }
  // The common header.
  void Header(std::uint32_t kind, std::uint32_t metric, std::uint64_t dimension);
  Result<void> Commit();

 private:
  void Flush();
  void Fail(std::string what, int err);

  std::filesystem::path path_;
  std::filesystem::path temp_path_;
  int fd_ = -1;
  std::vector<unsigned char> buffer_;
  Checksum checksum_;
  std::string error_;
  bool committed_ = false;
};

// Reads a snapshot written by Writer. Every read is bounded by the file's size, so a damaged
// length field cannot make the loader allocate more than the file could hold; the caller checks
// the sizes it derives with Fits() before allocating. VerifyTrailer() checks the checksum and
// that nothing follows it.
class Reader {
 public:
  // kNotFound when the file does not exist; kInvalidRequest when it cannot be read.
  static Result<Reader> Open(const std::filesystem::path& path);

  Reader(Reader&& other) noexcept;
  Reader& operator=(Reader&&) = delete;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader();

  // False (and the reader failed) when fewer than `size` bytes remain before the trailer.
  bool Read(void* data, std::size_t size);
  template <class T>
  bool Pod(T& value) {
    return Read(&value, sizeof(T));
  }
  // True when `count` items of `item_size` bytes can still be read before the trailer.
  bool Fits(std::uint64_t count, std::uint64_t item_size) const;

  struct HeaderFields {
    std::uint32_t kind = 0;
    std::uint32_t metric = 0;
    std::uint64_t dimension = 0;
  };
  Result<HeaderFields> Header();
  Result<void> VerifyTrailer();

  // An error naming the file and what is wrong with it.
  Error Corrupt(std::string_view what) const;

 private:
  Reader(int fd, std::filesystem::path path, std::uint64_t file_size);
  bool Fill();

  int fd_ = -1;
  std::filesystem::path path_;
  std::uint64_t body_end_ = 0;  // file size minus the trailer
  std::uint64_t consumed_ = 0;  // bytes handed out so far
  std::vector<unsigned char> buffer_;
  std::size_t buffer_pos_ = 0;
  std::size_t buffer_size_ = 0;
  Checksum checksum_;
  bool failed_ = false;
};

}  // namespace orchestra::vector::snapshot
