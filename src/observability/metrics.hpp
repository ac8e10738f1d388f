#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

// A lock-free metrics registry rendered in the Prometheus text format (DESIGN.md §3).
//
// Hot-path updates (Counter::Inc, Histogram::Observe, Gauge::Add) are relaxed atomic adds on a
// cache line owned by the calling thread's shard, so event-loop threads never contend.
// Creating a labelled child (Family::With) takes a mutex: call it once and keep the reference
// (children live as long as the registry and never move).
namespace orchestra::observability {

// Event-loop threads call SetThreadShard(i) once with their index; other threads share shard 0.
inline constexpr int kShards = 16;
void SetThreadShard(int index);
int ThreadShard();

class Counter {
 public:
  void Inc(std::uint64_t n = 1) {
    cells_[ThreadShard()].value.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t Value() const;

 private:
  struct alignas(64) Cell {
    std::atomic<std::uint64_t> value{0};
  };
  std::array<Cell, kShards> cells_;
};

// A counter of a real quantity (cost in USD, CPU seconds).
class FloatCounter {
 public:
  void Add(double v) { cells_[ThreadShard()].value.fetch_add(v, std::memory_order_relaxed); }
  double Value() const;

 private:
  struct alignas(64) Cell {
    std::atomic<double> value{0};
  };
  std::array<Cell, kShards> cells_;
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Fixed buckets chosen at construction; Observe is a short search and two relaxed adds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot Collect() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  struct alignas(64) Shard {
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts;
    std::atomic<double> sum{0};
  };
  std::vector<double> bounds_;
  std::array<Shard, kShards> shards_;
};

// Latency buckets in seconds, from 50 µs (Orchestra's own overhead) to 60 s (long generations).
std::vector<double> LatencyBuckets();

enum class MetricType : std::uint8_t { kCounter, kGauge, kHistogram };

// A metric name with a fixed set of label names; each distinct set of label values is a child.
template <class M>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<M>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  // The child for these label values (in label-name order), created on first use.
  M& With(std::initializer_list<std::string_view> values) {
    std::vector<std::string> key(values.begin(), values.end());
    std::lock_guard lock(mutex_);
    auto it = children_.find(key);
    if (it == children_.end()) it = children_.emplace(std::move(key), make_()).first;
    return *it->second;
  }

  template <class Fn>
  void ForEach(Fn&& fn) const {
    std::lock_guard lock(mutex_);
    for (const auto& [labels, metric] : children_)
      fn(labels, *metric);
  }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<M>()> make_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_;
};

// Owns every metric; created once in main and passed by reference to whoever records.
// Thread-safe. Render() may run concurrently with updates.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& AddCounter(std::string name, std::string help, std::vector<std::string> labels);
  Family<FloatCounter>& AddFloatCounter(std::string name, std::string help,
                                        std::vector<std::string> labels);
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> labels);
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> labels, std::vector<double> bounds);

  // A gauge or counter whose value is computed at scrape time (process CPU, RSS, inflight).
  void AddCallback(std::string name, std::string help, MetricType type,
                   std::function<double()> value);

  // The Prometheus text exposition format, version 0.0.4.
  std::string Render() const;

 private:
  struct Entry;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds, and
// orchestra_build_info{version,commit}.
void RegisterProcessMetrics(Registry& registry, std::string_view version, std::string_view commit);

}  // namespace orchestra::observability
