#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

// The files POST /documents/process may read: only those under documents.import_dir, never
// any other file of the server.
//
// The directory is opened once; a path is then resolved by the kernel relative to that open
// directory with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), which refuses every way out
// at the moment of the open: a `..` that climbs above it, a symbolic link (at any depth) that
// points outside it, an absolute symbolic link, /proc magic links. So a link swapped in between
// a check and the open cannot escape (no time-of-check race). An absolute path is accepted only
// when it names a place under the directory, and is then resolved the same way. On a kernel
// without openat2 (before 5.6) the path is resolved with realpath and checked to lie under the
// directory, then opened with O_NOFOLLOW; that leaves a race with a concurrent link swap inside
// the import directory, which only whoever can write there could exploit.
//
// Thread-safe; the reads block (run them off the event loop).
namespace orchestra::documents {

class ImportDir {
 public:
  // Opens `dir` (canonical, as config validation leaves it). Throws std::runtime_error when it
  // cannot be opened (start-up).
  explicit ImportDir(const std::filesystem::path& dir);
  ImportDir(const ImportDir&) = delete;
  ImportDir& operator=(const ImportDir&) = delete;
  ~ImportDir();

  // The bytes of the file at `path` (relative to the directory, or absolute under it).
  // Errors, each with param "file_path", never naming the directory itself:
  //   kPermissionDenied  the path leads outside the directory;
  //   kNotFound          no such file;
  //   kInvalidRequest    an empty path, a NUL byte, not a regular file (a directory, a FIFO);
  //   kPayloadTooLarge   the file has more than `max_bytes` bytes.
  Result<std::string> Read(std::string_view path, std::uint64_t max_bytes) const;

 private:
  int OpenBeneath(const std::string& relative, Error& error) const;

  std::filesystem::path dir_;
  int dir_fd_ = -1;
};

}  // namespace orchestra::documents
