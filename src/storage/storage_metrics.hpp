#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "observability/metrics.hpp"

// The orchestra_storage_* metrics, with every child created up front so that recording is a
// couple of relaxed atomic adds.
namespace orchestra::storage {

enum class StorageOp : std::uint8_t {
  kStore,
  kRetrieve,
  kDelete,
  kExists,
  kListKeys,
  kCheckpointCreate,
  kCheckpointRestore,
  kCheckpointList,
  kCheckpointDelete,
  kSweep,
  kRecordPut,
  kRecordGet,
  kRecordDelete,
  kRecordList,
  kRecordApply,
  kChangesSince,
  kLatestSequence,
  kCounterAdd,
  kCounterList,
  kPruneChanges,
};
inline constexpr std::size_t kStorageOpCount = 20;

enum class StorageOutcome : std::uint8_t {
  kOk,
  kNotFound,     // a miss: Retrieve/Restore found nothing, Delete removed nothing
  kRejected,     // invalid or too large input; the backend was not called or refused it
  kUnavailable,  // the backend could not be reached or timed out
  kError,        // anything else
  kConflict,     // a record's precondition failed, or a change-log reader fell behind
};
inline constexpr std::size_t kStorageOutcomeCount = 6;

std::string_view ToString(StorageOp op);
std::string_view ToString(StorageOutcome outcome);

// Thread-safe. `backends` are the label values of the primary and (when present) the secondary.
// Registers its families in `registry` (once per registry).
class StorageMetrics {
 public:
  StorageMetrics(observability::Registry& registry, const std::vector<std::string>& backends);

  void Record(std::size_t backend, StorageOp op, StorageOutcome outcome, double seconds);
  void Count(std::size_t backend, StorageOp op, StorageOutcome outcome);
  void SetFailoverActive(bool active) { failover_->Set(active ? 1 : 0); }

 private:
  struct PerBackend {
    std::array<std::array<observability::Counter*, kStorageOutcomeCount>, kStorageOpCount> ops{};
    std::array<observability::Histogram*, kStorageOpCount> durations{};
  };
  std::vector<PerBackend> backends_;
  observability::Gauge* failover_;
};

}  // namespace orchestra::storage
