#include "documents/import_dir.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace orchestra::documents {
namespace {

constexpr std::string_view kParam = "file_path";

Error Outside(std::string_view path) {
  return Error(ErrorCode::kPermissionDenied,
               "file_path '" + std::string(path.substr(0, 256)) +
                   "' is outside the import directory (documents.import_dir)",
               std::string(kParam));
}

}  // namespace

ImportDir::ImportDir(const std::filesystem::path& dir) : dir_(dir.lexically_normal()) {
  dir_fd_ = ::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) {
    throw std::runtime_error("documents.import_dir: cannot open " + dir_.string() + ": " +
                             std::strerror(errno));
  }
}

ImportDir::~ImportDir() {
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

int ImportDir::OpenBeneath(const std::string& relative, Error& error) const {
  open_how how{};
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below anyway).
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, dir_fd_, relative.c_str(), &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) {
    // Before Linux 5.6: resolve, check, and open without following a final link.
    char resolved[PATH_MAX];
    const std::string full = (dir_ / relative).string();
    if (::realpath(full.c_str(), resolved) == nullptr) {
      fd = -1;  // errno from realpath (ENOENT ...)
    } else {
      const std::filesystem::path target(resolved);
      auto [d, t] = std::mismatch(dir_.begin(), dir_.end(), target.begin(), target.end());
      if (d != dir_.end()) {
        errno = EXDEV;
        fd = -1;
      } else {
        fd = ::open(resolved, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
      }
    }
  }
  if (fd >= 0) return static_cast<int>(fd);
  switch (errno) {
    case EXDEV:  // RESOLVE_BENEATH: the path climbs or links out
    case ELOOP:  // a magic link, or a link loop
    case EACCES:
    case EPERM:
      error = Outside(relative);
      break;
    case ENOENT:
    case ENOTDIR:
      error = Error(ErrorCode::kNotFound,
                    "no file '" + relative.substr(0, 256) + "' in the import directory",
                    std::string(kParam));
      break;
    default:
      error = Error(ErrorCode::kInvalidRequest,
                    "cannot open '" + relative.substr(0, 256) + "': " + std::strerror(errno),
                    std::string(kParam));
  }
  return -1;
}

Result<std::string> ImportDir::Read(std::string_view path, std::uint64_t max_bytes) const {
  if (path.empty()) return Error(ErrorCode::kInvalidRequest, "file_path is empty", "file_path");
  if (path.find('\0') != std::string_view::npos) {
    return Error(ErrorCode::kInvalidRequest, "file_path holds a NUL byte", "file_path");
  }
  std::string relative(path);
  if (path.front() == '/') {
    // Absolute: only a place under the directory (compared after normalising the text; the
    // kernel then resolves what is left beneath the directory).
    const std::filesystem::path p = std::filesystem::path(relative).lexically_normal();
    auto [d, t] = std::mismatch(dir_.begin(), dir_.end(), p.begin(), p.end());
    if (d != dir_.end() && !(std::next(d) == dir_.end() && d->empty())) return Outside(path);
    std::filesystem::path rest;
    for (; t != p.end(); ++t)
      rest /= *t;
    relative = rest.string();
    if (relative.empty()) relative = ".";
  }
  Error error;
  const int fd = OpenBeneath(relative, error);
  if (fd < 0) return error;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error(ErrorCode::kInvalidRequest,
                 "'" + std::string(path.substr(0, 256)) + "' is not a regular file", "file_path");
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return Error(ErrorCode::kPayloadTooLarge,
                 "the file has " + std::to_string(st.st_size) +
                     " bytes; documents.max_bytes allows " + std::to_string(max_bytes),
                 "file_path");
  }
  std::string out;
  out.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the file shrank meanwhile: what is there
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

}  // namespace orchestra::documents
