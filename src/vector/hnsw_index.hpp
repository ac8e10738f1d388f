#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "vector/index.hpp"

// The approximate index: hnswlib's HNSW graph (Malkov & Yashunin, 2016), Debian's
// libhnswlib-dev 0.6.2, header-only and included by hnsw_index.cpp alone.
//
// Parameters (HnswOptions), and why these defaults:
//   m = 16                 links per node on the upper layers, 2·m on the bottom one. 16 is the
//                          usual choice for 100–1,000-d embeddings: 32 buys a few points of
//                          recall on the hardest data for twice the link memory (132 bytes per
//                          vector at 16 vs 1,536 for the 384-d vector itself) and slower inserts.
//   ef_construction = 200  the beam width while linking a new vector: the graph's quality. Past
//                          about 200 recall hardly moves while inserts keep slowing down.
//   ef_search = 128        the beam width of a search (at least k). The recall/latency knob:
//                          128 gives recall@10 ≥ 0.95 on 50,000 uniformly random 384-d vectors,
//                          the hardest case there is (no structure to exploit); real embeddings
//                          have a far lower intrinsic dimension and reach higher recall at the
//                          same width. Measured in tests/unit/vector/hnsw_recall_test.cpp and
//                          bench/vector_bench.cpp.
//
// Growth: there is no fixed maximum. The graph starts with room for `initial_capacity` vectors
// and doubles when full (hnswlib's resizeIndex, under the write lock). The vectors' block is
// allocated with malloc and its unused tail is never touched, so pages beyond size() are address
// space rather than resident memory; the per-slot lock array (40 bytes a slot) is resident.
//
// Removal: hnswlib cannot take a node out of the graph, so Remove marks the node deleted (it
// still routes searches but is never returned) and remembers its slot; the next Add of a new id
// takes over a deleted slot: relabels it, clears the mark and moves the vector, relinking it as
// hnswlib's updatePoint does (hnswlib 0.7's replace_deleted, written against 0.6.2's members).
// So memory follows the peak number of vectors held at once, never the number ever added. After
// a large deletion with no adds to follow, the deleted nodes stay until reused; a tenant that
// shrank for good is rebuilt by building a new index from its stored vectors.
//
// Thread-safety: Index's. Searches run hnswlib's graph walk written out here (it takes no
// hnswlib lock: the write lock keeps writers out) so that a search can take a filter and its own
// width, and so that concurrent searches do not contend on hnswlib's shared hop counters.
// Fixed cost: about 2.7 MB per index (hnswlib's 65,536 update mutexes) however small it is, so
// small tenants are better served by FlatIndex.
namespace orchestra::vector {

struct HnswOptions {
  std::size_t dimension = 0;  // 1 … 65,536
  Metric metric = Metric::kCosine;
  std::size_t m = 16;                 // 2 … 1,024
  std::size_t ef_construction = 200;  // m … 100,000
  std::size_t ef_search = 128;        // 1 … 100,000; a search uses max(ef_search, k)
  std::size_t initial_capacity = 1024;
  std::uint64_t seed = 100;  // the level generator's: the same inserts build the same graph
};

// kInvalidRequest (naming the option) for a value out of range.
Result<std::unique_ptr<Index>> MakeHnswIndex(const HnswOptions& options);

}  // namespace orchestra::vector
