#include "documents/keyword_index.hpp"

#include <atomic>
#include <cmath>
#include <thread>

#include <gtest/gtest.h>

namespace orchestra::documents {
namespace {

TEST(WordTerms, Table) {
  struct Case {
    std::string text;
    std::vector<std::string> terms;
  };
  const std::vector<Case> cases = {
      {"Hello, World! 42 times.", {"hello", "world", "42", "times"}},
      {"don't O'Brien 'quoted' it\xE2\x80\x99s", {"dont", "obrien", "quoted", "its"}},
      {"Caf\xC3\xA9 CAF\xC3\x89 cafe\xCC\x81", {"cafe", "cafe", "cafe"}},  // é, É, e + U+0301
      {"Stra\xC3\x9F"
       "e \xC3\x86sir \xC5\x92uvre \xC5\x81\xC3\xB3"
       "d\xC5\xBA",
       {"strasse", "aesir", "oeuvre", "lodz"}},
      {"\xCE\x91\xCE\xB8\xCE\xAE\xCE\xBD\xCE\xB1 \xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3",  // Αθήνα ΟΔΟΣ
       {"\xCE\xB1\xCE\xB8\xCE\xAE\xCE\xBD\xCE\xB1", "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83"}},
      {"\xD0\x9C\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0",
       {"\xD0\xBC\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0"}},
      {"\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x81\xAF",
       {"\xE6\x9D\xB1", "\xE4\xBA\xAC", "\xE3\x81\xAF"}},  // 東京は
      {"\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 \xEB\x8B\xA8\xEC\x96\xB4",
       {"\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4", "\xEB\x8B\xA8\xEC\x96\xB4"}},
      {"\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\x91", {"ab1"}},       // full-width ＡＢ１
      {"x\xE2\x80\x94y \xF0\x9F\x98\x80 z", {"x", "y", "z"}},  // em dash and emoji separate
      {"soft\xC2\xADhyphen", {"softhyphen"}},
      {"bad\xFF"
       "byte",
       {"bad", "byte"}},
      {"' '' x'", {"x"}},
      {"", {}},
  };
  for (const Case& c : cases)
    EXPECT_EQ(WordTerms(c.text), c.terms) << c.text;
  const auto long_word = WordTerms(std::string(500, 'a') + " b");
  ASSERT_EQ(long_word.size(), 2u);
  EXPECT_EQ(long_word[0].size(), kMaxTermBytes);
}

// BM25 by its formula, for a corpus small enough to work out.
TEST(KeywordIndex, ScoresAreBm25) {
  KeywordIndex index;
  index.Add(1, "the quick brown fox");
  index.Add(2, "the lazy dog");
  index.Add(3, "the quick dog jumps over the quick fox");
  const double n = 3;
  const double avgdl = (4 + 3 + 8) / n;
  auto idf = [&](double df) { return std::log(1 + (n - df + 0.5) / (df + 0.5)); };
  auto part = [&](double tf, double len) {
    return tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * len / avgdl));
  };
  const auto hits = index.Search("quick FOX", 10);
  ASSERT_EQ(hits.size(), 2u);
  const double s1 = idf(2) * part(1, 4) + idf(2) * part(1, 4);
  const double s3 = idf(2) * part(2, 8) + idf(2) * part(1, 8);
  EXPECT_EQ(hits[0].id, s1 > s3 ? 1u : 3u);
  EXPECT_NEAR(hits[0].score, std::max(s1, s3), 1e-12);
  EXPECT_NEAR(hits[1].score, std::min(s1, s3), 1e-12);
  // A word every chunk has still counts a little; a query word nobody has, nothing.
  const auto the = index.Search("the zebra", 10);
  ASSERT_EQ(the.size(), 3u);
  EXPECT_GT(the[0].score, 0);
  EXPECT_TRUE(index.Search("zebra", 10).empty());
  EXPECT_TRUE(index.Search("  ,.; ", 10).empty());
  EXPECT_TRUE(index.Search("quick", 0).empty());
  // Repeating a query word does not weigh it more.
  EXPECT_EQ(index.Search("quick quick fox", 10), hits);
}

TEST(KeywordIndex, RareWordsOutrankCommonOnesAndTiesGoToTheSmallerId) {
  KeywordIndex index;
  for (std::uint64_t id = 10; id < 60; ++id)
    index.Add(id, "common words everywhere");
  index.Add(7, "common rare");
  const auto hits = index.Search("rare common", 3);
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].id, 7u);
  EXPECT_EQ(hits[1].id, 10u);  // equal scores: by id
  EXPECT_EQ(hits[2].id, 11u);
}

TEST(KeywordIndex, ReplaceRemoveAndFilter) {
  KeywordIndex index;
  index.Add(1, "alpha beta");
  index.Add(2, "beta gamma");
  index.Add(1, "delta");  // replaces
  EXPECT_EQ(index.size(), 2u);
  EXPECT_TRUE(index.Search("alpha", 5).empty());
  ASSERT_EQ(index.Search("delta", 5).size(), 1u);
  EXPECT_TRUE(index.Remove(2));
  EXPECT_FALSE(index.Remove(2));
  EXPECT_FALSE(index.Contains(2));
  EXPECT_TRUE(index.Search("gamma beta", 5).empty());
  index.Add(3, "delta delta");
  index.Add(4, "delta");
  const IdFilter odd = [](std::uint64_t id) { return id % 2 == 1; };
  const auto hits = index.Search("delta", 5, odd);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].id, 3u);
  EXPECT_EQ(hits[1].id, 1u);
  index.Add(9, "");  // no words: stored, never found
  EXPECT_TRUE(index.Contains(9));
}

// A word in every chunk makes every chunk a candidate: the filter (a hash lookup in the
// caller) is asked of the best ones only, until enough are accepted, and the result is what
// filtering all of them would give.
TEST(KeywordIndex, AsksTheFilterOnlyOfTheBestCandidates) {
  KeywordIndex index;
  for (std::uint64_t id = 0; id < 20000; ++id) {
    // Term frequency rising with id % 100: a spread of scores, with ties.
    std::string text = "common";
    for (std::uint64_t r = 0; r < id % 100; ++r)
      text += " common";
    index.Add(id, text + " filler" + std::to_string(id % 7));
  }
  std::size_t asked = 0;
  const IdFilter even = [&](std::uint64_t id) {
    ++asked;
    return id % 2 == 0;
  };
  const auto hits = index.Search("common", 10, even);
  // The 200 best (id % 100 == 99) are odd, then 10 of the next 200 are taken: 210 asked, not
  // 20,000.
  EXPECT_EQ(asked, 210u);
  const auto all = index.Search("common", 20000);
  std::vector<KeywordHit> expected;
  for (const KeywordHit& h : all)
    if (h.id % 2 == 0 && expected.size() < 10) expected.push_back(h);
  EXPECT_EQ(hits, expected);
}

// Deleting most chunks rebuilds the postings: memory follows the live chunks, and searches see
// exactly the survivors.
TEST(KeywordIndex, DeletionsAreCompacted) {
  KeywordIndex index;
  for (std::uint64_t id = 0; id < 5000; ++id)
    index.Add(id, "shared term" + std::string(" unique") + std::to_string(id));
  const std::size_t full = index.MemoryBytes();
  for (std::uint64_t id = 0; id < 4900; ++id)
    ASSERT_TRUE(index.Remove(id));
  EXPECT_EQ(index.size(), 100u);
  EXPECT_LT(index.MemoryBytes(), full / 5);
  const auto hits = index.Search("shared", 1000);
  ASSERT_EQ(hits.size(), 100u);
  for (const auto& h : hits)
    EXPECT_GE(h.id, 4900u);
  EXPECT_TRUE(index.Search("unique17", 5).empty());
  ASSERT_EQ(index.Search("unique4999", 5).size(), 1u);
  // Ids can come back after the rebuild.
  index.Add(17, "unique17");
  EXPECT_EQ(index.Search("unique17", 5).at(0).id, 17u);
}

TEST(KeywordIndex, ConcurrentSearchesDuringWrites) {
  KeywordIndex index;
  for (std::uint64_t id = 0; id < 200; ++id)
    index.Add(id, "word" + std::to_string(id % 10) + " base");
  std::atomic<bool> done{false};
  std::atomic<bool> bad{false};
  std::atomic<std::size_t> searches{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&] {
      while (!done) {
        const auto hits = index.Search("base word3", 20);
        if (hits.size() != 20) bad = true;
        for (std::size_t i = 1; i < hits.size(); ++i)
          if (hits[i - 1].score < hits[i].score) bad = true;
        ++searches;
      }
    });
  // The lock prefers writers: wait for searches now and then so that both really interleave.
  auto wait_for_searches = [&](std::size_t at_least) {
    while (searches.load() < at_least)
      std::this_thread::yield();
  };
  wait_for_searches(3);
  for (std::uint64_t id = 200; id < 3000; ++id) {
    if (id % 100 == 0) wait_for_searches(searches.load() + 1);
    index.Add(id, "word" + std::to_string(id % 10) + " base extra");
    if (id % 3 == 0) index.Remove(id - 150);
  }
  done = true;
  for (auto& r : readers)
    r.join();
  EXPECT_FALSE(bad);
  EXPECT_EQ(index.size(), 3000u - (3000 - 201) / 3);
}

TEST(ReciprocalRankFusion, FusesByReciprocalRank) {
  const std::vector<std::uint64_t> vector_ranks{1, 2, 3, 4};
  const std::vector<std::uint64_t> keyword_ranks{3, 5, 1};
  const auto fused = ReciprocalRankFusion(vector_ranks, keyword_ranks, 10);
  ASSERT_EQ(fused.size(), 5u);
  // 1: 1/61 + 1/63; 3: 1/63 + 1/61 (equal: the better single rank first, both 1); 2: 1/62;
  // 5: 1/62 (equal to 2; same best rank 2: smaller id); 4: 1/64.
  EXPECT_EQ(fused[0].id, 1u);
  EXPECT_EQ(fused[1].id, 3u);
  EXPECT_DOUBLE_EQ(fused[0].score, 1.0 / 61 + 1.0 / 63);
  EXPECT_EQ(fused[0].first_rank, 1u);
  EXPECT_EQ(fused[0].second_rank, 3u);
  EXPECT_EQ(fused[2].id, 2u);
  EXPECT_EQ(fused[3].id, 5u);
  EXPECT_EQ(fused[3].first_rank, 0u);
  EXPECT_EQ(fused[3].second_rank, 2u);
  EXPECT_EQ(fused[4].id, 4u);
  EXPECT_DOUBLE_EQ(fused[4].score, 1.0 / 64);
  // A limit, an id listed twice, empty lists.
  const std::vector<std::uint64_t> twice{7, 7, 8};
  const auto limited = ReciprocalRankFusion(twice, {}, 1);
  ASSERT_EQ(limited.size(), 1u);
  EXPECT_EQ(limited[0].id, 7u);
  EXPECT_DOUBLE_EQ(limited[0].score, 1.0 / 61);
  EXPECT_TRUE(ReciprocalRankFusion({}, {}, 10).empty());
  // Another k.
  EXPECT_DOUBLE_EQ(ReciprocalRankFusion(twice, {}, 1, 0)[0].score, 1.0);
}

}  // namespace
}  // namespace orchestra::documents
