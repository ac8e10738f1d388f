/* LD_PRELOAD probe for bench/frame_sizes.sh: logs every aligned_alloc of more than
 * PROBE_MIN_BYTES (default 300) to stderr as "PROBE <size> <return addresses...>", the
 * addresses relative to their object's load base (for addr2line). Asio allocates coroutine
 * frames and handler memory through aligned_alloc when its per-thread recycling cache has no
 * block that fits; a frame over 1,020 bytes never fits, so it shows up once per request. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void* (*real_aligned_alloc)(size_t, size_t);
static size_t min_bytes = (size_t)-1;

void* aligned_alloc(size_t alignment, size_t size) {
  if (!real_aligned_alloc) real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
  if (min_bytes == (size_t)-1) {
    const char* env = getenv("PROBE_MIN_BYTES");
    min_bytes = env ? (size_t)strtoul(env, NULL, 10) : 300;
  }
  if (size > min_bytes) {
    void* frames[7];
    const int n = backtrace(frames, 7);
    char line[512];
    int len = snprintf(line, sizeof line, "PROBE %zu", size);
    for (int i = 2; i < n && len < (int)sizeof line - 24; ++i) {
      Dl_info info;
      if (dladdr(frames[i], &info) == 0) continue;
      len += snprintf(line + len, sizeof line - len, " 0x%lx",
                      (unsigned long)((char*)frames[i] - (char*)info.dli_fbase));
    }
    line[len++] = '\n';
    if (write(2, line, (size_t)len) < 0) { /* nothing to do */ }
  }
  return real_aligned_alloc(alignment, size);
}
