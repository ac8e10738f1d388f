#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/blocking_pool.hpp"
#include "storage/backend.hpp"
#include "storage/storage.hpp"
#include "storage/storage_metrics.hpp"

// The one asynchronous implementation of KvStore, CheckpointStore and RecordStore, over any
// Backend.
//
// Each call is validated (names, sizes, patterns), then run on the blocking pool against the
// active backend with a deadline of operation_timeout from the moment it was issued (time spent
// queueing for a pool thread counts). A call that finds the primary unreachable (kUnavailable)
// switches every later call to the secondary and is itself retried there once. A maintenance
// thread sweeps expired entries and prunes the record change log (entries older than
// change_log_retention) every sweep_interval and, while failed over, pings the primary every
// probe_interval; after failback_after good pings calls go back to the primary.
namespace orchestra::storage {

struct StorageServiceSettings {
  std::size_t max_value_bytes = 1 << 20;
  int keep_last = 50;
  std::chrono::milliseconds operation_timeout{5000};
  std::chrono::milliseconds sweep_interval{60000};
  std::chrono::milliseconds change_log_retention{3600000};
  std::size_t threads = 4;  // blocking pool size
  StorageOptions options;
};

class StorageService final : public Storage, public KvStore, public CheckpointStore {
 public:
  // `secondary` may be null. `start_failed_over`: the primary could not be reached at start.
  // `metrics` must outlive this object.
  StorageService(std::unique_ptr<Backend> primary, std::unique_ptr<Backend> secondary,
                 bool start_failed_over, StorageServiceSettings settings,
                 observability::Registry& metrics);
  // Stops the maintenance thread and waits for the blocking pool to finish its calls.
  ~StorageService() override;

  // Storage
  KvStore& kv() override { return *this; }
  CheckpointStore& checkpoints() override { return *this; }
  RecordStore& records() override { return records_; }
  boost::asio::awaitable<StorageHealth> CheckHealth() override;
  bool failover_active() const override { return active_.load() == kSecondary; }

  // KvStore
  boost::asio::awaitable<Result<void>> Store(std::string_view tenant, std::string_view key,
                                             std::string_view value,
                                             std::optional<std::chrono::milliseconds> ttl) override;
  boost::asio::awaitable<Result<std::optional<std::string>>> Retrieve(
      std::string_view tenant, std::string_view key) override;
  boost::asio::awaitable<Result<bool>> Delete(std::string_view tenant,
                                              std::string_view key) override;
  boost::asio::awaitable<Result<bool>> Exists(std::string_view tenant,
                                              std::string_view key) override;
  boost::asio::awaitable<Result<KeyPage>> ListKeys(std::string_view tenant,
                                                   std::string_view pattern, int limit,
                                                   std::string_view cursor) override;

  // CheckpointStore
  boost::asio::awaitable<Result<std::string>> Create(
      std::string_view tenant, std::string_view agent_id, std::string_view state,
      std::optional<std::string_view> metadata) override;
  boost::asio::awaitable<Result<std::optional<Checkpoint>>> Restore(
      std::string_view tenant, std::string_view agent_id,
      std::optional<std::string_view> checkpoint_id) override;
  boost::asio::awaitable<Result<std::vector<CheckpointInfo>>> List(
      std::string_view tenant, std::string_view agent_id) override;
  boost::asio::awaitable<Result<bool>> Delete(std::string_view tenant, std::string_view agent_id,
                                              std::string_view checkpoint_id) override;

 private:
  static constexpr std::size_t kPrimary = 0;
  static constexpr std::size_t kSecondary = 1;

  // RecordStore, apart so that its Put/Delete/List do not overload KvStore's and
  // CheckpointStore's (storage_service.cpp).
  class Records final : public RecordStore {
   public:
    explicit Records(StorageService& service) : service_(service) {}
    boost::asio::awaitable<Result<std::int64_t>> Put(std::string_view tenant,
                                                     std::string_view collection,
                                                     std::string_view id, std::string_view value,
                                                     Expect expect) override;
    boost::asio::awaitable<Result<std::optional<Record>>> Get(std::string_view tenant,
                                                              std::string_view collection,
                                                              std::string_view id) override;
    boost::asio::awaitable<Result<bool>> Delete(std::string_view tenant,
                                                std::string_view collection, std::string_view id,
                                                Expect expect) override;
    boost::asio::awaitable<Result<RecordPage>> List(std::string_view tenant,
                                                    std::string_view collection,
                                                    std::string_view prefix, int limit,
                                                    std::string_view cursor) override;
    boost::asio::awaitable<Result<void>> Apply(std::string_view tenant,
                                               std::vector<RecordWrite> writes) override;
    boost::asio::awaitable<Result<std::vector<Change>>> ChangesSince(std::int64_t sequence,
                                                                     int limit) override;
    boost::asio::awaitable<Result<std::int64_t>> LatestSequence() override;
    boost::asio::awaitable<Result<std::vector<double>>> Add(
        std::string_view tenant, std::string_view collection, std::string_view id,
        std::vector<std::pair<std::string, double>> deltas) override;
    boost::asio::awaitable<Result<CounterPage>> Counters(std::string_view tenant,
                                                         std::string_view collection,
                                                         std::string_view prefix, int limit,
                                                         std::string_view cursor) override;

   private:
    StorageService& service_;
  };

  // Runs fn(backend, call) on the pool against the active backend, with metrics and failover.
  template <class T, class Fn>
  boost::asio::awaitable<Result<T>> Execute(StorageOp op, std::string_view tenant, Fn fn);
  template <class T>
  Result<T> Reject(StorageOp op, Error error);

  void EnterFailover(const std::string& reason);
  void LeaveFailover();
  void Emit(const std::string& message) const;
  void MaintenanceLoop(const std::stop_token& stop);
  void SweepOnce();
  std::string Label(std::size_t backend) const;

  // Which of the two backends `backend` is.
  std::size_t IndexOf(const Backend& backend) const {
    return &backend == backends_[kSecondary].get() ? kSecondary : kPrimary;
  }

  std::unique_ptr<Backend> backends_[2];
  StorageServiceSettings settings_;
  Records records_{*this};
  StorageMetrics metrics_;
  std::atomic<std::size_t> active_{kPrimary};
  std::mutex state_mutex_;  // serialises failover transitions
  BlockingPool pool_;       // after the backends: joined before they are destroyed
  std::mutex maintenance_mutex_;
  std::condition_variable_any maintenance_cv_;
  std::jthread maintenance_;  // last: stopped first
};

}  // namespace orchestra::storage
