#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>

// Markdown structure for chunking by headings: ATX headings only (`#` … `######`, CommonMark
// §4.2: at most three spaces of indentation, a space or the line's end after the hashes, an
// optional closing run of hashes). Lines inside fenced code blocks (``` or ~~~, §4.5; an
// unclosed fence runs to the end) are never headings, nor are indented lines (code).
// Setext headings (underlined with === or ---) are not recognised.
namespace orchestra::documents {

struct MarkdownSection {
  std::size_t begin = 0;       // byte offset of the heading line; 0 for the text before the first
  std::size_t body_begin = 0;  // the first byte after the heading line
  std::size_t end = 0;         // where the next heading line starts, or the text's size
  int level = 0;               // 1–6; 0 for the text before the first heading
  // The titles of the enclosing headings, outermost first, ending with this section's own (at
  // most six). Each title is trimmed, without its closing hashes, and cut to kMaxHeadingBytes.
  // Valid during the callback only.
  std::span<const std::string> heading_path;
};

inline constexpr std::size_t kMaxHeadingBytes = 256;

// Calls `visit` with each section in order, until it returns false. The sections tile the text
// (each `end` is the next `begin`); a text without headings is one section of level 0, and an
// empty text one empty section. Linear in the text's size, and nothing is kept per section, so a
// hostile text of ten million headings costs time, not memory.
void ForEachMarkdownSection(std::string_view text,
                            const std::function<bool(const MarkdownSection&)>& visit);

}  // namespace orchestra::documents
