#include "tokens/encoding.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/model_files.hpp"
#include "tokens/rank_table.hpp"
#include "unit/tokens/corpus.hpp"

namespace orchestra::tokens {
namespace {

const Encoding& Enc(std::string_view name) {
  auto encoding = Get(name);
  if (!encoding) {
    ADD_FAILURE() << encoding.error().message;
    std::abort();
  }
  return **encoding;
}

using Ids = std::vector<std::uint32_t>;

TEST(Encoding, EncodesKnownTextToThePublishedIds) {
  // Ids from js-tiktoken and OpenAI's tokenizer page.
  EXPECT_EQ(Enc("cl100k_base").Encode("hello world"), (Ids{15339, 1917}));
  EXPECT_EQ(Enc("o200k_base").Encode("hello world"), (Ids{24912, 2375}));
  EXPECT_EQ(Enc("cl100k_base").Encode("tiktoken is great!"), (Ids{83, 1609, 5963, 374, 2294, 0}));
  EXPECT_EQ(Enc("cl100k_base").Encode(""), Ids{});
  EXPECT_EQ(Enc("o200k_base").Count(""), 0u);
}

TEST(Encoding, EncodesSpecialTokenTextAsOrdinaryText) {
  const std::pair<std::string_view, std::uint32_t> endoftext[] = {{"cl100k_base", 100257},
                                                                  {"o200k_base", 199999}};
  for (const auto& [name, special] : endoftext) {
    const Ids ids = Enc(name).Encode("<|endoftext|>");
    EXPECT_GT(ids.size(), 1u) << name;
    EXPECT_EQ(std::count(ids.begin(), ids.end(), special), 0) << name;
  }
}

TEST(Encoding, DecodeOfEncodeGivesTheTextBackForTheWholeCorpus) {
  const std::vector<testing::Sample> corpus = testing::MakeCorpus();
  for (const std::string_view name : EncodingNames()) {
    const Encoding& enc = Enc(name);
    for (const testing::Sample& s : corpus) {
      const Ids ids = enc.Encode(s.text);
      EXPECT_EQ(enc.Count(s.text), ids.size());
      auto text = enc.Decode(ids);
      ASSERT_TRUE(text) << text.error().message;
      ASSERT_EQ(*text, s.text) << name << " " << testing::FamilyName(s.family);
    }
  }
}

TEST(Encoding, EncodesInvalidUtf8LosslesslyByteByByte) {
  const std::string texts[] = {std::string("\xff\xfe\xfd"),
                               std::string("abc\x80"
                                           "def"),
                               std::string("\xE4\xB8 \xE4\xB8\xAD"),
                               std::string("\xED\xA0\x80\xED\xB0\x80"),
                               std::string("caf\xC3"),
                               std::string("\0x\0", 3)};
  for (const std::string_view name : EncodingNames()) {
    const Encoding& enc = Enc(name);
    for (const std::string& text : texts) {
      auto back = enc.Decode(enc.Encode(text));
      ASSERT_TRUE(back);
      EXPECT_EQ(*back, text);
    }
  }
}

TEST(Encoding, EncodesAnyBytesLosslessly) {
  std::uint64_t seed = 7;
  auto next = [&] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<unsigned>(seed >> 33);
  };
  for (const std::string_view name : EncodingNames()) {
    const Encoding& enc = Enc(name);
    for (int i = 0; i < 3000; ++i) {
      std::string text(next() % 40, '\0');
      // Mostly bytes that start or continue UTF-8 sequences, so that truncated and overlong
      // forms and surrogates are frequent.
      for (char& c : text)
        c = static_cast<char>(next() % 3 == 0 ? next() % 128 : 0x80 + next() % 128);
      const Ids ids = enc.Encode(text);
      EXPECT_EQ(enc.Count(text), ids.size());
      auto back = enc.Decode(ids);
      ASSERT_TRUE(back);
      ASSERT_EQ(*back, text) << name << " #" << i;
    }
  }
}

TEST(Encoding, PreloadLoadsEveryEncoding) {
  const auto loaded = Preload();
  EXPECT_TRUE(loaded) << loaded.error().message;
  for (const std::string_view name : EncodingNames()) {
    auto encoding = Get(name);
    ASSERT_TRUE(encoding);
    EXPECT_EQ((*encoding)->Name(), name);
    EXPECT_GT((*encoding)->MemoryBytes(), 1u << 20);
  }
}

TEST(Encoding, DecodesSpecialTokensAndRejectsUnknownIds) {
  const Encoding& cl100k = Enc("cl100k_base");
  auto text = cl100k.Decode(Ids{15339, 100257, 1917});
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "hello<|endoftext|> world");
  auto o200k_text = Enc("o200k_base").Decode(Ids{200018});
  ASSERT_TRUE(o200k_text);
  EXPECT_EQ(*o200k_text, "<|endofprompt|>");

  for (const std::uint32_t bad : {100256u, 100261u, 100277u, 4000000000u}) {
    auto r = cl100k.Decode(Ids{15339, bad});
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest);
    EXPECT_NE(r.error().message.find(std::to_string(bad)), std::string::npos);
  }
}

TEST(Encoding, EncodeIntoAppends) {
  const Encoding& enc = Enc("o200k_base");
  Ids out = {7};
  enc.EncodeInto("hello world", out);
  EXPECT_EQ(out, (Ids{7, 24912, 2375}));
}

// tiktoken's merge, written as plainly as possible: the reference for the heap merge the
// encoder uses on pieces longer than 16 bytes (on the stack up to 256, allocated beyond).
Ids PlainBytePairEncode(const RankTable& ranks, std::string_view piece) {
  std::vector<std::string> parts;
  for (const char c : piece) {
    parts.emplace_back(1, c);
  }
  auto rank_of = [&](const std::string& s) {
    return ranks.Find(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  while (parts.size() > 1) {
    Rank best = kNoRank;
    std::size_t at = 0;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      const Rank r = rank_of(parts[i] + parts[i + 1]);
      if (r < best) {
        best = r;
        at = i;
      }
    }
    if (best == kNoRank) break;
    parts[at] += parts[at + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  Ids ids;
  for (const std::string& p : parts) {
    ids.push_back(rank_of(p));
  }
  return ids;
}

TEST(Encoding, HeapMergeOfLongPiecesMatchesThePlainAlgorithm) {
  const std::vector<std::filesystem::path> dirs = ModelSearchDirs();
  for (const std::string_view name : EncodingNames()) {
    auto path = FindModelFile(std::string(name) + ".tiktoken", dirs);
    ASSERT_TRUE(path) << path.error().message;
    auto ranks = RankTable::Load(*path, name == "cl100k_base" ? 100256 : 199998);
    ASSERT_TRUE(ranks) << ranks.error().message;
    const Encoding& enc = Enc(name);
    std::uint64_t seed = 42;
    auto next = [&] {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      return static_cast<std::size_t>(seed >> 33);
    };
    // Single pieces of 17 to 400 bytes: letters from a small alphabet (many merges, many equal
    // ranks), and runs of one letter (every pair the same rank: the leftmost must win).
    for (int i = 0; i < 100; ++i) {
      std::string piece;
      const std::size_t n = 17 + next() % 384;
      const bool run = i % 4 == 0;
      for (std::size_t k = 0; k < n; ++k) {
        piece += run ? 'a' : "abcdeilnorst"[next() % 12];
      }
      EXPECT_EQ(enc.Encode(piece), PlainBytePairEncode(*ranks, piece)) << name << " " << piece;
    }
  }
}

}  // namespace
}  // namespace orchestra::tokens
