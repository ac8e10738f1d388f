#include "vector/vector_math.hpp"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <unordered_map>

namespace orchestra::vector {

std::string_view ToString(Metric metric) {
  switch (metric) {
    case Metric::kCosine:
      return "cosine";
    case Metric::kInnerProduct:
      return "inner_product";
  }
  return "unknown";
}

void PrintTo(const Hit& hit, std::ostream* os) {
  *os << '{' << hit.id << ", " << hit.score << '}';
}

namespace detail {
namespace {

// Worse-first order for the heap: lower score is worse; at equal score the larger id is worse.
bool Better(const Hit& a, const Hit& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

}  // namespace

float Dot(const float* a, const float* b, std::size_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t j = 0; j < 8; ++j)
      s[j] += a[i + j] * b[i + j];
  float sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i)
    sum += a[i] * b[i];
  return sum;
}

Result<void> Prepare(std::span<const float> in, std::size_t dimension, Metric metric,
                     std::vector<float>& out, const char* what) {
  if (in.size() != dimension)
    return MakeError(ErrorCode::kInvalidRequest,
                     std::string(what) + " has " + std::to_string(in.size()) +
                         " dimensions; the index holds " + std::to_string(dimension),
                     what);
  double norm2 = 0;
  for (float x : in) {
    if (!std::isfinite(x))
      return MakeError(ErrorCode::kInvalidRequest,
                       std::string(what) + " has a component that is not a finite number", what);
    norm2 += static_cast<double>(x) * x;
  }
  out.assign(in.begin(), in.end());
  if (metric == Metric::kCosine) {
    if (norm2 == 0)
      return MakeError(ErrorCode::kInvalidRequest,
                       std::string(what) + " is all zeros and has no direction (cosine)", what);
    const auto inv = static_cast<float>(1.0 / std::sqrt(norm2));
    for (float& x : out)
      x *= inv;
  }
  return {};
}

Result<void> PrepareBatch(std::span<const std::uint64_t> ids, std::span<const float> rows,
                          std::size_t dimension, Metric metric, std::vector<float>& out,
                          std::vector<std::size_t>& order) {
  if (rows.size() != ids.size() * dimension)
    return MakeError(ErrorCode::kInvalidRequest,
                     "a batch of " + std::to_string(ids.size()) + " ids needs " +
                         std::to_string(ids.size() * dimension) + " floats, not " +
                         std::to_string(rows.size()),
                     "vector");
  out.resize(rows.size());
  std::vector<float> one;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto ok = Prepare(rows.subspan(i * dimension, dimension), dimension, metric, one, "vector");
    if (!ok) {
      Error e = ok.error();
      e.message = "row " + std::to_string(i) + ": " + e.message;
      return e;
    }
    std::copy(one.begin(), one.end(), out.begin() + static_cast<std::ptrdiff_t>(i * dimension));
  }
  std::unordered_map<std::uint64_t, std::size_t> last;
  last.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i)
    last[ids[i]] = i;
  order.clear();
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (last[ids[i]] == i) order.push_back(i);
  return {};
}

void TopK::Offer(std::uint64_t id, float score) {
  if (k_ == 0) return;
  const Hit hit{id, score};
  if (heap_.size() < k_) {
    heap_.push_back(hit);
    std::push_heap(heap_.begin(), heap_.end(), Better);
  } else if (Better(hit, heap_.front())) {
    std::pop_heap(heap_.begin(), heap_.end(), Better);
    heap_.back() = hit;
    std::push_heap(heap_.begin(), heap_.end(), Better);
  }
}

std::vector<Hit> TopK::Take() {
  std::sort_heap(heap_.begin(), heap_.end(), Better);
  return std::move(heap_);
}

}  // namespace detail
}  // namespace orchestra::vector
