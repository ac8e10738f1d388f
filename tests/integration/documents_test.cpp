// Documents and retrieval-augmented answers (issue 14) through the real binary, on SQLite, Redis
// and PostgreSQL with the local embeddings model: ingest (JSON, multipart upload, import
// directory) → chunks → search (hybrid, keyword, vector) → /answer-question with the chunks it
// used as citations; deletion that holds across a restart; tenants that never see each other's
// documents, also by guessed ids; and the bad inputs of the upload and import routes.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "common/random.hpp"
#include "integration/orchestra_process.hpp"
#include "services/firestore_emulator.hpp"
#include "services/postgres_server.hpp"
#include "services/redis_server.hpp"

namespace orchestra::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using services::FirestoreEmulator;
using services::PostgresServer;
using services::RedisServer;

enum class Backend { kSqlite, kRedis, kPostgres, kFirestore };

std::string Name(Backend b) {
  switch (b) {
    case Backend::kSqlite:
      return "sqlite";
    case Backend::kRedis:
      return "redis";
    case Backend::kPostgres:
      return "postgres";
    case Backend::kFirestore:
      return "firestore";
  }
  return "?";
}

std::string Quoted(std::string_view text) {
  return json::serialize(json::string(text));
}

// Asserts the one error shape and the status; returns error.param ("" for null).
std::string ErrorParam(const HttpResponse& r, int status) {
  EXPECT_EQ(r.status, status) << r.body;
  json::value v = r.Json();
  const json::object& top = v.as_object();
  EXPECT_EQ(top.size(), 1u) << r.body;
  if (!top.contains("error")) return "<not an error>";
  const json::object& e = top.at("error").as_object();
  EXPECT_TRUE(e.at("message").is_string()) << r.body;
  return e.at("param").is_null() ? "" : std::string(e.at("param").as_string());
}

// A client that sends its API key with every request.
class Api {
 public:
  Api(const Orchestra& server, std::string key) : client_(server.Client()) {
    headers_.push_back({"Authorization", "Bearer " + key});
  }
  HttpResponse Post(std::string_view target, std::string_view body,
                    std::vector<std::pair<std::string, std::string>> more = {}) {
    more.insert(more.begin(), headers_.begin(), headers_.end());
    return client_->Request("POST", target, body, more);
  }
  HttpResponse Get(std::string_view target) {
    return client_->Request("GET", target, "", headers_);
  }
  HttpResponse Delete(std::string_view target) {
    return client_->Request("DELETE", target, "", headers_);
  }
  json::object Ok(const HttpResponse& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    json::value v = r.Json();
    return v.is_object() ? v.as_object() : json::object();
  }
  // The document ids of a search's results, in order.
  std::vector<std::string> SearchDocs(const std::string& query, const std::string& more = "") {
    auto o = Ok(Post("/documents/search", "{\"query\":" + Quoted(query) + more + "}"));
    std::vector<std::string> ids;
    for (const json::value& hit : o["results"].as_array())
      ids.emplace_back(hit.at("document_id").as_string());
    return ids;
  }

 private:
  std::unique_ptr<HttpClient> client_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

// A multipart/form-data body: (name, filename or "", content type or "", content).
struct Part {
  std::string name;
  std::string filename;
  std::string type;
  std::string content;
};
constexpr std::string_view kBoundary = "----orchestra-test-boundary-7MA4YWxkTrZu0gW";

std::string Form(const std::vector<Part>& parts) {
  std::string body;
  for (const Part& p : parts) {
    body += "--" + std::string(kBoundary) + "\r\n";
    body += "Content-Disposition: form-data; name=\"" + p.name + "\"";
    if (!p.filename.empty()) body += "; filename=\"" + p.filename + "\"";
    body += "\r\n";
    if (!p.type.empty()) body += "Content-Type: " + p.type + "\r\n";
    body += "\r\n" + p.content + "\r\n";
  }
  body += "--" + std::string(kBoundary) + "--\r\n";
  return body;
}

std::vector<std::pair<std::string, std::string>> FormHeaders() {
  return {{"Content-Type", "multipart/form-data; boundary=" + std::string(kBoundary)}};
}

constexpr std::string_view kKeys = R"(
auth:
  keys:
    - {name: alpha, key_env: TEST_ALPHA_KEY, scopes: [user]}
    - {name: beta, key_env: TEST_BETA_KEY, scopes: [user]}
)";

const char* const kPlants =
    "# Plants\n\nPhotosynthesis turns sunlight, water and carbon dioxide into glucose and "
    "oxygen inside the chloroplasts of leaves.\n\n## Roots\n\nRoots anchor the plant and absorb "
    "water and minerals from the soil.\n";
const char* const kVolcanoHtml =
    "<html><head><title>Volcanoes</title><style>p{color:red}</style>"
    "<script>alert('x')</script></head><body><h1>Volcanoes</h1><p>A volcano erupts when magma "
    "rises through the crust &amp; escapes as lava.</p><p>Mount Etna is the most active volcano "
    "in Europe.</p></body></html>";
const char* const kTrains =
    "The first public steam railway opened in 1825 between Stockton and Darlington.\n\n"
    "High-speed trains such as the Shinkansen run at over 300 kilometres per hour.";

class DocumentsApi : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kRedis) {
      redis_ = std::make_unique<RedisServer>();
      url_ = redis_->url();
    } else if (GetParam() == Backend::kPostgres) {
      postgres_ = std::make_unique<PostgresServer>();
      url_ = postgres_->url();
    } else if (GetParam() == Backend::kFirestore) {
      std::string why;
      if (!FirestoreEmulator::AvailableForTests(why)) GTEST_SKIP() << why;
      emulator_host_ = FirestoreEmulator::Shared().host();
      url_ = "docs" + RandomHex(6);  // a root collection of this test's own
    }
  }
  OrchestraOptions Options(const std::string& documents = "") const {
    std::string yaml =
        "server:\n  max_body_bytes: 1048576\nstorage:\n  backend: " + Name(GetParam()) + "\n";
    if (GetParam() == Backend::kSqlite) {
      yaml += "  path: " + data_.path() + "/data/orchestra.db\n";
    } else if (GetParam() == Backend::kFirestore) {
      yaml += "  firestore: {project: demo-orchestra, root: " + url_ + "}\n";
    } else {
      yaml += "  url: " + url_ + "\n";
    }
    yaml += "documents:\n  max_bytes: 65536\n  poll_interval: 200ms\n" + documents;
    yaml += kKeys;
    OrchestraOptions o;
    o.config_yaml = yaml;
    o.env = {{"TEST_ALPHA_KEY", "alpha-key-1"}, {"TEST_BETA_KEY", "beta-key-2"}};
    if (!emulator_host_.empty()) o.env["FIRESTORE_EMULATOR_HOST"] = emulator_host_;
    return o;
  }
  // Waits for /startupz (the indexes are loaded).
  static void WaitStarted(const Orchestra& server) {
    auto c = server.Client();
    for (int i = 0; i < 300; ++i) {
      if (c->Request("GET", "/startupz").status == 200) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "/startupz never answered 200";
  }

  TempDir data_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<PostgresServer> postgres_;
  std::string url_;
  std::string emulator_host_;
};

std::string ParamName(const ::testing::TestParamInfo<Backend>& info) {
  return Name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Backends, DocumentsApi,
                         ::testing::Values(Backend::kSqlite, Backend::kRedis, Backend::kPostgres,
                                           Backend::kFirestore),
                         ParamName);

TEST_P(DocumentsApi, IngestSearchAnswerDeleteAndRestart) {
  std::string volcano_chunk;
  {
    Orchestra server(Options());
    WaitStarted(server);
    Api a(server, "alpha-key-1");

    // JSON ingest, AI Orchestra's response shape.
    auto plants =
        a.Ok(a.Post("/documents", "{\"content\":" + Quoted(kPlants) +
                                      R"(,"title":"Plants","source":"botany.md",)"
                                      R"("content_type":"markdown","document_id":"plants",)"
                                      R"("metadata":{"topic":"biology"},)"
                                      R"("chunking":{"strategy":"markdown_headings"}})"));
    EXPECT_EQ(plants.at("document_id"), "plants");
    EXPECT_EQ(plants.at("chunk_count"), 2);
    const json::object& meta = plants.at("document_metadata").as_object();
    EXPECT_EQ(meta.at("id"), "plants");
    EXPECT_EQ(meta.at("title"), "Plants");
    EXPECT_EQ(meta.at("source"), "botany.md");
    EXPECT_EQ(meta.at("metadata").at("topic"), "biology");
    EXPECT_TRUE(meta.at("created_at").as_string().ends_with("Z"));

    // Multipart upload of HTML: scripts and styles dropped, the <title> its title.
    auto volcano = a.Ok(a.Post("/documents/upload",
                               Form({{"file", "volcano.html", "text/html", kVolcanoHtml},
                                     {"document_id", "", "", "volcano"},
                                     {"chunking_strategy", "", "", "sentence"},
                                     {"metadata_json", "", "", R"({"topic":"geology"})"}}),
                               FormHeaders()));
    EXPECT_EQ(volcano.at("document_id"), "volcano");
    EXPECT_EQ(volcano.at("document_metadata").at("title"), "Volcanoes");
    EXPECT_EQ(volcano.at("document_metadata").at("source"), "volcano.html");
    // Without a document_id: a new UUID.
    auto trains = a.Ok(a.Post("/documents", "{\"content\":" + Quoted(kTrains) + "}"));
    const std::string trains_id(trains.at("document_id").as_string());
    EXPECT_EQ(trains_id.size(), 36u);

    auto list = a.Ok(a.Get("/documents"));
    EXPECT_EQ(list.at("total_count"), 3);
    EXPECT_EQ(list.at("documents").as_array().size(), 3u);
    auto paged = a.Ok(a.Get("/documents?offset=1&limit=1"));
    EXPECT_EQ(paged.at("total_count"), 3);
    ASSERT_EQ(paged.at("documents").as_array().size(), 1u);
    EXPECT_EQ(a.Ok(a.Get("/documents/volcano")).at("metadata").at("topic"), "geology");

    // Search in each mode; the right document first.
    EXPECT_EQ(a.SearchDocs("How do roots absorb water from the soil?").at(0), "plants");
    EXPECT_EQ(a.SearchDocs("magma lava eruption", R"(,"mode":"keyword")").at(0), "volcano");
    EXPECT_EQ(a.SearchDocs("Shinkansen speed", R"(,"mode":"vector","score_threshold":0)").at(0),
              trains_id);
    auto hits =
        a.Ok(a.Post("/documents/search",
                    R"({"query":"Which volcano is the most active in Europe?","limit":2})"));
    const json::array& results = hits.at("results").as_array();
    ASSERT_FALSE(results.empty());
    const json::object& top = results.at(0).as_object();
    EXPECT_EQ(top.at("document_id"), "volcano");
    EXPECT_NE(top.at("content").as_string().find("Etna"), std::string::npos) << hits;
    EXPECT_EQ(top.at("document_title"), "Volcanoes");
    EXPECT_EQ(top.at("document_source"), "volcano.html");
    EXPECT_TRUE(top.at("similarity").is_double()) << hits;
    EXPECT_TRUE(top.at("sequence_number").is_number());
    EXPECT_EQ(hits.at("query"), "Which volcano is the most active in Europe?");
    for (const json::value& h : results)
      EXPECT_EQ(h.at("content").as_string().find("alert"), std::string::npos);  // no script
    volcano_chunk = std::string(top.at("id").as_string());
    // Filters: by document, by metadata.
    for (const std::string& id : a.SearchDocs("water", R"(,"document_id":"volcano")"))
      EXPECT_EQ(id, "volcano");
    for (const std::string& id :
         a.SearchDocs("water lava trains", R"(,"metadata":{"topic":"biology"})"))
      EXPECT_EQ(id, "plants");

    // Retrieval-augmented answer on the extractive local model, citing the chunks it used.
    auto answer = a.Ok(a.Post("/answer-question",
                              R"({"question":"Which volcano is the most active in Europe?",)"
                              R"("use_documents":true,"model":"local-extractive","limit":2})"));
    EXPECT_NE(answer.at("answer").as_string().find("Etna"), std::string::npos) << answer;
    const json::array& citations = answer.at("citations").as_array();
    ASSERT_FALSE(citations.empty()) << answer;
    EXPECT_EQ(citations.at(0), json::value(volcano_chunk));
    EXPECT_EQ(answer.at("sources").as_array().at(0).at("document_id"), "volcano");
    // Restricted to one document, the answer comes from it alone.
    auto only = a.Ok(a.Post("/answer-question", R"({"question":"What do roots absorb?",)"
                                                R"("use_documents":true,"document_id":"plants",)"
                                                R"("model":"local-extractive"})"));
    for (const json::value& s : only.at("sources").as_array())
      EXPECT_EQ(s.at("document_id"), "plants");
    EXPECT_NE(only.at("answer").as_string().find("minerals"), std::string::npos) << only;

    // Replacing a document: the old chunks are gone at once.
    a.Ok(a.Post("/documents",
                R"({"document_id":"volcano","content":"Krakatoa erupted in 1883 in Indonesia."})"));
    auto after = a.Ok(a.Post("/documents/search", R"({"query":"Etna Europe lava","limit":10})"));
    for (const json::value& h : after.at("results").as_array())
      EXPECT_EQ(h.at("content").as_string().find("Etna"), std::string::npos) << after;
    EXPECT_EQ(a.Ok(a.Get("/documents")).at("total_count"), 3);

    // Deletion: gone from search, listing and GET at once.
    auto deleted = a.Ok(a.Delete("/documents/plants"));
    EXPECT_EQ(deleted.at("success"), true);
    EXPECT_EQ(ErrorParam(a.Delete("/documents/plants"), 404), "document_id");
    EXPECT_EQ(ErrorParam(a.Get("/documents/plants"), 404), "document_id");
    for (const std::string& id : a.SearchDocs("roots photosynthesis soil water", R"(,"limit":20)"))
      EXPECT_NE(id, "plants");
    EXPECT_EQ(server.Stop(), 0);
  }
  // After a restart (loaded from the store, or the SQLite snapshot): the deleted document stays
  // gone, the others are searchable.
  Orchestra again(Options());
  WaitStarted(again);
  Api a(again, "alpha-key-1");
  EXPECT_EQ(a.Ok(a.Get("/documents")).at("total_count"), 2);
  EXPECT_EQ(ErrorParam(a.Get("/documents/plants"), 404), "document_id");
  for (const std::string& id : a.SearchDocs("roots photosynthesis soil water", R"(,"limit":20)"))
    EXPECT_NE(id, "plants");
  EXPECT_EQ(a.SearchDocs("Krakatoa 1883", R"(,"mode":"keyword")").at(0), "volcano");
  EXPECT_EQ(a.SearchDocs("Stockton Darlington railway").size() > 0, true);
}

TEST_P(DocumentsApi, TenantsNeverSeeEachOthersDocuments) {
  Orchestra server(Options());
  WaitStarted(server);
  Api a(server, "alpha-key-1");
  Api b(server, "beta-key-2");
  a.Ok(a.Post("/documents", "{\"document_id\":\"secret\",\"content\":" +
                                Quoted("The launch code of project Nightjar is 4471.") + "}"));
  auto a_hits = a.Ok(a.Post("/documents/search", R"({"query":"Nightjar launch code"})"));
  ASSERT_FALSE(a_hits.at("results").as_array().empty());
  const std::string chunk_id(a_hits.at("results").as_array().at(0).at("id").as_string());

  // B: nothing by search (any mode), by id, by listing, by deletion, by answer.
  for (const char* mode : {"hybrid", "keyword", "vector"}) {
    auto r = b.Ok(b.Post("/documents/search",
                         std::string(R"({"query":"Nightjar launch code","score_threshold":-1,)") +
                             R"("mode":")" + mode + "\"}"));
    EXPECT_TRUE(r.at("results").as_array().empty()) << mode << ": " << r;
  }
  EXPECT_TRUE(b.Ok(b.Post("/documents/search", R"({"query":"Nightjar","document_id":"secret"})"))
                  .at("results")
                  .as_array()
                  .empty());
  EXPECT_EQ(ErrorParam(b.Get("/documents/secret"), 404), "document_id");
  EXPECT_EQ(ErrorParam(b.Get("/documents/" + chunk_id), 404), "document_id");
  EXPECT_EQ(ErrorParam(b.Delete("/documents/secret"), 404), "document_id");
  EXPECT_EQ(b.Ok(b.Get("/documents")).at("total_count"), 0);
  auto answer =
      b.Ok(b.Post("/answer-question", R"({"question":"What is the Nightjar launch code?",)"
                                      R"("use_documents":true,"model":"local-extractive"})"));
  EXPECT_EQ(answer.at("answer").as_string().find("4471"), std::string::npos) << answer;
  EXPECT_TRUE(answer.at("citations").as_array().empty());

  // B's own document under the same id is B's; A's is untouched.
  b.Ok(b.Post("/documents",
              R"({"document_id":"secret","content":"Beta's own note on gardening."})"));
  EXPECT_EQ(b.Ok(b.Get("/documents")).at("total_count"), 1);
  EXPECT_EQ(a.SearchDocs("Nightjar launch code").at(0), "secret");
  auto a_answer =
      a.Ok(a.Post("/answer-question", R"({"question":"What is the Nightjar launch code?",)"
                                      R"("use_documents":true,"model":"local-extractive"})"));
  EXPECT_NE(a_answer.at("answer").as_string().find("4471"), std::string::npos) << a_answer;
  for (const std::string& id : b.SearchDocs("Nightjar gardening note", R"(,"score_threshold":-1)"))
    EXPECT_EQ(id, "secret");
  auto b_hits = b.Ok(b.Post("/documents/search", R"({"query":"Nightjar launch code 4471"})"));
  for (const json::value& h : b_hits.at("results").as_array())
    EXPECT_EQ(h.at("content").as_string().find("4471"), std::string::npos);
}

TEST_P(DocumentsApi, BadInputIsA4xxAndChangesNothing) {
  TempDir import;
  std::filesystem::create_directories(import.path() + "/in");
  std::ofstream(import.path() + "/in/notes.md") << "# Notes\n\nThe kettle boils at noon.\n";
  std::ofstream(import.path() + "/secret.txt") << "outside the import directory";
  std::filesystem::create_symlink(import.path() + "/secret.txt", import.path() + "/in/link");
  Orchestra server(Options("  import_dir: " + import.path() + "/in\n"));
  WaitStarted(server);
  Api a(server, "alpha-key-1");

  // Multipart: no boundary, no file part, a type we do not read, a part over max_bytes, a body
  // that never closes.
  EXPECT_EQ(ErrorParam(a.Post("/documents/upload", Form({{"file", "a.txt", "text/plain", "x"}}),
                              {{"Content-Type", "multipart/form-data"}}),
                       400),
            "Content-Type");
  EXPECT_EQ(
      ErrorParam(a.Post("/documents/upload", Form({{"document_id", "", "", "x"}}), FormHeaders()),
                 400),
      "file");
  EXPECT_EQ(ErrorParam(a.Post("/documents/upload",
                              Form({{"file", "scan.pdf", "application/pdf", "%PDF-1.4 ..."}}),
                              FormHeaders()),
                       415),
            "file");
  EXPECT_EQ(ErrorParam(a.Post("/documents/upload",
                              Form({{"file", "image.png", "image/png", "\x89PNG"}}), FormHeaders()),
                       415),
            "file");
  EXPECT_EQ(ErrorParam(a.Post("/documents/upload",
                              Form({{"file", "big.txt", "text/plain", std::string(70000, 'a')}}),
                              FormHeaders()),
                       413),
            "file");
  std::string cut = Form({{"file", "a.txt", "text/plain", "hello"}});
  cut.resize(cut.size() - 10);
  EXPECT_EQ(a.Post("/documents/upload", cut, FormHeaders()).status, 400);
  // JSON: over max_bytes, an unknown strategy, metadata not an object, a bad id.
  EXPECT_EQ(ErrorParam(
                a.Post("/documents", "{\"content\":" + Quoted(std::string(70000, 'b')) + "}"), 413),
            "content");
  EXPECT_EQ(ErrorParam(a.Post("/documents", R"({"content":"x","chunking_strategy":"words"})"), 400),
            "chunking_strategy");
  EXPECT_EQ(ErrorParam(a.Post("/documents", R"({"content":"x","metadata":[1]})"), 400), "metadata");
  EXPECT_EQ(ErrorParam(a.Post("/documents/search", R"({"query":"x","mode":"fuzzy"})"), 400),
            "mode");
  EXPECT_EQ(ErrorParam(a.Post("/documents/search", R"({"query":"x","limit":0})"), 400), "limit");
  EXPECT_EQ(ErrorParam(a.Get("/documents?limit=abc"), 400), "limit");

  // The import directory: inside is read, every way out is 403.
  auto notes = a.Ok(a.Post("/documents/process", R"({"file_path":"notes.md","document_id":"n"})"));
  EXPECT_EQ(notes.at("document_metadata").at("source"), "notes.md");
  for (const std::string& path : {std::string("../secret.txt"), std::string("link"),
                                  import.path() + "/secret.txt", std::string("/etc/passwd")}) {
    EXPECT_EQ(ErrorParam(a.Post("/documents/process", "{\"file_path\":" + Quoted(path) + "}"), 403),
              "file_path")
        << path;
  }
  EXPECT_EQ(ErrorParam(a.Post("/documents/process", R"({"file_path":"missing.md"})"), 404),
            "file_path");
  // Nothing of the refused requests was stored.
  auto list = a.Ok(a.Get("/documents"));
  EXPECT_EQ(list.at("total_count"), 1) << list;
  EXPECT_TRUE(a.Ok(a.Post("/documents/search", R"({"query":"outside import directory"})"))
                  .at("results")
                  .as_array()
                  .empty());
}

// Two instances sharing a backend: what one writes, replaces or deletes reaches the other's
// search through the change log within the documented bound (poll_interval, 200 ms here, plus
// indexing; waited for up to 10 s).
TEST_P(DocumentsApi, AnotherInstanceSeesWritesAndDeletionsWithinTheBound) {
  if (GetParam() == Backend::kSqlite) GTEST_SKIP() << "one process per SQLite file";
  Orchestra one(Options());
  Orchestra two(Options());
  WaitStarted(one);
  WaitStarted(two);
  Api a1(one, "alpha-key-1");
  Api a2(two, "alpha-key-1");
  auto found_on_two = [&](const std::string& query) {
    auto r = a2.Post("/documents/search", "{\"query\":" + Quoted(query) + R"(,"mode":"keyword"})");
    if (r.status != 200) return false;
    return !r.Json().at("results").as_array().empty();
  };
  auto eventually = [](const std::function<bool()>& condition) {
    for (int i = 0; i < 100; ++i) {
      if (condition()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  };
  a1.Ok(a1.Post("/documents",
                R"({"document_id":"shared","content":"Quokkas live on Rottnest Island."})"));
  EXPECT_TRUE(eventually([&] { return found_on_two("quokkas rottnest"); }));
  EXPECT_EQ(a2.Ok(a2.Get("/documents/shared")).at("id"), "shared");
  // A replacement: the new text appears and the old one goes, together.
  a1.Ok(a1.Post("/documents", R"({"document_id":"shared","content":"Wombats dig burrows."})"));
  EXPECT_TRUE(eventually([&] { return found_on_two("wombats burrows"); }));
  EXPECT_FALSE(found_on_two("quokkas rottnest"));
  // A deletion on the other instance.
  a2.Ok(a2.Delete("/documents/shared"));
  EXPECT_TRUE(eventually([&] {
    return a1.Get("/documents/shared").status == 404 &&
           a1.Ok(a1.Post("/documents/search", R"({"query":"wombats burrows","mode":"keyword"})"))
               .at("results")
               .as_array()
               .empty();
  }));
  // Another tenant on the other instance still sees nothing of alpha's.
  Api b2(two, "beta-key-2");
  a1.Ok(a1.Post("/documents", R"({"document_id":"again","content":"Platypuses lay eggs."})"));
  EXPECT_TRUE(eventually([&] { return found_on_two("platypuses eggs"); }));
  EXPECT_TRUE(b2.Ok(b2.Post("/documents/search", R"({"query":"platypuses eggs","mode":"keyword"})"))
                  .at("results")
                  .as_array()
                  .empty());
}

// Retrieval quality with the offline defaults (local-embed, hybrid): a corpus of 30 short
// documents on distinct subjects and 40 questions, each answered by exactly one of them; the
// right document must be among the top 3 results for at least 85 % of the questions.
TEST(DocumentsQuality, TheRightDocumentIsInTheTopThreeForMostQuestions) {
  struct Doc {
    const char* id;
    const char* text;
  };
  const std::vector<Doc> corpus{
      {"honeybees",
       "Honeybees live in colonies ruled by a single queen. Worker bees collect nectar from "
       "flowers and turn it into honey inside the hive. A bee communicates the direction of food "
       "with a waggle dance."},
      {"everest",
       "Mount Everest is the highest mountain on Earth at 8,849 metres. It lies in the Himalayas "
       "on the border of Nepal and China. Edmund Hillary and Tenzing Norgay first reached its "
       "summit in 1953."},
      {"coffee",
       "Coffee is brewed from roasted coffee beans, the seeds of the Coffea plant. Espresso forces "
       "hot water through finely ground coffee under pressure. Ethiopia is thought to be where "
       "coffee was first used."},
      {"rust",
       "Rust is a systems programming language focused on memory safety without a garbage "
       "collector. Its borrow checker enforces ownership rules at compile time. Cargo is the Rust "
       "package manager."},
      {"tides",
       "Ocean tides are caused mainly by the gravitational pull of the Moon on the oceans. Spring "
       "tides happen when the Sun and Moon align, giving higher high tides. Most coasts see two "
       "high tides a day."},
      {"chess",
       "Chess is a board game for two players on a board of 64 squares. Each player starts with "
       "sixteen pieces, including a king that must be protected from checkmate. Castling moves the "
       "king and a rook in one turn."},
      {"vaccines",
       "Vaccines train the immune system to recognise a pathogen without causing the disease. "
       "Edward Jenner developed the first smallpox vaccine in 1796. Many vaccines need booster "
       "doses to keep immunity strong."},
      {"jazz",
       "Jazz music began in New Orleans in the early twentieth century. It is known for "
       "improvisation, swing rhythms and blue notes. Louis Armstrong and Duke Ellington were "
       "famous jazz musicians."},
      {"photosynthesis",
       "Photosynthesis lets plants turn sunlight, water and carbon dioxide into glucose. It takes "
       "place in chloroplasts, which contain the green pigment chlorophyll. Oxygen is released as "
       "a by-product."},
      {"bitcoin",
       "Bitcoin is a decentralised digital currency created in 2009 by Satoshi Nakamoto. "
       "Transactions are recorded on a public ledger called the blockchain. New bitcoins are "
       "created through mining."},
      {"sourdough",
       "Sourdough bread rises with a starter of wild yeast and lactic acid bacteria instead of "
       "commercial yeast. The starter must be fed with flour and water. The bacteria give the loaf "
       "its sour taste."},
      {"volcanoes",
       "A volcano erupts when magma rises through the crust and escapes as lava and ash. Mount "
       "Etna in Sicily is one of the most active volcanoes in Europe. Volcanic soil is often very "
       "fertile."},
      {"marathon",
       "A marathon is a long-distance running race of 42.195 kilometres. The distance commemorates "
       "the run of a Greek messenger from Marathon to Athens. Runners often hit the wall after "
       "about 30 kilometres."},
      {"penguins",
       "Penguins are flightless seabirds that live almost only in the Southern Hemisphere. Emperor "
       "penguins breed during the Antarctic winter, and the males keep the egg warm on their feet. "
       "Penguins swim with flippers."},
      {"tcp",
       "TCP is a transport protocol that delivers a reliable, ordered stream of bytes between two "
       "hosts. A connection starts with a three-way handshake of SYN, SYN-ACK and ACK. Lost "
       "segments are retransmitted."},
      {"olive_oil",
       "Olive oil is pressed from the fruit of the olive tree, grown mostly around the "
       "Mediterranean. Extra virgin olive oil is cold-pressed and has low acidity. Spain is the "
       "largest producer of olive oil."},
      {"black_holes",
       "A black hole is a region of space where gravity is so strong that not even light can "
       "escape. Its boundary is called the event horizon. Black holes form when massive stars "
       "collapse."},
      {"tea",
       "Tea is made by pouring hot water over cured leaves of the Camellia sinensis plant. Green "
       "tea is not oxidised while black tea is fully oxidised. China and India grow most of the "
       "world's tea."},
      {"bicycles",
       "A bicycle is a pedal-driven vehicle with two wheels. Gears let the rider change how hard "
       "it is to pedal, and derailleurs move the chain between sprockets. The Tour de France is "
       "the most famous bicycle race."},
      {"glaciers",
       "Glaciers are large masses of ice that form where snow accumulates faster than it melts. "
       "They flow slowly downhill under their own weight and carve U-shaped valleys. Many glaciers "
       "are retreating as the climate warms."},
      {"roman_empire",
       "The Roman Empire began in 27 BC when Augustus became the first emperor. At its height it "
       "ruled the Mediterranean world. The Western Roman Empire fell in 476 AD."},
      {"solar_panels",
       "Solar panels convert sunlight into electricity using photovoltaic cells made of silicon. "
       "An inverter turns their direct current into alternating current for the home. Panels work "
       "best facing the sun without shade."},
      {"sharks",
       "Sharks are fish with skeletons made of cartilage rather than bone. The whale shark is the "
       "largest fish in the sea and eats plankton. Sharks can sense electric fields of their "
       "prey."},
      {"origami",
       "Origami is the Japanese art of folding paper into shapes without cutting or glue. The "
       "paper crane is its best known model. A single square sheet is usually the starting point."},
      {"dns",
       "The Domain Name System translates domain names such as example.com into IP addresses. "
       "Resolvers query root servers, then top-level domain servers, then authoritative servers. "
       "Answers are cached for their time to live."},
      {"cheese",
       "Cheese is made by curdling milk with rennet and separating the curds from the whey. Hard "
       "cheeses such as parmesan are aged for months or years. Blue cheese gets its veins from "
       "mould."},
      {"pyramids",
       "The Great Pyramid of Giza was built for the pharaoh Khufu around 2560 BC. It was the "
       "tallest man-made structure for nearly 4,000 years. Its blocks of limestone and granite "
       "were moved by thousands of workers."},
      {"sleep",
       "Sleep moves through cycles of light sleep, deep sleep and REM sleep, when most dreaming "
       "happens. Adults need about seven to nine hours of sleep a night. Melatonin helps regulate "
       "the sleep cycle."},
      {"recycling",
       "Recycling turns waste such as paper, glass and aluminium cans into new products. Aluminium "
       "can be recycled again and again without losing quality. Sorting waste at home keeps the "
       "recycling stream clean."},
      {"earthquakes",
       "Earthquakes happen when tectonic plates slip suddenly along a fault. Their magnitude is "
       "measured on the moment magnitude scale. Seismometers record the seismic waves that travel "
       "through the ground."},
  };
  const std::vector<std::pair<const char*, const char*>> questions{
      {"How do bees tell each other where food is?", "honeybees"},
      {"Who rules a bee colony?", "honeybees"},
      {"What is the highest mountain in the world?", "everest"},
      {"Who first climbed to the summit of Everest?", "everest"},
      {"How is espresso made?", "coffee"},
      {"What does the borrow checker do?", "rust"},
      {"What is Cargo used for?", "rust"},
      {"What causes ocean tides?", "tides"},
      {"How many squares does a chess board have?", "chess"},
      {"Who made the first smallpox vaccine?", "vaccines"},
      {"Where did jazz music begin?", "jazz"},
      {"Which pigment makes leaves green?", "photosynthesis"},
      {"Who created Bitcoin?", "bitcoin"},
      {"What is the blockchain?", "bitcoin"},
      {"What makes sourdough bread rise?", "sourdough"},
      {"Which volcano is the most active in Europe?", "volcanoes"},
      {"How long is a marathon race?", "marathon"},
      {"Which penguins breed in the Antarctic winter?", "penguins"},
      {"How does a TCP connection start?", "tcp"},
      {"What is extra virgin olive oil?", "olive_oil"},
      {"What is the event horizon of a black hole?", "black_holes"},
      {"What is the difference between green tea and black tea?", "tea"},
      {"What do derailleurs on a bicycle do?", "bicycles"},
      {"How do glaciers shape valleys?", "glaciers"},
      {"Who was the first Roman emperor?", "roman_empire"},
      {"When did the Western Roman Empire fall?", "roman_empire"},
      {"What does the inverter of solar panels do?", "solar_panels"},
      {"What is the largest fish in the sea?", "sharks"},
      {"What are shark skeletons made of?", "sharks"},
      {"What is the best known origami model?", "origami"},
      {"How does DNS turn a domain name into an IP address?", "dns"},
      {"How long are DNS answers cached?", "dns"},
      {"How is cheese made from milk?", "cheese"},
      {"Where do the veins of blue cheese come from?", "cheese"},
      {"For which pharaoh was the Great Pyramid built?", "pyramids"},
      {"When does most dreaming happen during sleep?", "sleep"},
      {"How many hours of sleep do adults need?", "sleep"},
      {"Can aluminium cans be recycled many times?", "recycling"},
      {"What causes earthquakes?", "earthquakes"},
      {"What do seismometers record?", "earthquakes"},
  };
  ASSERT_GE(corpus.size(), 30u);
  ASSERT_GE(questions.size(), 40u);
  TempDir data;
  OrchestraOptions o;
  o.config_yaml = "storage:\n  backend: sqlite\n  path: " + data.path() + "/orchestra.db\n";
  Orchestra server(o);
  auto c = server.Client();
  for (const Doc& d : corpus) {
    auto r =
        c->Request("POST", "/documents",
                   "{\"document_id\":" + Quoted(d.id) + ",\"content\":" + Quoted(d.text) + "}");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  int hits = 0;
  std::string misses;
  for (const auto& [question, expected] : questions) {
    auto r = c->Request("POST", "/documents/search",
                        "{\"query\":" + Quoted(question) + ",\"limit\":3,\"mode\":\"hybrid\"}");
    ASSERT_EQ(r.status, 200) << r.body;
    bool found = false;
    std::string got;
    const json::value body = r.Json();
    for (const json::value& h : body.at("results").as_array()) {
      found = found || h.at("document_id") == json::value(expected);
      got += std::string(h.at("document_id").as_string()) + " ";
    }
    if (found) {
      ++hits;
    } else {
      misses += std::string(question) + " → " + got + "\n";
    }
  }
  const double rate = static_cast<double>(hits) / static_cast<double>(questions.size());
  std::printf("retrieval: %d of %zu questions have their document in the top 3 (%.0f %%)\n", hits,
              questions.size(), 100 * rate);
  EXPECT_GE(rate, 0.85) << misses;
}

TEST(DocumentsImport, WithoutImportDirTheRouteIsNotFound) {
  TempDir data;
  OrchestraOptions o;
  o.config_yaml = "storage:\n  backend: sqlite\n  path: " + data.path() + "/orchestra.db\n";
  Orchestra server(o);
  auto r = server.Client()->Request("POST", "/documents/process", R"({"file_path":"/etc/passwd"})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(r.body.find("root:"), std::string::npos);
}

// The chat equivalent of use_documents: /v1/chat/completions with Orchestra's `documents`
// option, against the test upstream (which echoes the last user message and records the request
// it got). The upstream gets the passages as a system message and never the option; the answer
// carries the chunk ids as `citations`, streamed too; tenants never retrieve each other's chunks.
class ChatDocuments : public ::testing::Test {
 protected:
  void SetUp() override {
    OrchestraOptions o;
    o.config_yaml = "storage:\n  backend: sqlite\n  path: " + data_.path() +
                    "/orchestra.db\n"
                    "providers:\n"
                    "  - {name: up, type: openai, base_url: '" +
                    upstream_.base_url() +
                    "/v1', api_key_env: TEST_UPSTREAM_KEY}\n"
                    "models:\n"
                    "  - {name: llm, targets: [{provider: up, model: echo}]}\n" +
                    std::string(kKeys);
    o.env = {{"TEST_ALPHA_KEY", "alpha-key-1"},
             {"TEST_BETA_KEY", "beta-key-2"},
             {"TEST_UPSTREAM_KEY", "sk-upstream"}};
    server_ = std::make_unique<Orchestra>(o);
    auto c = server_->Client();
    for (int i = 0; i < 300 && c->Request("GET", "/startupz").status != 200; ++i)
      std::this_thread::sleep_for(50ms);
    alpha_ = std::make_unique<Api>(*server_, "alpha-key-1");
    beta_ = std::make_unique<Api>(*server_, "beta-key-2");
    alpha_->Ok(alpha_->Post("/documents", R"({"document_id":"plants","content_type":"markdown",)"
                                          R"("content":)" +
                                              Quoted(kPlants) + "}"));
    alpha_->Ok(alpha_->Post("/documents",
                            R"({"document_id":"trains","content":)" + Quoted(kTrains) + "}"));
    beta_->Ok(beta_->Post("/documents", R"({"document_id":"secret","content":"The Nightjar )"
                                        R"(launch code is 4417-ALPHA-ZULU."})"));
  }

  static std::string Chat(std::string_view question, std::string_view more) {
    return R"({"model":"llm","messages":[{"role":"user","content":)" + Quoted(question) + "}]" +
           std::string(more) + "}";
  }
  // The body the upstream last received, parsed.
  json::object Sent() {
    json::value last = upstream_.LastRequest();
    return json::parse(last.at("body").as_string()).as_object();
  }
  // The chunk ids /documents/search finds for the query with the same options.
  std::vector<std::string> SearchIds(Api& api, const std::string& query, const std::string& more) {
    auto o = api.Ok(api.Post("/documents/search", "{\"query\":" + Quoted(query) + more + "}"));
    std::vector<std::string> ids;
    for (const json::value& hit : o["results"].as_array())
      ids.emplace_back(hit.at("id").as_string());
    return ids;
  }
  static std::vector<std::string> Ids(const json::value& citations) {
    std::vector<std::string> ids;
    for (const json::value& id : citations.as_array())
      ids.emplace_back(id.as_string());
    return ids;
  }

  TempDir data_;
  TestUpstream upstream_;
  std::unique_ptr<Orchestra> server_;
  std::unique_ptr<Api> alpha_;
  std::unique_ptr<Api> beta_;
};

TEST_F(ChatDocuments, ThePassagesGoUpstreamAsContextAndTheAnswerCitesThem) {
  const std::string question = "What do roots absorb from the soil?";
  auto r = alpha_->Post("/v1/chat/completions", Chat(question, R"(,"documents":{"limit":2})"));
  json::object out = alpha_->Ok(r);
  EXPECT_EQ(out["choices"].at(0).at("message").at("content").as_string(), "echo: " + question);
  const std::vector<std::string> cited = Ids(out["citations"]);
  EXPECT_EQ(cited, SearchIds(*alpha_, question, R"(,"limit":2)"));
  ASSERT_FALSE(cited.empty());

  json::object sent = Sent();
  EXPECT_FALSE(sent.contains("documents")) << json::serialize(sent);
  const json::array& messages = sent["messages"].as_array();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].at("role"), "system");
  const std::string context(messages[0].at("content").as_string());
  EXPECT_NE(context.find("[1] "), std::string::npos) << context;
  EXPECT_NE(context.find("absorb water and minerals"), std::string::npos) << context;
  EXPECT_EQ(messages[1].at("content").as_string(), question);

  // documents.query searches for something else than the last message; document_id narrows.
  out = alpha_->Ok(alpha_->Post(
      "/v1/chat/completions",
      Chat("Tell me more.", R"(,"documents":{"query":"steam railway","document_id":"trains"})")));
  EXPECT_EQ(Ids(out["citations"]),
            SearchIds(*alpha_, "steam railway", R"(,"document_id":"trains")"));
  EXPECT_NE(std::string(Sent()["messages"].at(0).at("content").as_string()).find("Stockton"),
            std::string::npos);

  // Turned off (false, null, enabled: false): forwarded without the option, no citations.
  for (const char* off : {R"(,"documents":false)", R"(,"documents":null)",
                          R"(,"documents":{"enabled":false,"limit":3})"}) {
    out = alpha_->Ok(alpha_->Post("/v1/chat/completions", Chat(question, off)));
    EXPECT_FALSE(out.contains("citations")) << off;
    sent = Sent();
    EXPECT_FALSE(sent.contains("documents")) << off;
    EXPECT_EQ(sent["messages"].as_array().size(), 1u) << off;
  }

  // The extractive local model answers from the passages themselves.
  out = alpha_->Ok(alpha_->Post(
      "/v1/chat/completions",
      R"({"model":"local-extractive","documents":true,"messages":[{"role":"user","content":)" +
          Quoted(question) + "}]}"));
  EXPECT_NE(std::string(out["choices"].at(0).at("message").at("content").as_string())
                .find("water and minerals"),
            std::string::npos)
      << json::serialize(out);
  EXPECT_FALSE(Ids(out["citations"]).empty());
}

TEST_F(ChatDocuments, StreamsWithTheCitationsOnTheChunkThatEnds) {
  const std::string question = "What do roots absorb from the soil?";
  const std::vector<std::string> expected = SearchIds(*alpha_, question, "");
  std::vector<std::string> events;
  auto c = server_->Client();
  auto streamed = c->Stream(
      "POST", "/v1/chat/completions",
      Chat(question, R"(,"stream":true,"stream_options":{"include_usage":true},"documents":true)"),
      {{"Authorization", "Bearer alpha-key-1"}}, [&](std::string_view data) {
        events.emplace_back(data);
        return true;
      });
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  int cited = 0;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    json::object chunk = json::parse(events[i]).as_object();
    const json::array& choices = chunk["choices"].as_array();
    if (!choices.empty() && choices[0].at("delta").as_object().contains("content")) {
      text += choices[0].at("delta").at("content").as_string();
    }
    if (chunk.contains("citations")) {
      ++cited;
      ASSERT_FALSE(choices.empty()) << events[i];
      EXPECT_TRUE(choices[0].at("finish_reason").is_string()) << events[i];
      EXPECT_EQ(Ids(chunk["citations"]), expected);
    }
  }
  EXPECT_EQ(cited, 1);
  EXPECT_EQ(text, "echo: " + question);
  json::object sent = Sent();
  EXPECT_FALSE(sent.contains("documents"));
  EXPECT_EQ(sent["stream"], true);
  EXPECT_EQ(sent["messages"].at(0).at("role"), "system");
  EXPECT_NE(std::string(sent["messages"].at(0).at("content").as_string()).find("minerals"),
            std::string::npos);
}

TEST_F(ChatDocuments, ATenantNeverRetrievesAnothersChunks) {
  // Alpha asks about beta's document: alpha's own chunks (or none) come back, never beta's.
  auto out = alpha_->Ok(alpha_->Post(
      "/v1/chat/completions", Chat("What is the Nightjar launch code?", R"(,"documents":true)")));
  const std::vector<std::string> beta_ids =
      SearchIds(*beta_, "What is the Nightjar launch code?", "");
  ASSERT_FALSE(beta_ids.empty());
  for (const std::string& id : Ids(out["citations"])) {
    EXPECT_EQ(std::find(beta_ids.begin(), beta_ids.end(), id), beta_ids.end()) << id;
  }
  EXPECT_EQ(json::serialize(Sent()).find("4417"), std::string::npos);
  // By beta's document id: nothing found, nothing added.
  out = alpha_->Ok(alpha_->Post(
      "/v1/chat/completions",
      Chat("What is the Nightjar launch code?", R"(,"documents":{"document_id":"secret"})")));
  EXPECT_TRUE(out["citations"].as_array().empty());
  EXPECT_EQ(Sent()["messages"].as_array().size(), 1u);
  // Beta finds its own.
  out = beta_->Ok(beta_->Post("/v1/chat/completions",
                              Chat("What is the Nightjar launch code?", R"(,"documents":true)")));
  EXPECT_EQ(Ids(out["citations"]), beta_ids);
  EXPECT_NE(json::serialize(Sent()).find("4417"), std::string::npos);
}

TEST_F(ChatDocuments, BadOptionsAreA400AndReachNoUpstream) {
  upstream_.Reset();
  for (const auto& [more, param] : std::vector<std::pair<std::string, std::string>>{
           {R"(,"documents":"yes")", "documents"},
           {R"(,"documents":{"limit":0})", "documents.limit"},
           {R"(,"documents":{"limit":1.5})", "documents.limit"},
           {R"(,"documents":{"score_threshold":2})", "documents.score_threshold"},
           {R"(,"documents":{"mode":"psychic"})", "documents.mode"},
           {R"(,"documents":{"enabled":"yes"})", "documents.enabled"},
           {R"(,"documents":{"top_k":3})", "documents.top_k"},
           {R"(,"documents":{"query":""})", "documents.query"},
           {R"(,"documents":true,"d\u006fcuments":false)", "documents"},
       }) {
    EXPECT_EQ(ErrorParam(alpha_->Post("/v1/chat/completions", Chat("roots?", more)), 400), param)
        << more;
  }
  // No user text to search for.
  EXPECT_EQ(ErrorParam(alpha_->Post("/v1/chat/completions",
                                    R"({"model":"llm","documents":true,"messages":)"
                                    R"([{"role":"system","content":"Be brief."}]})"),
                       400),
            "documents");
  EXPECT_TRUE(upstream_.LastRequest().is_null());
}

}  // namespace
}  // namespace orchestra::testing
