#include "documents/tenant_index.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <shared_mutex>
#include <unordered_set>

#include <boost/json.hpp>

#include "vector/flat_index.hpp"
#include "vector/hnsw_index.hpp"

namespace orchestra::documents {
namespace {

namespace json = boost::json;

// Vectors added per AddBatch call: a batch holds the index's write lock, so searches wait for
// at most this many inserts.
constexpr std::size_t kBatchRows = 256;
// Candidates each ranking contributes to a hybrid search's fusion.
constexpr std::size_t kFusionCandidates = 50;
// A filter that leaves at most this many chunks is searched exactly among them.
constexpr std::size_t kExactAmongBelow = 4096;
// Bytes a chunk costs besides its text: the table node, the keyword entry, the id lists.
constexpr std::size_t kChunkOverheadBytes = 160;

// A vector the index can take: finite and not zero (cosine needs a direction).
bool Usable(std::span<const float> v) {
  if (v.empty()) return false;
  double norm = 0;
  for (float x : v) {
    if (!std::isfinite(x)) return false;
    norm += static_cast<double>(x) * x;
  }
  return norm > 0;
}

json::object ParseMetadata(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return std::move(v.as_object());
}

}  // namespace

std::optional<SearchMode> ParseSearchMode(std::string_view name) {
  if (name == "hybrid") return SearchMode::kHybrid;
  if (name == "vector" || name == "semantic") return SearchMode::kVector;
  if (name == "keyword" || name == "bm25") return SearchMode::kKeyword;
  return std::nullopt;
}

std::string_view ToString(SearchMode mode) {
  switch (mode) {
    case SearchMode::kVector:
      return "vector";
    case SearchMode::kKeyword:
      return "keyword";
    case SearchMode::kHybrid:
      return "hybrid";
  }
  return "hybrid";
}

TenantIndex::TenantIndex(Options options) : options_(options) {}
TenantIndex::~TenantIndex() = default;

std::string TenantIndex::ModelKey(std::string_view model, std::size_t dimension) {
  return std::string(model) + "#" + std::to_string(dimension);
}

Result<std::unique_ptr<vector::Index>> TenantIndex::MakeIndex(std::size_t dimension,
                                                              bool graph) const {
  if (!graph) return vector::MakeFlatIndex(dimension, vector::Metric::kCosine);
  vector::HnswOptions o;
  o.dimension = dimension;
  o.metric = vector::Metric::kCosine;
  o.ef_search = options_.hnsw_ef_search;
  o.initial_capacity = std::max<std::size_t>(1024, options_.exact_below * 2);
  return vector::MakeHnswIndex(o);
}

Result<void> TenantIndex::Put(std::vector<PutDocument> documents) {
  struct Prepared {
    std::unique_ptr<Document> document;
    std::vector<std::pair<std::uint64_t, Chunk>> chunks;
  };
  struct Batch {
    std::size_t dimension = 0;
    std::vector<std::uint64_t> ids;
    std::vector<float> rows;
  };
  std::vector<Prepared> prepared;
  prepared.reserve(documents.size());
  std::map<std::string, Batch> batches;
  for (PutDocument& d : documents) {
    Prepared p;
    p.document = std::make_unique<Document>();
    Document& doc = *p.document;
    doc.record = std::move(d.record);
    doc.metadata = ParseMetadata(doc.record.metadata);
    const bool adopted = !d.adopted_ids.empty() && d.adopted_ids.size() == d.chunks.size();
    for (std::size_t i = 0; i < d.chunks.size(); ++i) {
      ChunkRecord& c = d.chunks[i];
      const std::uint64_t id = adopted ? d.adopted_ids[i] : next_id_++;
      bool has_vector = false;
      if (adopted) {
        // The vector is in the adopted index of the document's model, if anywhere.
        const std::string key = ModelKey(doc.record.embedding_model, doc.record.dimensions);
        auto it = indexes_.find(key);
        if (it != indexes_.end() && it->second.index->Contains(id)) {
          has_vector = true;
          doc.model_key = key;
        }
      } else if (Usable(c.vector)) {
        const std::string key = ModelKey(doc.record.embedding_model, c.vector.size());
        if (doc.model_key.empty()) doc.model_key = key;
        if (key == doc.model_key) {
          Batch& b = batches[key];
          b.dimension = c.vector.size();
          b.ids.push_back(id);
          b.rows.insert(b.rows.end(), c.vector.begin(), c.vector.end());
          has_vector = true;
        }
      }
      doc.chunk_ids.push_back(id);
      Chunk chunk;
      chunk.document = &doc;
      chunk.sequence = c.sequence;
      chunk.has_vector = has_vector;
      chunk.text = std::move(c.text);
      chunk.heading_path = std::move(c.heading_path);
      p.chunks.emplace_back(id, std::move(chunk));
    }
    prepared.push_back(std::move(p));
  }

  // New vectors go into the indexes first, invisible until the swap below. Only this (the
  // writer's) thread changes indexes_, so it reads the map without the lock.
  std::vector<std::pair<std::string, ModelIndex>> replacements;
  std::vector<std::pair<vector::Index*, std::uint64_t>> added;
  auto undo = [&] {
    for (auto& [index, id] : added)
      index->Remove(id);
  };
  for (auto& [key, batch] : batches) {
    auto it = indexes_.find(key);
    vector::Index* target = nullptr;
    const std::size_t incoming = batch.ids.size();
    const std::size_t present = it == indexes_.end() ? 0 : it->second.index->size();
    if (it == indexes_.end() || (!it->second.graph && present + incoming > options_.exact_below)) {
      const bool graph = present + incoming > options_.exact_below;
      auto made = MakeIndex(batch.dimension, graph);
      if (!made) {
        undo();
        return made.error();
      }
      ModelIndex replacement{std::move(*made), graph, it != indexes_.end() && it->second.adopted};
      if (it != indexes_.end()) {
        // The exact index outgrew its size: its vectors move into the graph.
        std::vector<std::uint64_t> ids;
        std::vector<float> rows;
        it->second.index->ForEach([&](std::uint64_t id, std::span<const float> v) {
          ids.push_back(id);
          rows.insert(rows.end(), v.begin(), v.end());
        });
        if (auto ok = replacement.index->AddBatch(ids, rows, options_.build_threads); !ok) {
          undo();
          return ok.error();
        }
      }
      target = replacement.index.get();
      replacements.emplace_back(key, std::move(replacement));
    } else {
      target = it->second.index.get();
    }
    const std::size_t dim = batch.dimension;
    for (std::size_t begin = 0; begin < incoming; begin += kBatchRows) {
      const std::size_t n = std::min(kBatchRows, incoming - begin);
      auto ok = target->AddBatch(std::span<const std::uint64_t>(batch.ids).subspan(begin, n),
                                 std::span<const float>(batch.rows).subspan(begin * dim, n * dim),
                                 n >= 64 ? options_.build_threads : 1);
      if (!ok) {
        undo();
        return ok.error();
      }
      for (std::size_t i = begin; i < begin + n; ++i)
        added.emplace_back(target, batch.ids[i]);
    }
  }
  for (Prepared& p : prepared)
    for (auto& [id, chunk] : p.chunks)
      keywords_.Add(id, chunk.text);

  // The swap: one short exclusive section.
  struct Stale {
    std::string model_key;
    std::uint64_t id;
    bool has_vector;
  };
  std::vector<Stale> stale;
  std::vector<std::unique_ptr<vector::Index>> retired;
  std::vector<std::unique_ptr<Document>> replaced;
  {
    std::unique_lock lock(mutex_);
    for (auto& [key, replacement] : replacements) {
      ModelIndex& slot = indexes_[key];
      if (slot.index) retired.push_back(std::move(slot.index));
      slot = std::move(replacement);
    }
    for (Prepared& p : prepared) {
      const std::string& id = p.document->record.id;
      auto it = documents_.find(id);
      if (it != documents_.end()) {
        for (std::uint64_t old : it->second->chunk_ids) {
          auto c = chunks_.find(old);
          if (c == chunks_.end()) continue;
          text_bytes_ -= c->second.text.size();
          stale.push_back({it->second->model_key, old, c->second.has_vector});
          chunks_.erase(c);
        }
        replaced.push_back(std::move(it->second));
        it->second = std::move(p.document);
      } else {
        documents_.emplace(id, std::move(p.document));
      }
      for (auto& [chunk_id, chunk] : p.chunks) {
        text_bytes_ += chunk.text.size();
        chunks_.insert_or_assign(chunk_id, std::move(chunk));
      }
    }
  }
  for (const Stale& s : stale) {
    if (s.has_vector) {
      auto it = indexes_.find(s.model_key);
      if (it != indexes_.end()) it->second.index->Remove(s.id);
    }
    keywords_.Remove(s.id);
  }
  return {};
}

bool TenantIndex::Remove(std::string_view document_id) {
  std::unique_ptr<Document> gone;
  std::vector<std::pair<std::uint64_t, bool>> ids;
  {
    std::unique_lock lock(mutex_);
    auto it = documents_.find(document_id);
    if (it == documents_.end()) return false;
    gone = std::move(it->second);
    documents_.erase(it);
    for (std::uint64_t id : gone->chunk_ids) {
      auto c = chunks_.find(id);
      if (c == chunks_.end()) continue;
      text_bytes_ -= c->second.text.size();
      ids.emplace_back(id, c->second.has_vector);
      chunks_.erase(c);
    }
  }
  auto index = indexes_.find(gone->model_key);
  for (auto [id, has_vector] : ids) {
    if (has_vector && index != indexes_.end()) index->second.index->Remove(id);
    keywords_.Remove(id);
  }
  return true;
}

void TenantIndex::Adopt(Snapshot& snapshot) {
  std::unique_lock lock(mutex_);
  for (SnapshotIndex& s : snapshot.indexes) {
    if (!s.index) continue;
    ModelIndex slot;
    slot.index = std::move(s.index);
    slot.graph = s.graph;
    slot.adopted = true;
    indexes_[s.model_key] = std::move(slot);
  }
  next_id_ = std::max(next_id_, snapshot.next_id);
}

void TenantIndex::FinishAdoption() {
  for (auto& [key, slot] : indexes_) {
    if (!slot.adopted) continue;
    std::vector<std::uint64_t> unclaimed;
    {
      std::shared_lock lock(mutex_);
      slot.index->ForEach([&](std::uint64_t id, std::span<const float>) {
        auto c = chunks_.find(id);
        if (c == chunks_.end() || !c->second.has_vector || c->second.document->model_key != key)
          unclaimed.push_back(id);
      });
    }
    for (std::uint64_t id : unclaimed)
      slot.index->Remove(id);
    slot.adopted = false;
  }
}

std::optional<DocumentRecord> TenantIndex::Get(std::string_view document_id) const {
  std::shared_lock lock(mutex_);
  auto it = documents_.find(document_id);
  if (it == documents_.end()) return std::nullopt;
  return it->second->record;
}

std::string TenantIndex::Generation(std::string_view document_id) const {
  std::shared_lock lock(mutex_);
  auto it = documents_.find(document_id);
  return it == documents_.end() ? std::string() : it->second->record.generation;
}

std::vector<DocumentRecord> TenantIndex::List(std::size_t offset, std::size_t limit,
                                              std::size_t* total) const {
  std::shared_lock lock(mutex_);
  if (total != nullptr) *total = documents_.size();
  std::vector<DocumentRecord> out;
  if (offset >= documents_.size()) return out;
  auto it = documents_.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(offset));
  for (; it != documents_.end() && out.size() < limit; ++it)
    out.push_back(it->second->record);
  return out;
}

std::vector<std::pair<std::string, std::string>> TenantIndex::Generations() const {
  std::shared_lock lock(mutex_);
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(documents_.size());
  for (const auto& [id, doc] : documents_)
    out.emplace_back(id, doc->record.generation);
  return out;
}

std::size_t TenantIndex::document_count() const {
  std::shared_lock lock(mutex_);
  return documents_.size();
}

bool TenantIndex::Matches(const Document& document, const Query& query) {
  if (query.document_id && document.record.id != *query.document_id) return false;
  for (const auto& [key, value] : query.metadata) {
    const json::value* v = document.metadata.if_contains(key);
    if (v == nullptr || *v != value) return false;
  }
  return true;
}

Result<std::vector<Hit>> TenantIndex::Search(const Query& query) const {
  std::shared_lock lock(mutex_);
  std::vector<Hit> out;
  if (query.limit == 0) return out;
  const bool filtered = query.document_id.has_value() || !query.metadata.empty();
  // A filter that leaves few chunks: score them exactly instead of walking the graph.
  std::optional<std::vector<std::uint64_t>> among;
  if (query.document_id) {
    auto it = documents_.find(*query.document_id);
    if (it == documents_.end() || !Matches(*it->second, query)) return out;
    among = it->second->chunk_ids;
  } else if (!query.metadata.empty()) {
    std::vector<std::uint64_t> ids;
    for (const auto& [id, doc] : documents_) {
      if (!Matches(*doc, query)) continue;
      ids.insert(ids.end(), doc->chunk_ids.begin(), doc->chunk_ids.end());
      if (ids.size() > kExactAmongBelow) break;
    }
    if (ids.size() <= kExactAmongBelow) among = std::move(ids);
  }
  auto accept = [&](std::uint64_t id) {
    auto c = chunks_.find(id);
    return c != chunks_.end() && (!filtered || Matches(*c->second.document, query));
  };

  const bool hybrid = query.mode == SearchMode::kHybrid;
  const std::size_t candidates = hybrid ? std::max(query.limit, kFusionCandidates) : query.limit;
  const vector::Index* index = nullptr;
  if (!query.vector.empty()) {
    auto it = indexes_.find(ModelKey(query.model, query.vector.size()));
    if (it != indexes_.end()) index = it->second.index.get();
  }

  std::vector<vector::Hit> vector_hits;
  if (query.mode != SearchMode::kKeyword && index != nullptr) {
    auto hits = among ? index->SearchAmong(query.vector, candidates, *among)
                      : index->Search(query.vector, candidates, accept);
    if (!hits) return hits.error();
    for (const vector::Hit& h : *hits) {
      // SearchAmong does not filter on the chunk table: a chunk being replaced may still be in
      // the index.
      if (h.score >= query.score_threshold && (!among || accept(h.id))) vector_hits.push_back(h);
    }
  }
  std::vector<KeywordHit> keyword_hits;
  if (query.mode != SearchMode::kVector) {
    keyword_hits = keywords_.Search(query.text, candidates, accept);
  }

  struct Ranked {
    std::uint64_t id;
    double score;
    std::size_t vector_rank;
    std::size_t keyword_rank;
  };
  std::vector<Ranked> ranked;
  if (hybrid) {
    std::vector<std::uint64_t> a, b;
    for (const auto& h : vector_hits)
      a.push_back(h.id);
    for (const auto& h : keyword_hits)
      b.push_back(h.id);
    for (const FusedHit& f : ReciprocalRankFusion(a, b, query.limit))
      ranked.push_back({f.id, f.score, f.first_rank, f.second_rank});
  } else if (query.mode == SearchMode::kVector) {
    for (std::size_t i = 0; i < vector_hits.size() && i < query.limit; ++i)
      ranked.push_back({vector_hits[i].id, vector_hits[i].score, i + 1, 0});
  } else {
    for (std::size_t i = 0; i < keyword_hits.size() && i < query.limit; ++i)
      ranked.push_back({keyword_hits[i].id, keyword_hits[i].score, 0, i + 1});
  }

  // Cosines for what the vector ranking did not score (keyword hits in hybrid mode).
  std::unordered_map<std::uint64_t, double> similarity;
  for (const auto& h : vector_hits)
    similarity.emplace(h.id, h.score);
  if (index != nullptr) {
    std::vector<std::uint64_t> missing;
    for (const Ranked& r : ranked)
      if (!similarity.contains(r.id)) missing.push_back(r.id);
    if (!missing.empty()) {
      auto scored = index->SearchAmong(query.vector, missing.size(), missing);
      if (scored)
        for (const vector::Hit& h : *scored)
          similarity.emplace(h.id, h.score);
    }
  }

  out.reserve(ranked.size());
  for (const Ranked& r : ranked) {
    auto c = chunks_.find(r.id);
    if (c == chunks_.end()) continue;
    const Chunk& chunk = c->second;
    const DocumentRecord& doc = chunk.document->record;
    Hit hit;
    hit.id = ChunkId(doc.generation, chunk.sequence);
    hit.document_id = doc.id;
    hit.document_title = doc.title;
    hit.document_source = doc.source;
    hit.metadata = doc.metadata;
    hit.content = chunk.text;
    hit.sequence = chunk.sequence;
    hit.heading_path = chunk.heading_path;
    if (auto s = similarity.find(r.id); s != similarity.end()) hit.similarity = s->second;
    hit.score = r.score;
    hit.vector_rank = r.vector_rank;
    hit.keyword_rank = r.keyword_rank;
    out.push_back(std::move(hit));
  }
  return out;
}

TenantIndex::Stats TenantIndex::stats() const {
  std::shared_lock lock(mutex_);
  Stats s;
  s.documents = documents_.size();
  s.chunks = chunks_.size();
  s.memory_bytes = text_bytes_ + chunks_.size() * kChunkOverheadBytes + keywords_.MemoryBytes();
  for (const auto& [key, slot] : indexes_) {
    s.vectors += slot.index->size();
    s.memory_bytes += slot.index->MemoryBytes();
    (slot.graph ? s.graph_indexes : s.exact_indexes) += 1;
  }
  return s;
}

}  // namespace orchestra::documents
