#include "storage/storage_metrics.hpp"

namespace orchestra::storage {

std::string_view ToString(StorageOp op) {
  constexpr std::array<std::string_view, kStorageOpCount> kNames = {"store",
                                                                    "retrieve",
                                                                    "delete",
                                                                    "exists",
                                                                    "list_keys",
                                                                    "checkpoint_create",
                                                                    "checkpoint_restore",
                                                                    "checkpoint_list",
                                                                    "checkpoint_delete",
                                                                    "sweep",
                                                                    "record_put",
                                                                    "record_get",
                                                                    "record_delete",
                                                                    "record_list",
                                                                    "record_apply",
                                                                    "changes_since",
                                                                    "latest_sequence",
                                                                    "counter_add",
                                                                    "counter_list",
                                                                    "prune_changes"};
  return kNames[static_cast<std::size_t>(op)];
}

std::string_view ToString(StorageOutcome outcome) {
  constexpr std::array<std::string_view, kStorageOutcomeCount> kNames = {
      "ok", "not_found", "rejected", "unavailable", "error", "conflict"};
  return kNames[static_cast<std::size_t>(outcome)];
}

StorageMetrics::StorageMetrics(observability::Registry& registry,
                               const std::vector<std::string>& backends) {
  auto& ops = registry.AddCounter("orchestra_storage_operations_total",
                                  "Storage operations by backend, operation and outcome.",
                                  {"backend", "op", "outcome"});
  auto& durations = registry.AddHistogram("orchestra_storage_duration_seconds",
                                          "Time storage operations took, in seconds.",
                                          {"backend", "op"}, observability::LatencyBuckets());
  auto& failover = registry.AddGauge(
      "orchestra_storage_failover_active",
      "1 while requests are served by storage.secondary because the primary is down.", {});
  failover_ = &failover.With({});
  failover_->Set(0);
  for (const std::string& backend : backends) {
    PerBackend& b = backends_.emplace_back();
    for (std::size_t op = 0; op < kStorageOpCount; ++op) {
      const std::string_view op_name = ToString(static_cast<StorageOp>(op));
      b.durations[op] = &durations.With({backend, op_name});
      for (std::size_t outcome = 0; outcome < kStorageOutcomeCount; ++outcome) {
        b.ops[op][outcome] =
            &ops.With({backend, op_name, ToString(static_cast<StorageOutcome>(outcome))});
      }
    }
  }
}

void StorageMetrics::Record(std::size_t backend, StorageOp op, StorageOutcome outcome,
                            double seconds) {
  Count(backend, op, outcome);
  backends_[backend].durations[static_cast<std::size_t>(op)]->Observe(seconds);
}

void StorageMetrics::Count(std::size_t backend, StorageOp op, StorageOutcome outcome) {
  backends_[backend].ops[static_cast<std::size_t>(op)][static_cast<std::size_t>(outcome)]->Inc();
}

}  // namespace orchestra::storage
