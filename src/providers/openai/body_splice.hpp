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

// The upstream model as a JSON string. It is a piece of the outgoing body, so it lives on the
// calling coroutine's frame until the request is written: writing may suspend (connect, TLS,
// a partial send), and another request on the same worker runs meanwhile. Names that need no
// escaping and fit (nearly all) are copied into the frame without an allocation.
class QuotedJson {
 public:
  explicit QuotedJson(std::string_view text) {
    if (text.size() + 2 <= inline_.size() && JsonPlainPrefix(text) == text.size()) {
      inline_[0] = '"';
      std::memcpy(inline_.data() + 1, text.data(), text.size());
      inline_[text.size() + 1] = '"';
      view_ = std::string_view(inline_.data(), text.size() + 2);
      return;
    }
    heap_.assign(1, '"');
    AppendJsonEscaped(heap_, text);
    heap_ += '"';
    view_ = heap_;
  }
  QuotedJson(const QuotedJson&) = delete;
  QuotedJson& operator=(const QuotedJson&) = delete;
  std::string_view view() const { return view_; }

 private:
  std::array<char, 64> inline_;  // small: it is on a coroutine frame
  std::string heap_;
  std::string_view view_;
};

// Bytes [begin, end) of the body replaced by `replacement` (begin == end: inserted).
struct Splice {
  std::size_t begin;
  std::size_t end;
  std::string_view replacement;
};

// The body as pieces: the original text with the splices (which must not overlap) applied,
// never copied. Sorts `splices`.
void AddSplicedBody(net::OutgoingRequest& out, std::string_view body, std::span<Splice> splices);

// The stream_options splice: include_usage set inside the client's own options (kept), or the
// member added when the client sent none. `request` was scanned by ScanChatRequest.
Splice IncludeUsage(const wire::ChatRequest& request);

}  // namespace orchestra::providers
