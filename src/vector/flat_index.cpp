#include "vector/flat_index.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/rw_mutex.hpp"
#include "vector/snapshot.hpp"
#include "vector/vector_math.hpp"

namespace orchestra::vector {
namespace {

constexpr std::size_t kMaxDimension = 1 << 16;

class FlatIndex final : public Index {
 public:
  FlatIndex(std::size_t dimension, Metric metric) : Index(dimension, metric) {}

  Result<void> Add(std::uint64_t id, std::span<const float> vector) override {
    std::vector<float> v;
    if (auto ok = detail::Prepare(vector, dimension(), metric(), v, "vector"); !ok)
      return ok.error();
    std::unique_lock lock(mutex_);
    Store(id, v.data());
    return {};
  }

  Result<void> AddBatch(std::span<const std::uint64_t> ids, std::span<const float> rows,
                        std::size_t /*threads*/) override {
    std::vector<float> prepared;
    std::vector<std::size_t> order;
    if (auto ok = detail::PrepareBatch(ids, rows, dimension(), metric(), prepared, order); !ok)
      return ok.error();
    std::unique_lock lock(mutex_);
    for (std::size_t i : order)
      Store(ids[i], &prepared[Offset(i)]);
    return {};
  }

  bool Remove(std::uint64_t id) override {
    std::unique_lock lock(mutex_);
    auto it = slot_of_.find(id);
    if (it == slot_of_.end()) return false;
    const std::size_t slot = it->second;
    const std::size_t last = ids_.size() - 1;
    slot_of_.erase(it);
    if (slot != last) {
      std::copy_n(data_.begin() + Offset(last), dimension(), data_.begin() + Offset(slot));
      ids_[slot] = ids_[last];
      slot_of_[ids_[slot]] = slot;
    }
    ids_.pop_back();
    data_.resize(data_.size() - dimension());
    // Give memory back once the arrays are mostly empty (a tenant that deleted most documents).
    if (ids_.capacity() > 64 && ids_.size() < ids_.capacity() / 4) {
      ids_.shrink_to_fit();
      data_.shrink_to_fit();
    }
    return true;
  }

  bool Contains(std::uint64_t id) const override {
    std::shared_lock lock(mutex_);
    return slot_of_.contains(id);
  }

  Result<std::vector<Hit>> Search(std::span<const float> query, std::size_t k,
                                  const Filter& filter) const override {
    std::vector<float> q;
    if (auto ok = detail::Prepare(query, dimension(), metric(), q, "query"); !ok) return ok.error();
    detail::TopK top(k);
    if (k == 0) return top.Take();
    std::shared_lock lock(mutex_);
    for (std::size_t slot = 0; slot < ids_.size(); ++slot) {
      if (filter && !filter(ids_[slot])) continue;
      top.Offer(ids_[slot], detail::Dot(q.data(), &data_[Offset(slot)], dimension()));
    }
    return top.Take();
  }

  Result<std::vector<Hit>> SearchAmong(std::span<const float> query, std::size_t k,
                                       std::span<const std::uint64_t> ids) const override {
    std::vector<float> q;
    if (auto ok = detail::Prepare(query, dimension(), metric(), q, "query"); !ok) return ok.error();
    // The same id listed twice must come back once.
    std::vector<std::uint64_t> unique(ids.begin(), ids.end());
    std::sort(unique.begin(), unique.end());
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    detail::TopK top(k);
    std::shared_lock lock(mutex_);
    for (std::uint64_t id : unique) {
      auto it = slot_of_.find(id);
      if (it == slot_of_.end()) continue;
      top.Offer(id, detail::Dot(q.data(), &data_[Offset(it->second)], dimension()));
    }
    return top.Take();
  }

  std::size_t size() const override {
    std::shared_lock lock(mutex_);
    return ids_.size();
  }

  void ForEach(const Visitor& visit) const override {
    std::shared_lock lock(mutex_);
    for (std::size_t slot = 0; slot < ids_.size(); ++slot)
      visit(ids_[slot], std::span<const float>(&data_[Offset(slot)], dimension()));
  }

  std::size_t MemoryBytes() const override {
    std::shared_lock lock(mutex_);
    // An unordered_map node holds the pair and a next pointer (and the cached hash is not kept
    // for integer keys); the bucket array is one pointer per bucket.
    const std::size_t node = sizeof(void*) + sizeof(std::pair<const std::uint64_t, std::size_t>);
    return sizeof(*this) + data_.capacity() * sizeof(float) +
           ids_.capacity() * sizeof(std::uint64_t) + slot_of_.size() * node +
           slot_of_.bucket_count() * sizeof(void*);
  }

  Result<void> Save(const std::filesystem::path& path) const override {
    std::lock_guard save_lock(save_mutex_);
    std::shared_lock lock(mutex_);
    snapshot::Writer out(path);
    out.Header(snapshot::kKindFlat, static_cast<std::uint32_t>(metric()), dimension());
    out.Pod(static_cast<std::uint64_t>(ids_.size()));
    out.Write(ids_.data(), ids_.size() * sizeof(std::uint64_t));
    out.Write(data_.data(), data_.size() * sizeof(float));
    return out.Commit();
  }

  // Reads the body after the header (LoadIndex read that).
  Result<void> Load(snapshot::Reader& in) {
    std::uint64_t count = 0;
    if (!in.Pod(count)) return in.Corrupt("the vector count is missing");
    const std::uint64_t row = dimension() * sizeof(float) + sizeof(std::uint64_t);
    if (!in.Fits(count, row))
      return in.Corrupt("it holds " + std::to_string(count) + " vectors but is too short");
    ids_.resize(count);
    data_.resize(count * dimension());
    if (!in.Read(ids_.data(), count * sizeof(std::uint64_t)) ||
        !in.Read(data_.data(), data_.size() * sizeof(float)))
      return in.Corrupt("it is truncated");
    if (auto ok = in.VerifyTrailer(); !ok) return ok.error();
    slot_of_.reserve(count);
    for (std::size_t slot = 0; slot < count; ++slot)
      if (!slot_of_.emplace(ids_[slot], slot).second)
        return in.Corrupt("id " + std::to_string(ids_[slot]) + " appears twice");
    for (float x : data_)
      if (!std::isfinite(x)) return in.Corrupt("a vector holds a non-finite number");
    return {};
  }

 private:
  std::size_t Offset(std::size_t slot) const { return slot * dimension(); }

  // Caller holds the lock exclusively.
  void Store(std::uint64_t id, const float* v) {
    if (auto it = slot_of_.find(id); it != slot_of_.end()) {
      std::copy_n(v, dimension(), data_.begin() + static_cast<std::ptrdiff_t>(Offset(it->second)));
      return;
    }
    slot_of_.emplace(id, ids_.size());
    ids_.push_back(id);
    data_.insert(data_.end(), v, v + dimension());
  }

  mutable WriterPreferringMutex mutex_;
  mutable std::mutex save_mutex_;   // one Save at a time: they share the temporary file's name
  std::vector<float> data_;         // slot-major, dimension() floats per slot
  std::vector<std::uint64_t> ids_;  // the id in each slot
  std::unordered_map<std::uint64_t, std::size_t> slot_of_;
};

}  // namespace

Result<std::unique_ptr<Index>> MakeFlatIndex(std::size_t dimension, Metric metric) {
  if (dimension < 1 || dimension > kMaxDimension)
    return MakeError(ErrorCode::kInvalidRequest,
                     "vector index option dimension is " + std::to_string(dimension) +
                         "; it must be between 1 and " + std::to_string(kMaxDimension),
                     "dimension");
  return std::unique_ptr<Index>(std::make_unique<FlatIndex>(dimension, metric));
}

namespace detail {

Result<std::unique_ptr<Index>> LoadFlat(snapshot::Reader& in, std::size_t dimension,
                                        Metric metric) {
  auto index = std::make_unique<FlatIndex>(dimension, metric);
  if (auto ok = index->Load(in); !ok) return ok.error();
  return std::unique_ptr<Index>(std::move(index));
}

}  // namespace detail
}  // namespace orchestra::vector
