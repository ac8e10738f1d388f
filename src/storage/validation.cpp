#include "storage/validation.hpp"

#include <algorithm>
#include <cstdint>
#include <span>

#include "common/text.hpp"
#include "common/utf8.hpp"
#include "storage/glob.hpp"

namespace orchestra::storage {

Result<void> ValidateName(std::string_view value, std::string_view param, std::size_t max_bytes) {
  const std::string name(param);
  if (value.empty())
    return MakeError(ErrorCode::kInvalidRequest, name + " must not be empty", name);
  if (value.size() > max_bytes) {
    return MakeError(ErrorCode::kInvalidRequest,
                     name + " is longer than " + std::to_string(max_bytes) + " bytes", name);
  }
  if (value.find('\0') != std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidRequest, name + " must not contain NUL", name);
  }
  if (!utf8::IsValid(value)) {
    return MakeError(ErrorCode::kInvalidRequest, name + " is not valid UTF-8", name);
  }
  return {};
}

Result<void> ValidateSize(std::string_view value, std::string_view param, std::size_t max_bytes) {
  if (value.size() > max_bytes) {
    const std::string name(param);
    return MakeError(ErrorCode::kPayloadTooLarge,
                     name + " is " + std::to_string(value.size()) + " bytes, more than the " +
                         std::to_string(max_bytes) + " allowed (storage.max_value_bytes)",
                     name);
  }
  return {};
}

Result<void> ValidateCollection(std::string_view collection) {
  const bool ok = !collection.empty() && collection.size() <= 64 &&
                  std::all_of(collection.begin(), collection.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                  });
  if (ok) return {};
  return MakeError(ErrorCode::kInvalidRequest,
                   "collection must be 1 to 64 lower-case letters, digits or '_'", "collection");
}

bool ExpectHolds(const Expect& expect, std::optional<std::int64_t> current) {
  switch (expect.kind) {
    case Expect::Kind::kAny:
      return true;
    case Expect::Kind::kAbsent:
      return !current.has_value();
    case Expect::Kind::kVersion:
      return current.has_value() && *current == expect.version;
  }
  return false;
}

Error RecordConflict(std::string_view collection, std::string_view id) {
  return MakeError(ErrorCode::kConflict, "record '" + std::string(id) + "' of " +
                                             std::string(collection) + " changed meanwhile");
}

Error ChangeLogGap(std::int64_t sequence) {
  return MakeError(ErrorCode::kConflict,
                   "the change log no longer holds sequence " + std::to_string(sequence) +
                       " (older than storage.change_log_retention, or from another store): "
                       "reload and start again from the latest sequence");
}

Error BadCursor() {
  return MakeError(ErrorCode::kInvalidRequest,
                   "cursor was not returned by this listing (or storage failed over since)",
                   "cursor");
}

bool HexDecode(std::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0) return false;
  out.clear();
  out.reserve(hex.size() / 2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return true;
}

std::string PrefixUpperBound(std::string_view prefix) {
  std::u32string cps;
  if (!utf8::DecodeAll(prefix, cps)) return {};
  while (!cps.empty()) {
    char32_t& last = cps.back();
    if (last < 0x10FFFF) {
      last = last == 0xD7FF ? 0xE000 : last + 1;
      std::string out;
      for (char32_t c : cps)
        utf8::Append(out, c);
      return out;
    }
    cps.pop_back();
  }
  return {};
}

std::string EncodeKeysetCursor(std::string_view last_key) {
  const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(last_key.data()),
                                            last_key.size());
  return "k" + HexEncode(bytes);
}

std::string CursorAfter(std::string_view id) {
  return EncodeKeysetCursor(id);
}

Result<std::string> DecodeKeysetCursor(std::string_view cursor) {
  if (cursor.empty()) return std::string();
  std::string key;
  if (cursor[0] != 'k' || cursor.size() < 3 || !HexDecode(cursor.substr(1), key) ||
      !ValidateName(key, "cursor", 512).has_value()) {
    return BadCursor();
  }
  return key;
}

}  // namespace orchestra::storage
