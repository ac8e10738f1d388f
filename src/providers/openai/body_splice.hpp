#pragma once

#include <array>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "common/text.hpp"
#include "net/client.hpp"
#include "wire/types.hpp"

// How the OpenAI-compatible provider rewrites a client's body without re-serialising it: the
// original text in pieces with a few byte ranges replaced (`model`, and `stream_options` for a
// stream). Pure functions, apart from AddSplicedBody's pieces pointing into their arguments.
// Apart from openai_provider.cpp so that the fuzz target (tests/fuzz/openai_request.cpp) can
// check that a spliced body stays the JSON it was, with the replacements in.
namespace orchestra::providers {

// Bytes [begin, end) of the body replaced by `replacement` (begin == end: inserted).
struct Splice {
  std::size_t begin;
  std::size_t end;
  std::string_view replacement;
};

// The body as pieces: the original text with the splices (which must not overlap) applied,
// never copied. Sorts `splices`.
void AddSplicedBody(net::OutgoingRequest& out, std::string_view body, std::span<Splice> splices);
// The same with one splice.
inline void AddSplicedBody(net::OutgoingRequest& out, std::string_view body, std::size_t begin,
                           std::size_t end, std::string_view replacement) {
  Splice splice[] = {{begin, end, replacement}};
  AddSplicedBody(out, body, splice);
}

// The stream_options splice: include_usage set inside the client's own options (kept), or the
// member added when the client sent none. `request` was scanned by ScanChatRequest.
Splice IncludeUsage(const wire::ChatRequest& request);

}  // namespace orchestra::providers
