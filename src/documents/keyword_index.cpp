#include "documents/keyword_index.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <shared_mutex>

#include "common/utf8.hpp"

namespace orchestra::documents {
namespace {

// Base letters of U+00C0 … U+00FF and U+0100 … U+017F; '-' is not a letter (× ÷), '*' and '#'
// are the ligatures of the two blocks (æ/Æ → ae, þ/Þ → th; ĳ → ij, œ → oe), '$' is ß → ss.
constexpr std::string_view kLatin1Fold =
    "aaaaaa*ceeeeiiii"
    "dnooooo-ouuuuy#$"
    "aaaaaa*ceeeeiiii"
    "dnooooo-ouuuuy#y";
constexpr std::string_view kLatinExtendedAFold =
    "aaaaaaccccccccdd"
    "ddeeeeeeeeeegggg"
    "gggghhhhiiiiiiii"
    "ii**jjkkklllllll"
    "lllnnnnnnnnnoooo"
    "oo##rrrrrrssssss"
    "ssttttttuuuuuuuu"
    "uuuuwwyyyzzzzzzs";

enum class Kind { kSeparator, kLetter, kIgnored, kCharacterWord };

bool IsCjkCharacter(char32_t cp) {
  return (cp >= 0x3040 && cp <= 0x30FF) ||  // hiragana, katakana
         (cp >= 0x31F0 && cp <= 0x31FF) ||  // katakana phonetic extensions
         (cp >= 0x3400 && cp <= 0x4DBF) ||  // Han extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||  // Han
         (cp >= 0xF900 && cp <= 0xFAFF) ||  // Han compatibility
         (cp >= 0xFF66 && cp <= 0xFF9F) ||  // half-width katakana
         (cp >= 0x20000 && cp <= 0x3FFFF);  // Han extensions B…
}

// Classifies `cp` and appends its folded form to `word` when it is a letter or digit.
Kind Classify(char32_t cp, std::string& word) {
  if (cp < 0x80) {
    if (cp >= 'A' && cp <= 'Z') {
      word.push_back(static_cast<char>(cp + 32));
      return Kind::kLetter;
    }
    if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) {
      word.push_back(static_cast<char>(cp));
      return Kind::kLetter;
    }
    return Kind::kSeparator;
  }
  if (cp == 0xAD || (cp >= 0x300 && cp <= 0x36F) || (cp >= 0x483 && cp <= 0x489))
    return Kind::kIgnored;  // soft hyphen, combining marks: part of the word, not of the term
  if (cp < 0xC0) return Kind::kSeparator;
  if (cp < 0x180) {
    const char f = cp < 0x100 ? kLatin1Fold[cp - 0xC0] : kLatinExtendedAFold[cp - 0x100];
    switch (f) {
      case '-':
        return Kind::kSeparator;
      case '*':
        word += cp < 0x100 ? "ae" : "ij";
        break;
      case '#':
        word += cp < 0x100 ? "th" : "oe";
        break;
      case '$':
        word += "ss";
        break;
      default:
        word.push_back(f);
    }
    return Kind::kLetter;
  }
  if (IsCjkCharacter(cp)) return Kind::kCharacterWord;
  if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x2E00 && cp <= 0x2E7F) ||
      (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xD800 && cp <= 0xF8FF) ||
      (cp >= 0xFE00 && cp <= 0xFE6F) || cp >= 0xFFF0 || (cp >= 0x1F000 && cp <= 0x1FFFF) ||
      cp == 0x37E || cp == 0x387 || (cp >= 0x374 && cp <= 0x375) || (cp >= 0x384 && cp <= 0x385) ||
      cp == 0x482)
    return Kind::kSeparator;
  if (cp >= 0xFF00 && cp <= 0xFFEF) {  // full-width forms
    if (cp >= 0xFF10 && cp <= 0xFF19) {
      word.push_back(static_cast<char>('0' + (cp - 0xFF10)));
      return Kind::kLetter;
    }
    if (cp >= 0xFF21 && cp <= 0xFF3A) {
      word.push_back(static_cast<char>('a' + (cp - 0xFF21)));
      return Kind::kLetter;
    }
    if (cp >= 0xFF41 && cp <= 0xFF5A) {
      word.push_back(static_cast<char>('a' + (cp - 0xFF41)));
      return Kind::kLetter;
    }
    return cp >= 0xFFA0 ? Kind::kLetter : Kind::kSeparator;  // half-width Hangul is a letter
  }
  // Case folding of Greek and Cyrillic; any other code point left is a letter of some script.
  char32_t lower = cp;
  if (cp >= 0x391 && cp <= 0x3A9) {
    lower = cp + 0x20;
  } else if (cp == 0x386) {
    lower = 0x3AC;
  } else if (cp >= 0x388 && cp <= 0x38A) {
    lower = cp + 0x25;
  } else if (cp == 0x38C) {
    lower = 0x3CC;
  } else if (cp == 0x38E || cp == 0x38F) {
    lower = cp + 0x3F;
  } else if (cp == 0x3C2) {
    lower = 0x3C3;  // final sigma
  } else if (cp >= 0x400 && cp <= 0x40F) {
    lower = cp + 0x50;
  } else if (cp >= 0x410 && cp <= 0x42F) {
    lower = cp + 0x20;
  } else if ((cp >= 0x460 && cp <= 0x481) || (cp >= 0x48A && cp <= 0x4BF) ||
             (cp >= 0x4D0 && cp <= 0x52F)) {
    lower = cp | 1;
  } else if (cp >= 0x4C1 && cp <= 0x4CE && (cp & 1)) {
    lower = cp + 1;
  }
  utf8::Append(word, lower);
  return Kind::kLetter;
}

bool IsApostrophe(char32_t cp) {
  return cp == '\'' || cp == 0x2019;
}

// Calls emit(term) for each term of `text`, in order (with repeats).
template <class Emit>
void ForEachTerm(std::string_view text, Emit&& emit) {
  std::string word;
  auto finish = [&] {
    if (word.empty()) return;
    if (word.size() > kMaxTermBytes) word.resize(utf8::FloorBoundary(word, kMaxTermBytes));
    emit(std::string_view(word));
    word.clear();
  };
  std::string scratch;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t len = 0;
    const char32_t cp = utf8::Decode(text, i, len);
    i += len;
    if (cp == utf8::kReplacement && len == 1) {
      finish();  // a malformed byte
      continue;
    }
    if (IsApostrophe(cp) && !word.empty() && i < text.size()) {
      // Inside a word ("don't") it joins; anywhere else it separates.
      std::size_t next_len = 0;
      scratch.clear();
      if (Classify(utf8::Decode(text, i, next_len), scratch) == Kind::kLetter) continue;
      finish();
      continue;
    }
    if (word.size() > kMaxTermBytes + 8) {  // far past the cut: skip to the word's end cheaply
      scratch.clear();
      const Kind kind = Classify(cp, scratch);
      if (kind == Kind::kSeparator || kind == Kind::kCharacterWord) finish();
      if (kind == Kind::kCharacterWord) {
        utf8::Append(word, cp);
        finish();
      }
      continue;
    }
    switch (Classify(cp, word)) {
      case Kind::kLetter:
      case Kind::kIgnored:
        break;
      case Kind::kSeparator:
        finish();
        break;
      case Kind::kCharacterWord:
        finish();
        utf8::Append(word, cp);
        finish();
        break;
    }
  }
  finish();
}

}  // namespace

std::vector<std::string> WordTerms(std::string_view text) {
  std::vector<std::string> terms;
  ForEachTerm(text, [&](std::string_view t) { terms.emplace_back(t); });
  return terms;
}

// ---- KeywordIndex ------------------------------------------------------------------------------

void KeywordIndex::Add(std::uint64_t id, std::string_view text) {
  // Tokenize and count outside the lock.
  std::unordered_map<std::string, std::uint32_t> counts;
  std::uint32_t length = 0;
  ForEachTerm(text, [&](std::string_view t) {
    ++counts[std::string(t)];
    ++length;
  });

  std::unique_lock lock(mutex_);
  RemoveLocked(id);
  const auto slot = static_cast<std::uint32_t>(chunks_.size());
  ChunkEntry entry;
  entry.id = id;
  entry.length = length;
  entry.terms.reserve(counts.size());
  for (auto& [term, tf] : counts) {
    auto [it, inserted] = term_ids_.try_emplace(term, static_cast<std::uint32_t>(terms_.size()));
    if (inserted) terms_.emplace_back();
    Term& t = terms_[it->second];
    t.postings.push_back({slot, tf});
    ++t.df;
    entry.terms.push_back(it->second);
  }
  chunks_.push_back(std::move(entry));
  slot_of_[id] = slot;
  total_length_ += length;
}

bool KeywordIndex::Remove(std::uint64_t id) {
  std::unique_lock lock(mutex_);
  return RemoveLocked(id);
}

bool KeywordIndex::RemoveLocked(std::uint64_t id) {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return false;
  ChunkEntry& entry = chunks_[it->second];
  entry.alive = false;
  for (std::uint32_t t : entry.terms)
    --terms_[t].df;
  std::vector<std::uint32_t>().swap(entry.terms);
  total_length_ -= entry.length;
  slot_of_.erase(it);
  ++dead_;
  if (dead_ > 64 && dead_ * 4 > chunks_.size()) Rebuild();
  return true;
}

// Drops dead chunks from the postings, renumbers the live ones and forgets terms no live chunk
// holds. Linear in the postings.
void KeywordIndex::Rebuild() {
  std::vector<std::uint32_t> new_slot(chunks_.size(), UINT32_MAX);
  std::vector<ChunkEntry> chunks;
  chunks.reserve(slot_of_.size());
  for (std::size_t s = 0; s < chunks_.size(); ++s) {
    if (!chunks_[s].alive) continue;
    new_slot[s] = static_cast<std::uint32_t>(chunks.size());
    chunks.push_back(std::move(chunks_[s]));
  }
  std::vector<std::uint32_t> new_term(terms_.size(), UINT32_MAX);
  std::vector<Term> terms;
  for (std::size_t t = 0; t < terms_.size(); ++t) {
    if (terms_[t].df == 0) continue;
    new_term[t] = static_cast<std::uint32_t>(terms.size());
    Term kept;
    kept.df = terms_[t].df;
    kept.postings.reserve(terms_[t].df);
    for (const Posting& p : terms_[t].postings)
      if (new_slot[p.chunk] != UINT32_MAX) kept.postings.push_back({new_slot[p.chunk], p.tf});
    terms.push_back(std::move(kept));
  }
  for (auto it = term_ids_.begin(); it != term_ids_.end();) {
    if (new_term[it->second] == UINT32_MAX) {
      it = term_ids_.erase(it);
    } else {
      it->second = new_term[it->second];
      ++it;
    }
  }
  for (ChunkEntry& c : chunks)
    for (std::uint32_t& t : c.terms)
      t = new_term[t];
  for (auto& [id, slot] : slot_of_)
    slot = new_slot[slot];
  chunks_ = std::move(chunks);
  terms_ = std::move(terms);
  term_ids_.rehash(0);  // shrink the bucket arrays to the survivors
  slot_of_.rehash(0);
  dead_ = 0;
}

bool KeywordIndex::Contains(std::uint64_t id) const {
  std::shared_lock lock(mutex_);
  return slot_of_.contains(id);
}

std::size_t KeywordIndex::size() const {
  std::shared_lock lock(mutex_);
  return slot_of_.size();
}

std::vector<KeywordHit> KeywordIndex::Search(std::string_view query, std::size_t k,
                                             const IdFilter& filter) const {
  std::vector<std::string> words = WordTerms(query);
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  if (k == 0 || words.empty()) return {};

  std::shared_lock lock(mutex_);
  const double n = static_cast<double>(slot_of_.size());
  if (n == 0) return {};
  const double avgdl = std::max(1.0, static_cast<double>(total_length_) / n);
  const double k1 = parameters_.k1;
  const double b = parameters_.b;
  std::vector<double> score;  // by chunk slot, sized on the first matching term
  std::vector<std::uint32_t> touched;
  for (const std::string& w : words) {
    auto it = term_ids_.find(w);
    if (it == term_ids_.end()) continue;
    const Term& term = terms_[it->second];
    if (term.df == 0) continue;
    const double df = term.df;
    const double idf = std::log(1.0 + (n - df + 0.5) / (df + 0.5));
    if (score.empty()) score.assign(chunks_.size(), 0.0);
    for (const Posting& p : term.postings) {
      const ChunkEntry& c = chunks_[p.chunk];
      if (!c.alive) continue;
      const double tf = p.tf;
      const double norm = k1 * (1.0 - b + b * static_cast<double>(c.length) / avgdl);
      if (score[p.chunk] == 0.0) touched.push_back(p.chunk);
      score[p.chunk] += idf * tf * (k1 + 1.0) / (tf + norm);
    }
  }

  std::vector<KeywordHit> hits;
  hits.reserve(touched.size());
  for (std::uint32_t slot : touched)
    hits.push_back({chunks_[slot].id, score[slot]});
  auto better = [](const KeywordHit& a, const KeywordHit& x) {
    return a.score > x.score || (a.score == x.score && a.id < x.id);
  };
  if (!filter) {
    if (hits.size() > k) {
      std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(k), hits.end(),
                        better);
      hits.resize(k);
    } else {
      std::sort(hits.begin(), hits.end(), better);
    }
    return hits;
  }
  // The filter is asked of candidates best first, only until k are accepted: a common word
  // matches most chunks, and asking about every one of them (a hash lookup each, in the
  // caller) cost more than the scoring (bench/documents_bench.cpp).
  auto worse = [&](const KeywordHit& a, const KeywordHit& x) { return better(x, a); };
  std::make_heap(hits.begin(), hits.end(), worse);
  std::vector<KeywordHit> out;
  out.reserve(std::min(k, hits.size()));
  for (auto end = hits.end(); end != hits.begin() && out.size() < k; --end) {
    std::pop_heap(hits.begin(), end, worse);
    const KeywordHit& best = *(end - 1);
    if (filter(best.id)) out.push_back(best);
  }
  return out;
}

std::size_t KeywordIndex::MemoryBytes() const {
  std::shared_lock lock(mutex_);
  std::size_t bytes = sizeof(*this);
  for (const Term& t : terms_)
    bytes += sizeof(Term) + t.postings.capacity() * sizeof(Posting);
  for (const ChunkEntry& c : chunks_)
    bytes += sizeof(ChunkEntry) + c.terms.capacity() * sizeof(std::uint32_t);
  // Map nodes: next pointer, key, value (and the cached hash for strings), plus buckets.
  for (const auto& [term, id] : term_ids_)
    bytes += 2 * sizeof(void*) + sizeof(std::string) + sizeof(std::uint32_t) +
             (term.size() > 15 ? term.capacity() + 1 : 0);
  bytes += term_ids_.bucket_count() * sizeof(void*);
  bytes += slot_of_.size() * (sizeof(void*) + 16) + slot_of_.bucket_count() * sizeof(void*);
  return bytes;
}

// ---- Reciprocal rank fusion --------------------------------------------------------------------

std::vector<FusedHit> ReciprocalRankFusion(std::span<const std::uint64_t> first,
                                           std::span<const std::uint64_t> second, std::size_t limit,
                                           double k) {
  std::unordered_map<std::uint64_t, std::size_t> at;  // id → index in fused
  std::vector<FusedHit> fused;
  fused.reserve(first.size() + second.size());
  auto take = [&](std::span<const std::uint64_t> ranking, bool is_first) {
    for (std::size_t r = 0; r < ranking.size(); ++r) {
      auto [it, inserted] = at.try_emplace(ranking[r], fused.size());
      if (inserted) fused.push_back({ranking[r], 0, 0, 0});
      FusedHit& hit = fused[it->second];
      std::size_t& rank = is_first ? hit.first_rank : hit.second_rank;
      if (rank != 0) continue;  // listed twice: the better (earlier) rank counts
      rank = r + 1;
      hit.score += 1.0 / (k + static_cast<double>(r + 1));
    }
  };
  take(first, true);
  take(second, false);
  auto best_rank = [](const FusedHit& h) {
    const std::size_t a = h.first_rank == 0 ? SIZE_MAX : h.first_rank;
    const std::size_t b = h.second_rank == 0 ? SIZE_MAX : h.second_rank;
    return std::min(a, b);
  };
  auto better = [&](const FusedHit& a, const FusedHit& b) {
    if (a.score != b.score) return a.score > b.score;
    if (best_rank(a) != best_rank(b)) return best_rank(a) < best_rank(b);
    return a.id < b.id;
  };
  if (fused.size() > limit) {
    std::partial_sort(fused.begin(), fused.begin() + static_cast<std::ptrdiff_t>(limit),
                      fused.end(), better);
    fused.resize(limit);
  } else {
    std::sort(fused.begin(), fused.end(), better);
  }
  return fused;
}

}  // namespace orchestra::documents
