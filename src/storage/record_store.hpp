#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"

// Records: the storage behind everything Orchestra keeps besides agent memory and checkpoints —
// virtual API keys, spend, model versions, documents and their chunks. One small interface on
// every backend (SQLite, Redis, PostgreSQL, Firestore), so each feature is written once:
//
//   - a record is JSON text under an `id` in a `collection` of a `tenant`, with a `version`
//     that grows with every write of that record (optimistic concurrency: a write may require
//     the version it read, and fails with kConflict otherwise);
//   - Apply writes several records of one tenant atomically (a document and its chunks);
//   - every write of a logged collection appends to a change log ordered by `sequence`, which
//     instances sharing the backend poll (ChangesSince) to refresh what they keep in memory
//     (keys revoked on every instance within a second, documents searchable fleet-wide);
//   - counters are numeric fields added to atomically (spend per key, model and day), not
//     versioned and not logged.
//
// Contract shared by every method:
// - `tenant` is a namespace (an API key's tenant, or kSystemTenant for process-wide data such as
//   keys and model versions); a call never sees another tenant's records.
// - `collection` is one of the names Orchestra declares (lower-case letters, digits, '_'; at
//   most 64 bytes); `id` is 1..kMaxRecordIdBytes bytes of UTF-8 without NUL. Otherwise
//   kInvalidRequest naming "collection" or "id".
// - Values are JSON text stored byte for byte, at most storage.max_value_bytes
//   (kPayloadTooLarge, param "value").
// - An unreachable or timed-out backend is kUnavailable (failover to storage.secondary); every
//   call is bounded by storage.operation_timeout.
// - Thread-safe; callable from any io_context thread; string_view arguments must stay valid
//   until the call completes (they do when it is co_awaited in the same expression).
namespace orchestra::storage {

inline constexpr std::string_view kSystemTenant = "~system";
inline constexpr std::size_t kMaxRecordIdBytes = 512;
inline constexpr int kMaxRecordListLimit = 1000;
inline constexpr std::size_t kMaxApplyWrites = 500;

struct Record {
  std::string id;
  std::string value;         // JSON text
  std::int64_t version = 0;  // >= 1 for a stored record
};

struct RecordPage {
  std::vector<Record> records;  // in id byte order
  std::string next_cursor;      // empty: the listing is complete
};

// A precondition on a write: none, "must not exist", or "must be at this version".
struct Expect {
  enum class Kind : std::uint8_t { kAny, kAbsent, kVersion };
  Kind kind = Kind::kAny;
  std::int64_t version = 0;

  static Expect Any() { return {}; }
  static Expect Absent() { return {Kind::kAbsent, 0}; }
  static Expect Version(std::int64_t v) { return {Kind::kVersion, v}; }
};

// One write of an atomic batch.
struct RecordWrite {
  enum class Op : std::uint8_t { kPut, kDelete };
  Op op = Op::kPut;
  std::string collection;
  std::string id;
  std::string value;  // kPut
  Expect expect;
};

// An entry of the change log: a record of `collection` in `tenant` was written or deleted.
struct Change {
  std::int64_t sequence = 0;  // strictly increasing across the whole backend
  std::string tenant;
  std::string collection;
  std::string id;
  bool deleted = false;
};

// The fields of one counter record.
struct Counter {
  std::string id;
  std::vector<std::pair<std::string, double>> fields;  // sorted by field name
};

struct CounterPage {
  std::vector<Counter> counters;  // in id byte order
  std::string next_cursor;
};

class RecordStore {
 public:
  virtual ~RecordStore() = default;

  // Creates or replaces the record; returns its new version. kConflict when `expect` fails
  // (message names the record).
  virtual boost::asio::awaitable<Result<std::int64_t>> Put(std::string_view tenant,
                                                           std::string_view collection,
                                                           std::string_view id,
                                                           std::string_view value,
                                                           Expect expect = Expect::Any()) = 0;

  virtual boost::asio::awaitable<Result<std::optional<Record>>> Get(std::string_view tenant,
                                                                    std::string_view collection,
                                                                    std::string_view id) = 0;

  // True when a record was removed. kConflict when `expect` fails.
  virtual boost::asio::awaitable<Result<bool>> Delete(std::string_view tenant,
                                                      std::string_view collection,
                                                      std::string_view id,
                                                      Expect expect = Expect::Any()) = 0;

  // Records whose id starts with `prefix`, in id byte order, `limit` (1..kMaxRecordListLimit)
  // at a time. Start with an empty cursor and pass back `next_cursor` until it is empty; every
  // record that exists during the whole listing is returned once.
  virtual boost::asio::awaitable<Result<RecordPage>> List(std::string_view tenant,
                                                          std::string_view collection,
                                                          std::string_view prefix, int limit,
                                                          std::string_view cursor) = 0;

  // All of `writes` (at most kMaxApplyWrites, any collections, one tenant) or none: kConflict
  // naming the first write whose precondition failed, and nothing is written.
  virtual boost::asio::awaitable<Result<void>> Apply(std::string_view tenant,
                                                     std::vector<RecordWrite> writes) = 0;

  // The change log after `sequence` (0: from the oldest kept), at most `limit` entries, in
  // order. The log keeps at least the last hour (storage.change_log_retention); a caller whose
  // sequence is older than the oldest kept gets kConflict and reloads what it keeps.
  virtual boost::asio::awaitable<Result<std::vector<Change>>> ChangesSince(std::int64_t sequence,
                                                                           int limit) = 0;
  // The newest sequence (0 when the log is empty): where a reader that just loaded starts.
  virtual boost::asio::awaitable<Result<std::int64_t>> LatestSequence() = 0;

  // Adds each delta to its field of the counter (created at 0); returns the fields' new values
  // in the order given. Atomic per counter.
  virtual boost::asio::awaitable<Result<std::vector<double>>> Add(
      std::string_view tenant, std::string_view collection, std::string_view id,
      std::vector<std::pair<std::string, double>> deltas) = 0;

  // Counters whose id starts with `prefix`, in id order, paged like List.
  virtual boost::asio::awaitable<Result<CounterPage>> Counters(std::string_view tenant,
                                                               std::string_view collection,
                                                               std::string_view prefix, int limit,
                                                               std::string_view cursor) = 0;
};

}  // namespace orchestra::storage
