#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/error.hpp"
#include "vector/index.hpp"

// Helpers both index kinds share (internal to src/vector/).
namespace orchestra::vector::detail {

// The inner product, with eight independent sums so that the compiler vectorises it.
float Dot(const float* a, const float* b, std::size_t n);

// Checks dimension and finiteness and, for kCosine, normalises into `out` (which then holds the
// vector the index uses). `what` names the argument in errors ("vector", "query").
Result<void> Prepare(std::span<const float> in, std::size_t dimension, Metric metric,
                     std::vector<float>& out, const char* what);

// Checks and prepares a batch for AddBatch: `out` receives the rows as the index stores them,
// and `order` the row indexes to apply (the last occurrence of each id, in order).
Result<void> PrepareBatch(std::span<const std::uint64_t> ids, std::span<const float> rows,
                          std::size_t dimension, Metric metric, std::vector<float>& out,
                          std::vector<std::size_t>& order);

// Keeps the best `k` hits seen so far; Take() returns them best first, ties by smaller id.
class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) { heap_.reserve(k); }
  // The score a candidate must beat to enter once the set is full.
  bool Full() const { return heap_.size() == k_; }
  float Worst() const { return heap_.front().score; }
  void Offer(std::uint64_t id, float score);
  std::vector<Hit> Take();

 private:
  std::size_t k_;
  std::vector<Hit> heap_;  // a min-heap by (score, then larger id): its front is the worst kept
};

}  // namespace orchestra::vector::detail

namespace orchestra::vector::snapshot {
class Reader;
}

namespace orchestra::vector::detail {

// The bodies of the two snapshot kinds, after the common header (index.cpp dispatches).
Result<std::unique_ptr<Index>> LoadFlat(snapshot::Reader& in, std::size_t dimension, Metric metric);
Result<std::unique_ptr<Index>> LoadHnsw(snapshot::Reader& in, std::size_t dimension, Metric metric);

}  // namespace orchestra::vector::detail
