#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// Splitting a text into sentences for the extractive models, and telling sentences from the
// things that are not: headings and list fragments are never summary or answer sentences.
//
// Lines are grouped into blocks by blank lines. Within a block:
//   - a Markdown heading (`# ...`), a Setext heading (a line underlined with === or ---), a
//     line of `:`-ended lead-in text of at most 12 words ("Key points:"), or a block's only line
//     when it is short (at most 12 words) and has no final punctuation (. ! ? …, optionally
//     followed by a closing quote or bracket) nor any inside ("Yes! Go on" is prose) is a
//     heading; so is the first line of a block when it has at most 8 words, no final
//     punctuation, and the next line starts with a capital letter or digit ("Introduction"
//     above its paragraph);
//   - a list item (`- `, `* `, `+ `, `• `, `1. `, `1) `) without final punctuation, a table row
//     (`| ...`) and the lines of a fenced code block are fragments; a list item that ends like a
//     sentence is split into sentences like prose (its marker left out);
//   - other consecutive lines are one paragraph (hard-wrapped text is joined), split into
//     sentences after . ! ? or … when what follows starts like a sentence (not after common
//     abbreviations such as "e.g.", "Dr.", "U.S." or an initial, not before a lower-case word).
namespace orchestra::providers::local {

enum class SegmentKind : std::uint8_t { kSentence, kHeading, kFragment };

struct Segment {
  std::string_view text;  // a view into the input, trimmed; may span lines
  std::size_t begin = 0;  // byte offsets of `text` in the input
  SegmentKind kind = SegmentKind::kSentence;
};

// Every sentence, heading and fragment, in text order.
std::vector<Segment> Segments(std::string_view text);
// Only the sentences.
std::vector<Segment> Sentences(std::string_view text);

// The unit of every length budget of the local models (AI Orchestra's `max_length`): words
// separated by white space, as a reader counts them ("GPT-4o" is one word).
std::size_t WordCount(std::string_view text);
// `text` with runs of white space (line breaks included) made single spaces, trimmed.
std::string Collapse(std::string_view text);
// The first `max_words` words of `text` (collapsed), cut at a word boundary; `text` collapsed
// when it is no longer.
std::string FirstWords(std::string_view text, std::size_t max_words);

}  // namespace orchestra::providers::local
