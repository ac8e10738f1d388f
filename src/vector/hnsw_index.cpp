// The only translation unit that includes hnswlib: its headers define non-inline functions and
// globals (cpuid, InnerProductSIMD16Ext, ...), so a second includer would not link.
#include "vector/hnsw_index.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <hnswlib/hnswlib.h>

#include "common/rw_mutex.hpp"
#include "vector/snapshot.hpp"
#include "vector/vector_math.hpp"

namespace orchestra::vector {
namespace {

using Graph = hnswlib::HierarchicalNSW<float>;
using hnswlib::tableint;

constexpr std::size_t kMaxDimension = 1 << 16;
constexpr std::size_t kMaxM = 1024;
constexpr std::size_t kMaxEf = 100'000;
constexpr int kMaxLevel = 100;
// Slots are 32-bit and hnswlib uses the all-ones value for "no entry point".
constexpr std::size_t kMaxSlots = std::numeric_limits<tableint>::max() - 1;

// With AVX enabled, hnswlib's space constructor writes the global SIMD function pointers; two
// indexes made at once on two threads would race on them (benignly, but a race).
std::mutex space_construction_mutex;

std::unique_ptr<hnswlib::InnerProductSpace> MakeSpace(std::size_t dimension) {
  std::lock_guard lock(space_construction_mutex);
  return std::make_unique<hnswlib::InnerProductSpace>(dimension);
}

Error OutOfRange(const char* option, std::size_t value, std::size_t low, std::size_t high) {
  return MakeError(ErrorCode::kInvalidRequest,
                   std::string("vector index option ") + option + " is " + std::to_string(value) +
                       "; it must be between " + std::to_string(low) + " and " +
                       std::to_string(high),
                   option);
}

Result<void> Validate(const HnswOptions& o) {
  if (o.dimension < 1 || o.dimension > kMaxDimension)
    return OutOfRange("dimension", o.dimension, 1, kMaxDimension);
  if (o.m < 2 || o.m > kMaxM) return OutOfRange("m", o.m, 2, kMaxM);
  if (o.ef_construction < o.m || o.ef_construction > kMaxEf)
    return OutOfRange("ef_construction", o.ef_construction, o.m, kMaxEf);
  if (o.ef_search < 1 || o.ef_search > kMaxEf)
    return OutOfRange("ef_search", o.ef_search, 1, kMaxEf);
  if (o.initial_capacity < 1 || o.initial_capacity > kMaxSlots)
    return OutOfRange("initial_capacity", o.initial_capacity, 1, kMaxSlots);
  return {};
}

// (distance, slot) pairs; hnswlib's distance is 1 − inner product, smaller is closer.
using Candidate = std::pair<float, tableint>;
struct Farther {
  bool operator()(const Candidate& a, const Candidate& b) const { return a.first > b.first; }
};
struct Closer {
  bool operator()(const Candidate& a, const Candidate& b) const { return a.first < b.first; }
};

class HnswIndex final : public Index {
 public:
  HnswIndex(const HnswOptions& options, std::size_t capacity)
      : Index(options.dimension, options.metric),
        options_(options),
        space_(MakeSpace(options.dimension)),
        graph_(std::make_unique<Graph>(space_.get(), capacity, options.m, options.ef_construction,
                                       options.seed)) {
    // hnswlib's searchBaseLayer prefetches the link after the one it reads, so on a full
    // upper-layer list it reads one link past the list's allocation (nmslib/hnswlib#107, #578;
    // the fix was never merged). One spare (zeroed) slot per upper-layer list keeps that read in
    // bounds; every upper-layer offset and allocation is derived from this size, so the graph
    // and the snapshot stay consistent. Bottom-layer lists are followed by their vector in the
    // same block, so they need none.
    graph_->size_links_per_element_ += sizeof(tableint);
    distance_ = space_->get_dist_func();
    distance_param_ = space_->get_dist_func_param();
  }

  Result<void> Add(std::uint64_t id, std::span<const float> vector) override {
    std::vector<float> v;
    if (auto ok = detail::Prepare(vector, dimension(), metric(), v, "vector"); !ok)
      return ok.error();
    std::unique_lock lock(mutex_);
    try {
      if (StoreInPlace(id, v.data())) return {};
      if (auto ok = Reserve(1); !ok) return ok;
      graph_->addPoint(v.data(), id);
    } catch (const std::exception& e) {
      return Failed(e);
    }
    return {};
  }

  Result<void> AddBatch(std::span<const std::uint64_t> ids, std::span<const float> rows,
                        std::size_t threads) override {
    std::vector<float> prepared;
    std::vector<std::size_t> order;
    if (auto ok = detail::PrepareBatch(ids, rows, dimension(), metric(), prepared, order); !ok)
      return ok.error();
    auto row = [&](std::size_t i) { return prepared.data() + i * dimension(); };
    std::unique_lock lock(mutex_);
    try {
      // Replacements and reused slots one by one; what is left are new slots at the end of the
      // graph, which hnswlib can link concurrently.
      std::vector<std::size_t> fresh;
      for (std::size_t i : order)
        if (!StoreInPlace(ids[i], row(i))) fresh.push_back(i);
      if (fresh.empty()) return {};
      if (auto ok = Reserve(fresh.size()); !ok) return ok;
      threads = std::clamp<std::size_t>(threads, 1, std::max<std::size_t>(1, fresh.size() / 64));
      std::atomic<std::size_t> next{0};
      std::mutex failure_mutex;
      std::string failure;
      auto work = [&] {
        for (std::size_t k; (k = next.fetch_add(1)) < fresh.size();) {
          try {
            graph_->addPoint(row(fresh[k]), ids[fresh[k]]);
          } catch (const std::exception& e) {
            std::lock_guard guard(failure_mutex);
            if (failure.empty()) failure = e.what();
            next = fresh.size();
          }
        }
      };
      std::vector<std::thread> helpers;
      helpers.reserve(threads);
      for (std::size_t t = 1; t < threads; ++t) {
        try {
          helpers.emplace_back(work);
        } catch (const std::system_error&) {
          break;  // no thread to be had: the ones running (and this one) do the work
        }
      }
      work();
      for (std::thread& t : helpers)
        t.join();
      if (!failure.empty())
        return MakeError(ErrorCode::kInternal, "adding to the vector index: " + failure);
    } catch (const std::exception& e) {
      return Failed(e);
    }
    return {};
  }

  bool Remove(std::uint64_t id) override {
    std::unique_lock lock(mutex_);
    Graph& g = *graph_;
    auto it = g.label_lookup_.find(id);
    if (it == g.label_lookup_.end() || g.isMarkedDeleted(it->second)) return false;
    g.markDeletedInternal(it->second);
    free_.push_back(it->second);
    // A slot removed, revived by re-adding its id and removed again is listed twice; keep the
    // list proportional to the deleted count.
    if (free_.size() > 2 * g.num_deleted_ + 64) RebuildFreeList();
    return true;
  }

  std::size_t SlotBytes() const { return graph_->size_data_per_element_; }

  bool Contains(std::uint64_t id) const override {
    std::shared_lock lock(mutex_);
    auto it = graph_->label_lookup_.find(id);
    return it != graph_->label_lookup_.end() && !graph_->isMarkedDeleted(it->second);
  }

  Result<std::vector<Hit>> Search(std::span<const float> query, std::size_t k,
                                  const Filter& filter) const override {
    std::vector<float> q;
    if (auto ok = detail::Prepare(query, dimension(), metric(), q, "query"); !ok) return ok.error();
    if (k == 0) return std::vector<Hit>();
    SearchScope scope(*this);
    std::shared_lock lock(mutex_);
    return Walk(q.data(), k, filter);
  }

  Result<std::vector<Hit>> SearchAmong(std::span<const float> query, std::size_t k,
                                       std::span<const std::uint64_t> ids) const override {
    std::vector<float> q;
    if (auto ok = detail::Prepare(query, dimension(), metric(), q, "query"); !ok) return ok.error();
    std::vector<std::uint64_t> unique(ids.begin(), ids.end());
    std::sort(unique.begin(), unique.end());
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    detail::TopK top(k);
    std::shared_lock lock(mutex_);
    const Graph& g = *graph_;
    for (std::uint64_t id : unique) {
      auto it = g.label_lookup_.find(id);
      if (it == g.label_lookup_.end() || g.isMarkedDeleted(it->second)) continue;
      top.Offer(id, Score(q.data(), it->second));
    }
    return top.Take();
  }

  std::size_t size() const override {
    std::shared_lock lock(mutex_);
    return graph_->cur_element_count - graph_->num_deleted_;
  }

  void ForEach(const Visitor& visit) const override {
    std::shared_lock lock(mutex_);
    const Graph& g = *graph_;
    for (const auto& [label, slot] : g.label_lookup_) {
      if (g.isMarkedDeleted(slot)) continue;
      visit(label, std::span<const float>(
                       reinterpret_cast<const float*>(g.getDataByInternalId(slot)), dimension()));
    }
  }

  std::size_t MemoryBytes() const override {
    std::shared_lock lock(mutex_);
    const Graph& g = *graph_;
    std::size_t upper = 0;  // the link lists of the layers above the bottom one
    for (std::size_t i = 0; i < g.cur_element_count; ++i)
      if (g.element_levels_[i] > 0)
        upper += g.size_links_per_element_ * static_cast<std::size_t>(g.element_levels_[i]) + 1;
    // A label_lookup_ node: next pointer and the (label, slot) pair, rounded up by malloc.
    const std::size_t label_node = 32;
    const std::size_t visited_lists =
        std::max<std::size_t>(1, peak_searches_.load(std::memory_order_relaxed));
    return sizeof(*this) + sizeof(Graph) + g.max_elements_ * g.size_data_per_element_ +
           g.max_elements_ * (sizeof(char*) + sizeof(int) + sizeof(std::mutex)) +
           Graph::max_update_element_locks * sizeof(std::mutex) + upper +
           g.label_lookup_.size() * label_node + g.label_lookup_.bucket_count() * sizeof(void*) +
           visited_lists * g.max_elements_ * sizeof(hnswlib::vl_type) +
           free_.capacity() * sizeof(tableint);
  }

  Result<void> Save(const std::filesystem::path& path) const override {
    std::lock_guard save_lock(save_mutex_);
    std::shared_lock lock(mutex_);
    const Graph& g = *graph_;
    snapshot::Writer out(path);
    out.Header(snapshot::kKindHnsw, static_cast<std::uint32_t>(metric()), dimension());
    out.Pod(static_cast<std::uint64_t>(options_.m));
    out.Pod(static_cast<std::uint64_t>(options_.ef_construction));
    out.Pod(static_cast<std::uint64_t>(options_.ef_search));
    out.Pod(static_cast<std::uint64_t>(options_.seed));
    out.Pod(static_cast<std::uint64_t>(g.cur_element_count));
    out.Pod(static_cast<std::int32_t>(g.maxlevel_));
    out.Pod(static_cast<std::uint32_t>(g.enterpoint_node_));
    // The bottom layer, vectors and labels: hnswlib keeps them in one block, slot after slot.
    out.Write(g.data_level0_memory_, g.cur_element_count * g.size_data_per_element_);
    for (std::size_t i = 0; i < g.cur_element_count; ++i) {
      const auto level = static_cast<std::uint32_t>(g.element_levels_[i]);
      out.Pod(level);
      if (level > 0) out.Write(g.linkLists_[i], g.size_links_per_element_ * level);
    }
    return out.Commit();
  }

  // Reads the body after the header and the options (LoadIndex and LoadHnsw read those) into
  // this freshly made index, whose graph has room for `count` slots.
  Result<void> Load(snapshot::Reader& in, std::uint64_t count, int max_level,
                    std::uint32_t entry_point) {
    Graph& g = *graph_;
    if (!in.Read(g.data_level0_memory_, count * g.size_data_per_element_))
      return in.Corrupt("the vectors are truncated");
    for (std::size_t i = 0; i < count; ++i) {
      std::uint32_t level = 0;
      if (!in.Pod(level)) return in.Corrupt("the graph is truncated");
      if (level > static_cast<std::uint32_t>(std::max(max_level, 0)))
        return in.Corrupt("a node is above the top layer");
      if (level > 0) {
        if (!in.Fits(level, g.size_links_per_element_)) return in.Corrupt("the graph is truncated");
        // hnswlib's destructor frees the lists of slots below cur_element_count with a level.
        const std::size_t bytes = g.size_links_per_element_ * level;
        g.linkLists_[i] = static_cast<char*>(std::calloc(bytes + 1, 1));
        if (g.linkLists_[i] == nullptr)
          return MakeError(ErrorCode::kInternal, "out of memory loading the vector index");
        g.element_levels_[i] = static_cast<int>(level);
        g.cur_element_count = i + 1;
        if (!in.Read(g.linkLists_[i], bytes)) return in.Corrupt("the graph is truncated");
      } else {
        g.element_levels_[i] = 0;
        g.linkLists_[i] = nullptr;
      }
    }
    g.cur_element_count = count;
    if (auto ok = in.VerifyTrailer(); !ok) return ok.error();

    // The checksum matched; still check every link before a search follows one.
    g.maxlevel_ = max_level;
    g.enterpoint_node_ = entry_point;
    if (count == 0) {
      if (max_level != -1) return in.Corrupt("an empty graph has layers");
    } else if (entry_point >= count || g.element_levels_[entry_point] != max_level) {
      return in.Corrupt("the entry point is not a node of the top layer");
    }
    g.num_deleted_ = 0;
    for (tableint i = 0; i < count; ++i) {
      for (int level = 0; level <= g.element_levels_[i]; ++level) {
        hnswlib::linklistsizeint* list = g.get_linklist_at_level(i, level);
        const std::size_t links = g.getListCount(list);
        if (links > (level == 0 ? g.maxM0_ : g.maxM_))
          return in.Corrupt("a node has more links than the graph allows");
        const auto* to = reinterpret_cast<const tableint*>(list + 1);
        for (std::size_t j = 0; j < links; ++j)
          if (to[j] >= count || g.element_levels_[to[j]] < level)
            return in.Corrupt("a link points to no node");
      }
      if (!g.label_lookup_.emplace(g.getExternalLabel(i), i).second)
        return in.Corrupt("id " + std::to_string(g.getExternalLabel(i)) + " appears twice");
      if (g.isMarkedDeleted(i)) {
        ++g.num_deleted_;
        free_.push_back(i);
      }
      const float* v = reinterpret_cast<const float*>(g.getDataByInternalId(i));
      for (std::size_t d = 0; d < dimension(); ++d)
        if (!std::isfinite(v[d])) return in.Corrupt("a vector holds a non-finite number");
    }
    return {};
  }

 private:
  // Counts searches in flight: each holds one of hnswlib's visited lists (2 bytes a slot).
  class SearchScope {
   public:
    explicit SearchScope(const HnswIndex& index) : index_(index) {
      const int now = index_.active_searches_.fetch_add(1, std::memory_order_relaxed) + 1;
      int peak = index_.peak_searches_.load(std::memory_order_relaxed);
      while (now > peak &&
             !index_.peak_searches_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
      }
    }
    SearchScope(const SearchScope&) = delete;
    SearchScope& operator=(const SearchScope&) = delete;
    ~SearchScope() { index_.active_searches_.fetch_sub(1, std::memory_order_relaxed); }

   private:
    const HnswIndex& index_;
  };

  void Prefetch(const hnswlib::VisitedList* visited, tableint slot) const {
    __builtin_prefetch(visited->mass + slot);
    __builtin_prefetch(graph_->getDataByInternalId(slot));
  }

  float Distance(const float* q, tableint slot) const {
    return distance_(q, graph_->getDataByInternalId(slot), distance_param_);
  }
  float Score(const float* q, tableint slot) const { return 1.0f - Distance(q, slot); }

  // hnswlib's searchKnn (greedy descent through the upper layers, then a beam of width ef on the
  // bottom one), with a filter: a node that is deleted or filtered out still routes the walk but
  // never enters the results. While fewer than ef nodes qualify the walk keeps going, so a
  // filter that passes few nodes makes it visit most of the graph (SearchAmong is for that).
  // Caller holds the lock shared.
  std::vector<Hit> Walk(const float* q, std::size_t k, const Filter& filter) const {
    const Graph& g = *graph_;
    if (g.cur_element_count == g.num_deleted_) return {};
    tableint current = g.enterpoint_node_;
    float current_distance = Distance(q, current);
    for (int level = g.maxlevel_; level > 0; --level) {
      for (bool changed = true; changed;) {
        changed = false;
        hnswlib::linklistsizeint* list = g.get_linklist(current, level);
        const std::size_t links = g.getListCount(list);
        const auto* to = reinterpret_cast<const tableint*>(list + 1);
        for (std::size_t j = 0; j < links; ++j) {
          const float d = Distance(q, to[j]);
          if (d < current_distance) {
            current_distance = d;
            current = to[j];
            changed = true;
          }
        }
      }
    }

    const std::size_t ef = std::max(options_.ef_search, k);
    const bool exclusions = g.num_deleted_ > 0 || filter != nullptr;
    auto qualifies = [&](tableint slot) {
      return !g.isMarkedDeleted(slot) && (!filter || filter(g.getExternalLabel(slot)));
    };

    hnswlib::VisitedList* visited = g.visited_list_pool_->getFreeVisitedList();
    const hnswlib::vl_type tag = visited->curV;
    std::priority_queue<Candidate, std::vector<Candidate>, Farther> frontier;  // closest on top
    std::priority_queue<Candidate, std::vector<Candidate>, Closer> best;       // farthest on top
    float bound = std::numeric_limits<float>::max();
    if (qualifies(current)) {
      best.emplace(current_distance, current);
      bound = current_distance;
    }
    frontier.emplace(current_distance, current);
    visited->mass[current] = tag;

    while (!frontier.empty()) {
      const Candidate next = frontier.top();
      if (next.first > bound && (best.size() == ef || !exclusions)) break;
      frontier.pop();
      hnswlib::linklistsizeint* list = g.get_linklist0(next.second);
      const std::size_t links = g.getListCount(list);
      const auto* to = reinterpret_cast<const tableint*>(list + 1);
      // As hnswlib does: fetch the next neighbour's visited mark and vector while this one is
      // scored (the walk is bound by memory latency, not arithmetic).
      if (links > 0) Prefetch(visited, to[0]);
      for (std::size_t j = 0; j < links; ++j) {
        if (j + 1 < links) Prefetch(visited, to[j + 1]);
        const tableint slot = to[j];
        if (visited->mass[slot] == tag) continue;
        visited->mass[slot] = tag;
        const float d = Distance(q, slot);
        if (best.size() < ef || d < bound) {
          frontier.emplace(d, slot);
          __builtin_prefetch(g.get_linklist0(frontier.top().second));
          if (qualifies(slot)) {
            best.emplace(d, slot);
            if (best.size() > ef) best.pop();
          }
          if (!best.empty()) bound = best.top().first;
        }
      }
    }
    g.visited_list_pool_->releaseVisitedList(visited);

    detail::TopK top(k);
    for (; !best.empty(); best.pop())
      top.Offer(g.getExternalLabel(best.top().second), 1.0f - best.top().first);
    return top.Take();
  }

  static Error Failed(const std::exception& e) {
    // hnswlib reports allocation failures (and broken invariants) by throwing.
    return MakeError(ErrorCode::kInternal, std::string("adding to the vector index: ") + e.what());
  }

  // Stores the vector of an id the graph already has a slot for (replacing it, or reviving a
  // removed id), or of a new id in a deleted slot. False when the id needs a new slot. Caller
  // holds the lock exclusively.
  bool StoreInPlace(std::uint64_t id, const float* v) {
    Graph& g = *graph_;
    if (auto it = g.label_lookup_.find(id); it != g.label_lookup_.end()) {
      const tableint slot = it->second;
      if (g.isMarkedDeleted(slot)) g.unmarkDeletedInternal(slot);  // free_ skips it lazily
      g.updatePoint(v, slot, 1.0f);
      return true;
    }
    tableint slot;
    if (!TakeFreeSlot(slot)) return false;
    g.label_lookup_.erase(g.getExternalLabel(slot));
    g.label_lookup_[id] = slot;
    g.setExternalLabel(slot, id);
    g.unmarkDeletedInternal(slot);
    g.updatePoint(v, slot, 1.0f);
    return true;
  }

  // Room for `more` new slots, doubling the graph as needed. Caller holds the lock exclusively.
  Result<void> Reserve(std::size_t more) {
    Graph& g = *graph_;
    if (g.cur_element_count + more <= g.max_elements_) return {};
    if (g.cur_element_count + more > kMaxSlots)
      return MakeError(ErrorCode::kPayloadTooLarge, "the vector index is full");
    std::size_t capacity = std::max<std::size_t>(g.max_elements_, 16);
    while (capacity < g.cur_element_count + more)
      capacity = std::min(kMaxSlots, capacity * 2);
    g.resizeIndex(capacity);
    return {};
  }

  // A deleted slot to reuse; entries revived since they were listed are skipped.
  bool TakeFreeSlot(tableint& slot) {
    while (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
      if (graph_->isMarkedDeleted(slot)) return true;
    }
    return false;
  }

  void RebuildFreeList() {
    free_.clear();
    for (tableint i = 0; i < graph_->cur_element_count; ++i)
      if (graph_->isMarkedDeleted(i)) free_.push_back(i);
    free_.shrink_to_fit();
  }

  HnswOptions options_;
  std::unique_ptr<hnswlib::InnerProductSpace> space_;  // graph_ points into it
  std::unique_ptr<Graph> graph_;
  hnswlib::DISTFUNC<float> distance_ = nullptr;
  void* distance_param_ = nullptr;
  std::vector<tableint> free_;  // deleted slots for Add to reuse (may hold revived ones)
  mutable WriterPreferringMutex mutex_;
  mutable std::mutex save_mutex_;  // one Save at a time: they share the temporary file's name
  mutable std::atomic<int> active_searches_{0};
  mutable std::atomic<int> peak_searches_{0};
};

}  // namespace

Result<std::unique_ptr<Index>> MakeHnswIndex(const HnswOptions& options) {
  if (auto ok = Validate(options); !ok) return ok.error();
  return std::unique_ptr<Index>(std::make_unique<HnswIndex>(options, options.initial_capacity));
}

namespace detail {

Result<std::unique_ptr<Index>> LoadHnsw(snapshot::Reader& in, std::size_t dimension,
                                        Metric metric) {
  HnswOptions options;
  options.dimension = dimension;
  options.metric = metric;
  std::uint64_t m = 0;
  std::uint64_t ef_construction = 0;
  std::uint64_t ef_search = 0;
  std::uint64_t seed = 0;
  std::uint64_t count = 0;
  std::int32_t max_level = 0;
  std::uint32_t entry_point = 0;
  if (!in.Pod(m) || !in.Pod(ef_construction) || !in.Pod(ef_search) || !in.Pod(seed) ||
      !in.Pod(count) || !in.Pod(max_level) || !in.Pod(entry_point))
    return in.Corrupt("the graph's parameters are truncated");
  options.m = m;
  options.ef_construction = ef_construction;
  options.ef_search = ef_search;
  options.seed = seed;
  if (auto ok = Validate(options); !ok) return in.Corrupt(ok.error().message);
  if (max_level < -1 || max_level > kMaxLevel) return in.Corrupt("the top layer is out of range");
  // Bound the allocation by what the file can hold before making the graph.
  const std::uint64_t per_slot =
      (2 * m + 1) * sizeof(tableint) + dimension * sizeof(float) + sizeof(hnswlib::labeltype);
  if (count > kMaxSlots || !in.Fits(count, per_slot))
    return in.Corrupt("it holds " + std::to_string(count) + " vectors but is too short");
  try {
    auto index = std::make_unique<HnswIndex>(options, std::max<std::uint64_t>(count, 16));
    if (index->SlotBytes() != per_slot) return in.Corrupt("the slot layout does not match");
    if (auto ok = index->Load(in, count, max_level, entry_point); !ok) return ok.error();
    return std::unique_ptr<Index>(std::move(index));
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInternal, std::string("loading the vector index: ") + e.what());
  }
}

}  // namespace detail
}  // namespace orchestra::vector
