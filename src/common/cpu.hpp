#pragma once

#include <cstdint>

namespace orchestra {

// The number of CPUs this process may really use: its affinity mask, capped by the cgroup
// CPU quota (cgroup v2 cpu.max or v1 cfs_quota/cfs_period) rounded up. Cloud Run gives a
// container 1-8 vCPUs on hosts with many more cores; sizing thread pools by the host's core
// count would oversubscribe. Never less than 1.
int UsableCpuCount();

// The memory this process may use: the cgroup's limit (v2 memory.max, v1
// memory.limit_in_bytes); 0 when there is none (or it is larger than the machine could hold).
// Cloud Run's instance memory is such a limit.
std::uint64_t CgroupMemoryLimit();

// The soft limit on open file descriptors (RLIMIT_NOFILE).
std::uint64_t FileDescriptorLimit();

}  // namespace orchestra
