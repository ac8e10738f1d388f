#include "common/loop_load.hpp"

#include <algorithm>
#include <cstdio>

#include <unistd.h>

namespace orchestra {

LoopLoad::LoopLoad(int workers)
    : workers_(std::max(workers, 1)), cells_(std::make_unique<Cell[]>(workers_)) {}

void LoopLoad::Record(int worker, Duration lateness) {
  if (worker < 0 || worker >= workers_) return;
  std::atomic<std::int64_t>& cell = cells_[worker].smoothed_ns;
  const std::int64_t sample = std::max<std::int64_t>(0, lateness.count());
  const std::int64_t old = cell.load(std::memory_order_relaxed);
  cell.store(old + (sample - old) / 4, std::memory_order_relaxed);
}

LoopLoad::Duration LoopLoad::Delay(int worker) const {
  if (worker < 0 || worker >= workers_) return Duration::zero();
  return Duration(cells_[worker].smoothed_ns.load(std::memory_order_relaxed));
}

LoopLoad::Duration LoopLoad::MaxDelay() const {
  Duration worst = Duration::zero();
  for (int w = 0; w < workers_; ++w)
    worst = std::max(worst, Delay(w));
  return worst;
}

std::uint64_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0;
  unsigned long long resident = 0;
  const int read = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (read != 2) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace orchestra
