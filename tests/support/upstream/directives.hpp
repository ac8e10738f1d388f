#pragma once

// Behaviour directives of the test upstream. Tests script failures through the model name
// (`name+key=value+key=value`) so that no side channel is needed: the same string travels through
// Orchestra's routing untouched. Flags of the executable set process-wide defaults that a
// request's directives override key by key.
//
// Keys (durations take units: 20ms, 1s):
//   latency=D           wait D before answering (any answer, errors included)
//   first_byte_delay=D  streams: send the headers, wait D, then the first event; otherwise
//                       the same as latency
//   chunk_delay=D       streams: wait D between content events
//   chunks=N            streams: N content events (default: one per word of the reply)
//   cut=N               streams: send N content events, then close without the end of the
//                       stream; non-streaming: send the headers and half the body, then close
//   status=S            answer S with the provider's error JSON (S=200 is a normal answer)
//   retry_after=N       add `Retry-After: N` to an error answer
//   times=N             status, stall, reset and cut apply to the first N requests with this
//                       exact model string only (counted process-wide; POST /_reset clears)
//   stall               read the request, never answer, keep the connection open
//   reset               read the request, then close the connection with a TCP RST
//   dims=N              embedding dimension (default: the request's own, else 16)

#include <chrono>
#include <string_view>

#include "common/error.hpp"

namespace orchestra::testing::upstream {

struct Directives {
  std::chrono::nanoseconds latency{0};
  std::chrono::nanoseconds first_byte_delay{0};
  std::chrono::nanoseconds chunk_delay{0};
  int chunks = 0;        // 0 = one content event per word
  int cut = -1;          // < 0 = no cut
  int status = 0;        // 0 or 200 = normal answer
  int retry_after = -1;  // < 0 = no Retry-After header
  int times = 0;         // 0 = failure directives apply to every request
  int dims = 0;          // 0 = the request's own dimension, else 16
  bool stall = false;
  bool reset = false;

  // Whether a directive that `times` gates is present.
  bool HasFailure() const { return (status != 0 && status != 200) || stall || reset || cut >= 0; }
  // Drops the directives that `times` gates (the request is past its count).
  void ClearFailures() {
    status = 0;
    retry_after = -1;
    stall = false;
    reset = false;
    cut = -1;
  }
};

// Applies one `key` or `key=value` directive. Keys may use '-' for '_' (for flags).
Result<void> ApplyDirective(std::string_view key, std::string_view value, bool has_value,
                            Directives& out);

// Applies the directives of a model name (everything after its first '+') on top of `defaults`.
Result<Directives> ParseModelDirectives(std::string_view model, const Directives& defaults);

// True when `key` (with '-' or '_') names a directive; `takes_value` tells whether it needs one.
bool IsDirectiveKey(std::string_view key, bool& takes_value);

}  // namespace orchestra::testing::upstream
