#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "common/gce_metadata.hpp"
#include "storage/backend.hpp"
#include "storage/firestore/blocking_http.hpp"

// Cloud Firestore (Native mode) through its REST API v1 (blocking HTTP/1.1 on the storage pool,
// storage/firestore/blocking_http.hpp).
//
// Layout, under projects/{project}/databases/{database}/documents (ids: firestore/encoding.hpp):
//   {root}/{tenant}                                   not written: only a parent path
//   {root}/{tenant}/kv/{key}                          value (string; bytes when not UTF-8),
//                                                     expire_at (timestamp, only with a TTL)
//   {root}/{tenant}/agents/{agent}                    latest (the highest id ever given out),
//                                                     count (how many checkpoints exist)
//   {root}/{tenant}/agents/{agent}/checkpoints/{id}   state (string), metadata (string, optional)
// Tenant and agent ids are escaped URL-safe names; key ids keep the keys' byte order, so listing
// walks document ids (Firestore orders them by bytes) from the glob's literal prefix. Expired
// entries are invisible at once (compared with the read's server time); Firestore's TTL policy
// on the collection group `kv`, field `expire_at`, deletes them later (within about a day), so
// SweepExpired does nothing. Without that policy expired entries stay stored (and invisible).
//
// Atomicity without transactions: a checkpoint write is one commit that creates the checkpoint
// (precondition: it does not exist), trims the oldest beyond keep_last and updates the agent
// document with a precondition on the update time read just before, so a concurrent write to the
// same agent fails the commit and the call reads again and retries (optimistic concurrency until
// the deadline). A transaction would hold locks that a call abandoned at its deadline (or a
// killed process) leaves behind until Firestore expires them, and the emulator resolves lock
// contention only by a 30 s timeout. Deleting a checkpoint also touches the agent document
// (count − 1), so it too invalidates a concurrent creation's read.
//
// Transport: https://firestore.googleapis.com (or `endpoint`) with an OAuth token from the GCE
// metadata server (cached until a minute before it expires, refetched once when Firestore
// answers 401), or, when `emulator_host` is set ($FIRESTORE_EMULATOR_HOST, as Google's client
// libraries do), plain HTTP to the emulator with the emulator's administrator token "owner".
// Errors: unreachable, timed out, 429/5xx after retries within the deadline, 401/403 (the
// service refuses our identity) and a missing database are kUnavailable (failover); anything
// else unexpected is kInternal.
namespace orchestra::storage {

struct FirestoreOptions {
  std::string project;
  std::string database = "(default)";
  std::string root = "orchestra";
  // https://host[:port] or http://host:port; empty means https://firestore.googleapis.com.
  std::string endpoint;
  // host:port of the emulator: plain HTTP there, no metadata server. Wins over `endpoint`.
  std::string emulator_host;
  std::string metadata_host = std::string(gce::kDefaultMetadataHost);  // host[:port]
  int pool_size = 4;
  std::string ca_file;  // extra trusted CAs for `endpoint` (tests)
};

class FirestoreBackend final : public Backend {
 public:
  // Checks the options (std::runtime_error when malformed); connects lazily.
  static std::unique_ptr<FirestoreBackend> Create(const FirestoreOptions& options);
  ~FirestoreBackend() override;

  std::string_view kind() const override { return "firestore"; }
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

  // One answer of the REST API: the HTTP status, Firestore's status name ("OK" on success,
  // e.g. "FAILED_PRECONDITION") and message, and the parsed body.
  struct Reply {
    unsigned http_status = 0;
    std::string status;
    std::string message;
    boost::json::value body;
    bool ok() const { return http_status == 200; }
  };

 private:
  FirestoreBackend() = default;

  // POSTs `body` to `target` (an absolute path). Transport failures are errors; an error status
  // comes back as a Reply. Retries 429/5xx/ABORTED within the deadline when `idempotent`.
  Result<Reply> Post(const std::string& target, const boost::json::value& body, Deadline deadline,
                     bool idempotent);
  Result<std::string> AuthorizationHeader(Deadline deadline);
  Error Failure(const Reply& reply, std::string_view what) const;

  struct Document;  // a read document: name, fields, update time
  // Reads documents by name; nullopt for a missing one. `mask` limits the fields returned.
  Result<std::vector<std::optional<Document>>> BatchGet(
      const std::vector<std::string>& names, const std::vector<std::string>& mask,
      Deadline deadline, std::chrono::system_clock::time_point* read_time);
  // Runs a structured query under `parent` (a document name) and returns its documents.
  Result<std::vector<Document>> RunQuery(const std::string& parent, boost::json::object query,
                                         Deadline deadline,
                                         std::chrono::system_clock::time_point* read_time);
  Result<Reply> Commit(boost::json::array writes, Deadline deadline, bool idempotent);

  std::string TenantDocument(std::string_view tenant) const;
  std::string KvDocument(std::string_view tenant, std::string_view key) const;
  std::string AgentDocument(std::string_view tenant, std::string_view agent_id) const;
  std::string CheckpointDocument(std::string_view tenant, std::string_view agent_id,
                                 std::string_view id) const;
  Result<std::optional<Checkpoint>> ReadCheckpoint(const std::string& name, Deadline deadline);
  Result<std::vector<std::string>> CheckpointIds(const Call& call, std::string_view agent_id);

  std::string documents_;  // projects/{p}/databases/{d}/documents
  std::string root_;       // documents_ + "/" + root
  bool emulator_ = false;
  std::unique_ptr<BlockingHttpClient> http_;
  std::unique_ptr<BlockingHttpClient> metadata_;  // null for the emulator
  gce::TokenCache token_;
  std::timed_mutex token_fetch_;  // one metadata request at a time
};

}  // namespace orchestra::storage
