// Documents through the real binary over HTTP (issue 14): ingest throughput with the local
// embeddings, search latency at N chunks, resident memory per 100,000 chunks of 384-d vectors,
// and the time from start to /startupz 200 with those chunks (from the snapshot, and from the
// store alone). Figures are printed, never asserted (DESIGN.md §5).
//
//   ORCHESTRA_BINARY=build/release/orchestra
//   build/release/orchestra_bench_documents [chunks=100000] [searches=2000] [clients=2]
//
// One SQLite file in a temp directory, auth disabled (one tenant holds every chunk: the largest
// index a search can meet), `documents.embedding_dimensions: 384` on `local-embed`, the default
// paragraph chunking. Documents are 100 paragraphs of 100 words (one chunk each, see Corpus);
// `clients` connections ingest in parallel. Searches are sent one
// at a time on one keep-alive connection (the latency a caller sees: HTTP, the query's
// embedding, the HNSW and BM25 searches and their fusion, the JSON) in each mode.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "integration/orchestra_process.hpp"

namespace {

using namespace orchestra::testing;
using Clock = std::chrono::steady_clock;
namespace json = boost::json;

// Text with the statistics of prose: words drawn from the 20,000 most frequent of local-embed's
// vocabulary (models/word_vectors.bin, read here for its word list), half by their Zipf
// frequency (rank r has weight 1/(r+1)), half from the document's own topic (50 words of ranks
// 200 to 20,000): the long and short posting lists BM25 meets, and chunk vectors that cluster
// by topic as text embeddings do.
class Corpus {
 public:
  explicit Corpus(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() < 128 || bytes.compare(0, 8, "ORCHWV01") != 0) {
      throw std::runtime_error(path + " is not a word vectors file (run scripts/setup.sh)");
    }
    auto u32 = [&](std::size_t at) {
      std::uint32_t v;
      std::memcpy(&v, bytes.data() + at, 4);
      return v;
    };
    auto u64 = [&](std::size_t at) {
      std::uint64_t v;
      std::memcpy(&v, bytes.data() + at, 8);
      return v;
    };
    const std::uint32_t count = u32(16);
    const std::uint64_t offsets = u64(32), strings = u64(40), ranks = u64(56);
    std::vector<std::pair<std::uint32_t, std::string>> ranked;
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::uint32_t b = u32(offsets + 4 * i), e = u32(offsets + 4 * (i + 1));
      std::string word = bytes.substr(strings + b, e - b);
      if (std::all_of(word.begin(), word.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
        ranked.emplace_back(u32(ranks + 4 * i), std::move(word));
      }
    }
    std::sort(ranked.begin(), ranked.end());
    ranked.resize(std::min<std::size_t>(ranked.size(), 20'000));
    double sum = 0;
    for (std::size_t r = 0; r < ranked.size(); ++r) {
      words_.push_back(std::move(ranked[r].second));
      sum += 1.0 / static_cast<double>(r + 1);
      cdf_.push_back(sum);
    }
  }

  std::vector<std::size_t> Topic(std::mt19937& rng) const {
    std::uniform_int_distribution<std::size_t> pick(200, words_.size() - 1);
    std::vector<std::size_t> topic(50);
    for (auto& w : topic)
      w = pick(rng);
    return topic;
  }
  const std::string& Word(std::mt19937& rng, const std::vector<std::size_t>& topic) const {
    if (rng() % 2 == 0) return words_[topic[rng() % topic.size()]];
    std::uniform_real_distribution<double> u(0, cdf_.back());
    return words_[static_cast<std::size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u(rng)) -
                                           cdf_.begin())];
  }
  std::string Document(std::mt19937& rng) const {
    const std::vector<std::size_t> topic = Topic(rng);
    std::string out;
    for (int p = 0; p < kParagraphsPerDocument; ++p) {
      if (p > 0) out += "\n\n";
      for (int w = 0; w < kWordsPerParagraph; ++w) {
        if (w > 0) out += (w % 12 == 11) ? ". " : " ";
        out += Word(rng, topic);
      }
      out += '.';
    }
    return out;
  }
  std::string Query(std::mt19937& rng) const {
    const std::vector<std::size_t> topic = Topic(rng);
    std::string out;
    for (int w = 0; w < 5; ++w)
      out += (w ? " " : "") + Word(rng, topic);
    return out;
  }

 private:
  static constexpr int kParagraphsPerDocument = 100;
  static constexpr int kWordsPerParagraph = 100;
  std::vector<std::string> words_;  // by frequency
  std::vector<double> cdf_;
};

std::size_t ResidentBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Polls /startupz on fresh connections until 200; the time since `start`.
double UntilStarted(const Orchestra& server, Clock::time_point start) {
  for (int i = 0; i < 600'000; ++i) {
    try {
      if (server.Client()->Request("GET", "/startupz").status == 200) break;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Ms(Clock::now() - start);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures as they come, also into a file
  const std::size_t target_chunks = argc > 1 ? std::stoull(argv[1]) : 100'000;
  const int searches = argc > 2 ? std::stoi(argv[2]) : 2000;
  const int clients = argc > 3 ? std::stoi(argv[3]) : 2;
  TempDir data;
  const Corpus corpus(std::string(ORCHESTRA_SOURCE_DIR) + "/models/word_vectors.bin");
  auto options_with = [&](bool snapshots) {
    OrchestraOptions o;
    o.config_yaml =
        "auth: {disabled: true}\n"
        "server: {max_body_bytes: 8388608}\n"
        "storage: {backend: sqlite, path: " +
        data.path() +
        "/orchestra.db}\n"
        "documents: {embedding_dimensions: 384, max_documents: 100000, snapshots: " +
        (snapshots ? "true" : "false") + "}\n";
    return o;
  };
  const OrchestraOptions options = options_with(true);
  std::printf("documents bench: %zu chunks target, %d searches per mode, %d ingest clients\n",
              target_chunks, searches, clients);
  auto server = std::make_unique<Orchestra>(options);
  UntilStarted(*server, Clock::now());
  const std::size_t rss_empty = ResidentBytes(server->process().pid());

  // Ingest.
  std::atomic<std::size_t> chunks{0};
  std::atomic<int> next_document{0};
  std::atomic<int> failures{0};
  const auto ingest_start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(1000 + t));
      auto c = server->Client();
      while (chunks.load() < target_chunks) {
        const int n = next_document.fetch_add(1);
        json::object body;
        body["document_id"] = "doc-" + std::to_string(n);
        body["title"] = "Document " + std::to_string(n);
        body["content"] = corpus.Document(rng);
        auto r = c->Request("POST", "/documents", json::serialize(body));
        if (r.status != 200) {
          if (failures.fetch_add(1) < 3) std::printf("ingest: %d %s\n", r.status, r.body.c_str());
          continue;
        }
        chunks.fetch_add(static_cast<std::size_t>(r.Json().at("chunk_count").as_int64()));
      }
    });
  }
  for (auto& t : threads)
    t.join();
  const double ingest_s = Ms(Clock::now() - ingest_start) / 1000;
  const std::size_t total = chunks.load();
  std::printf("ingest: %zu chunks in %d documents in %.1f s = %.0f chunks/s (%d failures)\n", total,
              next_document.load(), ingest_s, static_cast<double>(total) / ingest_s,
              failures.load());

  // Memory: what the chunks cost the process (vectors, HNSW graph, keyword index, texts).
  const std::size_t rss_full = ResidentBytes(server->process().pid());
  std::printf(
      "resident: %.1f MB empty, %.1f MB with %zu chunks = %.1f MB per 100k chunks\n",
      static_cast<double>(rss_empty) / 1e6, static_cast<double>(rss_full) / 1e6, total,
      static_cast<double>(rss_full - rss_empty) / 1e6 * 100'000 / static_cast<double>(total));

  // Search latency, one request at a time on one connection, per mode, once the event loops
  // have caught up with the ingestion (the load shedder's smoothed delay has decayed).
  std::this_thread::sleep_for(std::chrono::seconds(3));
  {
    std::mt19937 rng(7);
    auto c = server->Client();
    for (const char* mode : {"hybrid", "vector", "keyword"}) {
      std::vector<double> ms;
      ms.reserve(static_cast<std::size_t>(searches));
      int empty = 0;
      int shed = 0;
      for (int i = 0; i < searches + 50; ++i) {
        const std::string query = corpus.Query(rng);
        const std::string body = R"({"query":")" + query + R"(","limit":5,"mode":")" + mode +
                                 R"(","score_threshold":0})";
        const auto t0 = Clock::now();
        auto r = c->Request("POST", "/documents/search", body);
        const auto t1 = Clock::now();
        if (r.status == 503) {
          // Shed (the event loops fell behind: this machine is shared): counted, not timed.
          ++shed;
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          continue;
        }
        if (r.status != 200) {
          std::printf("search: %d %s\n", r.status, r.body.c_str());
          return 1;
        }
        if (i < 50) continue;  // warm-up
        if (r.Json().at("results").as_array().empty()) ++empty;
        ms.push_back(Ms(t1 - t0));
      }
      std::printf(
          "search %-7s at %zu chunks: p50 %.3f ms, p99 %.3f ms, max %.3f ms (%zu timed, %d with "
          "no result, %d shed)\n",
          mode, total, Percentile(ms, 0.50), Percentile(ms, 0.99),
          ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end()), ms.size(), empty, shed);
    }
  }

  // Start-up with the chunks: from the snapshot written at shutdown, then from the store alone.
  if (server->Stop() != 0) std::printf("stop: non-zero exit\n");
  server.reset();
  for (const bool with_snapshot : {true, false}) {
    // Without snapshots the indexes are built from the chunks in the store (<data>/vectors, the
    // snapshot directory next to the SQLite file, is then not read).
    const OrchestraOptions o = options_with(with_snapshot);
    const auto start = Clock::now();
    server = std::make_unique<Orchestra>(o);
    const double ms = UntilStarted(*server, start);
    std::printf("start-up to /startupz 200 with %zu chunks, %s: %.0f ms (resident %.1f MB)\n",
                total, with_snapshot ? "from the snapshot" : "from the store", ms,
                static_cast<double>(ResidentBytes(server->process().pid())) / 1e6);
    server->Stop();
    server.reset();
  }
  return 0;
}
