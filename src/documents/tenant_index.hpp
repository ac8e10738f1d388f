#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "common/error.hpp"
#include "common/rw_mutex.hpp"
#include "documents/keyword_index.hpp"
#include "documents/records.hpp"
#include "vector/index.hpp"

// One tenant's documents in memory, searchable: the documents and their chunks' text, a BM25
// keyword index over every chunk, and one vector index per embedding model (and dimension) the
// tenant's documents were embedded with: exact (vector::FlatIndex) while it holds at most
// `exact_below` vectors, an HNSW graph (vector::HnswIndex) once it grows past that. The exact
// scan costs about 1 ms of CPU per search at 10,000 384-d vectors and has no fixed cost; a graph
// costs 2.6 MB however small and about 2 ms at 100,000 (hnsw_index.hpp): 8,192 is where the
// graph starts to pay. An index is never turned back into an exact one when it shrinks.
//
// Replacing a document is atomic for searches: the new chunks are added to the indexes first,
// invisible (every search filters on the chunk table), then one short exclusive section swaps
// the chunk table from the old chunks to the new ones; the old ones are removed from the
// indexes afterwards. A search holds the table shared for its whole length, so it sees each
// document either wholly before or wholly after a replacement or a deletion.
//
// Thread-safety: reads (Get, List, Search, counts) from any thread, concurrently with writes;
// writes (Put, Remove, Adopt, FinishAdoption, SaveSnapshot) from one thread at a time.
namespace orchestra::documents {

enum class SearchMode : std::uint8_t { kVector, kKeyword, kHybrid };
std::optional<SearchMode> ParseSearchMode(std::string_view name);
std::string_view ToString(SearchMode mode);

struct Query {
  std::string_view text;          // the keyword side's query
  std::span<const float> vector;  // the vector side's query (empty: no vector ranking)
  std::string_view model;         // the embedding model that made `vector`
  std::size_t limit = 5;
  double score_threshold = 0;  // vector hits below this cosine are left out
  SearchMode mode = SearchMode::kHybrid;
  std::optional<std::string_view> document_id;
  // Every (key, value) must equal the top-level member of the document's metadata.
  std::span<const std::pair<std::string, boost::json::value>> metadata;
};

struct Hit {
  std::string id;  // the chunk's public id (ChunkId)
  std::string document_id;
  std::string document_title;
  std::string document_source;
  std::string metadata;  // the document's metadata, JSON text
  std::string content;
  std::uint32_t sequence = 0;
  std::vector<std::string> heading_path;
  std::optional<double> similarity;  // cosine with the query, when the chunk has a vector of
                                     // the query's model
  double score = 0;             // what ranked it: fused (hybrid), cosine (vector) or BM25 (keyword)
  std::size_t vector_rank = 0;  // 1-based; 0 when not in the vector ranking
  std::size_t keyword_rank = 0;  // likewise
};

class TenantIndex {
 public:
  struct Options {
    std::size_t exact_below = 8192;
    std::size_t build_threads = 1;  // for large vector batches (start-up)
    std::size_t hnsw_ef_search = 128;
  };

  explicit TenantIndex(Options options);
  TenantIndex(const TenantIndex&) = delete;
  TenantIndex& operator=(const TenantIndex&) = delete;
  ~TenantIndex();

  struct PutDocument {
    DocumentRecord record;
    std::vector<ChunkRecord> chunks;
    // When set (one per chunk): the ids under which the chunks' vectors already are in an
    // adopted index (a snapshot); their `vector`s are then ignored.
    std::vector<std::uint64_t> adopted_ids;
  };

  // Makes each document visible with its chunks, replacing its earlier version (see above).
  // Vectors that are zero or not finite are left out of the vector index (such a chunk is found
  // by keywords only). kInternal when an index refuses a batch (nothing becomes visible).
  Result<void> Put(std::vector<PutDocument> documents);
  // False when the document was not there.
  bool Remove(std::string_view document_id);

  // --- Snapshots (tenant_snapshot.cpp). ---
  // Writes the vector indexes and the chunk table to `dir` (files named after the tenant; the
  // previous snapshot's files are replaced). Searches go on meanwhile.
  Result<void> SaveSnapshot(const std::filesystem::path& dir, std::string_view tenant) const;

  // A snapshot read back: the vector indexes and, per document, its generation and chunks.
  struct SnapshotChunk {
    std::uint64_t id = 0;
    ChunkRecord chunk;  // without its vector (that is in the index)
    bool has_vector = false;
  };
  struct SnapshotDocument {
    std::string generation;
    std::string model_key;
    std::vector<SnapshotChunk> chunks;
  };
  struct SnapshotIndex {
    std::string model_key;
    std::unique_ptr<vector::Index> index;
    bool graph = false;
  };
  struct Snapshot {
    std::vector<SnapshotIndex> indexes;
    std::unordered_map<std::string, SnapshotDocument> documents;
    std::uint64_t next_id = 1;
  };
  // kNotFound when there is none; kInvalidRequest when it is damaged or another tenant's.
  static Result<Snapshot> LoadSnapshot(const std::filesystem::path& dir, std::string_view tenant);
  // Takes the snapshot's indexes before the first Put; PutDocument::adopted_ids then name
  // vectors in them. FinishAdoption removes the vectors no document claimed.
  void Adopt(Snapshot& snapshot);
  void FinishAdoption();

  // --- Reads. ---
  std::optional<DocumentRecord> Get(std::string_view document_id) const;
  // The current generation of a document ("" when absent): what the store is compared with.
  std::string Generation(std::string_view document_id) const;
  // Documents in id order from `offset`, at most `limit`; `total` gets the count.
  std::vector<DocumentRecord> List(std::size_t offset, std::size_t limit, std::size_t* total) const;
  // Every document id with its generation (for reconciling with the store).
  std::vector<std::pair<std::string, std::string>> Generations() const;
  std::size_t document_count() const;

  Result<std::vector<Hit>> Search(const Query& query) const;

  struct Stats {
    std::size_t documents = 0;
    std::size_t chunks = 0;
    std::size_t vectors = 0;
    std::size_t graph_indexes = 0;  // HNSW
    std::size_t exact_indexes = 0;
    std::size_t memory_bytes = 0;  // indexes and chunk text
  };
  Stats stats() const;

  // The key of a vector index: "<model>#<dimension>".
  static std::string ModelKey(std::string_view model, std::size_t dimension);

 private:
  struct Document;
  struct Chunk {
    const Document* document = nullptr;
    std::uint32_t sequence = 0;
    bool has_vector = false;
    std::string text;
    std::vector<std::string> heading_path;
  };
  struct Document {
    DocumentRecord record;
    boost::json::object metadata;
    std::string model_key;  // of its vectors ("" when it has none)
    std::vector<std::uint64_t> chunk_ids;
  };
  struct ModelIndex {
    std::unique_ptr<vector::Index> index;
    bool graph = false;
    bool adopted = false;  // from a snapshot: unclaimed vectors are removed by FinishAdoption
  };

  Result<std::unique_ptr<vector::Index>> MakeIndex(std::size_t dimension, bool graph) const;
  static bool Matches(const Document& document, const Query& query);

  Options options_;
  std::uint64_t next_id_ = 1;  // writer only
  mutable WriterPreferringMutex mutex_;
  std::map<std::string, std::unique_ptr<Document>, std::less<>> documents_;
  std::unordered_map<std::uint64_t, Chunk> chunks_;
  std::map<std::string, ModelIndex, std::less<>> indexes_;
  KeywordIndex keywords_;
  std::size_t text_bytes_ = 0;
};

}  // namespace orchestra::documents
