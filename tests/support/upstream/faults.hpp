#pragma once

// What a misbehaving upstream puts on the wire: a built Reply rewritten as the bytes the wire
// directives ask for (directives.hpp, "Misbehaviour on the wire"), and where to stop. The
// connection coroutine in server.cpp acts it out (drip, RST, stall, the appended response).

#include <cstddef>
#include <cstdint>
#include <string>

#include "upstream/replies.hpp"

namespace orchestra::testing::upstream {

struct FaultyWire {
  std::string bytes;         // interim response, head and body (and an appended response at once)
  std::size_t stop = 0;      // send bytes [0, stop) (less than the size for reset_at / stall_at)
  std::string appended;      // an unrequested response sent append_delay after `bytes`
  bool close_after = false;  // HTTP/0.9: the close ends the body
  // body_mib: this many bytes of whitespace go out as chunks, generated while they are written,
  // at offset `padding_at` of `bytes`.
  std::uint64_t padding = 0;
  std::size_t padding_at = 0;
};

// Fills `out` for `reply` (whose directives have HasWireFault()).
void BuildFaultyWire(const Reply& reply, FaultyWire& out);

// gzip (`gzip` true) or zlib-wrapped deflate of `in`, appended to `out` (also for tests).
void Compress(std::string_view in, bool gzip, std::string& out);

}  // namespace orchestra::testing::upstream
