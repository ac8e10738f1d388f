#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

// multipart/form-data (RFC 7578, over RFC 2046's multipart syntax), for document uploads. The
// whole body is in memory (the server reads it within server.max_body_bytes); parts are views
// into it, so a 10 MB file is never copied. Binary-safe: part contents may hold any bytes,
// NUL and CR LF included; only the delimiter line ends a part.
//
// Strict where it matters: lines end in CR LF (every browser, curl and HTTP library sends
// them); each part needs Content-Disposition: form-data with a non-empty name. Lenient where
// clients differ: a preamble before the first boundary and an epilogue after the last are
// ignored, as is transport padding after a boundary; header names are case-insensitive; unknown
// headers are skipped. Names and filenames are quoted strings or tokens; in a quoted string
// only \" and \\ are escapes (browsers send Windows paths with bare backslashes), and
// filename*=UTF-8''… (RFC 5987) is decoded and preferred to filename.
namespace orchestra::documents {

struct MultipartLimits {
  std::size_t max_parts = 64;
  std::size_t max_part_bytes = 32 << 20;   // a part's content
  std::size_t max_header_bytes = 8 << 10;  // a part's header block
};

struct MultipartPart {
  std::string name;                     // from Content-Disposition
  std::optional<std::string> filename;  // present for file fields (may be empty: no file chosen)
  std::string_view content_type;        // as sent; "text/plain" when absent (RFC 7578 §4.4)
  std::string_view content;             // a view into the body
};

// The boundary of a Content-Type header value "multipart/form-data; boundary=…" (the
// parameter quoted or not; type and parameter names in any case). kInvalidRequest, param
// "Content-Type", when the type is another or the boundary is missing, empty, longer than 70
// characters or holds characters RFC 2046 does not allow.
Result<std::string> MultipartBoundary(std::string_view content_type);

// The parts of `body`, in order. Errors (kInvalidRequest unless said otherwise), each naming the
// part by its position and name where it has one:
//   the boundary never appears / the body ends before the closing boundary (unterminated);
//   a part without Content-Disposition: form-data, or without a name; a malformed header line;
//   kPayloadTooLarge: more than max_parts parts, a part's headers past max_header_bytes, a part's
//   content past max_part_bytes (param: the part's name).
Result<std::vector<MultipartPart>> ParseMultipart(std::string_view body, std::string_view boundary,
                                                  const MultipartLimits& limits = {});

// The first part called `name`, or nullptr.
const MultipartPart* FindPart(const std::vector<MultipartPart>& parts, std::string_view name);

}  // namespace orchestra::documents
