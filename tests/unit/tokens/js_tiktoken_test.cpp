// The tokenizers against the reference: js-tiktoken (tests/unit/tokens/package.json) encodes a
// corpus of a few thousand varied strings generated here, and every token id and every split
// piece must be the same.
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "common/text.hpp"
#include "services/child.hpp"
#include "tokens/encoding.hpp"
#include "tokens/unicode_classes.hpp"
#include "unit/tokens/corpus.hpp"

namespace orchestra::tokens {
namespace {

using testing::Family;
using testing::Sample;

std::vector<std::string_view> SplitOn(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(sep, start);
    out.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

std::vector<std::uint64_t> Numbers(std::string_view field) {
  std::vector<std::uint64_t> out;
  if (field.empty()) return out;
  for (const std::string_view item : SplitOn(field, ' ')) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    EXPECT_TRUE(ec == std::errc() && end == item.data() + item.size()) << "bad number " << item;
    out.push_back(v);
  }
  return out;
}

std::vector<std::uint64_t> PieceLengths(PieceEndFn split, std::string_view text) {
  std::vector<std::uint64_t> out;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t end = split(text, pos);
    out.push_back(end - pos);
    pos = end;
  }
  return out;
}

std::string Escaped(std::string_view text) {
  std::string out = "\"";
  AppendJsonEscaped(out, text);
  return out + "\"";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(JsTiktoken, SameIdsAndPiecesOnTheGeneratedCorpus) {
  const std::vector<Sample> corpus = testing::MakeCorpus();
  ASSERT_GE(corpus.size(), 2000u);

  const std::string node = ORCHESTRA_NODE;
  ASSERT_FALSE(node.empty()) << "node is not installed (scripts/setup.sh installs it)";
  const char* source = std::getenv("ORCHESTRA_SOURCE_DIR");
  const std::string script =
      std::string(source != nullptr ? source : ORCHESTRA_SOURCE_DIR_DEFAULT) +
      "/tests/unit/tokens/js_tiktoken_ids.mjs";

  const orchestra::testing::services::ScratchDir dir("tokens-corpus");
  const std::string corpus_path = dir.path() + "/corpus.jsonl";
  const std::string output_path = dir.path() + "/ids.tsv";
  {
    std::string lines;
    for (const Sample& s : corpus) {
      lines += Escaped(s.text) + "\n";
    }
    std::ofstream(corpus_path, std::ios::binary) << lines;
  }
  orchestra::testing::services::RunOrThrow({node, script, corpus_path, output_path},
                                           dir.path() + "/node.log", std::nullopt,
                                           std::chrono::minutes(3));
  const std::string output = ReadFile(output_path);
  std::vector<std::string_view> rows = SplitOn(output, '\n');
  ASSERT_EQ(rows.size(), corpus.size() + 2) << "one header, one row per string, a final newline";
  // "unicode <version> js-tiktoken <version>"
  const std::vector<std::string_view> header = SplitOn(rows[0], ' ');
  ASSERT_EQ(header.size(), 4u) << rows[0];
  const bool same_unicode = header[1] == UnicodeVersion();
  if (!same_unicode) {
    std::cout << "Node.js has Unicode " << header[1] << ", the class table " << UnicodeVersion()
              << ": strings of random code points are left out\n";
  }

  const std::array<std::string_view, 2> names = {"cl100k_base", "o200k_base"};
  std::array<const Encoding*, 2> encodings{};
  for (std::size_t e = 0; e < 2; ++e) {
    auto loaded = Get(names[e]);
    ASSERT_TRUE(loaded) << loaded.error().message;
    encodings[e] = *loaded;
  }
  const std::array<PieceEndFn, 2> splits = {&Cl100kPieceEnd, &O200kPieceEnd};

  std::map<std::string, std::size_t> compared;
  std::size_t failures = 0;
  std::size_t tokens = 0;
  for (std::size_t i = 0; i < corpus.size() && failures < 20; ++i) {
    const Sample& sample = corpus[i];
    if (sample.family == Family::kAnyCodePoint && !same_unicode) continue;
    const std::vector<std::string_view> fields = SplitOn(rows[i + 1], '\t');
    ASSERT_EQ(fields.size(), 4u) << "row " << i;
    ++compared[testing::FamilyName(sample.family)];
    for (std::size_t e = 0; e < 2; ++e) {
      const std::vector<std::uint64_t> want_ids = Numbers(fields[e]);
      const std::vector<std::uint32_t> ids = encodings[e]->Encode(sample.text);
      const std::vector<std::uint64_t> got_ids(ids.begin(), ids.end());
      const std::vector<std::uint64_t> want_pieces = Numbers(fields[2 + e]);
      const std::vector<std::uint64_t> got_pieces = PieceLengths(splits[e], sample.text);
      tokens += ids.size();
      const bool same = got_ids == want_ids && got_pieces == want_pieces &&
                        encodings[e]->Count(sample.text) == want_ids.size();
      if (!same) ++failures;
      EXPECT_EQ(got_pieces, want_pieces) << names[e] << ", " << testing::FamilyName(sample.family)
                                         << " #" << i << ": " << Escaped(sample.text);
      EXPECT_EQ(got_ids, want_ids) << names[e] << ", " << testing::FamilyName(sample.family) << " #"
                                   << i << ": " << Escaped(sample.text);
      EXPECT_EQ(encodings[e]->Count(sample.text), want_ids.size()) << names[e] << " #" << i;
    }
  }
  std::size_t total = 0;
  for (const auto& [family, n] : compared) {
    std::cout << family << ": " << n << " strings\n";
    total += n;
  }
  std::cout << total << " strings, " << tokens << " tokens compared with js-tiktoken " << header[3]
            << "\n";
  EXPECT_GE(total, 2000u);
}

}  // namespace
}  // namespace orchestra::tokens
