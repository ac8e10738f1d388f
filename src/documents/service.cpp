#include "documents/service.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include "tokens/encoding.hpp"
#include "wire/openai_codec.hpp"

namespace orchestra::documents {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using observability::Severity;
using namespace std::chrono_literals;

constexpr std::size_t kMaxPageBytes = 256 * 1024;
constexpr int kRecordListLimit = 500;
constexpr int kPageListLimit = 8;    // pages are large: a few per round trip
constexpr int kChangesLimit = 1000;  // change-log entries read at a time
constexpr int kCommitAttempts = 8;
constexpr int kSyncAttempts = 4;
constexpr std::size_t kLoadBatchChunks = 4096;  // chunks per TenantIndex::Put while loading
constexpr auto kSweepInterval = 1h;
constexpr std::size_t kMaxSourceBytes = 2048;

Error Loading() {
  return Error(ErrorCode::kUnavailable,
               "documents are still loading (the search index is being built); retry shortly");
}

Error NoDocument(std::string_view id) {
  return Error(ErrorCode::kNotFound, "no document '" + std::string(id.substr(0, 200)) + "'",
               "document_id");
}

ChunkStrategy FromConfig(config::ChunkingStrategy s) {
  switch (s) {
    case config::ChunkingStrategy::kParagraph:
      return ChunkStrategy::kParagraph;
    case config::ChunkingStrategy::kSentence:
      return ChunkStrategy::kSentence;
    case config::ChunkingStrategy::kTokens:
      return ChunkStrategy::kTokens;
    case config::ChunkingStrategy::kMarkdownHeadings:
      return ChunkStrategy::kMarkdownHeadings;
  }
  return ChunkStrategy::kParagraph;
}

std::string StampKey(const std::string& tenant, const std::string& id) {
  return tenant + '\n' + id;
}

void LogWarning(std::string_view message, std::string_view tenant, std::string_view detail) {
  observability::Log(Severity::kWarning, message, {{"tenant", tenant}, {"error", detail}});
}

asio::awaitable<Result<std::string>> ReadImportFile(const ImportDir* dir, std::string path,
                                                    std::uint64_t max) {
  co_return dir->Read(path, max);
}

}  // namespace

std::vector<std::string> PassageTexts(const std::vector<Hit>& hits) {
  std::vector<std::string> out;
  out.reserve(hits.size());
  for (const Hit& h : hits)
    out.push_back(h.content);
  return out;
}

std::string ContextFromPassages(const std::vector<std::string>& passages, bool numbered) {
  std::string out;
  for (std::size_t i = 0; i < passages.size(); ++i) {
    if (i > 0) out += "\n\n";
    if (numbered) out += "[" + std::to_string(i + 1) + "] ";
    out += passages[i];
  }
  return out;
}

Service::Service(storage::RecordStore& records, orchestration::Orchestrator& orchestrator,
                 Options options, observability::Registry* metrics)
    : records_(records),
      orchestrator_(orchestrator),
      options_(std::move(options)),
      follower_(
          records, [](const storage::Change& c) { return c.collection == kDocumentsCollection; },
          [this](std::vector<storage::Change> changes) { return SyncChanged(std::move(changes)); },
          [this]() -> asio::awaitable<Result<void>> {
            observability::Log(Severity::kWarning,
                               "documents: the change log was truncated past the last read; "
                               "reconciling every document with the store");
            co_return co_await Reconcile(false);
          },
          kChangesLimit) {
  if (!options_.config.import_dir.empty()) {
    import_dir_ = std::make_unique<ImportDir>(options_.config.import_dir);
  }
  if (metrics != nullptr) {
    auto total = [this](auto field) {
      return [this, field] {
        std::lock_guard lock(tenants_mutex_);
        double sum = 0;
        for (const auto& [name, t] : tenants_)
          sum += static_cast<double>(field(t->index->stats()));
        return sum;
      };
    };
    using Type = observability::MetricType;
    metrics->AddCallback("orchestra_documents", "Documents held in the search indexes.",
                         Type::kGauge,
                         total([](const TenantIndex::Stats& s) { return s.documents; }));
    metrics->AddCallback("orchestra_document_chunks", "Document chunks held in the indexes.",
                         Type::kGauge, total([](const TenantIndex::Stats& s) { return s.chunks; }));
    metrics->AddCallback(
        "orchestra_document_index_bytes",
        "Memory held by the document indexes: vectors, graphs, keyword postings, chunk text.",
        Type::kGauge, total([](const TenantIndex::Stats& s) { return s.memory_bytes; }));
    metrics->AddCallback("orchestra_documents_ready",
                         "1 once the document indexes are loaded at start-up.", Type::kGauge,
                         [this] { return ready() ? 1.0 : 0.0; });
    sync_errors_ = &metrics
                        ->AddCounter("orchestra_document_sync_errors_total",
                                     "Failures to bring the in-memory document indexes up to "
                                     "date with the store (retried at the next poll).",
                                     {})
                        .With({});
  }
}

Service::~Service() {
  Stop();
}

void Service::Start() {
  if (thread_.joinable()) return;
  work_.emplace(maintenance_.get_executor());
  asio::co_spawn(maintenance_, Run(), asio::detached);
  thread_ = std::thread([this] { maintenance_.run(); });
}

void Service::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  asio::post(maintenance_, [this] { timer_.cancel(); });
  thread_.join();
}

std::string Service::LoadStatus() const {
  if (ready()) return "documents loaded";
  return "loading documents: " + std::to_string(tenants_loaded_.load()) + " of " +
         std::to_string(tenants_total_.load()) + " tenants";
}

template <class T>
asio::awaitable<Result<T>> Service::OnMaintenance(asio::awaitable<Result<T>> work) {
  co_return co_await asio::co_spawn(maintenance_, std::move(work), asio::use_awaitable);
}

Service::Tenant& Service::TenantSlot(const std::string& name) {
  std::lock_guard lock(tenants_mutex_);
  auto& slot = tenants_[name];
  if (!slot) {
    slot = std::make_unique<Tenant>();
    slot->name = name;
    TenantIndex::Options o;
    o.exact_below = static_cast<std::size_t>(options_.config.exact_search_below);
    o.build_threads = ready() ? 1 : options_.build_threads;
    slot->index = std::make_unique<TenantIndex>(o);
  }
  return *slot;
}

TenantIndex* Service::Index(std::string_view tenant) const {
  std::lock_guard lock(tenants_mutex_);
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? nullptr : it->second->index.get();
}

// ---- Requests ----------------------------------------------------------------------------

asio::awaitable<Result<Service::Embedded>> Service::Embed(
    const std::vector<std::string_view>& texts, const std::string& model,
    const orchestration::RequestInfo& info) {
  Embedded out;
  const std::size_t batch = static_cast<std::size_t>(options_.config.embedding_batch);
  bool first = true;
  for (std::size_t begin = 0; begin < texts.size(); begin += batch) {
    // Between batches, let the event loop serve others (local embeddings run right here).
    if (begin > 0) co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    const std::size_t n = std::min(batch, texts.size() - begin);
    wire::EmbeddingRequest request;
    request.model = model;
    for (std::size_t i = begin; i < begin + n; ++i)
      request.inputs.emplace_back(texts[i]);
    if (options_.config.embedding_dimensions > 0) {
      request.dimensions = options_.config.embedding_dimensions;
    }
    wire::openai::EncodeEmbeddingRequest(request);
    auto result = co_await orchestrator_.Embed(request, info);
    if (!result) co_return result.error();
    std::vector<std::vector<float>> vectors;
    if (!result->response.raw.empty()) {
      auto parsed = wire::openai::ParseEmbeddingResponse(result->response.raw);
      if (!parsed) {
        co_return Error(ErrorCode::kUpstreamError,
                        "unreadable embeddings: " + parsed.error().message);
      }
      vectors = std::move(parsed->vectors);
    } else {
      vectors = std::move(result->response.vectors);
    }
    if (vectors.size() != n) {
      co_return Error(ErrorCode::kUpstreamError,
                      "the embeddings model returned " + std::to_string(vectors.size()) +
                          " vectors for " + std::to_string(n) + " texts");
    }
    const orchestration::Served& s = result->served;
    if (first) {
      out.served = s;
      first = false;
    } else {
      out.served.usage.prompt_tokens += s.usage.prompt_tokens;
      out.served.usage.completion_tokens += s.usage.completion_tokens;
      out.served.usage.total_tokens += s.usage.total_tokens;
      out.served.usage.known = out.served.usage.known && s.usage.known;
      out.served.upstream_time += s.upstream_time;
      out.served.cost_usd += s.cost_usd;
    }
    for (auto& v : vectors)
      out.vectors.push_back(std::move(v));
  }
  co_return out;
}

Result<std::vector<Chunk>> Service::MakeChunks(std::string_view text,
                                               const ChunkingRequest& request,
                                               ChunkStrategy& strategy,
                                               const std::string& model) const {
  const config::DocumentChunkingConfig& c = options_.config.chunking;
  const ChunkStrategy configured = FromConfig(c.strategy);
  ChunkingOptions o;
  o.strategy = request.strategy.value_or(configured);
  strategy = o.strategy;
  // The configured size and overlap go with the configured strategy only (characters and tokens
  // are different units).
  if (request.size) {
    o.size = request.size;
  } else if (o.strategy == configured && c.size > 0) {
    o.size = static_cast<std::size_t>(c.size);
  }
  if (request.overlap) {
    o.overlap = request.overlap;
  } else if (o.strategy == configured && c.overlap >= 0) {
    o.overlap = static_cast<std::size_t>(c.overlap);
  }
  o.max_chunks = static_cast<std::size_t>(options_.config.max_chunks);
  TokenCounter counter;
  if (o.strategy == ChunkStrategy::kTokens) {
    auto encoding = tokens::Get(tokens::EncodingForModel("", model).encoding);
    if (!encoding) {
      return Error(ErrorCode::kUnavailable,
                   "the tokens chunking strategy needs a tokenizer: " + encoding.error().message,
                   "chunking.strategy");
    }
    const tokens::Encoding* e = *encoding;
    counter = [e](std::string_view t) { return e->Count(t); };
  }
  return ChunkText(text, o, counter);
}

asio::awaitable<Result<void>> Service::RegisterTenant(const std::string& tenant) {
  {
    std::lock_guard lock(tenants_mutex_);
    if (registered_.contains(tenant)) co_return Result<void>{};
  }
  auto put = co_await records_.Put(storage::kSystemTenant, kTenantsCollection, tenant, "{}",
                                   storage::Expect::Any());
  if (!put) co_return put.error();
  std::lock_guard lock(tenants_mutex_);
  registered_.insert(tenant);
  co_return Result<void>{};
}

asio::awaitable<Result<void>> Service::WritePages(const std::string& tenant,
                                                  const std::string& document_id,
                                                  const std::string& generation,
                                                  std::vector<std::string> pages) {
  std::vector<storage::RecordWrite> batch;
  PendingGeneration pending{document_id, static_cast<std::uint32_t>(pages.size()), false};
  batch.push_back({storage::RecordWrite::Op::kPut, std::string(kPendingCollection), generation,
                   EncodePending(pending), storage::Expect::Any()});
  for (std::size_t i = 0; i < pages.size(); ++i) {
    batch.push_back({storage::RecordWrite::Op::kPut, std::string(kChunksCollection),
                     PageId(generation, i), std::move(pages[i]), storage::Expect::Any()});
    if (batch.size() == storage::kMaxApplyWrites || i + 1 == pages.size()) {
      auto ok = co_await records_.Apply(tenant, std::move(batch));
      if (!ok) co_return ok.error();
      batch.clear();
    }
  }
  co_return Result<void>{};
}

asio::awaitable<void> Service::DeleteGeneration(std::string tenant, std::string generation,
                                                std::uint32_t pages) {
  std::vector<storage::RecordWrite> batch;
  for (std::uint32_t i = 0; i <= pages; ++i) {
    if (i < pages) {
      batch.push_back({storage::RecordWrite::Op::kDelete,
                       std::string(kChunksCollection),
                       PageId(generation, i),
                       {},
                       storage::Expect::Any()});
    } else {
      batch.push_back({storage::RecordWrite::Op::kDelete,
                       std::string(kPendingCollection),
                       generation,
                       {},
                       storage::Expect::Any()});
    }
    if (batch.size() == storage::kMaxApplyWrites || i == pages) {
      auto ok = co_await records_.Apply(tenant, std::move(batch));
      if (!ok) {
        LogWarning(
            "documents: could not delete a replaced generation's chunks (the hourly "
            "sweep will)",
            tenant, ok.error().message);
        co_return;
      }
      batch.clear();
    }
  }
}

asio::awaitable<Result<IngestResult>> Service::Ingest(std::string tenant, IngestRequest request,
                                                      orchestration::RequestInfo info) {
  if (!ready()) co_return Loading();
  const config::DocumentsConfig& c = options_.config;
  if (request.content.size() > c.max_bytes) {
    co_return Error(ErrorCode::kPayloadTooLarge,
                    "the document has " + std::to_string(request.content.size()) +
                        " bytes; documents.max_bytes allows " + std::to_string(c.max_bytes),
                    "content");
  }
  if (request.document_id.empty()) {
    request.document_id = NewDocumentId();
  } else if (auto ok = CheckDocumentId(request.document_id); !ok) {
    co_return ok.error();
  }
  {
    boost::system::error_code ec;
    json::value metadata = json::parse(request.metadata, ec);
    if (ec || !metadata.is_object()) {
      co_return Error(ErrorCode::kInvalidRequest, "metadata must be a JSON object", "metadata");
    }
    request.metadata = json::serialize(metadata);
    if (request.metadata.size() > kMaxMetadataBytes) {
      co_return Error(ErrorCode::kPayloadTooLarge,
                      "metadata is over " + std::to_string(kMaxMetadataBytes) + " bytes",
                      "metadata");
    }
  }
  if (request.title.size() > kMaxTitleBytes) {
    co_return Error(ErrorCode::kInvalidRequest,
                    "title is over " + std::to_string(kMaxTitleBytes) + " bytes", "title");
  }
  if (request.source.size() > kMaxSourceBytes) {
    co_return Error(ErrorCode::kInvalidRequest,
                    "source is over " + std::to_string(kMaxSourceBytes) + " bytes", "source");
  }
  const std::string model =
      request.embedding_model.empty() ? c.embedding_model : request.embedding_model;
  std::string html_title;
  auto text = ToText(request.content, request.content_type, &html_title, "content");
  if (!text) co_return text.error();
  ChunkStrategy strategy = ChunkStrategy::kParagraph;
  auto chunks = MakeChunks(*text, request.chunking, strategy, model);
  if (!chunks) co_return chunks.error();
  if (chunks->empty()) {
    co_return Error(ErrorCode::kInvalidRequest, "the document has no text to index", "content");
  }
  std::vector<std::string_view> texts;
  texts.reserve(chunks->size());
  for (const Chunk& chunk : *chunks)
    texts.push_back(chunk.Text(*text));
  auto embedded = co_await Embed(texts, model, info);
  if (!embedded) co_return embedded.error();

  IngestResult out;
  out.served = embedded->served;
  auto prepared = std::make_shared<Prepared>();
  std::uint32_t dimensions = 0;
  for (std::size_t i = 0; i < chunks->size(); ++i) {
    ChunkRecord r;
    r.sequence = static_cast<std::uint32_t>(i);
    r.text = std::string(texts[i]);
    r.heading_path = std::move((*chunks)[i].heading_path);
    r.vector = std::move(embedded->vectors[i]);
    if (dimensions == 0) dimensions = static_cast<std::uint32_t>(r.vector.size());
    if (r.vector.size() != dimensions) {
      co_return Error(ErrorCode::kUpstreamError,
                      "the embeddings model returned vectors of different lengths");
    }
    prepared->chunks.push_back(std::move(r));
  }

  if (auto ok = co_await RegisterTenant(tenant); !ok) co_return ok.error();

  DocumentRecord& record = out.document;
  record.id = request.document_id;
  record.title = request.title.empty() ? html_title : request.title;
  record.source = request.source;
  record.content_type = request.content_type;
  record.metadata = request.metadata;
  record.chunk_count = static_cast<std::uint32_t>(prepared->chunks.size());
  record.embedding_model = model;
  record.dimensions = dimensions;
  record.chunking = std::string(ToString(strategy));
  record.bytes = request.content.size();
  record.updated_at = IsoTime(std::chrono::system_clock::now());
  prepared->generation = NewGeneration(std::chrono::system_clock::now());
  record.generation = prepared->generation;
  const std::size_t page_bytes = std::clamp<std::size_t>(
      static_cast<std::size_t>(options_.max_value_bytes / 4), 1024, kMaxPageBytes);
  std::vector<std::string> pages =
      EncodePages(record.id, record.generation, prepared->chunks, page_bytes);
  record.pages = static_cast<std::uint32_t>(pages.size());

  // The pages first, invisible: no document names their generation yet.
  if (auto ok = co_await WritePages(tenant, record.id, record.generation, std::move(pages)); !ok) {
    co_await DeleteGeneration(tenant, record.generation, record.pages);
    co_return ok.error();
  }

  // The commit: the document record names the new generation, the pending record of the new
  // generation goes, and the replaced generation (if any) becomes a retired pending one, in
  // one atomic batch conditional on the version read. On a conflict (a concurrent write of the
  // same document) read again and commit on top of it.
  std::optional<DocumentRecord> replaced;
  Result<void> committed = Error(ErrorCode::kConflict, "the document kept changing", "document_id");
  for (int attempt = 0; attempt < kCommitAttempts; ++attempt) {
    auto existing = co_await records_.Get(tenant, kDocumentsCollection, record.id);
    if (!existing) {
      committed = existing.error();
      break;
    }
    replaced.reset();
    storage::Expect expect = storage::Expect::Absent();
    if (*existing) {
      expect = storage::Expect::Version((*existing)->version);
      if (auto old = DecodeDocument((*existing)->value)) replaced = std::move(*old);
    }
    if (!*existing) {
      TenantIndex* index = Index(tenant);
      if (index != nullptr &&
          index->document_count() >= static_cast<std::size_t>(c.max_documents)) {
        committed = Error(ErrorCode::kConflict,
                          "this tenant has " + std::to_string(index->document_count()) +
                              " documents, as many as documents.max_documents allows; delete "
                              "some first",
                          "document_id");
        break;
      }
    }
    record.created_at = replaced ? replaced->created_at : record.updated_at;
    std::vector<storage::RecordWrite> commit;
    commit.push_back({storage::RecordWrite::Op::kPut, std::string(kDocumentsCollection), record.id,
                      EncodeDocument(record), expect});
    commit.push_back({storage::RecordWrite::Op::kDelete,
                      std::string(kPendingCollection),
                      record.generation,
                      {},
                      storage::Expect::Any()});
    if (replaced) {
      commit.push_back({storage::RecordWrite::Op::kPut, std::string(kPendingCollection),
                        replaced->generation, EncodePending({record.id, replaced->pages, true}),
                        storage::Expect::Any()});
    }
    committed = co_await records_.Apply(tenant, std::move(commit));
    if (committed || committed.error().code != ErrorCode::kConflict) break;
  }
  if (!committed) {
    co_await DeleteGeneration(tenant, record.generation, record.pages);
    co_return committed.error();
  }
  out.replaced = replaced.has_value();

  // Searchable here before the answer; other instances follow through the change log.
  auto synced = co_await OnMaintenance(SyncDocument(tenant, record.id, prepared));
  if (!synced) {
    LogWarning("documents: stored, but not yet searchable here (retried at the next poll)", tenant,
               synced.error().message);
  }
  if (replaced && replaced->generation != record.generation) {
    co_await DeleteGeneration(tenant, replaced->generation, replaced->pages);
  }
  co_return out;
}

asio::awaitable<Result<DocumentRecord>> Service::Get(std::string tenant, std::string document_id) {
  if (!ready()) co_return Loading();
  TenantIndex* index = Index(tenant);
  std::optional<DocumentRecord> d;
  if (index != nullptr) d = index->Get(document_id);
  if (!d) co_return NoDocument(document_id);
  co_return std::move(*d);
}

asio::awaitable<Result<ListResult>> Service::List(std::string tenant, std::size_t offset,
                                                  std::size_t limit) {
  if (!ready()) co_return Loading();
  ListResult out;
  if (TenantIndex* index = Index(tenant)) {
    out.documents = index->List(offset, limit, &out.total_count);
  }
  co_return out;
}

asio::awaitable<Result<void>> Service::Delete(std::string tenant, std::string document_id) {
  if (!ready()) co_return Loading();
  std::optional<DocumentRecord> deleted;
  Result<void> done = Error(ErrorCode::kConflict, "the document kept changing", "document_id");
  for (int attempt = 0; attempt < kCommitAttempts; ++attempt) {
    auto existing = co_await records_.Get(tenant, kDocumentsCollection, document_id);
    if (!existing) co_return existing.error();
    if (!*existing) co_return NoDocument(document_id);
    std::vector<storage::RecordWrite> commit;
    commit.push_back({storage::RecordWrite::Op::kDelete,
                      std::string(kDocumentsCollection),
                      document_id,
                      {},
                      storage::Expect::Version((*existing)->version)});
    deleted.reset();
    if (auto d = DecodeDocument((*existing)->value)) {
      deleted = std::move(*d);
      commit.push_back({storage::RecordWrite::Op::kPut, std::string(kPendingCollection),
                        deleted->generation, EncodePending({document_id, deleted->pages, true}),
                        storage::Expect::Any()});
    }
    done = co_await records_.Apply(tenant, std::move(commit));
    if (done || done.error().code != ErrorCode::kConflict) break;
  }
  if (!done) co_return done.error();
  auto synced = co_await OnMaintenance(SyncDocument(tenant, document_id, nullptr));
  if (!synced) {
    LogWarning("documents: deleted, but still in this instance's index (retried at the next poll)",
               tenant, synced.error().message);
  }
  if (deleted) co_await DeleteGeneration(tenant, deleted->generation, deleted->pages);
  co_return Result<void>{};
}

asio::awaitable<Result<SearchResult>> Service::Search(std::string tenant, SearchRequest request,
                                                      orchestration::RequestInfo info) {
  if (!ready()) co_return Loading();
  if (request.query.empty()) {
    co_return Error(ErrorCode::kInvalidRequest, "query must not be empty", "query");
  }
  if (request.query.size() > kMaxQueryBytes) {
    co_return Error(ErrorCode::kInvalidRequest,
                    "query is over " + std::to_string(kMaxQueryBytes) + " bytes", "query");
  }
  if (request.limit < 1 || request.limit > kMaxSearchLimit) {
    co_return Error(ErrorCode::kInvalidRequest,
                    "limit must be between 1 and " + std::to_string(kMaxSearchLimit), "limit");
  }
  SearchResult out;
  out.embedding_model =
      request.embedding_model.empty() ? options_.config.embedding_model : request.embedding_model;
  TenantIndex* index = Index(tenant);
  if (index == nullptr || index->document_count() == 0) co_return out;
  std::vector<float> vector;
  if (request.mode != SearchMode::kKeyword) {
    const std::vector<std::string_view> texts{request.query};
    auto embedded = co_await Embed(texts, out.embedding_model, info);
    if (!embedded) co_return embedded.error();
    out.served = embedded->served;
    vector = std::move(embedded->vectors.front());
  }
  Query q;
  q.text = request.query;
  q.vector = vector;
  q.model = out.embedding_model;
  q.limit = request.limit;
  q.score_threshold = request.score_threshold.value_or(options_.config.score_threshold);
  q.mode = request.mode;
  if (request.document_id) q.document_id = *request.document_id;
  q.metadata = request.metadata;
  auto hits = index->Search(q);
  if (!hits) co_return hits.error();
  out.results = std::move(*hits);
  co_return out;
}

asio::awaitable<Result<Retrieval>> Service::Retrieve(std::string tenant, SearchRequest request,
                                                     std::string answer_model,
                                                     orchestration::RequestInfo info) {
  auto found = co_await Search(std::move(tenant), std::move(request), std::move(info));
  if (!found) co_return found.error();
  Retrieval out;
  out.numbered = !config::IsLocalModelName(answer_model);
  out.context = ContextFromPassages(PassageTexts(found->results), out.numbered);
  out.hits = std::move(found->results);
  out.served = std::move(found->served);
  co_return out;
}

asio::awaitable<Result<std::string>> Service::ReadImport(std::string path) {
  if (!import_dir_) {
    co_return Error(ErrorCode::kNotFound, "no documents.import_dir is configured", "file_path");
  }
  // On the maintenance thread: a bounded read (documents.max_bytes) off the event loops.
  co_return co_await OnMaintenance(
      ReadImportFile(import_dir_.get(), std::move(path), options_.config.max_bytes));
}

// ---- The maintenance thread --------------------------------------------------------------

std::uint64_t Service::Stamp(const std::string& tenant, const std::string& id) {
  const std::uint64_t s = ++stamp_counter_;
  stamps_[StampKey(tenant, id)] = s;
  return s;
}

bool Service::Latest(const std::string& tenant, const std::string& id, std::uint64_t stamp) const {
  auto it = stamps_.find(StampKey(tenant, id));
  return it == stamps_.end() || it->second == stamp;
}

asio::awaitable<Result<std::vector<ChunkRecord>>> Service::LoadPages(const std::string& tenant,
                                                                     const DocumentRecord& record) {
  std::vector<ChunkRecord> chunks;
  chunks.reserve(record.chunk_count);
  std::uint32_t pages = 0;
  std::string cursor;
  const std::string prefix = PagePrefix(record.generation);
  do {
    auto page = co_await records_.List(tenant, kChunksCollection, prefix, kPageListLimit, cursor);
    if (!page) co_return page.error();
    for (const storage::Record& r : page->records) {
      auto decoded = DecodePage(r.value);
      if (!decoded) co_return decoded.error();
      if (decoded->document_id != record.id || decoded->generation != record.generation) {
        co_return Error(ErrorCode::kInternal, "chunk page " + r.id + " belongs elsewhere");
      }
      ++pages;
      for (ChunkRecord& c : decoded->chunks)
        chunks.push_back(std::move(c));
    }
    cursor = std::move(page->next_cursor);
  } while (!cursor.empty());
  if (pages != record.pages || chunks.size() != record.chunk_count) {
    co_return Error(ErrorCode::kConflict, "document '" + record.id + "' changed while loading");
  }
  std::sort(chunks.begin(), chunks.end(),
            [](const ChunkRecord& a, const ChunkRecord& b) { return a.sequence < b.sequence; });
  co_return chunks;
}

asio::awaitable<Result<void>> Service::SyncDocument(std::string tenant, std::string id,
                                                    std::shared_ptr<Prepared> prepared) {
  Tenant& t = TenantSlot(tenant);
  for (int attempt = 0; attempt < kSyncAttempts; ++attempt) {
    const std::uint64_t stamp = Stamp(tenant, id);
    auto existing = co_await records_.Get(tenant, kDocumentsCollection, id);
    if (!existing) co_return existing.error();
    if (!Latest(tenant, id, stamp)) {
      // A later read applies. Not for this instance's own write, which must be searchable
      // when its request returns: the later read (the poller's, which saw the change) may
      // still be loading pages, so read again, later than it, and apply that now (the poller
      // then finds itself superseded). Seen on Firestore, whose slower reads widen the window.
      if (prepared) continue;
      co_return Result<void>{};
    }
    if (!*existing) {
      if (t.index->Remove(id)) t.dirty = true;
      co_return Result<void>{};
    }
    auto record = DecodeDocument((*existing)->value);
    if (!record) co_return record.error();
    if (t.index->Generation(id) == record->generation) co_return Result<void>{};
    std::vector<ChunkRecord> chunks;
    if (prepared && prepared->generation == record->generation) {
      chunks = std::move(prepared->chunks);
      prepared.reset();
    } else {
      auto loaded = co_await LoadPages(tenant, *record);
      if (!loaded) {
        if (loaded.error().code == ErrorCode::kConflict) continue;  // replaced meanwhile
        co_return loaded.error();
      }
      chunks = std::move(*loaded);
      if (!Latest(tenant, id, stamp)) co_return Result<void>{};
    }
    std::vector<TenantIndex::PutDocument> put(1);
    put[0].record = std::move(*record);
    put[0].chunks = std::move(chunks);
    auto ok = t.index->Put(std::move(put));
    if (!ok) co_return ok.error();
    t.dirty = true;
    co_return Result<void>{};
  }
  co_return Error(ErrorCode::kConflict, "document '" + id + "' kept changing while loading");
}

asio::awaitable<Result<void>> Service::ReconcileTenant(const std::string& tenant,
                                                       bool with_snapshots) {
  Tenant& t = TenantSlot(tenant);
  {
    std::lock_guard lock(tenants_mutex_);
    registered_.insert(tenant);
  }
  // The store's documents, each stamped as read now.
  struct Listed {
    DocumentRecord record;
    std::uint64_t stamp = 0;
  };
  std::map<std::string, Listed> listed;
  const std::uint64_t start = stamp_counter_ + 1;
  std::string cursor;
  do {
    auto page = co_await records_.List(tenant, kDocumentsCollection, "", kRecordListLimit, cursor);
    if (!page) co_return page.error();
    for (const storage::Record& r : page->records) {
      auto d = DecodeDocument(r.value);
      if (!d) {
        LogWarning("documents: an unreadable document record is skipped", tenant,
                   d.error().message);
        continue;
      }
      const std::uint64_t stamp = Stamp(tenant, r.id);
      listed[r.id] = Listed{std::move(*d), stamp};
    }
    cursor = std::move(page->next_cursor);
  } while (!cursor.empty() && !stopping_.load());

  std::optional<TenantIndex::Snapshot> snapshot;
  if (with_snapshots && !options_.config.snapshot_dir.empty() && t.index->document_count() == 0) {
    auto loaded = TenantIndex::LoadSnapshot(options_.config.snapshot_dir, tenant);
    if (loaded) {
      snapshot = std::move(*loaded);
      t.index->Adopt(*snapshot);
    } else if (loaded.error().code != ErrorCode::kNotFound) {
      LogWarning("documents: the snapshot is not used; rebuilding from the store", tenant,
                 loaded.error().message);
    }
  }

  // Gone from the store: out of memory too (unless read again since this listing began).
  for (const auto& [id, generation] : t.index->Generations()) {
    if (listed.contains(id)) continue;
    auto it = stamps_.find(StampKey(tenant, id));
    if (it != stamps_.end() && it->second >= start) continue;
    if (t.index->Remove(id)) t.dirty = true;
  }

  std::vector<TenantIndex::PutDocument> batch;
  std::size_t batch_chunks = 0;
  std::vector<std::uint64_t> batch_stamps;
  auto flush = [&]() -> Result<void> {
    std::vector<TenantIndex::PutDocument> current;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (Latest(tenant, batch[i].record.id, batch_stamps[i]))
        current.push_back(std::move(batch[i]));
    }
    batch.clear();
    batch_stamps.clear();
    batch_chunks = 0;
    if (current.empty()) return {};
    t.dirty = true;
    return t.index->Put(std::move(current));
  };
  bool stale_snapshot = false;
  for (auto& [id, l] : listed) {
    if (stopping_.load()) break;
    if (t.index->Generation(id) == l.record.generation) continue;
    TenantIndex::PutDocument put;
    if (snapshot) {
      auto s = snapshot->documents.find(id);
      if (s != snapshot->documents.end() && s->second.generation == l.record.generation &&
          s->second.chunks.size() == l.record.chunk_count) {
        for (TenantIndex::SnapshotChunk& c : s->second.chunks) {
          put.chunks.push_back(std::move(c.chunk));
          put.adopted_ids.push_back(c.id);
        }
        snapshot->documents.erase(s);
      }
    }
    if (put.chunks.empty()) {
      stale_snapshot = stale_snapshot || snapshot.has_value();
      auto chunks = co_await LoadPages(tenant, l.record);
      if (!chunks) {
        // Replaced or deleted meanwhile (the change log brings the new state), or unreadable.
        if (chunks.error().code != ErrorCode::kConflict) {
          LogWarning("documents: a document could not be loaded", tenant, chunks.error().message);
          if (sync_errors_ != nullptr) sync_errors_->Inc();
        }
        retry_.emplace(tenant, id);
        continue;
      }
      put.chunks = std::move(*chunks);
    }
    batch_chunks += put.chunks.size();
    put.record = l.record;
    batch.push_back(std::move(put));
    batch_stamps.push_back(l.stamp);
    if (batch_chunks >= kLoadBatchChunks) {
      if (auto ok = flush(); !ok) co_return ok.error();
    }
  }
  if (auto ok = flush(); !ok) co_return ok.error();
  if (snapshot) {
    t.index->FinishAdoption();
    if (!stale_snapshot && snapshot->documents.empty()) t.dirty = false;
  }
  co_return Result<void>{};
}

asio::awaitable<Result<void>> Service::Reconcile(bool with_snapshots) {
  std::vector<std::string> tenants;
  std::string cursor;
  do {
    auto page = co_await records_.List(storage::kSystemTenant, kTenantsCollection, "",
                                       kRecordListLimit, cursor);
    if (!page) co_return page.error();
    for (const storage::Record& r : page->records)
      tenants.push_back(r.id);
    cursor = std::move(page->next_cursor);
  } while (!cursor.empty());
  tenants_total_ = tenants.size();
  tenants_loaded_ = 0;
  for (const std::string& tenant : tenants) {
    if (stopping_.load()) break;
    if (auto ok = co_await ReconcileTenant(tenant, with_snapshots); !ok) co_return ok.error();
    ++tenants_loaded_;
  }
  co_return Result<void>{};
}

asio::awaitable<Result<void>> Service::SyncChanged(std::vector<storage::Change> changes) {
  // Each document brought up to date; one that cannot be now is tried again at the next poll
  // (retry_), and the log is read on past it.
  for (const storage::Change& c : changes) {
    auto ok = co_await SyncDocument(c.tenant, c.id, nullptr);
    if (!ok) {
      retry_.emplace(c.tenant, c.id);
      if (sync_errors_ != nullptr) sync_errors_->Inc();
      poll_error_ = ok.error();
    }
  }
  co_return Result<void>{};
}

asio::awaitable<Result<void>> Service::Poll() {
  std::set<std::pair<std::string, std::string>> to_retry = std::move(retry_);
  retry_.clear();
  poll_error_ = {};
  auto polled = co_await follower_.Poll();
  if (!polled) {
    retry_.insert(to_retry.begin(), to_retry.end());
    co_return polled.error();
  }
  for (const auto& [tenant, id] : to_retry) {
    auto ok = co_await SyncDocument(tenant, id, nullptr);
    if (!ok) {
      retry_.emplace(tenant, id);
      if (sync_errors_ != nullptr) sync_errors_->Inc();
      poll_error_ = ok.error();
    }
  }
  co_return poll_error_;
}

asio::awaitable<void> Service::SweepOrphans() {
  std::vector<std::string> tenants;
  {
    std::lock_guard lock(tenants_mutex_);
    tenants.assign(registered_.begin(), registered_.end());
  }
  const auto now = std::chrono::system_clock::now();
  for (const std::string& tenant : tenants) {
    std::string cursor;
    do {
      auto page = co_await records_.List(tenant, kPendingCollection, "", kRecordListLimit, cursor);
      if (!page) co_return;
      for (const storage::Record& r : page->records) {
        auto pending = DecodePending(r.value);
        if (!pending) continue;
        if (!pending->retired && now - GenerationTime(r.id) < options_.orphan_age) continue;
        auto doc = co_await records_.Get(tenant, kDocumentsCollection, pending->document_id);
        if (!doc) co_return;
        if (*doc) {
          auto d = DecodeDocument((*doc)->value);
          if (d && d->generation == r.id) {
            // Committed after all (its pending record outlived the commit): keep the pages.
            co_await records_.Delete(tenant, kPendingCollection, r.id, storage::Expect::Any());
            continue;
          }
        }
        co_await DeleteGeneration(tenant, r.id, pending->pages);
      }
      cursor = std::move(page->next_cursor);
    } while (!cursor.empty() && !stopping_.load());
  }
}

Result<void> Service::SaveDirtySnapshots() {
  if (options_.config.snapshot_dir.empty()) return {};
  std::vector<Tenant*> dirty;
  {
    std::lock_guard lock(tenants_mutex_);
    for (auto& [name, t] : tenants_)
      if (t->dirty) dirty.push_back(t.get());
  }
  Result<void> result;
  for (Tenant* t : dirty) {
    auto ok = t->index->SaveSnapshot(options_.config.snapshot_dir, t->name);
    if (ok) {
      t->dirty = false;
    } else {
      LogWarning("documents: could not save a snapshot", t->name, ok.error().message);
      result = ok.error();
    }
  }
  return result;
}

asio::awaitable<void> Service::Run() {
  const auto started = std::chrono::steady_clock::now();
  // Where the poller starts: read before the load, so what changes during it is applied after.
  for (;;) {
    // The start-up load reads the snapshots; the follower's own reload (a lost log) does not.
    auto loaded = co_await follower_.Load(
        [this]() -> asio::awaitable<Result<void>> { co_return co_await Reconcile(true); });
    if (loaded || stopping_.load()) break;
    observability::Log(Severity::kWarning, "documents: loading failed; retrying in 1s",
                       {{"error", loaded.error().message}});
    timer_.expires_after(1s);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_.load()) break;
  }
  ready_.store(!stopping_.load(), std::memory_order_release);
  std::size_t documents = 0;
  std::size_t chunks = 0;
  {
    std::lock_guard lock(tenants_mutex_);
    for (const auto& [name, t] : tenants_) {
      const auto s = t->index->stats();
      documents += s.documents;
      chunks += s.chunks;
    }
  }
  if (!stopping_.load() && options_.on_ready) options_.on_ready();
  if (!stopping_.load()) {
    observability::Log(Severity::kInfo, "documents loaded",
                       {{"tenants", static_cast<std::int64_t>(tenants_total_.load())},
                        {"documents", static_cast<std::int64_t>(documents)},
                        {"chunks", static_cast<std::int64_t>(chunks)},
                        {"load_ms", std::chrono::duration<double, std::milli>(
                                        std::chrono::steady_clock::now() - started)
                                        .count()}});
  }
  last_snapshot_ = std::chrono::steady_clock::now();
  last_sweep_ = std::chrono::steady_clock::time_point{};  // sweep once soon after start-up
  while (!stopping_.load()) {
    timer_.expires_after(options_.config.poll_interval);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_.load()) break;
    if (auto ok = co_await Poll(); !ok) {
      observability::Log(Severity::kWarning, "documents: polling the change log failed",
                         {{"error", ok.error().message}});
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_snapshot_ >= options_.config.snapshot_interval) {
      SaveDirtySnapshots();
      last_snapshot_ = now;
    }
    if (now - last_sweep_ >= kSweepInterval) {
      co_await SweepOrphans();
      last_sweep_ = now;
    }
  }
  if (ready()) SaveDirtySnapshots();
  work_.reset();
}

asio::awaitable<Result<void>> Service::PollNow() {
  auto poll = [this]() -> asio::awaitable<Result<void>> { co_return co_await Poll(); };
  co_return co_await OnMaintenance(poll());
}

asio::awaitable<Result<void>> Service::SnapshotNow() {
  auto save = [this]() -> asio::awaitable<Result<void>> { co_return SaveDirtySnapshots(); };
  co_return co_await OnMaintenance(save());
}

}  // namespace orchestra::documents
