#include "documents/multipart.hpp"

#include <string>

#include "common/text.hpp"
#include <string.h>  // memmem (a linear-time search, whatever the input)

namespace orchestra::documents {
namespace {

constexpr std::size_t kMaxBoundary = 70;  // RFC 2046 §5.1.1

char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (Lower(a[i]) != Lower(b[i])) return false;
  return true;
}

bool IsOws(char c) {
  return c == ' ' || c == '\t';
}

bool IsTokenChar(char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsBoundaryChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

// Parameters after a header's first value: `; name=value` pairs, values tokens or quoted
// strings. Calls on(name, value) for each; false on a syntax error.
template <class On>
bool ForEachParameter(std::string_view rest, On&& on) {
  std::size_t i = 0;
  const std::size_t n = rest.size();
  while (true) {
    while (i < n && IsOws(rest[i]))
      ++i;
    if (i == n) return true;
    if (rest[i] != ';') return false;
    ++i;
    while (i < n && IsOws(rest[i]))
      ++i;
    if (i == n) return true;  // a trailing ';'
    const std::size_t name_begin = i;
    while (i < n && IsTokenChar(rest[i]))
      ++i;
    const std::string_view name = rest.substr(name_begin, i - name_begin);
    while (i < n && IsOws(rest[i]))
      ++i;
    if (name.empty() || i == n || rest[i] != '=') return false;
    ++i;
    while (i < n && IsOws(rest[i]))
      ++i;
    std::string value;
    if (i < n && rest[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        const char c = rest[i];
        if (c == '"') {
          closed = true;
          ++i;
          break;
        }
        // Only \" and \\ are escapes: a browser sends "C:\dir\file" with bare backslashes.
        if (c == '\\' && i + 1 < n && (rest[i + 1] == '"' || rest[i + 1] == '\\')) {
          value.push_back(rest[i + 1]);
          i += 2;
          continue;
        }
        value.push_back(c);
        ++i;
      }
      if (!closed) return false;
    } else {
      const std::size_t value_begin = i;
      while (i < n && IsTokenChar(rest[i]))
        ++i;
      value.assign(rest.substr(value_begin, i - value_begin));
    }
    on(name, std::move(value));
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 5987 ext-value: charset'language'percent-encoded. UTF-8 and US-ASCII only.
std::optional<std::string> DecodeExtValue(std::string_view v) {
  const std::size_t q1 = v.find('\'');
  if (q1 == std::string_view::npos) return std::nullopt;
  const std::size_t q2 = v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return std::nullopt;
  const std::string_view charset = v.substr(0, q1);
  if (!EqualsIgnoreCase(charset, "utf-8") && !EqualsIgnoreCase(charset, "us-ascii"))
    return std::nullopt;
  std::string out;
  for (std::size_t i = q2 + 1; i < v.size(); ++i) {
    if (v[i] != '%') {
      out.push_back(v[i]);
      continue;
    }
    if (i + 2 >= v.size() || HexValue(v[i + 1]) < 0 || HexValue(v[i + 2]) < 0) return std::nullopt;
    out.push_back(static_cast<char>(HexValue(v[i + 1]) * 16 + HexValue(v[i + 2])));
    i += 2;
  }
  return out;
}

Error Invalid(std::string message, std::string param = {}) {
  return MakeError(ErrorCode::kInvalidRequest, "multipart/form-data body: " + std::move(message),
                   std::move(param));
}

std::string Describe(std::size_t index, std::string_view name) {
  std::string s = "part " + std::to_string(index + 1);
  if (!name.empty()) s += " (\"" + std::string(name) + "\")";
  return s;
}

const char* Find(std::string_view hay, std::size_t from, std::string_view needle) {
  if (from > hay.size()) return nullptr;
  return static_cast<const char*>(
      ::memmem(hay.data() + from, hay.size() - from, needle.data(), needle.size()));
}

}  // namespace

Result<std::string> MultipartBoundary(std::string_view content_type) {
  const std::size_t semi = content_type.find(';');
  const std::string_view type = TrimOws(content_type.substr(0, semi));
  if (!EqualsIgnoreCase(type, "multipart/form-data"))
    return MakeError(ErrorCode::kInvalidRequest,
                     "Content-Type must be multipart/form-data, not \"" +
                         std::string(type.substr(0, 100)) + "\"",
                     "Content-Type");
  std::optional<std::string> boundary;
  const bool well_formed =
      semi == std::string_view::npos ||
      ForEachParameter(content_type.substr(semi), [&](std::string_view name, std::string value) {
        if (EqualsIgnoreCase(name, "boundary") && !boundary) boundary = std::move(value);
      });
  if (!well_formed)
    return MakeError(ErrorCode::kInvalidRequest,
                     "the parameters of the multipart/form-data Content-Type are malformed",
                     "Content-Type");
  if (!boundary || boundary->empty())
    return MakeError(ErrorCode::kInvalidRequest,
                     "multipart/form-data needs a boundary parameter in its Content-Type",
                     "Content-Type");
  if (boundary->size() > kMaxBoundary)
    return MakeError(ErrorCode::kInvalidRequest,
                     "the multipart boundary is " + std::to_string(boundary->size()) +
                         " characters long; RFC 2046 allows at most 70",
                     "Content-Type");
  for (char c : *boundary)
    if (!IsBoundaryChar(c))
      return MakeError(ErrorCode::kInvalidRequest,
                       "the multipart boundary holds a character RFC 2046 does not allow",
                       "Content-Type");
  if (boundary->back() == ' ')
    return MakeError(ErrorCode::kInvalidRequest, "the multipart boundary ends in a space",
                     "Content-Type");
  return *boundary;
}

Result<std::vector<MultipartPart>> ParseMultipart(std::string_view body, std::string_view boundary,
                                                  const MultipartLimits& limits) {
  if (boundary.empty() || boundary.size() > kMaxBoundary)
    return Invalid("the boundary must be 1 to 70 characters", "Content-Type");
  // A delimiter is CRLF "--" boundary, then "--" (the last) or padding and CRLF; the CRLF
  // before it belongs to the delimiter, not to the content.
  const std::string delimiter = "\r\n--" + std::string(boundary);
  const std::size_t n = body.size();

  // Where the delimiter line at `at` (its "--") ends: past its CRLF; `last` when it closes.
  // npos when `at` is not a delimiter line after all ("--boundaryX").
  auto delimiter_end = [&](std::size_t at, bool& last) -> std::size_t {
    std::size_t i = at + 2 + boundary.size();
    last = false;
    if (body.substr(i, 2) == "--") {
      last = true;
      return i + 2;
    }
    while (i < n && IsOws(body[i]))
      ++i;
    if (body.substr(i, 2) == "\r\n") return i + 2;
    return std::string_view::npos;
  };
  // The next delimiter line from `from`: the position of its "--", or npos.
  auto next_delimiter = [&](std::size_t from) -> std::size_t {
    for (const char* p = Find(body, from, delimiter); p != nullptr;
         p = Find(body, static_cast<std::size_t>(p - body.data()) + 1, delimiter)) {
      const std::size_t at = static_cast<std::size_t>(p - body.data()) + 2;
      bool last = false;
      if (delimiter_end(at, last) != std::string_view::npos) return at;
    }
    return std::string_view::npos;
  };

  // The first delimiter may open the body without a CRLF before it.
  std::size_t at = std::string_view::npos;
  bool last = false;
  if (body.substr(0, 2) == "--" && body.substr(2, boundary.size()) == boundary &&
      delimiter_end(0, last) != std::string_view::npos)
    at = 0;
  else
    at = next_delimiter(0);
  if (at == std::string_view::npos)
    return Invalid("the boundary from Content-Type never appears in the body", "Content-Type");

  std::vector<MultipartPart> parts;
  while (true) {
    const std::size_t part_begin = delimiter_end(at, last);
    if (last) break;
    const std::size_t index = parts.size();
    if (index == limits.max_parts)
      return MakeError(
          ErrorCode::kPayloadTooLarge,
          "multipart/form-data body: more than " + std::to_string(limits.max_parts) + " parts");

    // Headers: lines up to an empty line. A part may have none at all (then it starts with
    // the empty line), though a form-data part without Content-Disposition is refused below.
    std::size_t headers_end;  // where the empty line starts
    if (body.substr(part_begin, 2) == "\r\n") {
      headers_end = part_begin;
    } else {
      const std::size_t window = std::min(n - part_begin, limits.max_header_bytes + 4);
      const char* blank = Find(body.substr(0, part_begin + window), part_begin, "\r\n\r\n");
      if (blank == nullptr) {
        if (window < limits.max_header_bytes + 4)
          return Invalid("the body ends inside the headers of " + Describe(index, {}) +
                         " (unterminated body)");
        return MakeError(ErrorCode::kPayloadTooLarge,
                         "multipart/form-data body: the headers of " + Describe(index, {}) +
                             " exceed " + std::to_string(limits.max_header_bytes) + " bytes");
      }
      headers_end = static_cast<std::size_t>(blank - body.data()) + 2;
    }

    MultipartPart part;
    part.content_type = "text/plain";
    bool has_disposition = false;
    bool is_form_data = false;
    bool has_name = false;
    std::optional<std::string> ext_filename;
    for (std::size_t line_begin = part_begin; line_begin < headers_end;) {
      const std::size_t line_end = body.find("\r\n", line_begin);
      const std::string_view line = body.substr(line_begin, line_end - line_begin);
      line_begin = line_end + 2;
      if (!line.empty() && IsOws(line.front()))
        return Invalid("folded header lines are not supported (" + Describe(index, {}) + ")");
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0)
        return Invalid("a header line of " + Describe(index, {}) + " has no name and colon");
      const std::string_view name = line.substr(0, colon);
      const std::string_view value = TrimOws(line.substr(colon + 1));
      if (EqualsIgnoreCase(name, "Content-Type")) {
        part.content_type = value;
      } else if (EqualsIgnoreCase(name, "Content-Disposition") && !has_disposition) {
        has_disposition = true;
        const std::size_t semi = value.find(';');
        is_form_data = EqualsIgnoreCase(TrimOws(value.substr(0, semi)), "form-data");
        const bool ok =
            semi == std::string_view::npos ||
            ForEachParameter(value.substr(semi), [&](std::string_view p, std::string v) {
              if (EqualsIgnoreCase(p, "name") && !has_name) {
                has_name = true;
                part.name = std::move(v);
              } else if (EqualsIgnoreCase(p, "filename") && !part.filename) {
                part.filename = std::move(v);
              } else if (EqualsIgnoreCase(p, "filename*") && !ext_filename) {
                ext_filename = DecodeExtValue(v);
              }
            });
        if (!ok)
          return Invalid("the Content-Disposition of " + Describe(index, {}) + " is malformed");
      }
    }
    if (ext_filename) part.filename = std::move(ext_filename);
    if (!has_disposition || !is_form_data)
      return Invalid(Describe(index, part.name) + " has no Content-Disposition: form-data");
    if (part.name.empty())
      return Invalid(Describe(index, {}) + " has no name in its Content-Disposition");

    std::size_t content_begin = headers_end + 2;
    // Searching from the empty line's CRLF also accepts an empty part whose delimiter lacks its
    // own CRLF ("…\r\n\r\n--boundary").
    const std::size_t next = next_delimiter(headers_end);
    const std::size_t content_end = next == std::string_view::npos ? n : next - 2;
    if (content_end < content_begin) content_begin = content_end;
    if (content_end - content_begin > limits.max_part_bytes)
      return MakeError(ErrorCode::kPayloadTooLarge,
                       "multipart/form-data body: " + Describe(index, part.name) + " is " +
                           (next == std::string_view::npos ? "over " : "") +
                           std::to_string(content_end - content_begin) + " bytes; the limit is " +
                           std::to_string(limits.max_part_bytes),
                       part.name);
    if (next == std::string_view::npos)
      return Invalid("the body ends before its closing boundary (" + Describe(index, part.name) +
                     " is unterminated)");
    part.content = body.substr(content_begin, content_end - content_begin);
    parts.push_back(std::move(part));
    at = next;
  }
  return parts;
}

const MultipartPart* FindPart(const std::vector<MultipartPart>& parts, std::string_view name) {
  for (const MultipartPart& p : parts)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace orchestra::documents
