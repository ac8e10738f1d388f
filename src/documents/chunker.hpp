#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

// Splitting a document's text into chunks for embedding and keyword search.
//
// Every strategy first cuts the text into units, then packs consecutive units greedily into
// chunks of at most `size`, and starts the next chunk with the trailing units of the previous
// one that fit in `overlap` (units are never cut for the overlap, so the overlap is at most
// `overlap`, and none when the last unit alone is longer):
//
//   paragraph          units are paragraphs (blank-line separated). size/overlap in characters
//                      (Unicode code points). Defaults 800 / 100.
//   sentence           units are sentences (ending in . ! ? … or 。！？ followed by a space or
//                      the end, not when the next word starts in lower case: "e.g. this"; a
//                      blank line ends one too). Characters. Defaults 800 / 100.
//   tokens             units are sentences, measured with the caller's token counter (the
//                      model's tokenizer). size/overlap in tokens. Defaults 200 / 40. Every chunk
//                      is checked with the counter as a whole, so it never exceeds `size`.
//   markdown_headings  the text is cut at ATX headings first (markdown.hpp) and each section is
//                      packed like `paragraph`, never across sections; each chunk carries its
//                      heading path. A section with nothing but its heading line makes no chunk
//                      (its title lives on in its subsections' paths). Characters. 800 / 100.
//
// A unit longer than `size` is cut into sentences, then words, then, for a word longer than
// `size`, pieces of `size` (always at code point boundaries). Chunks are trimmed of surrounding
// whitespace and a chunk of whitespace alone is never made. Linear in the text's size (plus the
// counter's own cost for `tokens`).
namespace orchestra::documents {

enum class ChunkStrategy : std::uint8_t { kParagraph, kSentence, kTokens, kMarkdownHeadings };

// "paragraph", "sentence", "tokens", "markdown_headings" (the API's names).
std::optional<ChunkStrategy> ParseChunkStrategy(std::string_view name);
std::string_view ToString(ChunkStrategy strategy);

inline constexpr std::size_t kDefaultChunkChars = 800;
inline constexpr std::size_t kDefaultOverlapChars = 100;
inline constexpr std::size_t kDefaultChunkTokens = 200;
inline constexpr std::size_t kDefaultOverlapTokens = 40;
inline constexpr std::size_t kMaxChunkSize = 65'536;  // in either unit
inline constexpr std::size_t kDefaultMaxChunks = 10'000;

struct ChunkingOptions {
  ChunkStrategy strategy = ChunkStrategy::kParagraph;
  std::optional<std::size_t> size;     // unset: the strategy's default; 1 … kMaxChunkSize
  std::optional<std::size_t> overlap;  // unset: the strategy's default; below size
  std::size_t max_chunks = kDefaultMaxChunks;
};

struct Chunk {
  std::size_t sequence = 0;  // 0, 1, 2, … in document order
  std::size_t begin = 0;     // byte offsets into the text: [begin, end)
  std::size_t end = 0;
  std::vector<std::string> heading_path;  // markdown_headings only, outermost first

  std::string_view Text(std::string_view source) const { return source.substr(begin, end - begin); }
};

// Counts the tokens of a piece of text (the embedding model's tokenizer); required by `tokens`.
using TokenCounter = std::function<std::size_t(std::string_view)>;

// The chunks of `text`, in order. kInvalidRequest (param "chunking.size", "chunking.overlap" or
// "chunking.strategy") for options out of range or `tokens` without a counter; kPayloadTooLarge
// (param "chunking") when the text needs more than max_chunks chunks (found without making them
// all). An empty or all-whitespace text has no chunks.
Result<std::vector<Chunk>> ChunkText(std::string_view text, const ChunkingOptions& options,
                                     const TokenCounter& count_tokens = nullptr);

// The sentences of text[begin, end) as trimmed byte ranges (the `sentence` strategy's units).
struct Span {
  std::size_t begin = 0;
  std::size_t end = 0;
  friend bool operator==(const Span&, const Span&) = default;
};
std::vector<Span> SplitSentences(std::string_view text, std::size_t begin, std::size_t end);

}  // namespace orchestra::documents
