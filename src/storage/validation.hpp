#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "storage/record_store.hpp"

// Checks shared by the storage facade and the backends, and the keyset cursor format of the SQL
// backends.
namespace orchestra::storage {

// 1..max_bytes bytes of valid UTF-8 without NUL; kInvalidRequest naming `param` otherwise.
Result<void> ValidateName(std::string_view value, std::string_view param, std::size_t max_bytes);

// kPayloadTooLarge naming `param` when `value` is longer than `max_bytes`.
Result<void> ValidateSize(std::string_view value, std::string_view param, std::size_t max_bytes);

// Keyset cursors (SQLite and PostgreSQL): "k" + hex of the last key returned. Both SQL backends
// share the format, so a listing can continue across a failover between them.
std::string EncodeKeysetCursor(std::string_view last_key);
// The last key, or kInvalidRequest (param "cursor"). An empty cursor decodes to "".
Result<std::string> DecodeKeysetCursor(std::string_view cursor);

// A cursor for RecordStore::List or Counters (every backend, through the storage service) that
// starts the listing at the first id after `id`: how a reader skips the part of a prefix it does
// not want (the spend ledger: the days before the longest budget period).
std::string CursorAfter(std::string_view id);

// The smallest string greater than every string that starts with `prefix` (byte order = code
// point order in UTF-8): the prefix with its last code point incremented. Empty when there is
// none (an empty prefix, or one of U+10FFFF only). Backends scan [prefix, bound) for a glob's
// literal prefix.
std::string PrefixUpperBound(std::string_view prefix);

// Lower-case or upper-case hex to bytes; false on odd length or a non-hex digit.
bool HexDecode(std::string_view hex, std::string& out);

Error BadCursor();

// A record collection name: 1..64 bytes of [a-z0-9_]; kInvalidRequest param "collection".
Result<void> ValidateCollection(std::string_view collection);

// Records: whether `expect` holds for a record at `current` (nullopt: absent), and the kConflict
// every backend answers when it does not (the message names the record).
bool ExpectHolds(const Expect& expect, std::optional<std::int64_t> current);
Error RecordConflict(std::string_view collection, std::string_view id);
// The kConflict of ChangesSince for a sequence the log no longer holds.
Error ChangeLogGap(std::int64_t sequence);

}  // namespace orchestra::storage
