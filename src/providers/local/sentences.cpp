#include "providers/local/sentences.hpp"

#include <algorithm>
#include <iterator>

namespace orchestra::providers::local {
namespace {

constexpr std::size_t kMaxHeadingWords = 12;
constexpr std::size_t kMaxInlineHeadingWords = 8;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsLower(char c) {
  return c >= 'a' && c <= 'z';
}
bool IsUpper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// Sorted (checked below): words after which a period does not end a sentence.
constexpr std::string_view kAbbreviations[] = {
    "al",  "approx", "apr", "aug", "ca",   "cf",  "co",  "corp", "dec", "dept", "dr",  "e.g",
    "eg",  "est",    "etc", "feb", "fig",  "ft",  "i.e", "ie",   "inc", "jan",  "jr",  "jul",
    "jun", "lt",     "ltd", "mar", "mr",   "mrs", "ms",  "mt",   "no",  "nov",  "oct", "p",
    "pp",  "prof",   "rev", "sep", "sept", "sr",  "st",  "vol",  "vs"};
static_assert(std::is_sorted(std::begin(kAbbreviations), std::end(kAbbreviations)));

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back()))
    s.remove_suffix(1);
  return s;
}

// The length of a closing quote or bracket at the start of `s`, or 0.
std::size_t ClosingMark(std::string_view s) {
  if (s.empty()) return 0;
  if (s[0] == '"' || s[0] == '\'' || s[0] == ')' || s[0] == ']' || s[0] == '*' || s[0] == '_')
    return 1;
  if (s.starts_with("\xE2\x80\x9D") || s.starts_with("\xE2\x80\x99")) return 3;  // ” ’
  return 0;
}

// Ends like a sentence: . ! ? or …, perhaps followed by closing quotes or brackets.
bool EndsLikeSentence(std::string_view s) {
  s = Trim(s);
  for (;;) {
    if (!s.empty() && (s.back() == '"' || s.back() == '\'' || s.back() == ')' || s.back() == ']' ||
                       s.back() == '*' || s.back() == '_')) {
      s.remove_suffix(1);
    } else if (s.ends_with("\xE2\x80\x9D") || s.ends_with("\xE2\x80\x99")) {
      s.remove_suffix(3);
    } else {
      break;
    }
  }
  if (s.empty()) return false;
  return s.back() == '.' || s.back() == '!' || s.back() == '?' || s.ends_with("\xE2\x80\xA6");
}

// The length of a list marker ("- ", "* ", "+ ", "• ", "12. ", "3) ") at the start of `line`,
// or 0.
std::size_t ListMarker(std::string_view line) {
  if (line.size() >= 2 && (line[0] == '-' || line[0] == '*' || line[0] == '+') &&
      (line[1] == ' ' || line[1] == '\t')) {
    return 2;
  }
  if (line.starts_with("\xE2\x80\xA2")) return 3;  // •
  std::size_t i = 0;
  while (i < line.size() && i < 3 && IsDigit(line[i]))
    ++i;
  if (i > 0 && i + 1 < line.size() && (line[i] == '.' || line[i] == ')') &&
      (line[i + 1] == ' ' || line[i + 1] == '\t')) {
    return i + 2;
  }
  return 0;
}

// Sentence punctuation followed by a space inside `s`: "Really? Yes! The end" is prose.
bool HasInnerStop(std::string_view s) {
  for (std::size_t i = 0; i + 1 < s.size(); ++i) {
    if ((s[i] == '.' || s[i] == '!' || s[i] == '?') && IsSpace(s[i + 1])) return true;
  }
  return false;
}

bool IsAtxHeading(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && line[i] == '#')
    ++i;
  return i >= 1 && i <= 6 && (i == line.size() || line[i] == ' ' || line[i] == '\t');
}

bool IsUnderline(std::string_view line) {
  return line.size() >= 2 &&
         (std::all_of(line.begin(), line.end(), [](char c) { return c == '='; }) ||
          std::all_of(line.begin(), line.end(), [](char c) { return c == '-'; }));
}

bool IsFence(std::string_view line) {
  return line.starts_with("```") || line.starts_with("~~~");
}

// Whether a period at `dot` (in `text`) follows an abbreviation or an initial.
bool AfterAbbreviation(std::string_view text, std::size_t dot) {
  std::size_t start = dot;
  while (start > 0 && !IsSpace(text[start - 1]) && text[start - 1] != '(' && text[start - 1] != '"')
    --start;
  std::string word;
  for (std::size_t i = start; i < dot; ++i) {
    const char c = text[i];
    word += IsUpper(c) ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (word.size() == 1 && IsUpper(text[start])) return true;  // an initial: "J. Smith"
  if (std::binary_search(std::begin(kAbbreviations), std::end(kAbbreviations), word)) return true;
  // "U.S." and the like: letters separated by periods.
  return word.size() >= 3 && word.find('.') != std::string::npos &&
         std::all_of(word.begin(), word.end(),
                     [](char c) { return c == '.' || (c >= 'a' && c <= 'z'); });
}

class Segmenter {
 public:
  explicit Segmenter(std::string_view text) : text_(text) {}

  std::vector<Segment> Run() {
    std::size_t at = 0;
    while (at <= text_.size()) {
      std::size_t end = text_.find('\n', at);
      if (end == std::string_view::npos) end = text_.size();
      Line(at, end);
      if (end == text_.size()) break;
      at = end + 1;
    }
    EndBlock();
    return std::move(out_);
  }

 private:
  // One raw line [begin, end).
  void Line(std::size_t begin, std::size_t end) {
    std::string_view raw = text_.substr(begin, end - begin);
    const std::string_view line = Trim(raw);
    const std::size_t line_begin =
        line.empty() ? begin : static_cast<std::size_t>(line.data() - text_.data());
    if (in_code_) {
      if (IsFence(line)) in_code_ = false;
      if (!line.empty()) Emit(line_begin, line.size(), SegmentKind::kFragment);
      return;
    }
    if (line.empty()) {
      EndBlock();
      return;
    }
    if (IsFence(line)) {
      EndParagraph();
      in_code_ = true;
      Emit(line_begin, line.size(), SegmentKind::kFragment);
      return;
    }
    if (IsAtxHeading(line)) {
      EndParagraph();
      std::string_view title = line;
      while (!title.empty() && title.front() == '#')
        title.remove_prefix(1);
      title = Trim(title);
      if (!title.empty())
        Emit(static_cast<std::size_t>(title.data() - text_.data()), title.size(),
             SegmentKind::kHeading);
      return;
    }
    if (IsUnderline(line)) {
      if (para_lines_ == 1 && !in_item_) {
        Emit(para_begin_, para_end_ - para_begin_, SegmentKind::kHeading);
        para_lines_ = 0;
      } else {
        EndParagraph();
      }
      return;
    }
    if (line.front() == '|') {
      EndParagraph();
      Emit(line_begin, line.size(), SegmentKind::kFragment);
      return;
    }
    if (const std::size_t marker = ListMarker(line); marker > 0) {
      EndParagraph();
      const std::string_view item = Trim(line.substr(marker));
      if (item.empty()) return;
      in_item_ = true;
      Extend(static_cast<std::size_t>(item.data() - text_.data()),
             static_cast<std::size_t>(item.data() - text_.data()) + item.size());
      return;
    }
    // A continuation of a list item is indented; anything else ends the item.
    if (in_item_ && !(raw.starts_with(' ') || raw.starts_with('\t'))) EndParagraph();
    Extend(line_begin, line_begin + line.size());
  }

  void Extend(std::size_t begin, std::size_t end) {
    if (para_lines_ == 0) {
      para_begin_ = begin;
      first_line_end_ = end;
      block_first_ = block_lines_ == 0;
    } else if (para_lines_ == 1 && !in_item_ && block_first_ &&
               IsInlineHeading(text_.substr(para_begin_, first_line_end_ - para_begin_),
                               text_.substr(begin, end - begin))) {
      // "Introduction\nThe system ..." without a blank line: the first line is a heading.
      Emit(para_begin_, first_line_end_ - para_begin_, SegmentKind::kHeading);
      para_begin_ = begin;
      first_line_end_ = end;
      para_lines_ = 0;
    }
    para_end_ = end;
    ++para_lines_;
    ++block_lines_;
  }

  static bool IsInlineHeading(std::string_view first, std::string_view next) {
    return WordCount(first) <= kMaxInlineHeadingWords && first.size() < 60 &&
           !EndsLikeSentence(first) && first.back() != ',' && first.back() != '-' &&
           !next.empty() && (IsUpper(next.front()) || IsDigit(next.front()));
  }

  void EndBlock() {
    EndParagraph();
    block_lines_ = 0;
  }

  void EndParagraph() {
    if (para_lines_ == 0) {
      in_item_ = false;
      return;
    }
    const std::string_view para = text_.substr(para_begin_, para_end_ - para_begin_);
    const bool item = in_item_;
    const bool alone = para_lines_ == block_lines_ && !item;
    para_lines_ = 0;
    in_item_ = false;
    const std::size_t words = WordCount(para);
    if (!EndsLikeSentence(para)) {
      if (item) {
        Emit(para_begin_, para.size(), SegmentKind::kFragment);
        return;
      }
      if (words <= kMaxHeadingWords && (alone || para.back() == ':') && !HasInnerStop(para)) {
        Emit(para_begin_, para.size(), SegmentKind::kHeading);
        return;
      }
    }
    Split(para_begin_, para_end_);
  }

  // Splits the prose [begin, end) into sentences.
  void Split(std::size_t begin, std::size_t end) {
    const std::string_view p = text_.substr(0, end);
    std::size_t start = begin;
    std::size_t i = begin;
    while (i < end) {
      std::size_t mark = 0;
      if (p[i] == '.' || p[i] == '!' || p[i] == '?') {
        mark = 1;
      } else if (p.substr(i).starts_with("\xE2\x80\xA6")) {
        mark = 3;
      }
      if (mark == 0) {
        ++i;
        continue;
      }
      std::size_t j = i + mark;
      while (j < end && (p[j] == '.' || p[j] == '!' || p[j] == '?'))
        ++j;
      while (j < end) {
        const std::size_t close = ClosingMark(p.substr(j));
        if (close == 0) break;
        j += close;
      }
      if (j >= end) break;
      if (!IsSpace(p[j])) {
        i = j;
        continue;
      }
      std::size_t k = j;
      while (k < end && IsSpace(p[k]))
        ++k;
      const bool single_period = p[i] == '.' && j == i + 1;
      if (k < end && (IsLower(p[k]) || (single_period && AfterAbbreviation(p, i)))) {
        i = k;
        continue;
      }
      Emit(start, j - start, SegmentKind::kSentence);
      start = k;
      i = k;
    }
    if (start < end) Emit(start, end - start, SegmentKind::kSentence);
  }

  void Emit(std::size_t begin, std::size_t length, SegmentKind kind) {
    std::string_view s = text_.substr(begin, length);
    const std::string_view trimmed = Trim(s);
    if (trimmed.empty()) return;
    out_.push_back({trimmed, static_cast<std::size_t>(trimmed.data() - text_.data()), kind});
  }

  std::string_view text_;
  std::vector<Segment> out_;
  bool in_code_ = false;
  bool in_item_ = false;
  bool block_first_ = false;
  std::size_t block_lines_ = 0;
  std::size_t para_lines_ = 0;
  std::size_t para_begin_ = 0;
  std::size_t para_end_ = 0;
  std::size_t first_line_end_ = 0;
};

}  // namespace

std::vector<Segment> Segments(std::string_view text) {
  return Segmenter(text).Run();
}

std::vector<Segment> Sentences(std::string_view text) {
  std::vector<Segment> all = Segments(text);
  std::erase_if(all, [](const Segment& s) { return s.kind != SegmentKind::kSentence; });
  return all;
}

std::size_t WordCount(std::string_view text) {
  std::size_t n = 0;
  bool in_word = false;
  for (char c : text) {
    const bool word = !IsSpace(c);
    if (word && !in_word) ++n;
    in_word = word;
  }
  return n;
}

std::string Collapse(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : Trim(text)) {
    if (IsSpace(c)) {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string FirstWords(std::string_view text, std::size_t max_words) {
  std::string collapsed = Collapse(text);
  std::size_t words = 0;
  for (std::size_t i = 0; i < collapsed.size(); ++i) {
    if (collapsed[i] == ' ' && ++words == max_words) {
      collapsed.resize(i);
      return collapsed;
    }
  }
  if (max_words == 0) collapsed.clear();
  return collapsed;
}

}  // namespace orchestra::providers::local
