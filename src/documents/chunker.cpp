#include "documents/chunker.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

#include "common/utf8.hpp"
#include "documents/markdown.hpp"

namespace orchestra::documents {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsLower(char c) {
  return c >= 'a' && c <= 'z';
}

// [b, e) without surrounding whitespace; empty (b == e) when all of it is.
Span Trim(std::string_view text, std::size_t b, std::size_t e) {
  while (b < e && IsSpace(text[b]))
    ++b;
  while (e > b && IsSpace(text[e - 1]))
    --e;
  return {b, e};
}

// Code points in [b, e): every byte that is not a continuation byte starts one.
std::size_t CodePoints(std::string_view text, std::size_t b, std::size_t e) {
  std::size_t n = 0;
  for (std::size_t i = b; i < e; ++i)
    n += !utf8::IsContinuation(static_cast<unsigned char>(text[i]));
  return n;
}

// The paragraphs of [b, e): runs of lines that are not blank, trimmed.
std::vector<Span> SplitParagraphs(std::string_view text, std::size_t b, std::size_t e) {
  std::vector<Span> out;
  std::size_t start = b;  // where the current paragraph may begin
  std::size_t pos = b;
  while (pos < e) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos || nl >= e) nl = e;
    const Span line = Trim(text, pos, nl);
    if (line.begin == line.end) {  // a blank line ends the paragraph before it
      const Span p = Trim(text, start, pos);
      if (p.begin < p.end) out.push_back(p);
      start = nl;
    }
    pos = nl + 1;
  }
  const Span p = Trim(text, start, e);
  if (p.begin < p.end) out.push_back(p);
  return out;
}

std::size_t AfterClosers(std::string_view text, std::size_t i, std::size_t e) {
  while (i < e) {
    if (text[i] == '"' || text[i] == '\'' || text[i] == ')' || text[i] == ']') {
      ++i;
    } else if (text.substr(i, 3) == "\xE2\x80\x9D" || text.substr(i, 3) == "\xE2\x80\x99") {
      i += 3;  // ” ’
    } else {
      break;
    }
  }
  return i;
}

// Does a sentence end after the terminator run ending at `i` (and the closing quotes and
// brackets after it, which stay with the sentence)?
bool EndsSentence(std::string_view text, std::size_t i, std::size_t e) {
  i = AfterClosers(text, i, e);
  if (i >= e) return true;
  if (!IsSpace(text[i])) return false;
  while (i < e && IsSpace(text[i]))
    ++i;
  // "e.g. this", "approx. three": a lower-case word goes on with the same sentence.
  return i >= e || !IsLower(text[i]);
}

// The terminator at i: its byte length, and whether it ends a sentence even without a space
// after it (the CJK full stops).
std::size_t Terminator(std::string_view text, std::size_t i, bool& cjk) {
  cjk = false;
  const char c = text[i];
  if (c == '.' || c == '!' || c == '?') return 1;
  if (static_cast<unsigned char>(c) == 0xE2 && text.substr(i, 3) == "\xE2\x80\xA6") return 3;  // …
  if (static_cast<unsigned char>(c) == 0xE3 && text.substr(i, 3) == "\xE3\x80\x82") {  // 。
    cjk = true;
    return 3;
  }
  if (static_cast<unsigned char>(c) == 0xEF &&
      (text.substr(i, 3) == "\xEF\xBC\x81" || text.substr(i, 3) == "\xEF\xBC\x9F")) {  // ！？
    cjk = true;
    return 3;
  }
  return 0;
}

// The words of [b, e): runs of non-whitespace.
std::vector<Span> SplitWords(std::string_view text, std::size_t b, std::size_t e) {
  std::vector<Span> out;
  std::size_t i = b;
  while (i < e) {
    while (i < e && IsSpace(text[i]))
      ++i;
    const std::size_t start = i;
    while (i < e && !IsSpace(text[i]))
      ++i;
    if (start < i) out.push_back({start, i});
  }
  return out;
}

struct Unit {
  std::size_t begin;
  std::size_t end;
  std::size_t weight;  // code points or tokens
};

// Cuts text into units no heavier than `size` and packs them into chunks.
class Packer {
 public:
  Packer(std::string_view text, std::size_t size, std::size_t overlap, bool tokens,
         const TokenCounter& counter, std::size_t max_chunks, std::vector<Chunk>& out)
      : text_(text),
        size_(size),
        overlap_(overlap),
        tokens_(tokens),
        counter_(counter),
        max_chunks_(max_chunks),
        out_(out) {}

  // Level 0: a paragraph, 1: a sentence, 2: a word.
  void AddUnit(Span s, int level) {
    const std::size_t w = Weight(s.begin, s.end);
    if (w <= size_) {
      Push(s.begin, s.end, w);
      return;
    }
    if (level == 0) {
      for (const Span& sentence : SplitSentences(text_, s.begin, s.end))
        AddUnit(sentence, 1);
    } else if (level == 1) {
      for (const Span& word : SplitWords(text_, s.begin, s.end))
        AddUnit(word, 2);
    } else {
      HardSplit(s);
    }
  }

  // Packs the units gathered so far into chunks (with `path`), then forgets them. False when
  // the chunk limit is passed.
  bool Flush(const std::vector<std::string>& path) {
    AssignOffsets();
    const std::size_t n = units_.size();
    std::size_t i = 0;
    while (i < n) {
      std::size_t j = i + 1;
      while (j < n && SpanWeight(i, j + 1) <= size_)
        ++j;
      // Token counts of the units do not quite add up (a merge across a boundary); the whole
      // chunk is counted and shortened until it fits. A single unit was counted alone: it fits.
      if (tokens_)
        while (j > i + 1 &&
               counter_(text_.substr(units_[i].begin, units_[j - 1].end - units_[i].begin)) > size_)
          --j;
      if (out_.size() == max_chunks_) return false;
      Chunk chunk;
      chunk.sequence = out_.size();
      chunk.begin = units_[i].begin;
      chunk.end = units_[j - 1].end;
      chunk.heading_path = path;
      out_.push_back(std::move(chunk));
      if (j == n) break;
      // The next chunk starts with the last units that fit in the overlap, as long as unit j
      // still fits after them.
      std::size_t m = j;
      while (m - 1 > i && SpanWeight(m - 1, j) <= overlap_ && SpanWeight(m - 1, j + 1) <= size_)
        --m;
      i = m;
    }
    units_.clear();
    offset_.clear();
    return true;
  }

  // Weight gathered so far, to give up early on a text that needs too many chunks.
  std::size_t pending_weight() const { return pending_weight_; }

 private:
  std::size_t Weight(std::size_t b, std::size_t e) const {
    return tokens_ ? counter_(text_.substr(b, e - b)) : CodePoints(text_, b, e);
  }

  void Push(std::size_t b, std::size_t e, std::size_t w) {
    units_.push_back({b, e, w});
    pending_weight_ += w;
  }

  // A word heavier than size: pieces at code point boundaries.
  void HardSplit(Span s) {
    std::size_t pos = s.begin;
    while (pos < s.end) {
      std::size_t q;
      if (!tokens_) {
        q = utf8::AdvanceCodePoints(text_.substr(0, s.end), pos, size_);
      } else {
        q = LongestPrefixWithin(pos, s.end);
      }
      if (q <= pos) q = utf8::AdvanceCodePoints(text_.substr(0, s.end), pos, 1);
      Push(pos, q, Weight(pos, q));
      pos = q;
    }
  }

  // The end of the longest prefix of text[pos, e) that counts at most size tokens. A token
  // spans at least one byte, so `size` bytes always fit; the search gallops from there.
  std::size_t LongestPrefixWithin(std::size_t pos, std::size_t e) const {
    auto fits = [&](std::size_t q) { return counter_(text_.substr(pos, q - pos)) <= size_; };
    std::size_t good = utf8::FloorBoundary(text_.substr(0, e), std::min(e, pos + size_));
    if (good <= pos) return pos;
    std::size_t step = size_;
    std::size_t bad = e + 1;  // none known
    while (good < e) {
      const std::size_t probe = utf8::FloorBoundary(text_.substr(0, e), std::min(e, good + step));
      if (probe <= good) break;
      if (!fits(probe)) {
        bad = probe;
        break;
      }
      good = probe;
      step *= 2;
    }
    if (bad > e) return good;
    while (true) {  // good fits, bad does not
      const std::size_t mid = utf8::FloorBoundary(text_.substr(0, e), good + (bad - good) / 2);
      if (mid <= good) return good;
      if (fits(mid)) {
        good = mid;
      } else {
        bad = mid;
      }
    }
  }

  // offset_[u]: the weight before unit u. For characters the text between units counts (it is
  // part of the chunk); for tokens only the units do (whitespace joins a neighbouring token).
  void AssignOffsets() {
    offset_.resize(units_.size());
    std::size_t pos = units_.empty() ? 0 : units_[0].begin;
    std::size_t w = 0;
    for (std::size_t u = 0; u < units_.size(); ++u) {
      if (!tokens_) w += CodePoints(text_, pos, units_[u].begin);
      offset_[u] = w;
      w += units_[u].weight;
      pos = units_[u].end;
    }
  }

  // The weight of units [a, b) together.
  std::size_t SpanWeight(std::size_t a, std::size_t b) const {
    return offset_[b - 1] + units_[b - 1].weight - offset_[a];
  }

  std::string_view text_;
  std::size_t size_;
  std::size_t overlap_;
  bool tokens_;
  const TokenCounter& counter_;
  std::size_t max_chunks_;
  std::vector<Chunk>& out_;
  std::vector<Unit> units_;
  std::vector<std::size_t> offset_;
  std::size_t pending_weight_ = 0;
};

Error TooManyChunks(std::size_t max_chunks) {
  return MakeError(ErrorCode::kPayloadTooLarge,
                   "the document needs more than " + std::to_string(max_chunks) +
                       " chunks; split it, or chunk it with a larger size",
                   "chunking");
}

}  // namespace

std::optional<ChunkStrategy> ParseChunkStrategy(std::string_view name) {
  if (name == "paragraph") return ChunkStrategy::kParagraph;
  if (name == "sentence") return ChunkStrategy::kSentence;
  if (name == "tokens") return ChunkStrategy::kTokens;
  if (name == "markdown_headings") return ChunkStrategy::kMarkdownHeadings;
  return std::nullopt;
}

std::string_view ToString(ChunkStrategy strategy) {
  switch (strategy) {
    case ChunkStrategy::kParagraph:
      return "paragraph";
    case ChunkStrategy::kSentence:
      return "sentence";
    case ChunkStrategy::kTokens:
      return "tokens";
    case ChunkStrategy::kMarkdownHeadings:
      return "markdown_headings";
  }
  return "unknown";
}

std::vector<Span> SplitSentences(std::string_view text, std::size_t begin, std::size_t end) {
  std::vector<Span> out;
  for (const Span& paragraph : SplitParagraphs(text, begin, end)) {
    std::size_t start = paragraph.begin;
    std::size_t i = paragraph.begin;
    while (i < paragraph.end) {
      bool cjk = false;
      const std::size_t len = Terminator(text, i, cjk);
      if (len == 0) {
        ++i;
        continue;
      }
      // A run of terminators ("?!", "...") ends together.
      std::size_t after = i + len;
      bool more_cjk = false;
      for (std::size_t more;
           after < paragraph.end && (more = Terminator(text, after, more_cjk)) > 0;) {
        after += more;
        cjk = cjk || more_cjk;
      }
      if (cjk || EndsSentence(text, after, paragraph.end)) {
        const std::size_t stop = AfterClosers(text, after, paragraph.end);
        const Span s = Trim(text, start, stop);
        if (s.begin < s.end) out.push_back(s);
        start = stop;
        i = stop;
      } else {
        i = after;
      }
    }
    const Span s = Trim(text, start, paragraph.end);
    if (s.begin < s.end) out.push_back(s);
  }
  return out;
}

Result<std::vector<Chunk>> ChunkText(std::string_view text, const ChunkingOptions& options,
                                     const TokenCounter& count_tokens) {
  const bool tokens = options.strategy == ChunkStrategy::kTokens;
  const std::size_t size = options.size.value_or(tokens ? kDefaultChunkTokens : kDefaultChunkChars);
  const std::size_t overlap = options.overlap.value_or(
      std::min(tokens ? kDefaultOverlapTokens : kDefaultOverlapChars, size / 2));
  const char* unit = tokens ? " tokens" : " characters";
  if (size < 1 || size > kMaxChunkSize)
    return MakeError(ErrorCode::kInvalidRequest,
                     "chunking size is " + std::to_string(size) + "; it must be between 1 and " +
                         std::to_string(kMaxChunkSize) + unit,
                     "chunking.size");
  if (overlap >= size)
    return MakeError(ErrorCode::kInvalidRequest,
                     "chunking overlap (" + std::to_string(overlap) +
                         ") must be smaller than the chunk size (" + std::to_string(size) + unit +
                         ")",
                     "chunking.overlap");
  if (tokens && !count_tokens)
    return MakeError(ErrorCode::kInvalidRequest,
                     "the tokens strategy needs the embedding model's tokenizer",
                     "chunking.strategy");

  std::vector<Chunk> out;
  Packer packer(text, size, overlap, tokens, count_tokens, options.max_chunks, out);
  // Every chunk holds at most `size`, so this much weight cannot fit in max_chunks chunks.
  const std::size_t hopeless =
      options.max_chunks > SIZE_MAX / size ? SIZE_MAX : options.max_chunks * size;
  bool ok = true;
  const std::vector<std::string> no_path;

  switch (options.strategy) {
    case ChunkStrategy::kParagraph:
      for (const Span& p : SplitParagraphs(text, 0, text.size())) {
        packer.AddUnit(p, 0);
        if (packer.pending_weight() > hopeless) return TooManyChunks(options.max_chunks);
      }
      ok = packer.Flush(no_path);
      break;
    case ChunkStrategy::kSentence:
    case ChunkStrategy::kTokens:
      for (const Span& s : SplitSentences(text, 0, text.size())) {
        packer.AddUnit(s, 1);
        if (packer.pending_weight() > hopeless) return TooManyChunks(options.max_chunks);
      }
      ok = packer.Flush(no_path);
      break;
    case ChunkStrategy::kMarkdownHeadings: {
      std::vector<std::string> path;
      ForEachMarkdownSection(text, [&](const MarkdownSection& section) {
        // A section with nothing but its heading makes no chunk.
        const Span body = Trim(text, section.body_begin, section.end);
        if (body.begin == body.end) return true;
        for (const Span& p : SplitParagraphs(text, section.begin, section.end)) {
          packer.AddUnit(p, 0);
          if (packer.pending_weight() > hopeless) {
            ok = false;
            return false;
          }
        }
        path.assign(section.heading_path.begin(), section.heading_path.end());
        ok = packer.Flush(path);
        return ok;
      });
      break;
    }
  }
  if (!ok) return TooManyChunks(options.max_chunks);
  return out;
}

}  // namespace orchestra::documents
