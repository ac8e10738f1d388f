#include "observability/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <variant>

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

namespace orchestra::observability {
namespace {

thread_local int tls_shard = 0;

void AppendNumber(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    out += std::to_string(static_cast<long long>(v));
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, end);
  }
}

void AppendLabelValue(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// name{a="x",b="y"[,extra]}
void AppendSeries(std::string& out, std::string_view name, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, std::string_view extra = {}) {
  out += name;
  if (names.empty() && extra.empty()) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    AppendLabelValue(out, values[i]);
    out += '"';
  }
  if (!extra.empty()) {
    if (!names.empty()) out += ',';
    out += extra;
  }
  out += '}';
}

void AppendHeader(std::string& out, std::string_view name, std::string_view help,
                  std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

void SetThreadShard(int index) {
  tls_shard = index % kShards;
}
int ThreadShard() {
  return tls_shard;
}

std::uint64_t Counter::Value() const {
  std::uint64_t total = 0;
  for (const Cell& c : cells_)
    total += c.value.load(std::memory_order_relaxed);
  return total;
}

double FloatCounter::Value() const {
  double total = 0;
  for (const Cell& c : cells_)
    total += c.value.load(std::memory_order_relaxed);
  return total;
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  for (Shard& s : shards_) {
    s.counts = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  }
}

void Histogram::Observe(double value) {
  std::size_t bucket = static_cast<std::size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  Shard& s = shards_[ThreadShard()];
  s.counts[bucket].fetch_add(1, std::memory_order_relaxed);
  s.sum.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot snap;
  snap.cumulative.assign(bounds_.size() + 1, 0);
  for (const Shard& s : shards_) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      snap.cumulative[i] += s.counts[i].load(std::memory_order_relaxed);
    }
    snap.sum += s.sum.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 1; i < snap.cumulative.size(); ++i)
    snap.cumulative[i] += snap.cumulative[i - 1];
  snap.count = snap.cumulative.back();
  return snap;
}

std::vector<double> LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,     0.25,   0.5,     1,      2.5,   5,      10,    30,   60};
}

struct Registry::Entry {
  std::string name;
  std::string help;
  MetricType type;
  std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<FloatCounter>>,
               std::unique_ptr<Family<Gauge>>, std::unique_ptr<Family<Histogram>>,
               std::function<double()>>
      metric;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> labels) {
  auto family = std::make_unique<Family<Counter>>(name, help, std::move(labels),
                                                  [] { return std::make_unique<Counter>(); });
  auto& ref = *family;
  std::lock_guard lock(mutex_);
  entries_.push_back(std::make_unique<Entry>(
      Entry{std::move(name), std::move(help), MetricType::kCounter, std::move(family)}));
  return ref;
}

Family<FloatCounter>& Registry::AddFloatCounter(std::string name, std::string help,
                                                std::vector<std::string> labels) {
  auto family = std::make_unique<Family<FloatCounter>>(
      name, help, std::move(labels), [] { return std::make_unique<FloatCounter>(); });
  auto& ref = *family;
  std::lock_guard lock(mutex_);
  entries_.push_back(std::make_unique<Entry>(
      Entry{std::move(name), std::move(help), MetricType::kCounter, std::move(family)}));
  return ref;
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> labels) {
  auto family = std::make_unique<Family<Gauge>>(name, help, std::move(labels),
                                                [] { return std::make_unique<Gauge>(); });
  auto& ref = *family;
  std::lock_guard lock(mutex_);
  entries_.push_back(std::make_unique<Entry>(
      Entry{std::move(name), std::move(help), MetricType::kGauge, std::move(family)}));
  return ref;
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> labels,
                                          std::vector<double> bounds) {
  auto family = std::make_unique<Family<Histogram>>(
      name, help, std::move(labels),
      [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); });
  auto& ref = *family;
  std::lock_guard lock(mutex_);
  entries_.push_back(std::make_unique<Entry>(
      Entry{std::move(name), std::move(help), MetricType::kHistogram, std::move(family)}));
  return ref;
}

void Registry::AddCallback(std::string name, std::string help, MetricType type,
                           std::function<double()> value) {
  std::lock_guard lock(mutex_);
  entries_.push_back(
      std::make_unique<Entry>(Entry{std::move(name), std::move(help), type, std::move(value)}));
}

std::string Registry::Render() const {
  std::string out;
  out.reserve(16 << 10);
  std::lock_guard lock(mutex_);
  for (const auto& e : entries_) {
    std::string_view type = e->type == MetricType::kCounter ? "counter"
                            : e->type == MetricType::kGauge ? "gauge"
                                                            : "histogram";
    AppendHeader(out, e->name, e->help, type);
    std::visit(
        [&](const auto& m) {
          using T = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<T, std::function<double()>>) {
            out += e->name;
            out += ' ';
            AppendNumber(out, m());
            out += '\n';
          } else {
            m->ForEach([&](const std::vector<std::string>& labels, const auto& metric) {
              using M = std::decay_t<decltype(metric)>;
              if constexpr (std::is_same_v<M, Histogram>) {
                Histogram::Snapshot snap = metric.Collect();
                std::string bucket_name = e->name + "_bucket";
                for (std::size_t i = 0; i <= metric.bounds().size(); ++i) {
                  std::string le = "le=\"";
                  if (i == metric.bounds().size()) {
                    le += "+Inf";
                  } else {
                    AppendNumber(le, metric.bounds()[i]);
                  }
                  le += '"';
                  AppendSeries(out, bucket_name, m->label_names(), labels, le);
                  out += ' ';
                  AppendNumber(out, static_cast<double>(snap.cumulative[i]));
                  out += '\n';
                }
                AppendSeries(out, e->name + "_sum", m->label_names(), labels);
                out += ' ';
                AppendNumber(out, snap.sum);
                out += '\n';
                AppendSeries(out, e->name + "_count", m->label_names(), labels);
                out += ' ';
                AppendNumber(out, static_cast<double>(snap.count));
                out += '\n';
              } else {
                AppendSeries(out, e->name, m->label_names(), labels);
                out += ' ';
                AppendNumber(out, static_cast<double>(metric.Value()));
                out += '\n';
              }
            });
          }
        },
        e->metric);
  }
  return out;
}

namespace {

struct ProcStat {
  double cpu_seconds = 0;
  double start_time_seconds = 0;
  double virtual_bytes = 0;
  double resident_bytes = 0;
};

ProcStat ReadProcStat() {
  ProcStat s;
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return s;
  // Fields after the command name, which is in parentheses and may contain spaces.
  auto close = line.rfind(')');
  if (close == std::string::npos) return s;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> f;
  std::string word;
  while (fields >> word)
    f.push_back(word);
  // f[0] is field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24.
  if (f.size() < 22) return s;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  double boot_time = 0;
  std::ifstream stat("/proc/stat");
  while (std::getline(stat, line)) {
    if (line.rfind("btime ", 0) == 0) boot_time = std::stod(line.substr(6));
  }
  s.start_time_seconds = boot_time + std::stod(f[19]) / ticks;
  s.virtual_bytes = std::stod(f[20]);
  s.resident_bytes = std::stod(f[21]) * page;
  return s;
}

double CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

void RegisterProcessMetrics(Registry& registry, std::string_view version, std::string_view commit) {
  registry.AddCallback("process_cpu_seconds_total",
                       "Total user and system CPU time spent in seconds.", MetricType::kCounter,
                       [] { return ReadProcStat().cpu_seconds; });
  registry.AddCallback("process_resident_memory_bytes", "Resident memory size in bytes.",
                       MetricType::kGauge, [] { return ReadProcStat().resident_bytes; });
  registry.AddCallback("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                       MetricType::kGauge, [] { return ReadProcStat().virtual_bytes; });
  registry.AddCallback("process_open_fds", "Number of open file descriptors.", MetricType::kGauge,
                       [] { return CountOpenFds(); });
  registry.AddCallback("process_max_fds", "Maximum number of open file descriptors.",
                       MetricType::kGauge, [] {
                         rlimit r{};
                         getrlimit(RLIMIT_NOFILE, &r);
                         return static_cast<double>(r.rlim_cur);
                       });
  double start = ReadProcStat().start_time_seconds;
  registry.AddCallback("process_start_time_seconds",
                       "Start time of the process since unix epoch in seconds.", MetricType::kGauge,
                       [start] { return start; });
  registry
      .AddGauge("orchestra_build_info", "Build version and commit; the value is always 1.",
                {"version", "commit"})
      .With({version, commit})
      .Set(1);
}

}  // namespace orchestra::observability
