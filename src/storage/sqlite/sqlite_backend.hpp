#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "storage/backend.hpp"

// The embedded default: one SQLite file in WAL mode.
//
// One writer connection (writes are serialised, as SQLite serialises them anyway) and a pool of
// reader connections that read concurrently with it (WAL). Statements are prepared once per
// connection. Durability: an acknowledged write has been committed to the WAL; with
// synchronous=NORMAL (the default here) the WAL is written to the kernel before the commit
// returns, so a killed process (kill -9, crash, OOM) loses nothing and the database is never
// corrupted; only a power cut or kernel crash can lose the last commits. `full_sync` makes each
// commit wait for fsync too, which survives those at the cost of one fsync per write.
namespace orchestra::storage {

struct SqliteOptions {
  std::string path;  // parent directories are created
  int readers = 4;
  bool full_sync = false;
  std::chrono::milliseconds busy_timeout{5000};  // waiting for another process's lock
};

class SqliteBackend final : public Backend {
 public:
  // Opens or creates the database and its schema. Throws std::runtime_error naming the path and
  // SQLite's reason when it cannot (start-up only).
  static std::unique_ptr<SqliteBackend> Open(const SqliteOptions& options);
  ~SqliteBackend() override;

  std::string_view kind() const override { return "sqlite"; }
  Result<void> Ping(Deadline deadline) override;
  Result<void> Store(const Call& call, std::string_view key, std::string_view value,
                     std::optional<std::chrono::milliseconds> ttl) override;
  Result<std::optional<std::string>> Retrieve(const Call& call, std::string_view key) override;
  Result<bool> Delete(const Call& call, std::string_view key) override;
  Result<bool> Exists(const Call& call, std::string_view key) override;
  Result<KeyPage> ListKeys(const Call& call, const Glob& pattern, int limit,
                           std::string_view cursor) override;
  Result<std::string> CreateCheckpoint(const Call& call, std::string_view agent_id,
                                       std::string_view proposed_id, std::string_view state,
                                       std::optional<std::string_view> metadata,
                                       int keep_last) override;
  Result<std::optional<Checkpoint>> RestoreCheckpoint(const Call& call, std::string_view agent_id,
                                                      std::optional<std::string_view> id) override;
  Result<std::vector<CheckpointInfo>> ListCheckpoints(const Call& call,
                                                      std::string_view agent_id) override;
  Result<bool> DeleteCheckpoint(const Call& call, std::string_view agent_id,
                                std::string_view id) override;
  Result<std::uint64_t> SweepExpired(Deadline deadline) override;
  Result<std::vector<std::int64_t>> WriteRecords(const Call& call,
                                                 const std::vector<RecordWrite>& writes) override;
  Result<std::optional<Record>> GetRecord(const Call& call, std::string_view collection,
                                          std::string_view id) override;
  Result<RecordPage> ListRecords(const Call& call, std::string_view collection,
                                 std::string_view prefix, std::string_view after,
                                 int limit) override;
  Result<std::vector<Change>> ChangesSince(Deadline deadline, std::int64_t sequence,
                                           int limit) override;
  Result<std::int64_t> LatestSequence(Deadline deadline) override;
  Result<std::uint64_t> PruneChanges(Deadline deadline,
                                     std::chrono::milliseconds retention) override;
  Result<std::vector<double>> AddCounter(
      const Call& call, std::string_view collection, std::string_view id,
      const std::vector<std::pair<std::string, double>>& deltas) override;
  Result<CounterPage> ListCounters(const Call& call, std::string_view collection,
                                   std::string_view prefix, std::string_view after,
                                   int limit) override;

  class Connection;

 private:
  SqliteBackend() = default;

  // Run fn(connection) with the writer or a borrowed reader; kUnavailable when none frees up
  // before the deadline. Defined in the .cpp, the only user.
  template <class Fn>
  auto WithWriter(Deadline deadline, Fn&& fn) -> decltype(fn(std::declval<Connection&>()));
  template <class Fn>
  auto WithReader(Deadline deadline, Fn&& fn) -> decltype(fn(std::declval<Connection&>()));

  std::unique_ptr<Connection> writer_;
  std::timed_mutex writer_mutex_;
  std::vector<std::unique_ptr<Connection>> readers_;  // owned
  std::vector<Connection*> idle_readers_;             // guarded by readers_mutex_
  std::mutex readers_mutex_;
  std::condition_variable readers_cv_;
};

}  // namespace orchestra::storage
