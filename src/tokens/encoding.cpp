#include "tokens/encoding.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <mutex>

#include "common/model_files.hpp"

namespace orchestra::tokens {
namespace {

// Pieces up to kShortPiece bytes merge in arrays on the stack by repeated linear scans
// (tiktoken's algorithm: quadratic, but the fastest for the few bytes of most pieces that are
// not a token already); longer ones use a heap (bench/tokenizer_bench.cpp: twice as fast on CJK
// text, whose pieces run to dozens of bytes), so that no input takes quadratic time. Its scratch
// is on the stack up to kStackPiece bytes.
constexpr std::size_t kShortPiece = 16;
constexpr std::size_t kStackPiece = 256;

using SpecialToken = Encoding::SpecialToken;
constexpr std::array kCl100kSpecials = {
    SpecialToken{"<|endoftext|>", 100257}, SpecialToken{"<|fim_prefix|>", 100258},
    SpecialToken{"<|fim_middle|>", 100259}, SpecialToken{"<|fim_suffix|>", 100260},
    SpecialToken{"<|endofprompt|>", 100276}};
constexpr std::array kO200kSpecials = {SpecialToken{"<|endoftext|>", 199999},
                                       SpecialToken{"<|endofprompt|>", 200018}};

struct Spec {
  std::string_view name;
  std::string_view file;
  PieceEndFn split;
  std::size_t ranks;  // mergeable ranks in the file: 0 .. ranks - 1
  std::span<const SpecialToken> specials;
};
constexpr std::array<Spec, 2> kSpecs = {{
    {"cl100k_base", "cl100k_base.tiktoken", &Cl100kPieceEnd, 100256, kCl100kSpecials},
    {"o200k_base", "o200k_base.tiktoken", &O200kPieceEnd, 199998, kO200kSpecials},
}};
constexpr std::array<std::string_view, 2> kNames = {kSpecs[0].name, kSpecs[1].name};

const Spec* FindSpec(std::string_view name) {
  for (const Spec& spec : kSpecs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

Error UnknownEncoding(std::string_view name) {
  return {ErrorCode::kInvalidRequest,
          "unknown encoding '" + std::string(name) + "' (known: cl100k_base, o200k_base)",
          "encoding"};
}

// The lowest of ranks[0, n), eight at a time (SSE2 / NEON through GCC's vector extension: the
// scan over a piece's pairs is the inner loop of every merge).
[[gnu::always_inline]] inline Rank MinRank(const Rank* ranks, std::size_t n) {
  using Rank4 = Rank __attribute__((vector_size(16)));
  Rank best = kNoRank;
  std::size_t i = 0;
  if (n >= 8) {
    Rank4 lo;
    Rank4 hi;
    std::memcpy(&lo, ranks, sizeof lo);
    std::memcpy(&hi, ranks + 4, sizeof hi);
    for (i = 8; i + 8 <= n; i += 8) {
      Rank4 a;
      Rank4 b;
      std::memcpy(&a, ranks + i, sizeof a);
      std::memcpy(&b, ranks + i + 4, sizeof b);
      lo = a < lo ? a : lo;
      hi = b < hi ? b : hi;
    }
    lo = hi < lo ? hi : lo;
    best = std::min(std::min(lo[0], lo[1]), std::min(lo[2], lo[3]));
  }
  for (; i < n; ++i) {
    best = std::min(best, ranks[i]);
  }
  return best;
}

struct VectorSink {
  std::vector<std::uint32_t>& out;
  void Add(Rank r) { out.push_back(r); }
};
struct CountSink {
  std::size_t count = 0;
  void Add(Rank) { ++count; }
};

}  // namespace

template <class Sink>
void Encoding::Run(std::string_view text, Sink& sink) const {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = split_(text, pos);
    EncodePiece(s + pos, end - pos, sink);
    pos = end;
  }
}

template <class Sink>
void Encoding::EncodePiece(const unsigned char* p, std::size_t n, Sink& sink) const {
  if (n == 1) return sink.Add(ranks_.ByteRank(p[0]));
  if (const Rank whole = ranks_.Find(p, n); whole != kNoRank) return sink.Add(whole);
  if (n <= kShortPiece) return MergeShort(p, n, sink);
  MergeHeap(p, n, sink);
}

// Byte-level BPE as tiktoken does it: start from single bytes and repeatedly merge the adjacent
// pair whose concatenation has the lowest rank (the leftmost of equal ones) until no adjacent
// pair is a token.
template <class Sink>
void Encoding::MergeShort(const unsigned char* p, std::size_t n, Sink& sink) const {
  // Part i is p[start[i], start[i + 1]), its token tok[i]; pair[i] is the rank of parts i and
  // i + 1 together.
  std::uint32_t start[kShortPiece + 1];
  Rank tok[kShortPiece];
  Rank pair[kShortPiece];
  std::size_t m = n;
  for (std::size_t i = 0; i < n; ++i) {
    start[i] = static_cast<std::uint32_t>(i);
    tok[i] = ranks_.ByteRank(p[i]);
  }
  start[n] = static_cast<std::uint32_t>(n);
  for (std::size_t i = 0; i + 1 < n; ++i) {
    pair[i] = ranks_.Find(p + i, 2);
  }
  while (m > 1) {
    // The lowest rank, then its leftmost place.
    const Rank best = MinRank(pair, m - 1);
    if (best == kNoRank) break;
    const auto b = static_cast<std::size_t>(std::find(pair, pair + m - 1, best) - pair);
    tok[b] = best;
    for (std::size_t i = b + 1; i < m; ++i) {
      start[i] = start[i + 1];
    }
    for (std::size_t i = b + 1; i + 1 < m; ++i) {
      tok[i] = tok[i + 1];
    }
    for (std::size_t i = b + 1; i + 2 < m; ++i) {
      pair[i] = pair[i + 1];
    }
    --m;
    if (b + 1 < m) pair[b] = ranks_.Find(p + start[b], start[b + 2] - start[b]);
    if (b > 0) pair[b - 1] = ranks_.Find(p + start[b - 1], start[b + 1] - start[b - 1]);
  }
  for (std::size_t i = 0; i < m; ++i) {
    sink.Add(tok[i]);
  }
}

// The same merges in O(n log n): parts form a linked list indexed by their first byte, and
// candidate pairs wait in a min-heap keyed by (rank, position), which pops the lowest rank and,
// among equal ranks, the leftmost, exactly as the linear scan would. Entries made stale by a
// merge are skipped when popped. The heap never holds more than 2n entries (n - 1 at first, at
// most one more per merge). Scratch: 16 bytes per byte of the piece plus the heap, on the stack
// up to kStackPiece bytes.
template <class Sink>
void Encoding::MergeHeap(const unsigned char* p, std::size_t n, Sink& sink) const {
  std::uint32_t stack_links[4 * kStackPiece];
  std::uint64_t stack_heap[2 * kStackPiece];
  std::unique_ptr<std::uint32_t[]> heap_links;
  std::unique_ptr<std::uint64_t[]> heap_heap;
  std::uint32_t* next = stack_links;
  std::uint64_t* heap = stack_heap;
  if (n > kStackPiece) {
    heap_links = std::make_unique_for_overwrite<std::uint32_t[]>(4 * n);
    heap_heap = std::make_unique_for_overwrite<std::uint64_t[]>(2 * n);
    next = heap_links.get();
    heap = heap_heap.get();
  }
  std::uint32_t* prev = next + n;
  Rank* tok = prev + n;
  Rank* pair = tok + n;
  std::size_t size = 0;
  const auto later = std::greater<>();
  for (std::size_t i = 0; i < n; ++i) {
    next[i] = static_cast<std::uint32_t>(i + 1);
    prev[i] = static_cast<std::uint32_t>(i - 1);  // unused for i == 0
    tok[i] = ranks_.ByteRank(p[i]);
    pair[i] = i + 1 < n ? ranks_.Find(p + i, 2) : kNoRank;
    if (pair[i] != kNoRank) heap[size++] = std::uint64_t{pair[i]} << 32 | i;
  }
  std::make_heap(heap, heap + size, later);
  auto push = [&](Rank rank, std::uint32_t at) {
    heap[size++] = std::uint64_t{rank} << 32 | at;
    std::push_heap(heap, heap + size, later);
  };
  while (size > 0) {
    std::pop_heap(heap, heap + size, later);
    const std::uint64_t top = heap[--size];
    const auto i = static_cast<std::uint32_t>(top);
    const auto rank = static_cast<Rank>(top >> 32);
    if (pair[i] != rank) continue;  // stale: i has merged or its neighbour has
    const std::uint32_t j = next[i];
    const std::uint32_t k = next[j];
    tok[i] = rank;
    pair[j] = kNoRank;
    next[i] = k;
    if (k < n) {
      prev[k] = i;
      pair[i] = ranks_.Find(p + i, next[k] - i);
      if (pair[i] != kNoRank) push(pair[i], i);
    } else {
      pair[i] = kNoRank;
    }
    if (i > 0) {
      const std::uint32_t h = prev[i];
      pair[h] = ranks_.Find(p + h, k - h);
      if (pair[h] != kNoRank) push(pair[h], h);
    }
  }
  for (std::size_t i = 0; i < n; i = next[i]) {
    sink.Add(tok[i]);
  }
}

std::vector<std::uint32_t> Encoding::Encode(std::string_view text) const {
  std::vector<std::uint32_t> out;
  out.reserve(text.size() / 4 + 4);
  EncodeInto(text, out);
  return out;
}

void Encoding::EncodeInto(std::string_view text, std::vector<std::uint32_t>& out) const {
  VectorSink sink{out};
  Run(text, sink);
}

std::size_t Encoding::Count(std::string_view text) const {
  CountSink sink;
  Run(text, sink);
  return sink.count;
}

Result<std::string> Encoding::Decode(std::span<const std::uint32_t> ids) const {
  std::string out;
  for (const std::uint32_t id : ids) {
    if (id < ranks_.Size()) {
      out += ranks_.Bytes(id);
      continue;
    }
    const auto special = std::find_if(specials_.begin(), specials_.end(),
                                      [id](const SpecialToken& s) { return s.id == id; });
    if (special == specials_.end()) {
      return Error(ErrorCode::kInvalidRequest,
                   "token id " + std::to_string(id) + " is not a token of " + std::string(name_),
                   "tokens");
    }
    out += special->text;
  }
  return out;
}

Result<std::unique_ptr<Encoding>> Encoding::Load(std::string_view name,
                                                 std::span<const std::filesystem::path> dirs) {
  const Spec* spec = FindSpec(name);
  if (spec == nullptr) return UnknownEncoding(name);
  auto path = FindModelFile(spec->file, dirs);
  if (!path) return path.error();
  auto ranks = RankTable::Load(*path, spec->ranks);
  if (!ranks) return ranks.error();
  return std::unique_ptr<Encoding>(
      new Encoding(spec->name, spec->split, std::move(*ranks), spec->specials));
}

std::span<const std::string_view> EncodingNames() {
  return kNames;
}

namespace {

// One slot per encoding. Loaded objects are never destroyed (no exit-time destructor can race
// a Preload thread still running at exit); std::once_flag makes concurrent first calls wait.
struct Slot {
  std::once_flag once;
  const Encoding* encoding = nullptr;
  Error error;
};

Slot& SlotFor(std::size_t index) {
  static Slot* const slots = new Slot[kSpecs.size()];
  return slots[index];
}

}  // namespace

Result<const Encoding*> Get(std::string_view name) {
  const Spec* spec = FindSpec(name);
  if (spec == nullptr) return UnknownEncoding(name);
  Slot& slot = SlotFor(static_cast<std::size_t>(spec - kSpecs.data()));
  std::call_once(slot.once, [&] {
    const std::vector<std::filesystem::path> dirs = ModelSearchDirs();
    auto loaded = Encoding::Load(spec->name, dirs);
    if (loaded) {
      slot.encoding = loaded->release();
    } else {
      slot.error = loaded.error();
    }
  });
  if (slot.encoding == nullptr) return slot.error;
  return slot.encoding;
}

Result<void> Preload() {
  Result<void> first = {};
  for (const Spec& spec : kSpecs) {
    auto encoding = Get(spec.name);
    if (!encoding && first) first = encoding.error();
  }
  return first;
}

ModelEncoding EncodingForModel(std::string_view provider_type, std::string_view model) {
  constexpr std::string_view kO200k = "o200k_base";
  constexpr std::string_view kCl100k = "cl100k_base";
  // tiktoken/model.py: MODEL_TO_ENCODING, then MODEL_PREFIX_TO_ENCODING in its order.
  struct Entry {
    std::string_view model;
    std::string_view encoding;
  };
  static constexpr Entry kExact[] = {
      {"o1", kO200k},
      {"o3", kO200k},
      {"o4-mini", kO200k},
      {"gpt-5", kO200k},
      {"gpt-4.1", kO200k},
      {"gpt-4o", kO200k},
      {"gpt-4", kCl100k},
      {"gpt-3.5-turbo", kCl100k},
      {"gpt-3.5", kCl100k},
      {"gpt-35-turbo", kCl100k},
      {"davinci-002", kCl100k},
      {"babbage-002", kCl100k},
      {"text-embedding-ada-002", kCl100k},
      {"text-embedding-3-small", kCl100k},
      {"text-embedding-3-large", kCl100k},
  };
  static constexpr Entry kPrefix[] = {
      {"o1-", kO200k},
      {"o3-", kO200k},
      {"o4-mini-", kO200k},
      {"gpt-5", kO200k},
      {"gpt-4.5-", kO200k},
      {"gpt-4.1-", kO200k},
      {"chatgpt-4o-", kO200k},
      {"gpt-4o-", kO200k},
      {"gpt-4-", kCl100k},
      {"gpt-3.5-turbo-", kCl100k},
      {"gpt-35-turbo-", kCl100k},
      {"gpt-oss-", kO200k},  // o200k_harmony: o200k_base's ranks plus its own special tokens
      {"ft:gpt-4o", kO200k},
      {"ft:gpt-4", kCl100k},
      {"ft:gpt-3.5-turbo", kCl100k},
      {"ft:davinci-002", kCl100k},
      {"ft:babbage-002", kCl100k},
  };
  for (const Entry& e : kExact) {
    if (model == e.model) return {e.encoding, true};
  }
  for (const Entry& e : kPrefix) {
    if (model.starts_with(e.model)) return {e.encoding, true};
  }
  if (provider_type == "openai") return {kO200k, false};
  return {kCl100k, false};
}

}  // namespace orchestra::tokens
