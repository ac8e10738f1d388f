#include "common/cpu.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include <sched.h>
#include <sys/resource.h>

namespace orchestra {
namespace {

// Returns the quota as CPUs (e.g. 1.5), or 0 when unlimited or unknown.
double CgroupCpuLimit() {
  // cgroup v2: "max 100000" or "150000 100000".
  if (std::ifstream v2("/sys/fs/cgroup/cpu.max"); v2) {
    std::string quota;
    long period = 0;
    if (v2 >> quota >> period && quota != "max" && period > 0) {
      return std::stod(quota) / static_cast<double>(period);
    }
    return 0;
  }
  std::ifstream q("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  std::ifstream p("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  long quota = 0;
  long period = 0;
  if (q >> quota && p >> period && quota > 0 && period > 0) {
    return static_cast<double>(quota) / static_cast<double>(period);
  }
  return 0;
}

}  // namespace

int UsableCpuCount() {
  int cpus = 1;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  double limit = 0;
  try {
    limit = CgroupCpuLimit();
  } catch (const std::exception&) {
    limit = 0;  // an unreadable quota file means no quota we can honour
  }
  if (limit > 0) cpus = std::min(cpus, std::max(1, static_cast<int>(std::ceil(limit))));
  return cpus;
}

std::uint64_t CgroupMemoryLimit() {
  std::uint64_t limit = 0;
  if (std::ifstream v2("/sys/fs/cgroup/memory.max"); v2) {
    std::string text;
    v2 >> text;
    if (text != "max") limit = std::strtoull(text.c_str(), nullptr, 10);
  } else if (std::ifstream v1("/sys/fs/cgroup/memory/memory.limit_in_bytes"); v1) {
    v1 >> limit;
  }
  // v1 writes a page-rounded 2^63 for "no limit".
  if (limit >= (1ULL << 60)) limit = 0;
  return limit;
}

std::uint64_t FileDescriptorLimit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return static_cast<std::uint64_t>(r.rlim_cur);
}

}  // namespace orchestra
