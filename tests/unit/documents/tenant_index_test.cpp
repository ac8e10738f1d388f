// The in-memory index of one tenant (documents/tenant_index.hpp) and the record formats it is
// filled from (documents/records.hpp).

#include "documents/tenant_index.hpp"

#include <atomic>
#include <cmath>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "documents/content.hpp"
#include "documents/records.hpp"
#include "support/process.hpp"

namespace orchestra::documents {
namespace {

namespace json = boost::json;
using orchestra::testing::TempDir;

constexpr std::size_t kDim = 8;

// A unit vector along axis `axis` (0..kDim-1), slightly tilted by `tilt` towards the next one.
std::vector<float> Axis(std::size_t axis, float tilt = 0) {
  std::vector<float> v(kDim, 0);
  v[axis % kDim] = 1;
  v[(axis + 1) % kDim] = tilt;
  return v;
}

TenantIndex::PutDocument Doc(std::string id, std::string generation,
                             std::vector<std::pair<std::string, std::vector<float>>> chunks,
                             std::string metadata = "{}") {
  TenantIndex::PutDocument d;
  d.record.id = std::move(id);
  d.record.title = "title of " + d.record.id;
  d.record.generation = std::move(generation);
  d.record.embedding_model = "m";
  d.record.dimensions = kDim;
  d.record.metadata = std::move(metadata);
  d.record.chunk_count = static_cast<std::uint32_t>(chunks.size());
  std::uint32_t seq = 0;
  for (auto& [text, vector] : chunks) {
    ChunkRecord c;
    c.sequence = seq++;
    c.text = std::move(text);
    c.vector = std::move(vector);
    d.chunks.push_back(std::move(c));
  }
  return d;
}

// A Query only views its vector: the vectors made here are kept until the test binary exits
// (queries are often built from a temporary: VectorQuery(Axis(1))).
Query VectorQuery(const std::vector<float>& v, std::size_t limit = 5) {
  static std::mutex mutex;
  static std::deque<std::vector<float>> kept;
  std::lock_guard lock(mutex);
  Query q;
  q.vector = kept.emplace_back(v);
  q.model = "m";
  q.limit = limit;
  q.mode = SearchMode::kVector;
  q.score_threshold = -1;
  return q;
}

std::vector<std::string> DocIds(const std::vector<Hit>& hits) {
  std::vector<std::string> out;
  for (const Hit& h : hits)
    out.push_back(h.document_id);
  return out;
}

TEST(DocumentRecords, RoundTrip) {
  DocumentRecord d;
  d.id = "doc \xC3\xA9 1";
  d.title = "A \"title\"";
  d.source = "s.md";
  d.content_type = ContentType::kMarkdown;
  d.created_at = IsoTime(std::chrono::system_clock::time_point(std::chrono::milliseconds(1234)));
  d.updated_at = d.created_at;
  d.metadata = R"({"team":"a","n":3})";
  d.generation = NewGeneration(std::chrono::system_clock::now());
  d.chunk_count = 7;
  d.pages = 2;
  d.embedding_model = "local-embed";
  d.dimensions = 256;
  d.chunking = "markdown_headings";
  d.bytes = 99;
  auto back = DecodeDocument(EncodeDocument(d));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->id, d.id);
  EXPECT_EQ(back->title, d.title);
  EXPECT_EQ(back->content_type, ContentType::kMarkdown);
  EXPECT_EQ(back->created_at, "1970-01-01T00:00:01.234Z");
  EXPECT_EQ(json::parse(back->metadata), json::parse(d.metadata));
  EXPECT_EQ(back->generation, d.generation);
  EXPECT_EQ(back->chunk_count, 7u);
  EXPECT_EQ(back->pages, 2u);
  EXPECT_EQ(back->dimensions, 256u);
  EXPECT_EQ(back->bytes, 99u);
  EXPECT_FALSE(DecodeDocument("[]"));
  EXPECT_FALSE(DecodeDocument(R"({"id":"x"})"));  // no generation
  EXPECT_FALSE(DecodeDocument(R"({"id":"x","generation":"g","pages":"2"})"));
}

TEST(DocumentRecords, PagesPackChunksAndKeepVectorsExact) {
  std::vector<ChunkRecord> chunks;
  for (std::uint32_t i = 0; i < 50; ++i) {
    ChunkRecord c;
    c.sequence = i;
    c.text = std::string(100 + i, 'a' + static_cast<char>(i % 26)) + "\n\"\\\x01";
    if (i % 3 == 0) c.heading_path = {"H1", "H2 " + std::to_string(i)};
    if (i % 7 != 0) c.vector = {0.1f * static_cast<float>(i), -1e-30f, 3.4e38f, 1.0f / 3};
    chunks.push_back(c);
  }
  const auto pages = EncodePages("doc", "gen", chunks, 1024);
  EXPECT_GT(pages.size(), 3u);
  std::vector<ChunkRecord> back;
  for (const std::string& p : pages) {
    EXPECT_LT(p.size(), 1024u + 600u);  // closed once past 1024
    auto page = DecodePage(p);
    ASSERT_TRUE(page) << page.error().message;
    EXPECT_EQ(page->document_id, "doc");
    EXPECT_EQ(page->generation, "gen");
    for (auto& c : page->chunks)
      back.push_back(std::move(c));
  }
  ASSERT_EQ(back.size(), chunks.size());
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(back[i].sequence, chunks[i].sequence);
    EXPECT_EQ(back[i].text, chunks[i].text);
    EXPECT_EQ(back[i].heading_path, chunks[i].heading_path);
    EXPECT_EQ(back[i].vector, chunks[i].vector);  // bit for bit
  }
  EXPECT_FALSE(DecodePage(R"({"document_id":"d","generation":"g","chunks":[{"vector":"@@"}]})"));
}

TEST(DocumentRecords, IdsAndGenerations) {
  const auto now = std::chrono::system_clock::now();
  const std::string g = NewGeneration(now);
  EXPECT_EQ(g.size(), 24u);
  EXPECT_NE(g, NewGeneration(now));
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::milliseconds>(GenerationTime(g) - now).count() / 1000,
      0);
  EXPECT_EQ(GenerationTime("nonsense"), std::chrono::system_clock::time_point{});
  EXPECT_EQ(PageId(g, 42), g + "/000042");
  EXPECT_TRUE(PageId(g, 3).starts_with(PagePrefix(g)));
  const std::string id = NewDocumentId();
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '4');
  EXPECT_TRUE(CheckDocumentId(id));
  EXPECT_TRUE(CheckDocumentId("docs/intro.md"));
  EXPECT_FALSE(CheckDocumentId(""));
  EXPECT_FALSE(CheckDocumentId(std::string(129, 'x')));
  EXPECT_FALSE(CheckDocumentId("a\nb"));
  EXPECT_FALSE(CheckDocumentId("bad\xFF"));
  auto pending = DecodePending(EncodePending({"d", 4, true}));
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->document_id, "d");
  EXPECT_EQ(pending->pages, 4u);
  EXPECT_TRUE(pending->retired);
}

TEST(DocumentContent, MediaTypesAndExtensions) {
  struct Case {
    std::string media;
    std::string file;
    std::optional<ContentType> type;
  };
  const std::vector<Case> cases = {
      {"text/plain", "a.txt", ContentType::kText},
      {"text/plain; charset=utf-8", "", ContentType::kText},
      {"TEXT/Markdown", "", ContentType::kMarkdown},
      {"text/x-markdown", "x", ContentType::kMarkdown},
      {"text/plain", "README.md", ContentType::kMarkdown},
      {"text/html", "", ContentType::kHtml},
      {"application/xhtml+xml", "", ContentType::kHtml},
      {"application/octet-stream", "page.HTM", ContentType::kHtml},
      {"", "notes.markdown", ContentType::kMarkdown},
      {"", "data.csv", ContentType::kText},
      {"application/pdf", "paper.pdf", std::nullopt},
      {"application/octet-stream", "paper.pdf", std::nullopt},
      {"image/png", "x.png", std::nullopt},
      {"", "noext", std::nullopt},
  };
  for (const Case& c : cases) {
    auto t = ContentTypeOf(c.media, c.file);
    if (c.type) {
      ASSERT_TRUE(t) << c.media << " " << c.file;
      EXPECT_EQ(*t, *c.type) << c.media << " " << c.file;
    } else {
      ASSERT_FALSE(t) << c.media << " " << c.file;
      EXPECT_EQ(t.error().code, ErrorCode::kUnsupportedMediaType);
      EXPECT_NE(t.error().message.find("text/plain, text/markdown or text/html"),
                std::string::npos);
    }
  }
  EXPECT_NE(ContentTypeOf("application/pdf", "").error().message.find("PDF is not supported"),
            std::string::npos);
}

TEST(DocumentContent, HtmlBecomesTextAndBinaryIsRefused) {
  std::string title;
  auto text = ToText(
      "\xEF\xBB\xBF<html><head><title>T &amp; U</title><script>evil()</script>"
      "</head><body><p>Hello &eacute;t&eacute;</p></body></html>",
      ContentType::kHtml, &title, "file");
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "Hello \xC3\xA9t\xC3\xA9");
  EXPECT_EQ(title, "T & U");
  auto binary =
      ToText(std::string("\x89PNG\r\n\x1a\n\xff\xfe", 10), ContentType::kText, nullptr, "file");
  ASSERT_FALSE(binary);
  EXPECT_EQ(binary.error().code, ErrorCode::kUnsupportedMediaType);
  EXPECT_EQ(binary.error().param, "file");
}

TEST(TenantIndex, SearchesByVectorKeywordAndBoth) {
  TenantIndex index({});
  std::vector<TenantIndex::PutDocument> docs;
  docs.push_back(Doc("cats", "g1", {{"cats purr and sleep", Axis(0)}, {"cats hunt mice", Axis(1)}},
                     R"({"kind":"animal"})"));
  docs.push_back(Doc("cars", "g2", {{"cars need fuel", Axis(2)}, {"engines roar", Axis(3)}},
                     R"({"kind":"machine"})"));
  ASSERT_TRUE(index.Put(std::move(docs)));
  EXPECT_EQ(index.document_count(), 2u);

  auto v = index.Search(VectorQuery(Axis(2, 0.1f), 1));
  ASSERT_TRUE(v);
  ASSERT_EQ(v->size(), 1u);
  EXPECT_EQ((*v)[0].document_id, "cars");
  EXPECT_EQ((*v)[0].content, "cars need fuel");
  EXPECT_EQ((*v)[0].id, "g2-0");
  EXPECT_EQ((*v)[0].document_title, "title of cars");
  ASSERT_TRUE((*v)[0].similarity);
  EXPECT_NEAR(*(*v)[0].similarity, 1 / std::sqrt(1.01), 1e-5);

  Query k;
  k.text = "mice";
  k.mode = SearchMode::kKeyword;
  auto kw = index.Search(k);
  ASSERT_TRUE(kw);
  ASSERT_EQ(kw->size(), 1u);
  EXPECT_EQ((*kw)[0].content, "cats hunt mice");
  EXPECT_FALSE((*kw)[0].similarity);  // no query vector

  // Hybrid: the keyword hit and the vector hit both come, the one in both rankings first.
  Query h = VectorQuery(Axis(1), 4);
  h.mode = SearchMode::kHybrid;
  h.text = "engines";
  h.score_threshold = 0.5;
  auto both = index.Search(h);
  ASSERT_TRUE(both);
  ASSERT_EQ(both->size(), 2u);  // Axis(1) alone passes the threshold, "engines" by keyword
  std::set<std::string> contents{(*both)[0].content, (*both)[1].content};
  EXPECT_TRUE(contents.contains("cats hunt mice"));
  EXPECT_TRUE(contents.contains("engines roar"));
  for (const Hit& hit : *both)
    EXPECT_TRUE(hit.similarity.has_value()) << hit.content;  // cosines for keyword hits too

  // Filters: a document, and metadata.
  Query f = VectorQuery(Axis(0), 10);
  f.document_id = "cars";
  auto only = index.Search(f);
  ASSERT_TRUE(only);
  EXPECT_EQ(DocIds(*only), (std::vector<std::string>{"cars", "cars"}));
  std::vector<std::pair<std::string, json::value>> meta{{"kind", json::value("animal")}};
  Query m = VectorQuery(Axis(3), 10);
  m.metadata = meta;
  auto animals = index.Search(m);
  ASSERT_TRUE(animals);
  EXPECT_EQ(DocIds(*animals), (std::vector<std::string>{"cats", "cats"}));
  f.document_id = "nope";
  EXPECT_TRUE(index.Search(f)->empty());
  // A threshold no chunk reaches leaves a vector search empty.
  Query t = VectorQuery(Axis(5), 3);
  t.score_threshold = 0.9;
  EXPECT_TRUE(index.Search(t)->empty());
  // Another model's query vector finds nothing by vector.
  Query other = VectorQuery(Axis(0), 3);
  other.model = "other";
  EXPECT_TRUE(index.Search(other)->empty());
}

TEST(TenantIndex, ReplaceAndRemoveLeaveNothingBehind) {
  TenantIndex index({});
  ASSERT_TRUE(index.Put({}));
  std::vector<TenantIndex::PutDocument> v1;
  v1.push_back(Doc("d", "g1", {{"old alpha", Axis(0)}, {"old beta", Axis(1)}}));
  ASSERT_TRUE(index.Put(std::move(v1)));
  std::vector<TenantIndex::PutDocument> v2;
  v2.push_back(Doc("d", "g2", {{"new gamma", Axis(0)}}));
  ASSERT_TRUE(index.Put(std::move(v2)));
  EXPECT_EQ(index.Generation("d"), "g2");
  auto hits = index.Search(VectorQuery(Axis(1), 10));
  ASSERT_TRUE(hits);
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].content, "new gamma");
  Query k;
  k.text = "old alpha beta";
  k.mode = SearchMode::kKeyword;
  EXPECT_TRUE(index.Search(k)->empty());
  EXPECT_EQ(index.stats().vectors, 1u);
  EXPECT_TRUE(index.Remove("d"));
  EXPECT_FALSE(index.Remove("d"));
  EXPECT_TRUE(index.Search(VectorQuery(Axis(0), 10))->empty());
  EXPECT_EQ(index.stats().vectors, 0u);
  EXPECT_EQ(index.stats().chunks, 0u);
  EXPECT_EQ(index.Generation("d"), "");
}

TEST(TenantIndex, ZeroVectorsAreFoundByKeywordsOnly) {
  TenantIndex index({});
  std::vector<TenantIndex::PutDocument> docs;
  docs.push_back(
      Doc("d", "g", {{"--- ***", std::vector<float>(kDim, 0)}, {"words here", Axis(0)}}));
  ASSERT_TRUE(index.Put(std::move(docs)));
  EXPECT_EQ(index.stats().chunks, 2u);
  EXPECT_EQ(index.stats().vectors, 1u);
}

TEST(TenantIndex, ListsInIdOrderWithTotal) {
  TenantIndex index({});
  std::vector<TenantIndex::PutDocument> docs;
  for (std::string id : {"c", "a", "b", "d"})
    docs.push_back(Doc(id, "g" + id, {{"text " + id, Axis(0)}}));
  ASSERT_TRUE(index.Put(std::move(docs)));
  std::size_t total = 0;
  auto page = index.List(1, 2, &total);
  EXPECT_EQ(total, 4u);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, "b");
  EXPECT_EQ(page[1].id, "c");
  EXPECT_TRUE(index.List(9, 2, &total).empty());
}

TEST(TenantIndex, ExactIndexBecomesAGraphPastItsSize) {
  TenantIndex::Options o;
  o.exact_below = 100;
  TenantIndex index(o);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  auto random_vector = [&] {
    std::vector<float> v(32);
    for (float& x : v)
      x = normal(rng);
    return v;
  };
  std::vector<std::vector<float>> all;
  for (int d = 0; d < 30; ++d) {
    std::vector<std::pair<std::string, std::vector<float>>> chunks;
    for (int c = 0; c < 5; ++c) {
      all.push_back(random_vector());
      chunks.emplace_back("doc " + std::to_string(d) + " chunk " + std::to_string(c), all.back());
    }
    std::vector<TenantIndex::PutDocument> put;
    put.push_back(Doc("d" + std::to_string(d), "g", std::move(chunks)));
    put.back().record.dimensions = 32;
    ASSERT_TRUE(index.Put(std::move(put)));
    const auto s = index.stats();
    EXPECT_EQ(s.graph_indexes + s.exact_indexes, 1u);
    EXPECT_EQ(s.graph_indexes, s.vectors > 100 ? 1u : 0u) << s.vectors;
  }
  EXPECT_EQ(index.stats().vectors, 150u);
  // Every vector moved along: each finds itself first.
  for (std::size_t i = 0; i < all.size(); i += 7) {
    Query q = VectorQuery(all[i], 1);
    auto hits = index.Search(q);
    ASSERT_TRUE(hits);
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ((*hits)[0].content,
              "doc " + std::to_string(i / 5) + " chunk " + std::to_string(i % 5));
  }
}

// Replacing a document while searches run: every search sees exactly one version of it, never a
// mixture, never none.
TEST(TenantIndex, ReplacementIsAtomicForConcurrentSearches) {
  TenantIndex index({});
  auto version = [](int v) {
    std::vector<std::pair<std::string, std::vector<float>>> chunks;
    for (int c = 0; c < 20; ++c)
      chunks.emplace_back("version " + std::to_string(v) + " part " + std::to_string(c),
                          Axis(static_cast<std::size_t>(c), 0.5f));
    return Doc("doc", "g" + std::to_string(v), std::move(chunks));
  };
  std::vector<TenantIndex::PutDocument> first;
  first.push_back(version(0));
  ASSERT_TRUE(index.Put(std::move(first)));
  std::atomic<bool> done{false};
  std::atomic<int> searches{0};
  std::atomic<int> failures{0};
  auto searcher = [&](SearchMode mode) {
    while (!done.load()) {
      Query q = VectorQuery(Axis(0), 20);
      q.mode = mode;
      q.text = "version part";
      auto hits = index.Search(q);
      if (!hits || hits->size() != 20) {
        ++failures;
        continue;
      }
      std::set<std::string> versions;
      for (const Hit& h : *hits)
        versions.insert(h.content.substr(0, h.content.find(" part")));
      if (versions.size() != 1) ++failures;
      ++searches;
    }
  };
  std::thread a(searcher, SearchMode::kVector);
  std::thread b(searcher, SearchMode::kHybrid);
  std::thread c(searcher, SearchMode::kKeyword);
  for (int v = 1; v <= 200; ++v) {
    std::vector<TenantIndex::PutDocument> put;
    put.push_back(version(v));
    ASSERT_TRUE(index.Put(std::move(put)));
  }
  done = true;
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(searches.load(), 0);
  EXPECT_EQ(index.stats().chunks, 20u);
  EXPECT_EQ(index.stats().vectors, 20u);
}

TEST(TenantIndex, SnapshotRoundTripAdoptsOnlyWhatIsClaimed) {
  TempDir dir;
  TenantIndex::Options o;
  o.exact_below = 4;  // a graph, so both kinds of file are exercised with the exact one below
  TenantIndex index(o);
  std::vector<TenantIndex::PutDocument> docs;
  docs.push_back(Doc("keep", "g1", {{"kept one", Axis(0)}, {"kept two", Axis(1)}}));
  docs.push_back(Doc("gone", "g2", {{"gone one", Axis(2)}, {"gone two", Axis(3)}}));
  docs.push_back(Doc("changed", "g3", {{"changed old", Axis(4)}}));
  docs.back().chunks[0].heading_path = {"A", "B"};
  ASSERT_TRUE(index.Put(std::move(docs)));
  ASSERT_TRUE(index.SaveSnapshot(dir.path(), "tenant-a"));

  EXPECT_EQ(TenantIndex::LoadSnapshot(dir.path(), "tenant-b").error().code, ErrorCode::kNotFound);
  auto snap = TenantIndex::LoadSnapshot(dir.path(), "tenant-a");
  ASSERT_TRUE(snap) << snap.error().message;
  ASSERT_EQ(snap->documents.size(), 3u);
  EXPECT_EQ(snap->documents["changed"].chunks[0].chunk.heading_path,
            (std::vector<std::string>{"A", "B"}));

  // The store now says: "keep" unchanged, "gone" deleted, "changed" at a new generation.
  TenantIndex restored(o);
  restored.Adopt(*snap);
  std::vector<TenantIndex::PutDocument> put;
  TenantIndex::PutDocument keep;
  keep.record = Doc("keep", "g1", {}).record;
  keep.record.chunk_count = 2;
  for (auto& c : snap->documents["keep"].chunks) {
    keep.chunks.push_back(c.chunk);
    keep.adopted_ids.push_back(c.id);
  }
  put.push_back(std::move(keep));
  put.push_back(Doc("changed", "g4", {{"changed new", Axis(5)}}));
  ASSERT_TRUE(restored.Put(std::move(put)));
  restored.FinishAdoption();
  EXPECT_EQ(restored.stats().vectors, 3u);  // the adopted two and the new one
  auto hits = restored.Search(VectorQuery(Axis(0), 10));
  ASSERT_TRUE(hits);
  std::set<std::string> contents;
  for (const Hit& h : *hits)
    contents.insert(h.content);
  EXPECT_EQ(contents, (std::set<std::string>{"kept one", "kept two", "changed new"}));
  // New chunks get ids past the snapshot's.
  std::vector<TenantIndex::PutDocument> more;
  more.push_back(Doc("more", "g5", {{"more", Axis(6)}}));
  ASSERT_TRUE(restored.Put(std::move(more)));
  EXPECT_EQ(restored.stats().vectors, 4u);

  // A damaged snapshot is refused, not trusted.
  std::filesystem::path docs_file;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    if (e.path().extension() == ".docs") docs_file = e.path();
  ASSERT_FALSE(docs_file.empty());
  {
    std::fstream f(docs_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(60);
    f.put('\x7f');
  }
  auto damaged = TenantIndex::LoadSnapshot(dir.path(), "tenant-a");
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().code, ErrorCode::kInvalidRequest);

  // Saving again replaces the files instead of accumulating them.
  ASSERT_TRUE(restored.SaveSnapshot(dir.path(), "tenant-a"));
  ASSERT_TRUE(restored.SaveSnapshot(dir.path(), "tenant-a"));
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 2u);  // one .docs, one index
}

}  // namespace
}  // namespace orchestra::documents
