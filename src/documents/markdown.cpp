#include "documents/markdown.hpp"

#include <vector>

#include "common/utf8.hpp"

namespace orchestra::documents {
namespace {

bool IsBlank(char c) {
  return c == ' ' || c == '\t';
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (IsBlank(s.front()) || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (IsBlank(s.back()) || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// The line without up to three leading spaces; false when it is indented further (code).
bool StripIndent(std::string_view& line) {
  std::size_t spaces = 0;
  while (spaces < line.size() && line[spaces] == ' ')
    ++spaces;
  if (spaces > 3 || (spaces < line.size() && line[spaces] == '\t')) return false;
  line.remove_prefix(spaces);
  return true;
}

// An ATX heading's level (1–6) and title, or level 0.
int AtxHeading(std::string_view line, std::string_view& title) {
  if (!StripIndent(line)) return 0;
  std::size_t hashes = 0;
  while (hashes < line.size() && line[hashes] == '#')
    ++hashes;
  if (hashes == 0 || hashes > 6) return 0;
  std::string_view rest = line.substr(hashes);
  if (!rest.empty() && !IsBlank(rest.front()) && rest.front() != '\r') return 0;
  rest = TrimBlanks(rest);
  // A closing run of hashes goes when a blank precedes it (or it is all there is).
  std::size_t end = rest.size();
  while (end > 0 && rest[end - 1] == '#')
    --end;
  if (end == 0) {
    rest = {};
  } else if (end < rest.size() && IsBlank(rest[end - 1])) {
    rest = TrimBlanks(rest.substr(0, end));
  }
  title = rest;
  return static_cast<int>(hashes);
}

// A fence's character and length when the line opens (or closes) a fenced code block.
bool Fence(std::string_view line, char& ch, std::size_t& length, bool& has_info) {
  if (!StripIndent(line) || line.empty() || (line[0] != '`' && line[0] != '~')) return false;
  ch = line[0];
  length = 0;
  while (length < line.size() && line[length] == ch)
    ++length;
  if (length < 3) return false;
  const std::string_view info = TrimBlanks(line.substr(length));
  if (ch == '`' && info.find('`') != std::string_view::npos) return false;
  has_info = !info.empty();
  return true;
}

std::string Clip(std::string_view title) {
  if (title.size() <= kMaxHeadingBytes) return std::string(title);
  return std::string(title.substr(0, utf8::FloorBoundary(title, kMaxHeadingBytes)));
}

}  // namespace

void ForEachMarkdownSection(std::string_view text,
                            const std::function<bool(const MarkdownSection&)>& visit) {
  // The enclosing headings: their levels and titles (the titles are the path handed out).
  std::vector<int> levels;
  std::vector<std::string> titles;
  MarkdownSection current;
  char fence_char = 0;
  std::size_t fence_length = 0;  // 0 = not inside a fenced block

  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t nl = text.find('\n', pos);
    const std::size_t next = nl == std::string_view::npos ? text.size() : nl + 1;
    const std::string_view line =
        text.substr(pos, (nl == std::string_view::npos ? next : nl) - pos);

    char ch = 0;
    std::size_t length = 0;
    bool has_info = false;
    std::string_view title;
    int level = 0;
    if (fence_length > 0) {
      if (Fence(line, ch, length, has_info) && ch == fence_char && length >= fence_length &&
          !has_info)
        fence_length = 0;
    } else if (Fence(line, ch, length, has_info)) {
      fence_char = ch;
      fence_length = length;
    } else {
      level = AtxHeading(line, title);
    }

    if (level > 0) {
      // The section before this heading ends here (the text before a first heading at 0 is
      // empty and not reported).
      if (pos > current.begin || current.level > 0) {
        current.end = pos;
        current.heading_path = titles;
        if (!visit(current)) return;
      }
      while (!levels.empty() && levels.back() >= level) {
        levels.pop_back();
        titles.pop_back();
      }
      levels.push_back(level);
      titles.push_back(Clip(title));
      current = MarkdownSection{};
      current.begin = pos;
      current.body_begin = next;
      current.level = level;
    }
    pos = next;
  }
  current.end = text.size();
  current.heading_path = titles;
  visit(current);
}

}  // namespace orchestra::documents
