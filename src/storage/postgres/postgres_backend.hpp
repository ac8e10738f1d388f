#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/backend.hpp"
#include "storage/connection_pool.hpp"

// PostgreSQL through libpq (asynchronous libpq calls driven with poll(), so that every connect
// and query is bounded by the call's deadline; run on the blocking pool).
//
// Tables (created idempotently under an advisory lock on first contact, so instances starting
// together do not race):
//   orchestra_kv (tenant, key COLLATE "C", value, expires_at)   primary key (tenant, key): the
//     index lists a tenant's keys in byte order and serves prefix ranges; expiry is compared with
//     the server's now(), so instances with skewed clocks agree;
//   orchestra_checkpoints (tenant, agent_id, id COLLATE "C", state, metadata)
//   orchestra_records (tenant, collection, id COLLATE "C", value, version)
//   orchestra_record_changes (sequence primary key, tenant, collection, id, deleted, at)
//   orchestra_record_log (one row: the last sequence handed out)
//   orchestra_counters (tenant, collection, id COLLATE "C", field, value double precision)
// Values are stored as text exactly as given (not jsonb, which would rewrite them). A checkpoint
// write (insert + retention) is one transaction serialised per agent by an advisory lock.
//
// A record batch is one transaction: the records' rows are locked (SELECT ... FOR UPDATE) and
// their preconditions checked, the writes made, and then the change log's sequences taken from
// the one row of orchestra_record_log (an upsert that adds the batch's count), whose row lock
// is held until COMMIT. So sequences are handed out in commit order and without gaps: a reader
// that has seen sequence n has seen every commit before it (a bigserial would let a later
// sequence commit first, and a poller would skip the earlier one for good). The price: record
// writes commit one at a time across the database (for the few statements between taking the
// sequence and COMMIT). A deadlock or a unique violation (two batches creating one record) rolls
// back and runs the batch again until the deadline. Counters are upserts of `value + delta`
// (fields in name order, so two additions never deadlock), not logged.
// The database should use UTF8 encoding (glob `?` and classes then count characters).
//
// Connections: a ConnectionPool (storage/connection_pool.hpp) of up to pool_size with statements
// prepared once per connection; a connection is dropped on any error that leaves it unusable,
// and an idempotent query that fails on a reused connection is retried once on a fresh one.
namespace orchestra::storage {

struct PostgresOptions {
  std::string url;  // postgresql://user[:password]@host[:port]/db[?param=value]
  int pool_size = 4;
  std::chrono::milliseconds statement_timeout{5000};  // server-side bound on each statement
};

class PostgresBackend final : public Backend {
 public:
  // Does not connect (the first Ping or call does). Throws std::runtime_error on a URL libpq
  // cannot parse.
  static std::unique_ptr<PostgresBackend> Create(const PostgresOptions& options);
  ~PostgresBackend() override;

  std::string_view kind() const override { return "postgres"; }
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
  PostgresBackend() = default;

  // Runs fn(connection) with a pooled connection whose schema is known to exist. `idempotent`
  // allows one retry on a fresh connection when a reused one turns out to be broken.
  template <class Fn>
  auto WithConnection(Deadline deadline, bool idempotent, Fn&& fn)
      -> decltype(fn(std::declval<Connection&>()));
  // The pool's `open` hook: connects and sets the statement timeout.
  Result<std::unique_ptr<Connection>> Open(Deadline deadline);
  Result<void> EnsureSchema(Connection& connection, Deadline deadline);
  // BEGIN; body(); COMMIT, rolled back on failure and run again (until the deadline) when the
  // failure was a deadlock, a serialization failure or a unique violation.
  template <class T, class Body>
  Result<T> Transaction(Connection& c, Deadline deadline, Body&& body);

  std::string url_;
  std::string statement_timeout_ms_;
  std::atomic<bool> schema_ready_{false};
  std::optional<ConnectionPool<Connection>> pool_;  // set by Create
};

}  // namespace orchestra::storage
