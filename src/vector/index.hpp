#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/error.hpp"

// Nearest-neighbour search over embedding vectors: one interface, two implementations.
//
//   HnswIndex (hnsw_index.hpp)  approximate, hnswlib's HNSW graph; for anything past a few
//                               thousand vectors
//   FlatIndex (flat_index.hpp)  exact, a scan of every vector; for small tenants and as the
//                               ground truth in tests
//
// Ids are the caller's (a chunk's 64-bit id); the index stores no text and no metadata.
namespace orchestra::vector {

// Similarity is the inner product of the two vectors, higher is closer.
//   kCosine        the index L2-normalises every vector it stores and every query, so the inner
//                  product is the cosine; a zero vector is refused.
//   kInnerProduct  vectors are used as given. Meant for vectors that are already L2-normalised
//                  (most embedding models return them so); then it is the cosine too, without
//                  the cost of normalising.
enum class Metric : std::uint8_t { kCosine = 1, kInnerProduct = 2 };

std::string_view ToString(Metric metric);

struct Hit {
  std::uint64_t id = 0;
  float score = 0;  // the inner product with the (normalised) query; cosine in [-1, 1]

  friend bool operator==(const Hit&, const Hit&) = default;
};

// For test failure messages: "{id, score}".
void PrintTo(const Hit& hit, std::ostream* os);

// Called with a candidate's id during a search; false leaves it out of the results. Runs on the
// searching thread while the index is locked for reading: it must not call back into the index.
using Filter = std::function<bool(std::uint64_t id)>;

// Thread-safety (both implementations): any number of concurrent Search/SearchAmong/Contains/
// size/MemoryBytes/Save calls, together with writes (Add/Remove) from other threads. Reads share
// a reader-writer lock and a write holds it exclusively (common/rw_mutex.hpp, which prefers
// writers so that a steady stream of searches cannot starve an insert); every result is as of
// one point between writes. Errors are expected failures (bad input, I/O) returned as values;
// nothing here throws on input.
class Index {
 public:
  virtual ~Index() = default;

  // Stores `vector` under `id`, replacing what `id` had. kInvalidRequest for a wrong dimension,
  // a NaN or infinite component, or (kCosine) a zero vector; the index is then unchanged.
  virtual Result<void> Add(std::uint64_t id, std::span<const float> vector) = 0;

  // Add for many vectors: ids[i] gets row i of `rows` (ids.size() × dimension() floats), in
  // order, so a later duplicate id wins. Every row is checked first: one bad row (or a size
  // mismatch) fails the batch with its index in the message and changes nothing. The batch holds
  // the write lock throughout (searches wait for it; while serving, keep batches to a few
  // hundred). HnswIndex inserts new ids on up to `threads` threads (hnswlib's concurrent
  // insertion; the graph then depends on thread timing); FlatIndex ignores `threads`.
  virtual Result<void> AddBatch(std::span<const std::uint64_t> ids, std::span<const float> rows,
                                std::size_t threads = 1) = 0;

  // Removes `id`; false when it was not there. A removed id is never returned again (until it is
  // added again).
  virtual bool Remove(std::uint64_t id) = 0;

  virtual bool Contains(std::uint64_t id) const = 0;

  // Up to `k` ids closest to `query`, best first (ties: smaller id first). With a filter only
  // ids it accepts are returned (still up to k when that many pass). kInvalidRequest for a wrong
  // dimension or a non-finite query (or a zero query with kCosine).
  virtual Result<std::vector<Hit>> Search(std::span<const float> query, std::size_t k,
                                          const Filter& filter = nullptr) const = 0;

  // Exact search among the listed ids only (absent ids are skipped): for a filter that keeps
  // few ids (one document's chunks), scoring them directly beats walking a graph.
  virtual Result<std::vector<Hit>> SearchAmong(std::span<const float> query, std::size_t k,
                                               std::span<const std::uint64_t> ids) const = 0;

  // The number of ids stored.
  virtual std::size_t size() const = 0;

  // Calls `visit` with every stored id and its vector as stored (L2-normalised for kCosine), in
  // no particular order, under the read lock: `visit` must not call back into the index. For
  // moving vectors into another index (an exact index that outgrew its size becomes an HNSW
  // graph) and for reconciling a loaded snapshot with what the storage holds.
  using Visitor = std::function<void(std::uint64_t id, std::span<const float> vector)>;
  virtual void ForEach(const Visitor& visit) const = 0;

  // Heap bytes held by the index (vectors, graph, id tables, locks); an upper bound of what it
  // keeps resident.
  virtual std::size_t MemoryBytes() const = 0;

  // Writes a snapshot to `path`, atomically: a temporary file in the same directory, fsync,
  // rename, fsync of the directory. Searches go on meanwhile; writes wait. Format: snapshot.hpp.
  virtual Result<void> Save(const std::filesystem::path& path) const = 0;

  std::size_t dimension() const { return dimension_; }
  Metric metric() const { return metric_; }

 protected:
  Index(std::size_t dimension, Metric metric) : dimension_(dimension), metric_(metric) {}

 private:
  std::size_t dimension_;
  Metric metric_;
};

// Reads a snapshot written by Index::Save (of either kind) and returns the index it holds, with
// the parameters it was saved with. A truncated, corrupted or foreign file is an error
// (kInvalidRequest naming what is wrong), never a crash: every field, checksum and graph link
// is checked before use. A missing file is kNotFound.
Result<std::unique_ptr<Index>> LoadIndex(const std::filesystem::path& path);

}  // namespace orchestra::vector
