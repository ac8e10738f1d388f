#include "vector/snapshot.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace orchestra::vector::snapshot {
namespace {

constexpr std::uint64_t kPrime1 = 0x9E3779B185EBCA87ull;
constexpr std::uint64_t kPrime2 = 0xC2B2AE3D27D4EB4Full;
constexpr std::uint64_t kPrime3 = 0x165667B19E3779F9ull;
constexpr std::size_t kBufferBytes = 1 << 20;

std::uint64_t Rotl(std::uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

std::uint64_t Round(std::uint64_t acc, std::uint64_t input) {
  acc += input * kPrime2;
  return Rotl(acc, 31) * kPrime1;
}

std::uint64_t Load64(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string Describe(int err) {
  return std::strerror(err);
}

}  // namespace

void Checksum::Stripe(const unsigned char* p) {
  for (int i = 0; i < 4; ++i)
    lanes_[i] = Round(lanes_[i], Load64(p + 8 * i));
}

void Checksum::Update(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  total_ += size;
  if (pending_size_ > 0) {
    const std::size_t take = std::min(size, sizeof pending_ - pending_size_);
    std::memcpy(pending_ + pending_size_, p, take);
    pending_size_ += take;
    p += take;
    size -= take;
    if (pending_size_ < sizeof pending_) return;
    Stripe(pending_);
    pending_size_ = 0;
  }
  while (size >= 32) {
    Stripe(p);
    p += 32;
    size -= 32;
  }
  std::memcpy(pending_, p, size);
  pending_size_ = size;
}

std::uint64_t Checksum::Finish() const {
  std::uint64_t h =
      Rotl(lanes_[0], 1) + Rotl(lanes_[1], 7) + Rotl(lanes_[2], 12) + Rotl(lanes_[3], 18) + total_;
  for (std::size_t i = 0; i < pending_size_; ++i) {
    h ^= pending_[i] * kPrime3;
    h = Rotl(h, 11) * kPrime1;
  }
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

// ---- Writer ----------------------------------------------------------------------------------

Writer::Writer(std::filesystem::path path) : path_(std::move(path)) {
  temp_path_ = path_;
  temp_path_ += ".tmp";
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) Fail("cannot create " + temp_path_.string(), errno);
  buffer_.reserve(kBufferBytes);
}

Writer::~Writer() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

void Writer::Fail(std::string what, int err) {
  if (error_.empty()) error_ = std::move(what) + ": " + Describe(err);
}

void Writer::Flush() {
  std::size_t done = 0;
  while (error_.empty() && done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Fail("cannot write " + temp_path_.string(), n < 0 ? errno : EIO);
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

void Writer::Write(const void* data, std::size_t size) {
  if (!error_.empty()) return;
  checksum_.Update(data, size);
  const auto* p = static_cast<const unsigned char*>(data);
  while (size > 0) {
    const std::size_t take = std::min(size, kBufferBytes - buffer_.size());
    buffer_.insert(buffer_.end(), p, p + take);
    p += take;
    size -= take;
    if (buffer_.size() == kBufferBytes) Flush();
  }
}

void Writer::Header(std::uint32_t kind, std::uint32_t metric, std::uint64_t dimension) {
  Write(kMagic, sizeof kMagic);
  Pod(kFormatVersion);
  Pod(kByteOrderMark);
  Pod(kind);
  Pod(metric);
  Pod(dimension);
}

Result<void> Writer::Commit() {
  const std::uint64_t sum = checksum_.Finish();
  if (error_.empty()) {
    const auto* p = reinterpret_cast<const unsigned char*>(&sum);
    buffer_.insert(buffer_.end(), p, p + sizeof sum);
    Flush();
  }
  if (error_.empty() && ::fsync(fd_) != 0) Fail("cannot fsync " + temp_path_.string(), errno);
  if (fd_ >= 0 && ::close(fd_) != 0) Fail("cannot close " + temp_path_.string(), errno);
  fd_ = -1;
  if (error_.empty() && ::rename(temp_path_.c_str(), path_.c_str()) != 0)
    Fail("cannot rename " + temp_path_.string() + " to " + path_.string(), errno);
  if (!error_.empty()) return MakeError(ErrorCode::kInternal, "saving the vector index: " + error_);
  committed_ = true;
  // The rename is durable only once the directory is.
  std::filesystem::path dir = path_.parent_path();
  if (dir.empty()) dir = ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return {};
}

// ---- Reader ----------------------------------------------------------------------------------

Reader::Reader(int fd, std::filesystem::path path, std::uint64_t file_size)
    : fd_(fd), path_(std::move(path)), body_end_(file_size - sizeof(std::uint64_t)) {
  buffer_.resize(kBufferBytes);
}

Reader::Reader(Reader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      body_end_(other.body_end_),
      consumed_(other.consumed_),
      buffer_(std::move(other.buffer_)),
      buffer_pos_(other.buffer_pos_),
      buffer_size_(other.buffer_size_),
      checksum_(other.checksum_),
      failed_(other.failed_) {}

Reader::~Reader() {
  if (fd_ >= 0) ::close(fd_);
}

Result<Reader> Reader::Open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT)
      return MakeError(ErrorCode::kNotFound, "no vector index snapshot at " + path.string());
    return MakeError(ErrorCode::kInvalidRequest,
                     "cannot open vector index snapshot " + path.string() + ": " + Describe(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return MakeError(ErrorCode::kInvalidRequest,
                     "vector index snapshot " + path.string() + " is not a regular file");
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < sizeof kMagic + 4 * sizeof(std::uint32_t) + 2 * sizeof(std::uint64_t)) {
    ::close(fd);
    return MakeError(ErrorCode::kInvalidRequest, "vector index snapshot " + path.string() +
                                                     " is truncated (" + std::to_string(size) +
                                                     " bytes)");
  }
  return Reader(fd, path, size);
}

bool Reader::Fill() {
  const std::uint64_t file_pos = consumed_;  // buffer is empty here: consumed_ == bytes read
  const std::uint64_t want = std::min<std::uint64_t>(buffer_.size(), body_end_ - file_pos);
  buffer_pos_ = 0;
  buffer_size_ = 0;
  while (buffer_size_ < want) {
    const ssize_t n = ::read(fd_, buffer_.data() + buffer_size_, want - buffer_size_);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer_size_ += static_cast<std::size_t>(n);
  }
  return buffer_size_ > 0;
}

bool Reader::Read(void* data, std::size_t size) {
  if (failed_ || size > body_end_ - consumed_) {
    failed_ = true;
    return false;
  }
  auto* out = static_cast<unsigned char*>(data);
  std::size_t left = size;
  while (left > 0) {
    if (buffer_pos_ == buffer_size_) {
      if (left >= buffer_.size()) {
        // A large block (the vectors) goes straight to its destination.
        std::size_t got = 0;
        while (got < left) {
          const ssize_t n = ::read(fd_, out + got, left - got);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            failed_ = true;
            return false;
          }
          got += static_cast<std::size_t>(n);
        }
        checksum_.Update(out, left);
        consumed_ += left;
        return true;
      }
      if (!Fill()) {
        failed_ = true;
        return false;
      }
    }
    const std::size_t take = std::min(left, buffer_size_ - buffer_pos_);
    std::memcpy(out, buffer_.data() + buffer_pos_, take);
    checksum_.Update(out, take);
    buffer_pos_ += take;
    consumed_ += take;
    out += take;
    left -= take;
  }
  return true;
}

bool Reader::Fits(std::uint64_t count, std::uint64_t item_size) const {
  const std::uint64_t left = body_end_ - consumed_;
  return item_size == 0 || count <= left / item_size;
}

Error Reader::Corrupt(std::string_view what) const {
  return MakeError(ErrorCode::kInvalidRequest,
                   "vector index snapshot " + path_.string() + " is damaged: " + std::string(what));
}

Result<Reader::HeaderFields> Reader::Header() {
  char magic[sizeof kMagic];
  std::uint32_t version = 0;
  std::uint32_t bom = 0;
  HeaderFields h;
  if (!Read(magic, sizeof magic) || std::memcmp(magic, kMagic, sizeof kMagic) != 0)
    return MakeError(ErrorCode::kInvalidRequest,
                     path_.string() + " is not a vector index snapshot");
  if (!Pod(version) || !Pod(bom) || !Pod(h.kind) || !Pod(h.metric) || !Pod(h.dimension))
    return Corrupt("the header is truncated");
  if (bom != kByteOrderMark)
    return MakeError(ErrorCode::kInvalidRequest,
                     "vector index snapshot " + path_.string() +
                         " was written on a machine of another byte order");
  if (version != kFormatVersion)
    return MakeError(ErrorCode::kInvalidRequest,
                     "vector index snapshot " + path_.string() + " has format version " +
                         std::to_string(version) + "; this build reads version " +
                         std::to_string(kFormatVersion));
  return h;
}

Result<void> Reader::VerifyTrailer() {
  if (failed_ || consumed_ != body_end_) return Corrupt("unexpected bytes before the checksum");
  std::uint64_t stored = 0;
  std::size_t got = 0;
  auto* out = reinterpret_cast<unsigned char*>(&stored);
  // The trailer follows whatever is left in the buffer (nothing: consumed_ == body_end_).
  while (got < sizeof stored) {
    const ssize_t n = ::read(fd_, out + got, sizeof stored - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Corrupt("the checksum is missing");
    got += static_cast<std::size_t>(n);
  }
  if (stored != checksum_.Finish()) return Corrupt("the checksum does not match");
  return {};
}

}  // namespace orchestra::vector::snapshot
