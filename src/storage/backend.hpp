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

  // "sqlite", "redis" or "postgres".
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
};

}  // namespace orchestra::storage
