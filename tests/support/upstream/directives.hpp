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
//   no_usage            report no token usage (a Gemini stream without usageMetadata; an
//                       OpenAI stream without its usage chunk)
//
// Misbehaviour on the wire (faults.hpp acts them out; fault injection tests use them):
//   interim=S           send an interim response with status S (100-199; 101 with Upgrade
//                       headers) before the answer
//   length_delta=N      non-streaming: Content-Length is the body's length plus N. N < 0: the
//                       last |N| bytes follow the message as stray bytes; N > 0: the body falls
//                       N bytes short and the connection stays open
//   append              a second, unrequested response (a chat completion saying "appended:
//                       not your answer") follows the answer on the connection...
//   append_delay=D      ...D after it (default at once, in the same write)
//   encoding=E          Content-Encoding E: gzip or deflate compress the body (a stream: each
//                       event, flushed); br is claimed but not applied
//   reset_at=P          close with a TCP RST at P: head (half the head sent) or body (the head
//                       and half the body sent; a stream: half its events)
//   stall_at=P          stop sending at P (as reset_at) and keep the connection open
//   drip=D              send the answer one byte at a time, D apart
//   header_bytes=N      add about N bytes of padding headers (X-Pad-1...) to the head
//   bad_chunk           chunked coding with a malformed chunk-size line (a stream: after its
//                       first event; otherwise the whole body, sent chunked)
//   http09              answer with the body alone, no status line or headers, then close
//   content_type=T      the Content-Type header says T (one of the forms text/plain,
//                       text/html, application/json, application/octet-stream)
//   html                answer with an HTML page (text/html), as a misconfigured proxy would
//   body_mib=N          non-streaming: N MiB of whitespace before the JSON body, sent chunked
//                       in 64 KiB chunks as they are written (never held in memory)
//   The wire directives ignore chunk_delay and cut; `times` gates them like the failures.

#include <chrono>
#include <cstdint>
#include <string_view>

#include "common/error.hpp"

namespace orchestra::testing::upstream {

// Where reset_at and stall_at strike.
enum class FaultPoint : std::uint8_t { kNone, kHead, kBody };
enum class Encoding : std::uint8_t { kIdentity, kGzip, kDeflate, kBrotli };

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
  bool no_usage = false;
  // On the wire (see the list above).
  int interim = 0;  // 0 = none
  int length_delta = 0;
  bool append = false;
  std::chrono::nanoseconds append_delay{0};
  Encoding encoding = Encoding::kIdentity;
  FaultPoint reset_at = FaultPoint::kNone;
  FaultPoint stall_at = FaultPoint::kNone;
  std::chrono::nanoseconds drip{0};
  int header_bytes = 0;
  bool bad_chunk = false;
  bool http09 = false;
  std::string_view content_type;  // static storage; empty = the reply's own
  bool html = false;
  int body_mib = 0;

  // Whether a misbehaviour on the wire is asked for.
  bool HasWireFault() const {
    return interim != 0 || length_delta != 0 || append || encoding != Encoding::kIdentity ||
           reset_at != FaultPoint::kNone || stall_at != FaultPoint::kNone || drip.count() > 0 ||
           header_bytes > 0 || bad_chunk || http09 || !content_type.empty() || html || body_mib > 0;
  }
  // Whether a directive that `times` gates is present.
  bool HasFailure() const {
    return (status != 0 && status != 200) || stall || reset || cut >= 0 || HasWireFault();
  }
  // Drops the directives that `times` gates (the request is past its count).
  void ClearFailures() {
    status = 0;
    retry_after = -1;
    stall = false;
    reset = false;
    cut = -1;
    interim = 0;
    length_delta = 0;
    append = false;
    encoding = Encoding::kIdentity;
    reset_at = FaultPoint::kNone;
    stall_at = FaultPoint::kNone;
    drip = {};
    header_bytes = 0;
    bad_chunk = false;
    http09 = false;
    content_type = {};
    html = false;
    body_mib = 0;
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
