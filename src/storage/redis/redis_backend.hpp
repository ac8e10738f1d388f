#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/backend.hpp"
#include "storage/connection_pool.hpp"

// Redis through hiredis (synchronous; run on the blocking pool).
//
// Layout, for tenant T (length |T|) and agent A:
//   o:kv:|T|:T:<key>                  string, with Redis's own expiry for TTLs
//   o:cp:{|T|:T:|A|:A}:ids            sorted set of checkpoint ids, all score 0 (so byte order)
//   o:cp:{|T|:T:|A|:A}:states / :meta hashes id → state / metadata
//   o:rec:{|T|:T:|C|:C}:ids / :data    a collection's records: sorted set of ids (score 0, so
//                                     byte order), hash id → "<version> <value>"
//   o:rec:seq, o:rec:log              the change log: the last sequence, and a sorted set
//                                     scored by sequence of "<seq> <ms> <deleted>
//                                     <|T|>:T<|C|>:C<id>"
//   o:ctr:{|T|:T:|C|:C}:ids / :c:<id> counters: sorted set of ids, a hash of fields per counter
// The length prefix keeps tenants apart whatever their names; the hash tag keeps an agent's
// three keys in one cluster slot. Checkpoint writes are Lua scripts, so atomic. A record batch is
// one script: it checks every precondition first, then writes and appends to the log (INCR of
// the sequence, ZADD with the server's TIME for retention), so sequences follow execution order
// without gaps. Counters are HINCRBYFLOAT in a script. (Redis does not roll a script back, but
// it refuses one over maxmemory only at its first write, never half-way, so with
// maxmemory-policy noeviction a full Redis refuses a batch whole.)
//
// ListKeys walks SCAN with a MATCH pattern confined to the tenant's prefix. One SCAN reply can
// hold more keys than the page has room for: the cursor then remembers the SCAN position of that
// reply, how many of its (sorted) keys were returned and a hash of them; the next page repeats
// that SCAN step and skips those keys if the hash still matches, or returns the whole reply again
// if the keyspace changed there (a repeat, never a miss).
//
// Connections: a ConnectionPool (storage/connection_pool.hpp) of up to pool_size, created on
// demand and dropped on any I/O error; an idempotent command that fails on a reused connection is
// retried once on a fresh one (the server may have closed an idle connection). Socket timeouts
// follow each call's deadline.
namespace orchestra::storage {

struct RedisOptions {
  std::string url;  // redis://[[user]:password@]host[:port][/db]
  int pool_size = 4;
};

class RedisBackend final : public Backend {
 public:
  // Parses the URL (std::runtime_error when malformed); connects lazily.
  static std::unique_ptr<RedisBackend> Create(const RedisOptions& options);
  ~RedisBackend() override;

  std::string_view kind() const override { return "redis"; }
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
  struct Reply;

 private:
  RedisBackend() = default;

  // Sends one command; `idempotent` allows the retry on a fresh connection.
  Result<Reply> Command(Deadline deadline, const std::vector<std::string_view>& args,
                        bool idempotent);
  // The pool's `open` hook: connects, authenticates and selects the database.
  Result<std::unique_ptr<Connection>> Open(Deadline deadline);

  std::string host_;
  int port_ = 6379;
  std::string user_;
  std::string password_;
  int db_ = 0;
  std::optional<ConnectionPool<Connection>> pool_;  // set by Create
};

}  // namespace orchestra::storage
