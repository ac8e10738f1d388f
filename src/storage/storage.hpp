#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "config/config.hpp"
#include "storage/checkpoint_store.hpp"
#include "storage/kv_store.hpp"
#include "storage/record_store.hpp"

namespace orchestra::observability {
class Registry;
}

// The storage area's public face for main and the API handlers: one object that owns the
// configured backends (primary and optional secondary), their connection pools, the blocking
// thread pool they run on, the TTL sweeper and the failover state.
namespace orchestra::storage {

// Where the secondary's change-log sequences start (see Storage::records).
inline constexpr std::int64_t kSecondarySequenceBase = std::int64_t{1} << 62;

// What /readyz reports.
struct StorageHealth {
  bool ready = false;  // the backend serving requests answers
  bool primary_reachable = false;
  std::optional<bool> secondary_reachable;  // nullopt without a secondary
  bool failover_active = false;             // requests are served by the secondary
  std::string
      detail;  // one line, e.g. "primary redis: down (...); serving from secondary postgres"
};

class Storage {
 public:
  virtual ~Storage() = default;

  // All three live as long as this object.
  virtual KvStore& kv() = 0;
  virtual CheckpointStore& checkpoints() = 0;
  // Change-log sequences are those of the store serving the call: the primary's as the backend
  // numbers them, the secondary's offset by kSecondarySequenceBase. A sequence from one store
  // passed to ChangesSince while the other serves is kConflict, so a reader reloads after a
  // failover or a failback as it does when it falls behind the log's retention.
  virtual RecordStore& records() = 0;

  // Pings the primary and the secondary (bounded by storage.operation_timeout, at most 2 s).
  virtual boost::asio::awaitable<StorageHealth> CheckHealth() = 0;

  // Cheap: whether requests currently go to the secondary.
  virtual bool failover_active() const = 0;
};

struct StorageOptions {
  // While failed over, the primary is pinged this often; after `failback_after` consecutive
  // successful pings requests go back to it.
  std::chrono::milliseconds probe_interval{1000};
  int failback_after = 2;
  // Called (from a storage thread) on failover, failback and background errors; main logs it.
  std::function<void(std::string_view message)> on_event;
};

// Opens the configured backends (creating the SQLite file's directory and the PostgreSQL schema
// as needed) and starts the sweeper. Throws std::runtime_error with a precise message when the
// storage cannot serve: the primary cannot be opened and there is no reachable secondary, or
// the configuration is unusable (bad URL, unwritable path). With a secondary configured, an
// unreachable primary is not fatal: the server starts failed over to the secondary and moves to
// the primary once it answers. A secondary that cannot be reached at start is reported by
// CheckHealth and used once it answers. Registers the orchestra_storage_* metrics in `metrics`,
// which must outlive the returned object.
std::unique_ptr<Storage> OpenStorage(const config::StorageConfig& config,
                                     observability::Registry& metrics, StorageOptions options = {});

}  // namespace orchestra::storage
