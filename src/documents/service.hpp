#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/value.hpp>

#include "common/error.hpp"
#include "config/config.hpp"
#include "documents/chunker.hpp"
#include "documents/content.hpp"
#include "documents/import_dir.hpp"
#include "documents/records.hpp"
#include "documents/tenant_index.hpp"
#include "orchestration/orchestrator.hpp"
#include "storage/change_follower.hpp"
#include "storage/record_store.hpp"

namespace orchestra::observability {
class Counter;
class Registry;
}  // namespace orchestra::observability

// Documents and retrieval (issue 14, DESIGN.md §1): ingest (chunk, embed through the
// orchestrator in batches, store), get, list, delete and search (vector, keyword or both fused),
// per tenant, over the record store (storage/record_store.hpp) and in-memory indexes
// (tenant_index.hpp). The HTTP edge is api/documents.cpp; retrieval-augmented answers
// (/answer-question, the chat `documents` option) call Retrieve.
//
// Storage and atomicity (records.hpp has the layout). An ingest writes the chunks' pages under a
// new generation, then the document record naming that generation — the commit point — with a
// precondition on the version it read (a concurrent replacement of the same id makes one of
// them retry on top of the other: the last to commit wins), then makes the new chunks visible
// in this instance's index in one step, then deletes the previous generation's pages. A
// deletion removes the document record first, then its pages. A search therefore never sees
// half of a document, here or on any other instance.
//
// The in-memory indexes are the truth for reads (get, list, search) and follow the store:
//   - at start-up, every tenant's documents are listed (kSystemTenant's document_tenants says
//     which tenants exist) and loaded: from the snapshot (documents.snapshot_dir) for every
//     document whose generation the snapshot holds, from the store's pages for the others;
//     vectors of the snapshot that no current document claims are dropped. Until that is done
//     ready() is false (/startupz waits; document requests answer 503).
//   - then the store's change log is read every documents.poll_interval: a change of a
//     `documents` record (here or on another instance) re-reads that record and, when its
//     generation differs from what is in memory, loads the new generation's pages (or removes
//     the document). So another instance's write is searchable here within poll_interval plus
//     the time to read and index the document (a few seconds with the defaults); this
//     instance's own writes are searchable when the request returns. A log that has moved past
//     the last position read (older than its retention) makes a full reconciliation.
//   - snapshots are written every documents.snapshot_interval when something changed, and on
//     Stop().
//
// Threads: requests run on the caller's event loop; every change to the in-memory indexes, the
// start-up load, the poller and the snapshots run on the service's own maintenance thread (one
// io_context), so writes to a TenantIndex are serialised as it requires, and an ingest waits
// for its document to be applied there. Reads of the import directory run there too.
namespace orchestra::documents {

struct ChunkingRequest {
  std::optional<ChunkStrategy> strategy;  // unset: documents.chunking.strategy
  std::optional<std::size_t> size;
  std::optional<std::size_t> overlap;
};

struct IngestRequest {
  std::string content;  // as sent (HTML is reduced to text here)
  ContentType content_type = ContentType::kText;
  std::string document_id;  // empty: a new UUID
  std::string title;        // empty: the HTML <title>, else empty
  std::string source;
  std::string metadata = "{}";  // a JSON object, as text (checked)
  ChunkingRequest chunking;
  std::string embedding_model;  // empty: documents.embedding_model
};

struct IngestResult {
  DocumentRecord document;
  bool replaced = false;         // an earlier version of the document was replaced
  orchestration::Served served;  // the embeddings calls' (usage summed)
};

struct ListResult {
  std::vector<DocumentRecord> documents;
  std::size_t total_count = 0;
};

struct SearchRequest {
  std::string query;
  std::size_t limit = 5;
  std::optional<double> score_threshold;  // unset: documents.score_threshold
  std::optional<std::string> document_id;
  std::vector<std::pair<std::string, boost::json::value>> metadata;  // must all match
  SearchMode mode = SearchMode::kHybrid;
  std::string embedding_model;  // empty: documents.embedding_model
};

struct SearchResult {
  std::vector<Hit> results;
  std::string embedding_model;
  orchestration::Served served;  // the query's embedding (none in keyword mode)
};

// What a retrieval-augmented answer is given (Service::Retrieve).
struct Retrieval {
  std::vector<Hit> hits;  // in rank order; their ids are the answer's citations
  // The hits' passages for the answering model (ContextFromPassages); "" when nothing matched.
  std::string context;
  bool numbered = false;         // "[1] …": the model is an LLM that may cite them by number
  orchestration::Served served;  // the query's embedding (none in keyword mode)
};

inline constexpr std::size_t kMaxSearchLimit = 100;
inline constexpr std::size_t kMaxQueryBytes = 16 * 1024;

// The passages retrieved for a question, formatted for a model: numbered ("[1] …") for an LLM
// that is asked to cite them, plain (blank-line separated) for the extractive local model, which
// would otherwise quote the numbers.
std::vector<std::string> PassageTexts(const std::vector<Hit>& hits);
std::string ContextFromPassages(const std::vector<std::string>& passages, bool numbered);

class Service {
 public:
  struct Options {
    config::DocumentsConfig config;
    // storage.max_value_bytes: pages are packed to a quarter of it (at most 256 KiB).
    std::uint64_t max_value_bytes = 1 << 20;
    // Threads an HNSW build may use at start-up (later inserts use one).
    std::size_t build_threads = 1;
    std::chrono::system_clock::duration orphan_age = std::chrono::hours(1);
    // Called once on the maintenance thread when the start-up load has finished (main marks
    // the process started then: /startupz waits for the indexes).
    std::function<void()> on_ready;
  };

  // `records` and `orchestrator` must outlive the service; `metrics` (optional) too. Nothing
  // runs until Start(). Throws std::runtime_error when documents.import_dir cannot be opened.
  Service(storage::RecordStore& records, orchestration::Orchestrator& orchestrator, Options options,
          observability::Registry* metrics = nullptr);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Starts the maintenance thread: the load, then the poller and the snapshots.
  void Start();
  // Stops polling, saves the snapshots that changed, joins the thread. Idempotent.
  void Stop();
  // The start-up load has finished (documents can be served).
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // A one-line account of the load while it runs ("loading documents: 3 of 10 tenants").
  std::string LoadStatus() const;

  const std::string& default_embedding_model() const { return options_.config.embedding_model; }
  bool import_enabled() const { return import_dir_ != nullptr; }
  const config::DocumentsConfig& config() const { return options_.config; }

  // Every call below: kUnavailable while !ready(); the record store's errors as they are.
  boost::asio::awaitable<Result<IngestResult>> Ingest(std::string tenant, IngestRequest request,
                                                      orchestration::RequestInfo info);
  boost::asio::awaitable<Result<DocumentRecord>> Get(std::string tenant, std::string document_id);
  boost::asio::awaitable<Result<ListResult>> List(std::string tenant, std::size_t offset,
                                                  std::size_t limit);
  // kNotFound when there is no such document.
  boost::asio::awaitable<Result<void>> Delete(std::string tenant, std::string document_id);
  boost::asio::awaitable<Result<SearchResult>> Search(std::string tenant, SearchRequest request,
                                                      orchestration::RequestInfo info);
  // Search, and the hits as the context `answer_model` is to answer from: numbered passages for
  // an LLM asked to cite them, plain ones for the extractive local model, which would otherwise
  // quote the numbers. The one retrieval of /answer-question and the chat `documents` option.
  boost::asio::awaitable<Result<Retrieval>> Retrieve(std::string tenant, SearchRequest request,
                                                     std::string answer_model,
                                                     orchestration::RequestInfo info);
  // The bytes of a file under documents.import_dir (ImportDir::Read), read on the maintenance
  // thread. kNotFound when no import_dir is configured.
  boost::asio::awaitable<Result<std::string>> ReadImport(std::string path);

  // Applies the store's changes since the last poll now, on the maintenance thread (tests; the
  // poller does it on its own).
  boost::asio::awaitable<Result<void>> PollNow();
  // Saves the snapshots of the tenants that changed, on the maintenance thread (tests; Stop and
  // the timer do it too).
  boost::asio::awaitable<Result<void>> SnapshotNow();

 private:
  struct Tenant {
    std::string name;
    std::unique_ptr<TenantIndex> index;
    bool dirty = false;  // changed since its last snapshot (maintenance thread)
  };
  struct Prepared {
    std::string generation;
    std::vector<ChunkRecord> chunks;
  };
  struct Embedded {
    std::vector<std::vector<float>> vectors;
    orchestration::Served served;
  };

  // --- The request side (any event loop). ---
  boost::asio::awaitable<Result<Embedded>> Embed(const std::vector<std::string_view>& texts,
                                                 const std::string& model,
                                                 const orchestration::RequestInfo& info);
  Result<std::vector<Chunk>> MakeChunks(std::string_view text, const ChunkingRequest& request,
                                        ChunkStrategy& strategy, const std::string& model) const;
  // The tenant's index; null when the tenant has never had a document here. Thread-safe.
  TenantIndex* Index(std::string_view tenant) const;
  boost::asio::awaitable<Result<void>> RegisterTenant(const std::string& tenant);
  // Writes a generation's pages and its pending record (the first batch holds both).
  boost::asio::awaitable<Result<void>> WritePages(const std::string& tenant,
                                                  const std::string& document_id,
                                                  const std::string& generation,
                                                  std::vector<std::string> pages);
  // Deletes a generation's pages, then its pending record; failures are logged (the sweep
  // finds what is left).
  boost::asio::awaitable<void> DeleteGeneration(std::string tenant, std::string generation,
                                                std::uint32_t pages);

  // --- The maintenance thread. ---
  // Every read of a document record gets a stamp; what was read is applied only if no later
  // read of the same record has been stamped meanwhile (a later read saw a state at least as
  // new), so syncs that interleave at their awaits never bring back an older version.
  std::uint64_t Stamp(const std::string& tenant, const std::string& id);
  bool Latest(const std::string& tenant, const std::string& id, std::uint64_t stamp) const;
  // Brings the document in memory to what the store holds now; `prepared` are the chunks of a
  // generation this instance just wrote (spares reading them back).
  boost::asio::awaitable<Result<void>> SyncDocument(std::string tenant, std::string id,
                                                    std::shared_ptr<Prepared> prepared);
  // The chunks of the record's generation; kConflict when its pages are not all there (it was
  // replaced meanwhile).
  boost::asio::awaitable<Result<std::vector<ChunkRecord>>> LoadPages(const std::string& tenant,
                                                                     const DocumentRecord& record);
  // Every tenant's documents compared with the store and brought up to date (start-up, with
  // the snapshots; and when the change log was lost).
  boost::asio::awaitable<Result<void>> Reconcile(bool with_snapshots);
  boost::asio::awaitable<Result<void>> ReconcileTenant(const std::string& tenant,
                                                       bool with_snapshots);
  boost::asio::awaitable<Result<void>> Poll();
  // The follower's refresh: the documents the log names, synced (failures to retry_).
  boost::asio::awaitable<Result<void>> SyncChanged(std::vector<storage::Change> changes);
  boost::asio::awaitable<void> SweepOrphans();
  boost::asio::awaitable<void> Run();
  Result<void> SaveDirtySnapshots();
  // Runs `work` on the maintenance thread; the caller resumes on its own executor.
  template <class T>
  boost::asio::awaitable<Result<T>> OnMaintenance(boost::asio::awaitable<Result<T>> work);
  Tenant& TenantSlot(const std::string& name);  // made when new; thread-safe

  storage::RecordStore& records_;
  orchestration::Orchestrator& orchestrator_;
  Options options_;
  std::unique_ptr<ImportDir> import_dir_;

  boost::asio::io_context maintenance_;
  boost::asio::steady_timer timer_{maintenance_};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> tenants_loaded_{0};
  std::atomic<std::size_t> tenants_total_{0};
  observability::Counter* sync_errors_ = nullptr;

  // Maintenance thread only.
  storage::ChangeFollower follower_;  // the documents' records in the change log
  Result<void> poll_error_;           // the last sync that failed during a poll
  std::uint64_t stamp_counter_ = 0;
  std::unordered_map<std::string, std::uint64_t> stamps_;  // "<tenant>\n<id>" → latest read
  std::set<std::pair<std::string, std::string>> retry_;    // syncs to try again
  std::chrono::steady_clock::time_point last_snapshot_;
  std::chrono::steady_clock::time_point last_sweep_;

  mutable std::mutex tenants_mutex_;
  std::map<std::string, std::unique_ptr<Tenant>, std::less<>> tenants_;
  std::set<std::string, std::less<>> registered_;  // tenants known to be in document_tenants
};

}  // namespace orchestra::documents
