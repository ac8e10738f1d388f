#include "providers/openai/body_splice.hpp"

#include <algorithm>

#include "common/json_scan.hpp"

namespace orchestra::providers {
namespace {

constexpr std::string_view kIncludeUsage = R"({"include_usage":true})";
constexpr std::string_view kAppendIncludeUsage = R"(,"stream_options":{"include_usage":true})";

// Where `,"stream_options":...` goes when the client sent none: before the closing brace.
std::size_t ClosingBrace(std::string_view body) {
  std::size_t i = body.size();
  while (i > 0 && body[i - 1] != '}')
    --i;
  return i > 0 ? i - 1 : body.size();
}

}  // namespace

void AddSplicedBody(net::OutgoingRequest& out, std::string_view body, std::span<Splice> splices) {
  std::sort(splices.begin(), splices.end(),
            [](const Splice& a, const Splice& b) { return a.begin < b.begin; });
  std::size_t at = 0;
  for (const Splice& s : splices) {
    out.AddBody(body.substr(at, s.begin - at));
    out.AddBody(s.replacement);
    at = s.end;
  }
  out.AddBody(body.substr(at));
}

Splice IncludeUsage(const wire::ChatRequest& request) {
  if (request.stream_options_end <= request.stream_options_begin) {
    const std::size_t brace = ClosingBrace(request.raw_body);
    return {brace, brace, kAppendIncludeUsage};
  }
  const std::string_view options_text(request.raw_body.data() + request.stream_options_begin,
                                      request.stream_options_end - request.stream_options_begin);
  if (options_text == "null") {
    return {request.stream_options_begin, request.stream_options_end, kIncludeUsage};
  }
  JsonSpan include;
  bool other_members = false;
  std::string unescaped;  // "include\u005fusage" is include_usage to the upstream too
  ScanJson(options_text, [&](std::string_view key, const JsonSpan& v) {
    if (JsonMemberName(key, unescaped) == "include_usage") {
      include = v;
    } else {
      other_members = true;
    }
  });
  if (include.present) {
    return {request.stream_options_begin + include.begin,
            request.stream_options_begin + include.end, "true"};
  }
  const std::size_t after_brace = request.stream_options_begin + 1;
  return {after_brace, after_brace,
          other_members ? R"("include_usage":true,)" : R"("include_usage":true)"};
}

}  // namespace orchestra::providers
