#include "upstream/http_request.hpp"

#include <array>
#include <charconv>

#include "common/text.hpp"

namespace orchestra::testing::upstream {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// RFC 9110 tchar, as a table: header names are checked byte by byte on every request.
constexpr auto kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c)
    table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c)
    table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    table[static_cast<unsigned char>(c)] = true;
  return table;
}();

bool IsTokenChar(char c) {
  return kTokenChars[static_cast<unsigned char>(c)];
}

// Whether a comma-separated header value lists `token` (case-insensitive).
bool ListContains(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    if (EqualsIgnoreCase(Trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// Decodes a chunked body; returns the bytes consumed (0 = need more, npos = malformed or over
// kMaxBodyBytes).
std::size_t Dechunk(std::string_view in, std::string& out) {
  constexpr std::size_t kBad = std::string_view::npos;
  out.clear();
  std::size_t pos = 0;
  for (;;) {
    std::size_t line_end = in.find("\r\n", pos);
    if (line_end == std::string_view::npos) return in.size() - pos > 1024 ? kBad : 0;
    std::string_view size_text = in.substr(pos, line_end - pos);
    size_text = size_text.substr(0, size_text.find(';'));  // chunk extensions are ignored
    size_text = Trim(size_text);
    std::size_t size = 0;
    auto [ptr, ec] =
        std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (ec != std::errc() || ptr != size_text.data() + size_text.size() || size_text.empty())
      return kBad;
    if (size > kMaxBodyBytes || out.size() + size > kMaxBodyBytes) return kBad;
    pos = line_end + 2;
    if (size == 0) {
      // Trailers, then an empty line.
      for (;;) {
        std::size_t end = in.find("\r\n", pos);
        if (end == std::string_view::npos) return 0;
        if (end == pos) return end + 2;
        pos = end + 2;
      }
    }
    if (in.size() - pos < size + 2) return 0;
    out.append(in.data() + pos, size);
    pos += size;
    if (in.substr(pos, 2) != "\r\n") return kBad;
    pos += 2;
  }
}

}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  for (std::size_t i = 0; i < header_count; ++i) {
    if (headers[i].name.size() == name.size() && EqualsIgnoreCase(headers[i].name, name))
      return headers[i].value;
  }
  return {};
}

ParseResult ParseRequest(std::string_view input, HttpRequest& req, std::string& chunked_body) {
  ParseResult result;
  // Tolerate empty lines before a request line (RFC 9112 §2.2).
  std::size_t start = 0;
  while (start + 1 < input.size() && input[start] == '\r' && input[start + 1] == '\n')
    start += 2;
  std::size_t head_end = input.find("\r\n\r\n", start);
  if (head_end == std::string_view::npos) {
    result.status =
        input.size() > kMaxHeadBytes ? ParseStatus::kHeadTooLarge : ParseStatus::kNeedMore;
    return result;
  }
  if (head_end - start > kMaxHeadBytes) {
    result.status = ParseStatus::kHeadTooLarge;
    return result;
  }
  std::string_view head = input.substr(start, head_end - start + 2);  // keeps the last CRLF
  const std::size_t body_start = head_end + 4;

  // Request line: METHOD SP target SP HTTP/1.x
  std::size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = line.rfind(' ');
  result.status = ParseStatus::kBad;
  if (sp1 == std::string_view::npos || sp2 == sp1 || sp1 == 0) return result;
  req.method = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  for (char c : req.method) {
    if (!IsTokenChar(c)) return result;
  }
  if (req.target.empty() || req.target.find(' ') != std::string_view::npos) return result;
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1.") return result;
  req.http10 = version[7] == '0';
  if (!req.http10 && version[7] != '1') return result;
  std::size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  req.query = q == std::string_view::npos ? std::string_view() : req.target.substr(q + 1);

  // Headers.
  req.header_count = 0;
  bool has_length = false;
  bool chunked = false;
  std::size_t content_length = 0;
  bool close = req.http10;
  req.expect_continue = false;
  std::size_t pos = line_end + 2;
  while (pos < head.size()) {
    std::size_t end = head.find("\r\n", pos);
    std::string_view h = head.substr(pos, end - pos);
    pos = end + 2;
    std::size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return result;
    std::string_view name = h.substr(0, colon);
    for (char c : name) {
      if (!IsTokenChar(c)) return result;
    }
    std::string_view value = Trim(h.substr(colon + 1));
    if (req.header_count == kMaxHeaders) {
      result.status = ParseStatus::kHeadTooLarge;
      return result;
    }
    req.headers[req.header_count++] = {name, value};
    switch (name.size()) {
      case 10:
        if (EqualsIgnoreCase(name, "connection")) {
          if (ListContains(value, "close")) close = true;
          if (ListContains(value, "keep-alive")) close = false;
        }
        break;
      case 14:
        if (EqualsIgnoreCase(name, "content-length")) {
          std::size_t n = 0;
          auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
          if (ec != std::errc() || ptr != value.data() + value.size() || value.empty())
            return result;
          if (has_length && n != content_length) return result;  // conflicting lengths
          has_length = true;
          content_length = n;
        }
        break;
      case 17:
        if (EqualsIgnoreCase(name, "transfer-encoding")) {
          if (!EqualsIgnoreCase(Trim(value), "chunked")) {
            result.status = ParseStatus::kNotImplemented;
            return result;
          }
          chunked = true;
        }
        break;
      case 6:
        if (EqualsIgnoreCase(name, "expect") && EqualsIgnoreCase(value, "100-continue"))
          req.expect_continue = true;
        break;
      default:
        break;
    }
  }
  if (chunked && has_length) return result;  // request smuggling shape: refuse
  req.keep_alive = !close;

  if (chunked) {
    std::size_t used = Dechunk(input.substr(body_start), chunked_body);
    if (used == std::string_view::npos) return result;  // kBad
    if (used == 0) {
      result.status = ParseStatus::kNeedMore;
      result.wants_continue = req.expect_continue;
      return result;
    }
    req.body = chunked_body;
    result.status = ParseStatus::kComplete;
    result.consumed = body_start + used;
    return result;
  }
  if (content_length > kMaxBodyBytes) {
    result.status = ParseStatus::kBodyTooLarge;
    return result;
  }
  if (input.size() - body_start < content_length) {
    result.status = ParseStatus::kNeedMore;
    result.expected = body_start + content_length;
    result.wants_continue = req.expect_continue;
    return result;
  }
  req.body = input.substr(body_start, content_length);
  result.status = ParseStatus::kComplete;
  result.consumed = body_start + content_length;
  return result;
}

}  // namespace orchestra::testing::upstream
