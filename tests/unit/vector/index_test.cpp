#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <unordered_set>

#include <gtest/gtest.h>

#include "unit/vector/vector_test_support.hpp"
#include "vector/flat_index.hpp"
#include "vector/hnsw_index.hpp"
#include <unistd.h>

namespace orchestra::vector {
namespace {

using testing::Flat;
using testing::Hnsw;
using testing::RandomVectors;
using testing::Row;

enum class Kind { kFlat, kHnsw };

std::unique_ptr<Index> Make(Kind kind, std::size_t dimension, Metric metric = Metric::kCosine) {
  // A small initial capacity, so that the tests also grow the graph.
  return kind == Kind::kFlat ? Flat(dimension, metric) : Hnsw(dimension, 8, metric);
}

std::vector<std::uint64_t> Ids(const std::vector<Hit>& hits) {
  std::vector<std::uint64_t> ids;
  for (const Hit& h : hits)
    ids.push_back(h.id);
  return ids;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "vector_test.XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::filesystem::path operator/(const char* name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// The behaviour both implementations promise (index.hpp).
class IndexContract : public ::testing::TestWithParam<Kind> {
 protected:
  std::unique_ptr<Index> Make(std::size_t dimension, Metric metric = Metric::kCosine) {
    return vector::Make(GetParam(), dimension, metric);
  }
};

INSTANTIATE_TEST_SUITE_P(Kinds, IndexContract, ::testing::Values(Kind::kFlat, Kind::kHnsw),
                         [](const ::testing::TestParamInfo<Kind>& param_info) {
                           return param_info.param == Kind::kFlat ? "Flat" : "Hnsw";
                         });

TEST_P(IndexContract, FindsTheNearestAndScoresCosine) {
  auto index = Make(3);
  ASSERT_TRUE(index->Add(1, std::vector<float>{1, 0, 0}));
  ASSERT_TRUE(index->Add(2, std::vector<float>{0, 2, 0}));  // normalised on the way in
  ASSERT_TRUE(index->Add(3, std::vector<float>{1, 1, 0}));
  EXPECT_EQ(index->size(), 3u);
  auto hits = index->Search(std::vector<float>{0, 5, 0}, 2);
  ASSERT_TRUE(hits);
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0].id, 2u);
  EXPECT_NEAR((*hits)[0].score, 1.0f, 1e-6);
  EXPECT_EQ((*hits)[1].id, 3u);
  EXPECT_NEAR((*hits)[1].score, std::sqrt(0.5f), 1e-6);
}

TEST_P(IndexContract, InnerProductUsesVectorsAsGiven) {
  auto index = Make(2, Metric::kInnerProduct);
  ASSERT_TRUE(index->Add(1, std::vector<float>{0.6f, 0.8f}));
  auto hits = index->Search(std::vector<float>{2, 0}, 1);
  ASSERT_TRUE(hits);
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_NEAR((*hits)[0].score, 1.2f, 1e-6);
  // A zero vector is a vector here (no direction is needed).
  EXPECT_TRUE(index->Add(2, std::vector<float>{0, 0}));
}

TEST_P(IndexContract, RefusesBadVectorsAndChangesNothing) {
  auto index = Make(3);
  struct Case {
    std::vector<float> v;
    const char* says;
  };
  const Case cases[] = {
      {{1, 0}, "2 dimensions; the index holds 3"},
      {{1, 0, 0, 0}, "4 dimensions"},
      {{1, NAN, 0}, "not a finite number"},
      {{1, INFINITY, 0}, "not a finite number"},
      {{0, 0, 0}, "all zeros"},
  };
  for (const Case& c : cases) {
    auto added = index->Add(7, c.v);
    ASSERT_FALSE(added) << c.says;
    EXPECT_EQ(added.error().code, ErrorCode::kInvalidRequest);
    EXPECT_NE(added.error().message.find(c.says), std::string::npos) << added.error().message;
    auto searched = index->Search(c.v, 3);
    ASSERT_FALSE(searched) << c.says;
    EXPECT_EQ(searched.error().param, "query");
  }
  EXPECT_EQ(index->size(), 0u);
  EXPECT_FALSE(index->Contains(7));
}

TEST_P(IndexContract, EmptyIndexAndZeroKReturnNothing) {
  auto index = Make(4);
  const std::vector<float> q{1, 2, 3, 4};
  EXPECT_TRUE(index->Search(q, 10)->empty());
  ASSERT_TRUE(index->Add(1, q));
  EXPECT_TRUE(index->Search(q, 0)->empty());
  EXPECT_EQ(index->Search(q, 10)->size(), 1u);
}

TEST_P(IndexContract, AddingAnIdAgainReplacesItsVector) {
  const std::size_t dim = 16;
  auto rows = RandomVectors(200, dim, 1);
  auto index = Make(dim);
  for (std::size_t i = 0; i < 200; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  // Id 5 takes id 150's vector: a search for that vector finds both, at the same score.
  ASSERT_TRUE(index->Add(5, Row(rows, dim, 150)));
  EXPECT_EQ(index->size(), 200u);
  auto hits = index->Search(Row(rows, dim, 150), 2);
  ASSERT_TRUE(hits);
  EXPECT_EQ(Ids(*hits), (std::vector<std::uint64_t>{5, 150}));  // equal scores: smaller id first
  EXPECT_NEAR((*hits)[0].score, 1.0f, 1e-5);
  // And nothing is near its old vector any more.
  auto old = index->Search(Row(rows, dim, 5), 1);
  ASSERT_TRUE(old);
  EXPECT_LT((*old)[0].score, 0.9f);
}

TEST_P(IndexContract, RemovedIdsAreNeverReturned) {
  const std::size_t dim = 24;
  const std::size_t n = 2000;
  auto rows = RandomVectors(n, dim, 2);
  auto index = Make(dim);
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  std::unordered_set<std::uint64_t> removed;
  for (std::size_t i = 0; i < n; i += 3) {
    EXPECT_TRUE(index->Remove(i));
    removed.insert(i);
  }
  EXPECT_FALSE(index->Remove(0));      // already gone
  EXPECT_FALSE(index->Remove(n + 5));  // never there
  EXPECT_EQ(index->size(), n - removed.size());
  // New ids take the freed slots; the removed ones must still never come back.
  auto fresh = RandomVectors(300, dim, 3);
  for (std::size_t i = 0; i < 300; ++i)
    ASSERT_TRUE(index->Add(n + i, Row(fresh, dim, i)));
  for (std::size_t i = 0; i < n; ++i) {
    auto hits = index->Search(Row(rows, dim, i), 20);
    ASSERT_TRUE(hits);
    EXPECT_EQ(hits->size(), 20u);
    for (const Hit& h : *hits)
      ASSERT_FALSE(removed.contains(h.id)) << h.id << " for query " << i;
    EXPECT_EQ(index->Contains(i), !removed.contains(i));
  }
  // Re-adding a removed id brings it back (and only it).
  ASSERT_TRUE(index->Add(3, Row(rows, dim, 3)));
  auto hits = index->Search(Row(rows, dim, 3), 1);
  ASSERT_TRUE(hits);
  EXPECT_EQ((*hits)[0].id, 3u);
}

TEST_P(IndexContract, ForEachVisitsEveryLiveVectorAsStored) {
  const std::size_t dim = 16;
  const std::size_t n = 500;
  auto rows = RandomVectors(n, dim, 11);
  auto index = Make(dim);
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_TRUE(index->Add(100 + i, Row(rows, dim, i)));
  for (std::size_t i = 0; i < n; i += 4)
    ASSERT_TRUE(index->Remove(100 + i));
  std::set<std::uint64_t> seen;
  index->ForEach([&](std::uint64_t id, std::span<const float> v) {
    ASSERT_EQ(v.size(), dim);
    ASSERT_TRUE(seen.insert(id).second) << "visited twice: " << id;
    ASSERT_GE(id, 100u);
    const std::size_t i = id - 100;
    ASSERT_NE(i % 4, 0u) << "a removed id was visited: " << id;
    // Stored normalised (kCosine): the same direction as the row given.
    double dot = 0, norm_v = 0, norm_row = 0;
    for (std::size_t d = 0; d < dim; ++d) {
      dot += v[d] * rows[i * dim + d];
      norm_v += v[d] * v[d];
      norm_row += rows[i * dim + d] * rows[i * dim + d];
    }
    EXPECT_NEAR(norm_v, 1.0, 1e-4);
    EXPECT_NEAR(dot / std::sqrt(norm_v * norm_row), 1.0, 1e-4);
  });
  EXPECT_EQ(seen.size(), index->size());
  // Moving every vector into a fresh index reproduces the search results.
  auto copy = Make(dim);
  std::vector<std::uint64_t> ids;
  std::vector<float> flat;
  index->ForEach([&](std::uint64_t id, std::span<const float> v) {
    ids.push_back(id);
    flat.insert(flat.end(), v.begin(), v.end());
  });
  ASSERT_TRUE(copy->AddBatch(ids, flat));
  auto a = index->SearchAmong(Row(rows, dim, 1), 5, ids);
  auto b = copy->SearchAmong(Row(rows, dim, 1), 5, ids);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(Ids(*a), Ids(*b));
}

TEST_P(IndexContract, FilterKeepsOnlyAcceptedIdsAndStillFillsK) {
  const std::size_t dim = 32;
  const std::size_t n = 3000;
  auto rows = RandomVectors(n, dim, 4);
  auto index = Make(dim);
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  const Filter even = [](std::uint64_t id) { return id % 2 == 0; };
  const Filter rare = [](std::uint64_t id) { return id % 500 == 7; };  // 6 ids pass
  for (std::size_t q = 0; q < 50; ++q) {
    auto hits = index->Search(Row(rows, dim, q), 10, even);
    ASSERT_TRUE(hits);
    ASSERT_EQ(hits->size(), 10u);
    for (const Hit& h : *hits)
      EXPECT_EQ(h.id % 2, 0u);
    auto few = index->Search(Row(rows, dim, q), 10, rare);
    ASSERT_TRUE(few);
    EXPECT_EQ(Ids(*few).size(), 6u);  // all of them, even though the walk finds them late
    for (const Hit& h : *few)
      EXPECT_EQ(h.id % 500, 7u);
  }
}

TEST_P(IndexContract, SearchAmongScoresOnlyListedPresentIdsExactly) {
  const std::size_t dim = 8;
  auto rows = RandomVectors(100, dim, 5);
  auto flat = Flat(dim);
  auto index = Make(dim);
  for (std::size_t i = 0; i < 100; ++i) {
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
    ASSERT_TRUE(flat->Add(i, Row(rows, dim, i)));
  }
  index->Remove(11);
  const std::vector<std::uint64_t> among{10, 11, 12, 13, 12, 99, 1000};
  auto hits = index->SearchAmong(Row(rows, dim, 0), 10, among);
  ASSERT_TRUE(hits);
  const auto ids = Ids(*hits);
  const std::set<std::uint64_t> got(ids.begin(), ids.end());
  EXPECT_EQ(got, (std::set<std::uint64_t>{10, 12, 13, 99}));
  EXPECT_EQ(hits->size(), 4u);  // 12 listed twice, returned once
  const Filter listed = [](std::uint64_t id) {
    return id == 10 || id == 12 || id == 13 || id == 99;
  };
  auto exact = flat->Search(Row(rows, dim, 0), 10, listed);
  ASSERT_EQ(Ids(*hits), Ids(*exact));
  for (std::size_t i = 0; i < hits->size(); ++i)
    EXPECT_NEAR((*hits)[i].score, (*exact)[i].score, 1e-5);
}

TEST_P(IndexContract, SnapshotRoundTripKeepsEverything) {
  TempDir dir;
  const std::size_t dim = 20;
  const std::size_t n = 1500;
  auto rows = RandomVectors(n, dim, 6);
  auto index = Make(dim);
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_TRUE(index->Add(1'000'000 + i, Row(rows, dim, i)));
  for (std::size_t i = 0; i < n; i += 7)
    index->Remove(1'000'000 + i);
  ASSERT_TRUE(index->Save(dir / "index.snap"));
  EXPECT_FALSE(std::filesystem::exists(dir / "index.snap.tmp"));

  auto loaded = LoadIndex(dir / "index.snap");
  ASSERT_TRUE(loaded) << loaded.error().message;
  Index& copy = **loaded;
  EXPECT_EQ(copy.size(), index->size());
  EXPECT_EQ(copy.dimension(), dim);
  EXPECT_EQ(copy.metric(), Metric::kCosine);
  for (std::size_t q = 0; q < n; q += 5) {
    auto a = index->Search(Row(rows, dim, q), 10);
    auto b = copy.Search(Row(rows, dim, q), 10);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b) << q;  // the same graph gives the same walk
  }
  // The loaded index carries on: removals stay removed, adds reuse their slots.
  EXPECT_FALSE(copy.Contains(1'000'000));
  EXPECT_TRUE(copy.Add(42, Row(rows, dim, 0)));
  EXPECT_EQ((*copy.Search(Row(rows, dim, 0), 1))[0].id, 42u);
}

TEST_P(IndexContract, DamagedSnapshotsAreRefusedNotTrusted) {
  TempDir dir;
  const std::size_t dim = 16;
  auto rows = RandomVectors(300, dim, 7);
  auto index = Make(dim);
  for (std::size_t i = 0; i < 300; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  const auto good = dir / "good.snap";
  ASSERT_TRUE(index->Save(good));
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto load_bytes = [&](const std::string& content) {
    const auto path = dir / "bad.snap";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    return LoadIndex(path);
  };
  ASSERT_TRUE(load_bytes(bytes));
  // Every truncation, and a flipped bit in every region, is an error naming the file.
  for (std::size_t cut : {std::size_t{0}, std::size_t{7}, std::size_t{20}, std::size_t{40},
                          bytes.size() / 2, bytes.size() - 9, bytes.size() - 1}) {
    auto r = load_bytes(bytes.substr(0, cut));
    ASSERT_FALSE(r) << "cut at " << cut;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest);
  }
  for (std::size_t at = 0; at < bytes.size(); at += bytes.size() / 97 + 1) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    auto r = load_bytes(flipped);
    EXPECT_FALSE(r) << "flipped byte " << at;
  }
  auto extra = load_bytes(bytes + "x");
  EXPECT_FALSE(extra);
  auto missing = LoadIndex(dir / "none.snap");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto foreign = load_bytes(std::string(200, 'A'));
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message.find("not a vector index snapshot"), std::string::npos);
}

TEST_P(IndexContract, SaveReportsAnUnwritableDirectory) {
  auto index = Make(4);
  auto saved = index->Save("/nonexistent-dir/for/sure/index.snap");
  ASSERT_FALSE(saved);
  EXPECT_NE(saved.error().message.find("cannot create"), std::string::npos);
}

// Searches on several threads while another inserts and removes: every result is well-formed
// and, once the writer is done, every vector finds itself. Run under ASan in the sanitizer build;
// there is no data race by construction (index.hpp: a reader-writer lock around hnswlib).
TEST_P(IndexContract, ConcurrentSearchesDuringWrites) {
  const std::size_t dim = 32;
  const std::size_t n = 3000;
  auto rows = RandomVectors(n, dim, 8);
  auto index = Make(dim);
  for (std::size_t i = 0; i < 100; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  std::atomic<bool> done{false};
  std::atomic<std::size_t> searches{0};
  std::atomic<bool> malformed{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::size_t q = static_cast<std::size_t>(t);
      while (!done.load()) {
        auto hits = index->Search(Row(rows, dim, q % n), 5);
        if (!hits || hits->empty()) malformed = true;
        for (std::size_t j = 1; hits && j < hits->size(); ++j)
          if ((*hits)[j - 1].score < (*hits)[j].score || (*hits)[j].id >= n) malformed = true;
        index->MemoryBytes();
        index->Contains(q % n);
        ++searches;
        q += 7;
      }
    });
  }
  // The lock prefers writers, so a writer relocking back to back could finish before a reader
  // runs at all on a busy machine; every 100 writes it waits for a search to have happened, so
  // that searches and writes really interleave.
  auto wait_for_searches = [&](std::size_t at_least) {
    while (searches.load() < at_least)
      std::this_thread::yield();
  };
  wait_for_searches(3);
  // EXPECT, not ASSERT: returning early would leave the readers running.
  for (std::size_t i = 100; i < n; ++i) {
    if (i % 100 == 0) wait_for_searches(searches.load() + 1);
    EXPECT_TRUE(index->Add(i, Row(rows, dim, i)));
    if (i % 10 == 0) index->Remove(i - 50);
    if (i % 10 == 5) {
      EXPECT_TRUE(index->Add(i - 55, Row(rows, dim, i - 55)));
    }
  }
  done = true;
  for (auto& r : readers)
    r.join();
  EXPECT_FALSE(malformed);
  EXPECT_GT(searches.load(), 0u);
  std::size_t found = 0;
  std::size_t present = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!index->Contains(i)) continue;
    ++present;
    auto hits = index->Search(Row(rows, dim, i), 1);
    found += (!hits->empty() && (*hits)[0].id == i);
  }
  EXPECT_EQ(index->size(), present);
  EXPECT_GE(found, present * 99 / 100);
}

TEST_P(IndexContract, AddBatchIsAddInOrderAndAllOrNothing) {
  const std::size_t dim = 16;
  const std::size_t n = 1200;
  auto rows = RandomVectors(n, dim, 13);
  std::vector<std::uint64_t> ids(n);
  for (std::size_t i = 0; i < n; ++i)
    ids[i] = i % 1000;  // ids 0…199 twice: the later wins
  auto index = Make(dim);
  for (std::size_t i = 0; i < 50; ++i)
    ASSERT_TRUE(index->Add(5000 + i, Row(rows, dim, i)));
  for (std::size_t i = 0; i < 50; i += 2)
    index->Remove(5000 + i);  // slots to reuse
  ASSERT_TRUE(index->AddBatch(ids, rows, 2));
  EXPECT_EQ(index->size(), 1000u + 25u);
  for (std::size_t i = 200; i < n; i += 7) {
    auto hits = index->Search(Row(rows, dim, i), 1);
    EXPECT_EQ((*hits)[0].id, i % 1000) << i;
    EXPECT_NEAR((*hits)[0].score, 1.0f, 1e-5);
  }
  // Row 150 lost to row 1150 under id 150.
  EXPECT_LT((*index->SearchAmong(Row(rows, dim, 150), 1, std::vector<std::uint64_t>{150}))[0].score,
            0.9f);

  // One bad row fails the batch, and nothing of it is stored.
  std::vector<float> bad(3 * dim, 1.0f);
  bad[2 * dim + 3] = NAN;
  const std::vector<std::uint64_t> bad_ids{90001, 90002, 90003};
  auto r = index->AddBatch(bad_ids, bad);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("row 2"), std::string::npos) << r.error().message;
  EXPECT_FALSE(index->Contains(90001));
  auto short_rows = index->AddBatch(bad_ids, std::span<const float>(bad).first(dim));
  ASSERT_FALSE(short_rows);
  EXPECT_NE(short_rows.error().message.find("needs 48 floats"), std::string::npos);
  EXPECT_TRUE(index->AddBatch({}, {}));
}

TEST(HnswIndex, OptionsOutOfRangeAreRefusedByName) {
  struct Case {
    HnswOptions options;
    const char* param;
  };
  auto with = [](auto set) {
    HnswOptions o;
    o.dimension = 8;
    set(o);
    return o;
  };
  const Case cases[] = {
      {with([](HnswOptions& o) { o.dimension = 0; }), "dimension"},
      {with([](HnswOptions& o) { o.dimension = 70'000; }), "dimension"},
      {with([](HnswOptions& o) { o.m = 1; }), "m"},
      {with([](HnswOptions& o) { o.ef_construction = 4; }), "ef_construction"},
      {with([](HnswOptions& o) { o.ef_search = 0; }), "ef_search"},
      {with([](HnswOptions& o) { o.initial_capacity = 0; }), "initial_capacity"},
  };
  for (const Case& c : cases) {
    auto made = MakeHnswIndex(c.options);
    ASSERT_FALSE(made) << c.param;
    EXPECT_EQ(made.error().param, c.param);
  }
  EXPECT_FALSE(MakeFlatIndex(0));
}

TEST(HnswIndex, GrowsPastItsInitialCapacity) {
  const std::size_t dim = 8;
  auto rows = RandomVectors(5000, dim, 9);
  auto index = Hnsw(dim, 1);
  const std::size_t empty_bytes = index->MemoryBytes();
  for (std::size_t i = 0; i < 5000; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  EXPECT_EQ(index->size(), 5000u);
  EXPECT_GT(index->MemoryBytes(), empty_bytes + 5000 * dim * sizeof(float));
  for (std::size_t i = 0; i < 5000; i += 50)
    EXPECT_EQ((*index->Search(Row(rows, dim, i), 1))[0].id, i);
}

// Deleted slots are reused: churning through ten times the ids the index holds at once does not
// grow it.
TEST(HnswIndex, RemovalsDoNotLeakSlots) {
  const std::size_t dim = 16;
  const std::size_t live = 500;
  auto rows = RandomVectors(live * 10, dim, 10);
  auto index = Hnsw(dim, live);
  for (std::size_t i = 0; i < live; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  const std::size_t full = index->MemoryBytes();
  for (std::size_t i = live; i < live * 10; ++i) {
    ASSERT_TRUE(index->Remove(i - live));
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  }
  EXPECT_EQ(index->size(), live);
  EXPECT_LE(index->MemoryBytes(), full + full / 10);
  std::size_t found = 0;
  for (std::size_t i = live * 9; i < live * 10; ++i) {
    auto hits = index->Search(Row(rows, dim, i), 10);
    for (const Hit& h : *hits) {
      ASSERT_GE(h.id, live * 9);
    }
    found += (*hits)[0].id == i;
  }
  EXPECT_GE(found, live * 95 / 100);
  // Removing everything and starting over reuses the same slots too.
  for (std::size_t i = live * 9; i < live * 10; ++i)
    ASSERT_TRUE(index->Remove(i));
  EXPECT_EQ(index->size(), 0u);
  EXPECT_TRUE(index->Search(Row(rows, dim, 0), 5)->empty());
  for (std::size_t i = 0; i < live; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  EXPECT_LE(index->MemoryBytes(), full + full / 10);
}

// A removed id re-added and removed again (so listed twice among the free slots) cannot hand
// one slot to two ids.
TEST(HnswIndex, RemoveReAddRemoveCyclesKeepSlotsDistinct) {
  const std::size_t dim = 8;
  auto rows = RandomVectors(400, dim, 11);
  auto index = Hnsw(dim);
  for (std::size_t i = 0; i < 100; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  for (int round = 0; round < 5; ++round) {
    for (std::size_t i = 0; i < 50; ++i)
      ASSERT_TRUE(index->Remove(i));
    for (std::size_t i = 0; i < 50; ++i)
      ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  }
  for (std::size_t i = 0; i < 50; ++i)
    ASSERT_TRUE(index->Remove(i));
  for (std::size_t i = 100; i < 400; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  EXPECT_EQ(index->size(), 350u);
  for (std::size_t i = 50; i < 400; ++i) {
    ASSERT_TRUE(index->Contains(i));
    EXPECT_EQ((*index->Search(Row(rows, dim, i), 1))[0].id, i);
  }
}

TEST(FlatIndex, RemovalGivesMemoryBack) {
  const std::size_t dim = 64;
  auto rows = RandomVectors(4000, dim, 12);
  auto index = Flat(dim);
  for (std::size_t i = 0; i < 4000; ++i)
    ASSERT_TRUE(index->Add(i, Row(rows, dim, i)));
  const std::size_t full = index->MemoryBytes();
  for (std::size_t i = 0; i < 3900; ++i)
    ASSERT_TRUE(index->Remove(i));
  EXPECT_LT(index->MemoryBytes(), full / 4);
  for (std::size_t i = 3900; i < 4000; ++i)
    EXPECT_EQ((*index->Search(Row(rows, dim, i), 1))[0].id, i);
}

}  // namespace
}  // namespace orchestra::vector
