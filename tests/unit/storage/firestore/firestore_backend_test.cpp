// What the conformance suite cannot show about the Firestore backend, against the real emulator
// (tests/services/firestore_emulator.hpp): the document layout the deployment's TTL policy
// relies on, deadlines, retention bookkeeping, sparse listings, and the metadata server's token
// (the test upstream plays the metadata server).
#include "storage/firestore/firestore_backend.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "common/random.hpp"
#include "services/firestore_emulator.hpp"
#include "storage/checkpoint_id.hpp"
#include "storage/firestore/blocking_http.hpp"
#include "storage/firestore/encoding.hpp"
#include "storage/glob.hpp"
#include "support/http_client.hpp"
#include "unit/storage/storage_test_support.hpp"

namespace orchestra::storage {
namespace {

namespace json = boost::json;
using orchestra::testing::TestUpstream;
using orchestra::testing::services::FirestoreEmulator;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class FirestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!testing::FirestoreEmulatorAvailable(&why)) GTEST_SKIP() << why;
    emulator_ = &FirestoreEmulator::Shared();
    // Each test writes under a root collection of its own.
    root_ = "t" + RandomHex(6);
  }

  FirestoreOptions Options() const {
    FirestoreOptions o;
    o.project = testing::kFirestoreTestProject;
    o.root = root_;
    o.emulator_host = emulator_->host();
    return o;
  }

  static Call At(std::string_view tenant, std::chrono::milliseconds timeout = 5s) {
    return Call{tenant, Clock::now() + timeout};
  }

  // The documents at `paths` (under the test's root), read straight from the emulator.
  std::vector<json::value> ReadRaw(const std::vector<std::string>& paths) {
    BlockingHttpClient http({.name = "test", .origin = *HttpOrigin::Parse(emulator_->host())});
    const std::string documents = std::string("projects/") + testing::kFirestoreTestProject +
                                  "/databases/(default)/documents";
    json::array names;
    for (const auto& p : paths)
      names.emplace_back(documents + "/" + root_ + "/" + p);
    const std::string body = json::serialize(json::object{{"documents", names}});
    const std::string target = "/v1/" + documents + ":batchGet";
    auto r = http.Send({.target = target, .body = body}, Clock::now() + 5s, true);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    if (!r) return {};
    EXPECT_EQ(r->status, 200U) << r->body;
    std::vector<json::value> out;
    const json::value parsed = json::parse(r->body);
    for (const auto& item : parsed.as_array()) {
      const json::object& o = item.as_object();
      out.push_back(o.contains("found") ? o.at("found") : json::value());
    }
    return out;
  }

  FirestoreEmulator* emulator_ = nullptr;
  std::string root_;
};

// The deployment (Terraform) sets a TTL policy on collection group `kv`, field `expire_at`: the
// layout must stay what docs and infrastructure say.
TEST_F(FirestoreTest, WritesTheDocumentLayoutTheDeploymentExpects) {
  auto backend = FirestoreBackend::Create(Options());
  ASSERT_TRUE(backend->Store(At("team:x"), "user:1", R"({"a":1})", 1h).has_value());
  ASSERT_TRUE(backend->Store(At("team:x"), "plain", "2", std::nullopt).has_value());
  auto id = backend->CreateCheckpoint(At("team:x"), "planner/1",
                                      NewCheckpointId(std::chrono::system_clock::now()), "{}",
                                      R"({"m":1})", 50);
  ASSERT_TRUE(id.has_value()) << id.error().message;

  const auto docs =
      ReadRaw({"team~3Ax/kv/user:1", "team~3Ax/kv/plain", "team~3Ax/agents/planner~2F1",
               "team~3Ax/agents/planner~2F1/checkpoints/" + *id});
  ASSERT_EQ(docs.size(), 4U);
  ASSERT_TRUE(docs[0].is_object()) << "no kv document where the layout says";
  const json::object& kv = docs[0].at("fields").as_object();
  EXPECT_EQ(kv.at("value").at("stringValue"), R"({"a":1})");
  const auto expire_at =
      firestore::ParseTimestamp(kv.at("expire_at").at("timestampValue").as_string());
  ASSERT_TRUE(expire_at.has_value());
  EXPECT_GT(*expire_at, std::chrono::system_clock::now() + 59min);
  EXPECT_FALSE(docs[1].at("fields").as_object().contains("expire_at"));  // no TTL, no field
  ASSERT_TRUE(docs[2].is_object());
  EXPECT_EQ(docs[2].at("fields").at("latest").at("stringValue"), json::value(*id));
  EXPECT_EQ(docs[2].at("fields").at("count").at("integerValue"), "1");
  ASSERT_TRUE(docs[3].is_object());
  EXPECT_EQ(docs[3].at("fields").at("state").at("stringValue"), "{}");
  EXPECT_EQ(docs[3].at("fields").at("metadata").at("stringValue"), R"({"m":1})");
}

TEST_F(FirestoreTest, AnUnreachableEmulatorIsUnavailable) {
  FirestoreOptions o = Options();
  o.emulator_host = "127.0.0.1:" + std::to_string(orchestra::testing::services::FreePort());
  auto backend = FirestoreBackend::Create(o);
  const auto start = Clock::now();
  auto r = backend->Ping(Clock::now() + 5s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("cannot connect"), std::string::npos) << r.error().message;
  EXPECT_LT(Clock::now() - start, 2s);
}

// A server that accepts connections and never answers: every wait ends at the call's deadline.
TEST_F(FirestoreTest, EveryWaitEndsAtTheDeadline) {
  auto backend = FirestoreBackend::Create(Options());
  ASSERT_TRUE(backend->Store(At("t"), "k", "1", std::nullopt).has_value());  // a pooled connection
  emulator_->Pause();
  struct Resume {
    FirestoreEmulator* e;
    ~Resume() { e->Resume(); }
  } resume{emulator_};
  for (int i = 0; i < 2; ++i) {  // on the pooled connection, then on a new one
    const auto start = Clock::now();
    auto r = backend->Retrieve(At("t", 300ms), "k");
    const auto took = Clock::now() - start;
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
    EXPECT_LT(took, 1500ms);
  }
  emulator_->Resume();
  auto again = backend->Retrieve(At("t"), "k");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(*again, "1");
}

// The agent document's count follows deletions, so retention trims only what is beyond keep_last.
TEST_F(FirestoreTest, RetentionCountsDeletedCheckpoints) {
  auto backend = FirestoreBackend::Create(Options());
  auto create = [&] {
    auto id = backend->CreateCheckpoint(
        At("t"), "agent", NewCheckpointId(std::chrono::system_clock::now()), "{}", std::nullopt, 3);
    EXPECT_TRUE(id.has_value()) << id.error().message;
    return id ? *id : std::string();
  };
  auto ids_now = [&] {
    std::vector<std::string> ids;
    for (const auto& info : backend->ListCheckpoints(At("t"), "agent").value())
      ids.push_back(info.id);
    return ids;
  };
  const std::string c1 = create();
  const std::string c2 = create();
  const std::string c3 = create();
  EXPECT_TRUE(backend->DeleteCheckpoint(At("t"), "agent", c2).value());
  EXPECT_FALSE(backend->DeleteCheckpoint(At("t"), "agent", c2).value());
  const std::string c4 = create();
  EXPECT_EQ(ids_now(), (std::vector<std::string>{c1, c3, c4}));
  const std::string c5 = create();
  EXPECT_EQ(ids_now(), (std::vector<std::string>{c3, c4, c5}));
  // The latest is deleted: restore finds the newest that remains.
  EXPECT_TRUE(backend->DeleteCheckpoint(At("t"), "agent", c5).value());
  auto latest = backend->RestoreCheckpoint(At("t"), "agent", std::nullopt);
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->info.id, c4);
  // And ids keep increasing past the deleted one.
  EXPECT_GT(create(), c5);
}

// A pattern without a literal prefix matches few keys: the listing reads on in bigger rounds
// and every match still comes out once, in key order.
TEST_F(FirestoreTest, SparsePatternsAreListedCompletelyInKeyOrder) {
  auto backend = FirestoreBackend::Create(Options());
  std::vector<std::string> expected;
  for (int i = 0; i < 400; ++i) {
    const std::string key = "k" + std::to_string(1000 + i) + (i % 37 == 0 ? "-hit" : "");
    ASSERT_TRUE(backend->Store(At("t"), key, "1", std::nullopt).has_value());
    if (i % 37 == 0) expected.push_back(key);
  }
  // Expired matches are invisible to listings.
  ASSERT_TRUE(backend->Store(At("t"), "k0000-hit", "1", 1ms).has_value());
  std::this_thread::sleep_for(20ms);
  const Glob pattern = Glob::Parse("*-hit").value();
  std::vector<std::string> keys;
  std::string cursor;
  int pages = 0;
  do {
    auto page = backend->ListKeys(At("t"), pattern, 2, cursor);
    ASSERT_TRUE(page.has_value()) << page.error().message;
    EXPECT_LE(page->keys.size(), 2U);
    keys.insert(keys.end(), page->keys.begin(), page->keys.end());
    cursor = page->next_cursor;
    ASSERT_LT(++pages, 100);
  } while (!cursor.empty());
  EXPECT_EQ(keys, expected);
}

// Vertex AI's token source, shared: the test upstream plays the metadata server. The emulator
// takes "owner" (and JWTs) as bearer tokens and refuses anything else, which shows that what
// the metadata server hands out is what Firestore receives.
TEST_F(FirestoreTest, AuthorisesWithTheMetadataServersTokenAndCachesIt) {
  TestUpstream metadata({"--metadata-token", "owner"});
  FirestoreOptions o = Options();
  o.emulator_host.clear();
  o.endpoint = "http://" + emulator_->host();
  o.metadata_host = "127.0.0.1:" + std::to_string(metadata.port());
  auto backend = FirestoreBackend::Create(o);
  ASSERT_TRUE(backend->Ping(Clock::now() + 5s).has_value());
  ASSERT_TRUE(backend->Store(At("t"), "k", "1", std::nullopt).has_value());
  EXPECT_EQ(backend->Retrieve(At("t"), "k").value(), "1");
  EXPECT_EQ(metadata.Stats().at("metadata_tokens"), 1);  // fetched once, then cached

  TestUpstream wrong({"--metadata-token", "not-a-jwt"});
  o.metadata_host = "127.0.0.1:" + std::to_string(wrong.port());
  auto refused = FirestoreBackend::Create(o)->Ping(Clock::now() + 5s);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("invalid jwt"), std::string::npos)
      << refused.error().message;
}

TEST_F(FirestoreTest, WithoutAMetadataServerTheDatabaseIsUnavailable) {
  FirestoreOptions o = Options();
  o.emulator_host.clear();
  o.endpoint = "http://" + emulator_->host();
  o.metadata_host = "127.0.0.1:" + std::to_string(orchestra::testing::services::FreePort());
  auto r = FirestoreBackend::Create(o)->Ping(Clock::now() + 5s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("metadata server"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace orchestra::storage
