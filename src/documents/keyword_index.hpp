#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/rw_mutex.hpp"

// Keyword search over chunks: a word tokenizer and an in-memory BM25 index.
namespace orchestra::documents {

// The words of a text as search terms. A word is a run of letters and digits (apostrophes
// inside a word are dropped: "don't" → "dont"); everything else separates words.
//   case       lower-cased: ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic, fullwidth Latin
//   accents    folded for Latin: é → e, Å → a, ß → ss, æ → ae, œ → oe, ł → l, and combining
//              marks (U+0300–U+036F) are dropped, so "café", "cafe" and "cafe\u0301" match
//   CJK        every Han ideograph, hiragana and katakana character is a word of its own (no
//              dictionary segmentation); Hangul runs stay words (Korean separates with spaces)
//   other      letters of other scripts are word characters, without case folding
// No stemming and no stop words (BM25's idf already discounts common words). A word longer
// than kMaxTermBytes is cut there. Malformed UTF-8 separates words.
inline constexpr std::size_t kMaxTermBytes = 64;
std::vector<std::string> WordTerms(std::string_view text);

struct KeywordHit {
  std::uint64_t id = 0;
  double score = 0;  // BM25; comparable within one search only
  friend bool operator==(const KeywordHit&, const KeywordHit&) = default;
};

// Called with a candidate's id during a search; false leaves it out. Runs under the index's
// read lock: it must not call back into the index.
using IdFilter = std::function<bool(std::uint64_t id)>;

// BM25 (Robertson & Zaragoza) over chunks identified by the caller's 64-bit ids:
//   score(q, d) = Σ over distinct query terms t in d of
//                 idf(t) · tf(t,d)·(k1 + 1) / (tf(t,d) + k1·(1 − b + b·|d| / avgdl))
//   idf(t)      = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))   (Lucene's form: never negative)
// with k1 = 1.2 (how fast repeated terms saturate) and b = 0.75 (how much long chunks are
// discounted), the usual defaults; N, df and avgdl count the chunks present now.
//
// Removal marks the chunk dead at once (never returned again) and leaves its postings; when
// dead chunks are a quarter of all, the postings and the vocabulary are rebuilt without them,
// so memory follows the live chunks. Memory: about 8 bytes per (term, chunk) pair plus the
// vocabulary.
//
// Thread-safety: any number of concurrent Search/Contains/size/MemoryBytes with writes from
// other threads (a writer-preferring reader-writer lock; tokenizing happens outside it).
class KeywordIndex {
 public:
  struct Parameters {
    double k1 = 1.2;
    double b = 0.75;
  };

  KeywordIndex() = default;
  explicit KeywordIndex(Parameters parameters) : parameters_(parameters) {}
  KeywordIndex(const KeywordIndex&) = delete;
  KeywordIndex& operator=(const KeywordIndex&) = delete;

  // Indexes `text` under `id`, replacing what `id` had. A text without words is stored (it
  // counts in N) but no query finds it.
  void Add(std::uint64_t id, std::string_view text);
  // False when `id` was not there.
  bool Remove(std::uint64_t id);
  bool Contains(std::uint64_t id) const;

  // Up to `k` chunks matching any query word, best first (ties: smaller id first); with a
  // filter, only chunks it accepts. A query without words finds nothing.
  std::vector<KeywordHit> Search(std::string_view query, std::size_t k,
                                 const IdFilter& filter = nullptr) const;

  std::size_t size() const;
  std::size_t MemoryBytes() const;

 private:
  struct Posting {
    std::uint32_t chunk;  // index into chunks_
    std::uint32_t tf;
  };
  struct Term {
    std::vector<Posting> postings;  // in chunk order; dead chunks' until the next rebuild
    std::uint32_t df = 0;           // live chunks holding the term
  };
  struct ChunkEntry {
    std::uint64_t id = 0;
    std::uint32_t length = 0;  // words
    bool alive = true;
    std::vector<std::uint32_t> terms;  // the distinct terms, to update df on removal
  };

  bool RemoveLocked(std::uint64_t id);
  void Rebuild();

  Parameters parameters_;
  mutable WriterPreferringMutex mutex_;
  std::unordered_map<std::string, std::uint32_t> term_ids_;
  std::vector<Term> terms_;
  std::vector<ChunkEntry> chunks_;
  std::unordered_map<std::uint64_t, std::uint32_t> slot_of_;  // live chunks only
  std::uint64_t total_length_ = 0;                            // of live chunks
  std::size_t dead_ = 0;
};

// Reciprocal rank fusion (Cormack, Clarke & Büttcher, 2009) of two rankings of the same ids,
// best first (e.g. the vector search's and the keyword search's):
//   score(id) = Σ over the rankings holding id of 1 / (k + rank), rank counted from 1
// with k = 60, the paper's constant: a top rank weighs more than a low one, but not
// overwhelmingly. An id listed twice in one ranking counts at its better rank.
struct FusedHit {
  std::uint64_t id = 0;
  double score = 0;
  std::size_t first_rank = 0;   // 1-based rank in the first ranking; 0 when absent
  std::size_t second_rank = 0;  // likewise in the second
  friend bool operator==(const FusedHit&, const FusedHit&) = default;
};

inline constexpr double kRrfK = 60;

// The fused ranking, best first (ties: the better single rank, then the smaller id), at most
// `limit` long.
std::vector<FusedHit> ReciprocalRankFusion(std::span<const std::uint64_t> first,
                                           std::span<const std::uint64_t> second, std::size_t limit,
                                           double k = kRrfK);

}  // namespace orchestra::documents
