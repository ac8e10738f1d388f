#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "storage/checkpoint_store.hpp"
#include "storage/glob.hpp"
#include "storage/kv_store.hpp"
#include "storage/record_store.hpp"

// The synchronous interface every storage backend (sqlite/, redis/, postgres/) implements.
// StorageService (storage_service.hpp) runs these calls on its blocking pool and adds what is
// common to all backends: validation and limits, metrics, failover and the sweeper. So a backend
// only translates calls to its database, and is tested directly by the conformance suite.
namespace orchestra::storage {

using Deadline = std::chrono::steady_clock::time_point;

// Per-call context: the tenant namespace (already validated) and the time by which the call
// must have returned. Backends bound every wait (connect, lock, network) by the deadline and
// return kUnavailable when it passes.
struct Call {
  std::string_view tenant;
  Deadline deadline;
};

// Contract: arguments are validated by the caller (names, sizes, checkpoint id shape). Failures
// to reach the database (refused, reset, timed out) are kUnavailable (they trigger failover);
// anything else unexpected is kInternal. Implementations are thread-safe: calls arrive
// concurrently from the blocking pool and the maintenance thread.
class Backend {
 public:
  virtual ~Backend() = default;

  // "sqlite", "redis", "postgres" or "firestore".
  virtual std::string_view kind() const = 0;

  // Checks the database answers. Also finishes initialisation that could not happen at open
  // (the PostgreSQL schema when the server was down at start-up).
  virtual Result<void> Ping(Deadline deadline) = 0;

  virtual Result<void> Store(const Call& call, std::string_view key, std::string_view value,
                             std::optional<std::chrono::milliseconds> ttl) = 0;
  virtual Result<std::optional<std::string>> Retrieve(const Call& call, std::string_view key) = 0;
  virtual Result<bool> Delete(const Call& call, std::string_view key) = 0;
  virtual Result<bool> Exists(const Call& call, std::string_view key) = 0;
  // See KvStore::ListKeys; `cursor` is whatever this backend returned before (or empty).
  virtual Result<KeyPage> ListKeys(const Call& call, const Glob& pattern, int limit,
                                   std::string_view cursor) = 0;

  // Stores a checkpoint under `proposed_id`, or under the successor of the agent's latest id
  // when `proposed_id` does not sort after it, then drops all but the newest `keep_last`; all
  // atomically. Returns the id used.
  virtual Result<std::string> CreateCheckpoint(const Call& call, std::string_view agent_id,
                                               std::string_view proposed_id, std::string_view state,
                                               std::optional<std::string_view> metadata,
                                               int keep_last) = 0;
  virtual Result<std::optional<Checkpoint>> RestoreCheckpoint(
      const Call& call, std::string_view agent_id, std::optional<std::string_view> id) = 0;
  virtual Result<std::vector<CheckpointInfo>> ListCheckpoints(const Call& call,
                                                              std::string_view agent_id) = 0;
  virtual Result<bool> DeleteCheckpoint(const Call& call, std::string_view agent_id,
                                        std::string_view id) = 0;

  // Physically removes expired entries (they are already invisible); returns how many.
  virtual Result<std::uint64_t> SweepExpired(Deadline deadline) = 0;

  // --- Records (record_store.hpp) -------------------------------------------------------------
  // Collections, ids, prefixes and values are validated by the caller; a batch names each record
  // at most once.

  // All of `writes` or none, in one atomic step: when a precondition fails nothing is written
  // and the answer is kConflict naming the first such write (RecordConflict). Otherwise each
  // write that changes something (every put; a delete of an existing record) is appended to the
  // change log in the same step, in the order given. Returns, per write, the record's new
  // version (put) or 1/0 (delete: removed / there was nothing).
  virtual Result<std::vector<std::int64_t>> WriteRecords(
      const Call& call, const std::vector<RecordWrite>& writes) = 0;
  virtual Result<std::optional<Record>> GetRecord(const Call& call, std::string_view collection,
                                                  std::string_view id) = 0;
  // Records of `collection` whose id starts with `prefix` and sorts after `after` (empty: from
  // the start), in byte order, at most `limit`. `next_cursor` is the raw id of the last record
  // when more follow (StorageService turns it into an opaque cursor), else empty.
  virtual Result<RecordPage> ListRecords(const Call& call, std::string_view collection,
                                         std::string_view prefix, std::string_view after,
                                         int limit) = 0;

  // The change log after `sequence`, at most `limit` entries, in order. kConflict when
  // `sequence` > 0 and the log no longer holds that entry: it was pruned (the caller is behind
  // the retention) or this log never handed it out (another backend, a restored database).
  virtual Result<std::vector<Change>> ChangesSince(Deadline deadline, std::int64_t sequence,
                                                   int limit) = 0;
  // The newest entry's sequence; 0 when the log is empty.
  virtual Result<std::int64_t> LatestSequence(Deadline deadline) = 0;
  // Removes entries older than `retention` (by the database's clock where it has one), always
  // keeping the newest entry so that sequences never go backwards; returns how many.
  virtual Result<std::uint64_t> PruneChanges(Deadline deadline,
                                             std::chrono::milliseconds retention) = 0;

  // Adds each delta to its field (distinct names) of the counter, atomically; returns the new
  // values in the order given. Counters are not logged.
  virtual Result<std::vector<double>> AddCounter(
      const Call& call, std::string_view collection, std::string_view id,
      const std::vector<std::pair<std::string, double>>& deltas) = 0;
  // Like ListRecords, for counters (fields sorted by name).
  virtual Result<CounterPage> ListCounters(const Call& call, std::string_view collection,
                                           std::string_view prefix, std::string_view after,
                                           int limit) = 0;
};

}  // namespace orchestra::storage
