#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

// The kinds of document Orchestra reads, and how each becomes the text that is chunked.
//
//   text      as sent
//   markdown  as sent (the markdown_headings chunking strategy reads its headings)
//   html      reduced to its readable text (html.hpp: scripts, styles and tags dropped, entities
//             decoded); its <title> is the document's title when none is given
//
// PDF and other binary formats are not read: no library in Debian extracts PDF text well enough
// to be linked into the server without pulling in a large stack (poppler's C++ API and its
// dependencies), so uploads of them are refused with 415 and a message naming what is read.
namespace orchestra::documents {

enum class ContentType : std::uint8_t { kText, kMarkdown, kHtml };

// "text", "markdown", "html" (the API's names; also "plain", "md", "htm" leniently).
std::optional<ContentType> ParseContentType(std::string_view name);
std::string_view ToString(ContentType type);

// The supported media types, for messages: "text/plain, text/markdown or text/html".
inline constexpr std::string_view kSupportedMediaTypes = "text/plain, text/markdown or text/html";

// The kind of an uploaded or imported file from its media type (the Content-Type of its part,
// parameters ignored, any case) and its file name's extension:
//   text/plain, text/markdown, text/x-markdown, text/html, application/xhtml+xml: that kind
//     (text/plain with a .md/.markdown or .html/.htm name: Markdown or HTML, as browsers send
//     those files as text/plain or application/octet-stream);
//   application/octet-stream or an empty media type: by extension (.txt .text .md .markdown
//     .html .htm; also .csv .log .rst .json .yaml .yml .xml as text);
// anything else (or an unknown extension) is kUnsupportedMediaType naming the supported types
// (and saying so for PDF).
Result<ContentType> ContentTypeOf(std::string_view media_type, std::string_view filename);

// The text to chunk: `content` itself, or for HTML its readable text. A UTF-8 byte order mark
// is dropped. `title`, when given and the content is HTML, receives its <title>. Content that
// is not valid UTF-8 is kUnsupportedMediaType (param `param`): Orchestra reads UTF-8 text only.
Result<std::string> ToText(std::string_view content, ContentType type, std::string* title,
                           std::string_view param);

}  // namespace orchestra::documents
