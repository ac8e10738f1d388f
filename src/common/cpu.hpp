#pragma once

namespace orchestra {

// The number of CPUs this process may really use: its affinity mask, capped by the cgroup
// CPU quota (cgroup v2 cpu.max or v1 cfs_quota/cfs_period) rounded up. Cloud Run gives a
// container 1-8 vCPUs on hosts with many more cores; sizing thread pools by the host's core
// count would oversubscribe. Never less than 1.
int UsableCpuCount();

}  // namespace orchestra
