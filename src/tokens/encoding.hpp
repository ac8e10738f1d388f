#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "tokens/rank_table.hpp"
#include "tokens/split.hpp"

// Exact OpenAI tokenizers: cl100k_base (gpt-4, gpt-3.5-turbo, text-embedding-3-*) and o200k_base
// (gpt-4o, gpt-4.1, gpt-5, o1, o3, o4). Byte-pair encoding over the published ranks
// (models/<name>.tiktoken, installed by scripts/setup.sh) after the published split pattern
// (split.hpp), giving the same ids as js-tiktoken and OpenAI's tiktoken (split.hpp lists the few
// characters where those two disagree).
//
// Ranks load lazily: Get() loads an encoding on its first call, which reads, parses and indexes
// the file (milliseconds to tens of milliseconds and 3-6 MiB per encoding: bench/
// tokenizer_bench.cpp, BM_Load), so the server calls Preload() on a background thread once it
// listens and no request pays for it. An Encoding is immutable once loaded: every method is
// const and thread-safe, and the object lives until the process exits.
//
// Cost: linear in the text. A piece (split.hpp) that is not one token is merged on the stack
// when it is short; a longer one (a run of letters with no space, e.g. unpunctuated CJK) takes
// O(n log n) time and about 32 bytes of scratch per byte while it is merged, so callers bound
// the size of what they count.
namespace orchestra::tokens {

class Encoding {
 public:
  Encoding(const Encoding&) = delete;
  Encoding& operator=(const Encoding&) = delete;

  std::string_view Name() const { return name_; }

  // Token ids of `text` taken as ordinary text (tiktoken's encode_ordinary): "<|endoftext|>" in
  // the text is a few ordinary tokens, never the special token, as befits text from a client.
  // Any bytes are accepted; invalid UTF-8 is encoded byte by byte (unicode_classes.hpp).
  std::vector<std::uint32_t> Encode(std::string_view text) const;
  // Appends to `out` (keeps its capacity for the next call).
  void EncodeInto(std::string_view text, std::vector<std::uint32_t>& out) const;
  // Encode(text).size(), without building the vector.
  std::size_t Count(std::string_view text) const;

  // The bytes the ids stand for (special tokens as their text). An id that is no token of this
  // encoding is a kInvalidRequest error naming it. Ids that end inside a UTF-8 sequence give
  // those bytes as they are (the result need not be valid UTF-8).
  Result<std::string> Decode(std::span<const std::uint32_t> ids) const;

  // Loads `name` ("cl100k_base" or "o200k_base") from the first of `dirs` holding
  // <name>.tiktoken (model_files.hpp); kInvalidRequest for an unknown name, kUnavailable when
  // the file is missing (naming every directory searched) or malformed. Get() is this with the
  // default directories, once per process.
  static Result<std::unique_ptr<Encoding>> Load(std::string_view name,
                                                std::span<const std::filesystem::path> dirs);

  // Memory held by the ranks, for the load report.
  std::size_t MemoryBytes() const { return ranks_.MemoryBytes(); }

  struct SpecialToken {
    std::string_view text;
    std::uint32_t id;
  };

 private:
  Encoding(std::string_view name, PieceEndFn split, RankTable ranks,
           std::span<const SpecialToken> specials)
      : name_(name), split_(split), ranks_(std::move(ranks)), specials_(specials) {}

  template <class Sink>
  void Run(std::string_view text, Sink& sink) const;
  template <class Sink>
  void EncodePiece(const unsigned char* p, std::size_t n, Sink& sink) const;
  template <class Sink>
  void MergeShort(const unsigned char* p, std::size_t n, Sink& sink) const;
  template <class Sink>
  void MergeHeap(const unsigned char* p, std::size_t n, Sink& sink) const;

  std::string_view name_;
  PieceEndFn split_;
  RankTable ranks_;
  std::span<const SpecialToken> specials_;
};

// The encodings this build knows: "cl100k_base", "o200k_base".
std::span<const std::string_view> EncodingNames();

// The encoding, loaded on the first call (thread-safe; concurrent first callers wait for one
// load). A load that failed is remembered: later calls return the same error without touching
// the disk again. The pointer is valid until the process exits.
Result<const Encoding*> Get(std::string_view name);

// Loads every encoding now; call from a background thread after the server listens. Returns
// the first error (the others are still attempted).
Result<void> Preload();

// Which encoding counts tokens for a model, as tiktoken's encoding_for_model chooses for OpenAI
// models (its MODEL_TO_ENCODING and MODEL_PREFIX_TO_ENCODING): o200k_base for gpt-5*, gpt-4.1,
// gpt-4.1-*, gpt-4.5-*, gpt-4o, gpt-4o-*, chatgpt-4o-*, o1, o1-*, o3, o3-*, o4-mini, o4-mini-*,
// gpt-oss-* (o200k_harmony: the same ranks) and ft:gpt-4o*; cl100k_base for gpt-4, gpt-4-*,
// gpt-3.5, gpt-3.5-turbo, gpt-3.5-turbo-*, gpt-35-turbo, gpt-35-turbo-* (Azure),
// text-embedding-ada-002, text-embedding-3-small and -large, davinci-002, babbage-002 and
// ft:gpt-4*, ft:gpt-3.5-turbo*, ft:davinci-002*, ft:babbage-002*. Exact (`exact` true) there,
// whatever the provider type.
//
// Everything else is an approximation, `exact` false:
// - an unknown model of an OpenAI-compatible provider ("openai"): o200k_base, the encoding of
//   every OpenAI model since 2024;
// - Anthropic, Gemini, local and any other provider: cl100k_base. Their tokenizers are not
//   published as BPE ranks, so no count here is theirs; cl100k_base (which counts somewhat more
//   than o200k_base for most text) is a rough stand-in, and the provider's reported usage stays
//   the figure to bill by.
struct ModelEncoding {
  std::string_view encoding;  // one of EncodingNames()
  bool exact = false;
};
ModelEncoding EncodingForModel(std::string_view provider_type, std::string_view model);

}  // namespace orchestra::tokens
