#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "vector/index.hpp"

// The approximate index: hnswlib's HNSW graph (Malkov & Yashunin, 2016), Debian's
// libhnswlib-dev 0.6.2, header-only and included by hnsw_index.cpp alone.
//
// Parameters (HnswOptions), and why these defaults:
//   m = 16                 links per node on the upper layers, 2·m on the bottom one. The usual
//                          choice for 100–1,000-d embeddings: 32 helps only on data without
//                          structure (uniformly random: recall 0.96 instead of 0.80 at ef 1,024)
//                          and costs twice the link memory (132 bytes per vector at 16, against
//                          1,536 for the 384-d vector itself) and about twice the insert time.
//   ef_construction = 200  the beam width while linking a new vector: the graph's quality.
//                          hnswlib's default; higher slows every insert for little recall on
//                          embedding-like data.
//   ef_search = 128        the beam width of a search (at least k): the recall/latency knob.
//                          On 384-d vectors with the structure of text embeddings (a
//                          32-dimensional latent space plus noise) it gives recall@10 0.97 at
//                          50,000 vectors and 0.955 at 100,000; 64 would give about 0.90
//                          (tests/unit/vector/hnsw_recall_test.cpp, bench/vector_bench.cpp).
//                          Uniformly random 384-d vectors are the worst case for any graph index
//                          (no low-dimensional structure to exploit): there recall@10 is 0.24 at
//                          128 and needs about 2,048 (or m 32 and 1,024) for 0.95, which costs
//                          more than the exact scan. Real embeddings are far from that case.
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
// AddBatch links new vectors on several threads through hnswlib's own per-node locks (its
// supported concurrent insertion; the threads share hnswlib's level generator unsynchronised,
// a benign race hnswlib has always had that only perturbs the level draws), all under the
// write lock, so no search ever sees a half-linked node.
// Fixed cost: about 2.6 MB per index (hnswlib's 65,536 update mutexes) however small it is, so
// small tenants are better served by FlatIndex (exact, and about 1 ms of CPU per search at
// 10,000 384-d vectors).
//
// Measured (bench/vector_bench.cpp, 100,000 384-d vectors, defaults, the shared 2-core
// development machine): a search costs about 2 ms of CPU (p50; p99 2.5 ms), one with a filter
// passing half the ids 3.6 ms; the index holds about 1.85 KB per vector resident (the vector
// itself is 1.5 KB); a snapshot is 172 MB and loads in about half a second.
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
