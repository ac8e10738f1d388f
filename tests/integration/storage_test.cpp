// Agent memory and checkpoints through the real binary over HTTP (issues 4 and 16), against
// SQLite, a real Redis, a real PostgreSQL and the Firestore emulator (tests/services): every
// endpoint's round trip, the error shapes, limits, TTL, tenant isolation, crash safety
// (kill -9) and failover. The Firestore tests run in one process (storage_integration_test.
// firestore) and share one emulator, each under a root collection of its own.

#include <algorithm>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
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
using Headers = std::vector<std::pair<std::string, std::string>>;

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

bool FirestoreAvailable(std::string& why) {
  return FirestoreEmulator::AvailableForTests(why);
}

// A root collection of its own for each server a test starts against the shared emulator.
std::string FreshRoot() {
  return "it" + RandomHex(6);
}

// The storage section for `backend`: SQLite in `data_dir`, the server at `url`, or for
// Firestore the root collection `url` in the emulator's project. `extra` holds more keys of the
// section, one per line.
std::string StorageYaml(Backend backend, const std::string& data_dir, const std::string& url,
                        const std::string& extra = "", int keep_last = 5) {
  std::string yaml = "storage:\n  backend: " + Name(backend) + "\n";
  if (backend == Backend::kSqlite) {
    yaml += "  path: " + data_dir + "/data/orchestra.db\n";
  } else if (backend == Backend::kFirestore) {
    yaml += "  firestore: {project: demo-orchestra, root: " + url + "}\n";
  } else {
    yaml += "  url: " + url + "\n";
  }
  yaml +=
      "  max_value_bytes: 4096\n  checkpoints: {keep_last: " + std::to_string(keep_last) + "}\n";
  yaml += extra;
  return yaml;
}

OrchestraOptions Options(const std::string& yaml) {
  OrchestraOptions o;
  o.config_yaml = "server:\n  max_body_bytes: 65536\n" + yaml;
  return o;
}

json::object Object(const HttpResponse& r) {
  json::value v = r.Json();
  EXPECT_TRUE(v.is_object()) << r.body;
  return v.is_object() ? v.as_object() : json::object();
}

// Asserts the one error shape ({"error":{message,type,code,param}} and nothing else) and returns
// error.param ("" for null).
std::string ErrorParam(const HttpResponse& r) {
  json::object top = Object(r);
  EXPECT_EQ(top.size(), 1u) << r.body;
  if (!top.contains("error")) return "<not an error>";
  const json::object& e = top.at("error").as_object();
  EXPECT_EQ(e.size(), 4u) << r.body;
  EXPECT_TRUE(e.at("message").is_string()) << r.body;
  EXPECT_TRUE(e.at("type").is_string()) << r.body;
  EXPECT_TRUE(e.at("code").is_string()) << r.body;
  EXPECT_TRUE(e.at("param").is_string() || e.at("param").is_null()) << r.body;
  return e.at("param").is_null() ? "" : std::string(e.at("param").as_string());
}

std::string Quoted(std::string_view text) {
  return json::serialize(json::string(text));
}

// A client that sends its API key (if any) with every request.
class Api {
 public:
  explicit Api(const Orchestra& server, std::string key = {}) : client_(server.Client()) {
    if (!key.empty()) headers_.push_back({"Authorization", "Bearer " + key});
  }

  HttpResponse Post(std::string_view target, std::string_view body) {
    return client_->Request("POST", target, body, headers_);
  }
  HttpResponse Get(std::string_view target) {
    return client_->Request("GET", target, "", headers_);
  }
  HttpResponse Delete(std::string_view target) {
    return client_->Request("DELETE", target, "", headers_);
  }

  void Store(const std::string& key, const std::string& value_json, const std::string& more = "") {
    auto r =
        Post("/memory/store", "{\"key\":" + Quoted(key) + ",\"value\":" + value_json + more + "}");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "{\"stored\":true,\"key\":" + Quoted(key) + ",\"success\":true}");
  }
  // The value as the server returned it (raw JSON text), or nullopt when absent.
  std::optional<std::string> Retrieve(const std::string& key) {
    auto r = Post("/memory/retrieve", "{\"key\":" + Quoted(key) + "}");
    EXPECT_EQ(r.status, 200) << r.body;
    const json::object o = Object(r);
    if (r.status != 200 || !o.contains("exists")) return std::nullopt;
    EXPECT_EQ(o.at("key"), json::value(key));
    if (!o.at("exists").as_bool()) {
      EXPECT_TRUE(o.at("value").is_null());
      return std::nullopt;
    }
    // The value's text as sent back: between "value": and ,"exists".
    const std::string prefix = "{\"key\":" + Quoted(key) + ",\"value\":";
    const std::string suffix = ",\"exists\":true}";
    EXPECT_EQ(r.body.rfind(prefix, 0), 0u) << r.body;
    EXPECT_TRUE(r.body.ends_with(suffix)) << r.body;
    return r.body.substr(prefix.size(), r.body.size() - prefix.size() - suffix.size());
  }
  // Every key matching `pattern`, following cursors with pages of `limit`.
  std::vector<std::string> Keys(const std::string& pattern_query, int limit = 1000) {
    std::vector<std::string> keys;
    std::string cursor;
    for (int page = 0; page < 1000; ++page) {
      std::string target =
          "/memory/keys?limit=" + std::to_string(limit) + "&pattern=" + pattern_query;
      if (!cursor.empty()) target += "&cursor=" + Encode(cursor);
      auto r = Get(target);
      EXPECT_EQ(r.status, 200) << target << " → " << r.body;
      if (r.status != 200) break;
      const json::object o = Object(r);
      const auto& page_keys = o.at("keys").as_array();
      EXPECT_LE(page_keys.size(), static_cast<std::size_t>(limit));
      for (const auto& k : page_keys)
        keys.emplace_back(k.as_string());
      if (o.at("next_cursor").is_null()) break;
      cursor = std::string(o.at("next_cursor").as_string());
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());  // Redis SCAN may repeat
    return keys;
  }
  std::string CreateCheckpoint(const std::string& agent, const std::string& state_json,
                               const std::string& metadata_json = "") {
    std::string body = "{\"agent_id\":" + Quoted(agent) + ",\"state\":" + state_json;
    if (!metadata_json.empty()) body += ",\"metadata\":" + metadata_json;
    auto r = Post("/checkpoints/create", body + "}");
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return {};
    const json::object o = Object(r);
    EXPECT_EQ(o.at("agent_id"), json::value(agent));
    return std::string(o.at("checkpoint_id").as_string());
  }
  // The ids of the agent's checkpoints, oldest first.
  std::vector<std::string> CheckpointIds(const std::string& agent) {
    auto r = Get("/checkpoints/" + Encode(agent));
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> ids;
    if (r.status != 200) return ids;
    const json::object list = Object(r);
    for (const auto& c : list.at("checkpoints").as_array()) {
      ids.emplace_back(c.at("checkpoint_id").as_string());
    }
    return ids;
  }
  json::object Restore(const std::string& agent, const std::string& id = "") {
    std::string body = "{\"agent_id\":" + Quoted(agent);
    if (!id.empty()) body += ",\"checkpoint_id\":" + Quoted(id);
    auto r = Post("/checkpoints/restore", body + "}");
    EXPECT_EQ(r.status, 200) << r.body;
    return Object(r);
  }

  // Percent-encodes everything but unreserved characters.
  static std::string Encode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : text) {
      const auto u = static_cast<unsigned char>(c);
      if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
        out += c;
      } else {
        out += '%';
        out += kHex[u >> 4];
        out += kHex[u & 0xF];
      }
    }
    return out;
  }

 private:
  std::unique_ptr<HttpClient> client_;
  Headers headers_;
};

std::string Metrics(const Orchestra& server) {
  auto r = server.Client()->Request("GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  return r.body;
}

// Polls `condition` every 100 ms for up to `timeout`.
template <class F>
bool Eventually(F condition, std::chrono::milliseconds timeout = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return condition();
}

// --- One behaviour, three backends -------------------------------------------------------------

// Each test has its own Redis or PostgreSQL server (ctest runs each test in its own process, so
// a shared one would cost the same), so tests never see each other's entries, even when the
// whole binary runs in one process.
class StorageApi : public ::testing::TestWithParam<Backend> {
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
      if (!FirestoreAvailable(why)) GTEST_SKIP() << why;
      emulator_host_ = FirestoreEmulator::Shared().host();
      url_ = FreshRoot();
    }
  }
  std::string Yaml(const std::string& extra = "", int keep_last = 5) {
    return StorageYaml(GetParam(), data_.path(), url_, extra, keep_last);
  }
  // The server's options; for Firestore with $FIRESTORE_EMULATOR_HOST.
  OrchestraOptions Options(const std::string& yaml) const {
    OrchestraOptions o = testing::Options(yaml);
    if (!emulator_host_.empty()) o.env["FIRESTORE_EMULATOR_HOST"] = emulator_host_;
    return o;
  }
  std::string emulator_host_;
  TempDir data_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<PostgresServer> postgres_;
  std::string url_;
};

std::string ParamName(const ::testing::TestParamInfo<Backend>& info) {
  return Name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Backends, StorageApi,
                         ::testing::Values(Backend::kSqlite, Backend::kRedis, Backend::kPostgres,
                                           Backend::kFirestore),
                         ParamName);

TEST_P(StorageApi, MemoryRoundTrip) {
  Orchestra server(Options(Yaml()));
  Api api(server);
  // Values come back byte for byte, whatever their type and spacing.
  const std::string values[] = {
      R"({ "text": "hello", "n" : [1, 2.50, -3e2], "nested": {"ok": true} })",
      R"("just a string with \"quotes\" and \u00e9")", "42", "null", R"(["é", "😀"])"};
  for (std::size_t i = 0; i < std::size(values); ++i) {
    api.Store("value:" + std::to_string(i), values[i]);
  }
  for (std::size_t i = 0; i < std::size(values); ++i) {
    EXPECT_EQ(api.Retrieve("value:" + std::to_string(i)), values[i]);
  }
  // Overwrite, delete, delete again.
  api.Store("value:0", R"({"v":2})");
  EXPECT_EQ(api.Retrieve("value:0"), R"({"v":2})");
  auto deleted = api.Delete("/memory/value%3A0");
  EXPECT_EQ(deleted.status, 200);
  EXPECT_EQ(deleted.body, R"({"deleted":true,"key":"value:0","success":true})");
  EXPECT_EQ(api.Retrieve("value:0"), std::nullopt);
  auto again = api.Delete("/memory/value%3A0");
  EXPECT_EQ(again.body, R"({"deleted":false,"key":"value:0","success":true})");
  // Keys with characters that need care in paths, globs and backends' namespaces.
  const std::string odd = "odd key/with %, *, ?, [x], \\ and ünïcode";
  api.Store(odd, "1");
  EXPECT_EQ(api.Retrieve(odd), "1");

  // Listing: patterns (percent-encoded, '+' for a space), pages and cursors.
  for (int i = 0; i < 25; ++i) {
    api.Store("user:" + std::string(i < 10 ? "0" : "") + std::to_string(i), "{}");
  }
  std::vector<std::string> users = api.Keys("user%3A*", 7);
  ASSERT_EQ(users.size(), 25u);
  EXPECT_EQ(users.front(), "user:00");
  EXPECT_EQ(users.back(), "user:24");
  EXPECT_EQ(api.Keys("user:1?"),
            (std::vector<std::string>{"user:10", "user:11", "user:12", "user:13", "user:14",
                                      "user:15", "user:16", "user:17", "user:18", "user:19"}));
  EXPECT_EQ(api.Keys("user%3A2%5B34%5D"), (std::vector<std::string>{"user:23", "user:24"}));
  EXPECT_EQ(api.Keys("odd+key*"), std::vector<std::string>{odd});
  EXPECT_EQ(api.Keys("*").size(), 25u + 4u + 1u);  // users, value:1..4, odd
  EXPECT_TRUE(api.Keys("nothing*").empty());
  // Delete through the path, percent-encoded.
  EXPECT_EQ(Object(api.Delete("/memory/" + Api::Encode(odd))).at("deleted"), true);
  EXPECT_EQ(api.Retrieve(odd), std::nullopt);

  const std::string metrics = Metrics(server);
  EXPECT_NE(metrics.find("orchestra_storage_operations_total{backend=\"" + Name(GetParam()) +
                         "\",op=\"store\",outcome=\"ok\"}"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("orchestra_http_requests_total{route=\"/memory/{key}\""),
            std::string::npos);
}

TEST_P(StorageApi, CheckpointRoundTrip) {
  Orchestra server(Options(Yaml()));
  Api api(server);
  const std::string agent = "planner/1";  // a '/' travels percent-encoded in paths
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ids.push_back(
        api.CreateCheckpoint(agent, "{\"step\": " + std::to_string(i) + "}",
                             i % 2 == 0 ? "{\"label\":\"even " + std::to_string(i) + "\"}" : ""));
  }
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  // keep_last is 5: the two oldest are gone. Oldest first.
  auto listed = api.Get("/checkpoints/" + Api::Encode(agent));
  ASSERT_EQ(listed.status, 200) << listed.body;
  const json::object list = Object(listed);
  EXPECT_EQ(list.at("agent_id"), json::value(agent));
  const json::array& items = list.at("checkpoints").as_array();
  ASSERT_EQ(items.size(), 5u) << listed.body;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const json::object& item = items[i].as_object();
    EXPECT_EQ(item.at("checkpoint_id"), json::value(ids[i + 2]));
    const std::string created(item.at("created_at").as_string());
    EXPECT_EQ(created.size(), 24u) << created;  // 2025-01-31T12:34:56.789Z
    EXPECT_EQ(created[10], 'T');
    EXPECT_EQ(created.back(), 'Z');
    if ((i + 2) % 2 == 0) {
      EXPECT_EQ(item.at("metadata").at("label"), json::value("even " + std::to_string(i + 2)));
    } else {
      EXPECT_TRUE(item.at("metadata").is_null());
    }
  }
  // Latest, a given one, and a dropped one.
  json::object latest = api.Restore(agent);
  EXPECT_EQ(latest.at("found"), true);
  EXPECT_EQ(latest.at("checkpoint_id"), json::value(ids[6]));
  EXPECT_EQ(latest.at("state").at("step"), 6);
  EXPECT_EQ(latest.at("metadata").at("label"), "even 6");
  auto raw = api.Post("/checkpoints/restore",
                      "{\"agent_id\":" + Quoted(agent) + ",\"checkpoint_id\":\"" + ids[3] + "\"}");
  EXPECT_NE(raw.body.find(R"("state":{"step": 3},"found":true)"), std::string::npos) << raw.body;
  json::object dropped = api.Restore(agent, ids[0]);
  EXPECT_EQ(dropped.at("found"), false);
  EXPECT_TRUE(dropped.at("state").is_null());
  // Delete, then the next-latest is restored.
  auto deleted = api.Delete("/checkpoints/" + Api::Encode(agent) + "/" + ids[6]);
  EXPECT_EQ(deleted.status, 200);
  EXPECT_EQ(deleted.body, "{\"deleted\":true,\"agent_id\":" + Quoted(agent) +
                              ",\"checkpoint_id\":\"" + ids[6] + "\",\"success\":true}");
  EXPECT_EQ(Object(api.Delete("/checkpoints/" + Api::Encode(agent) + "/" + ids[6])).at("deleted"),
            false);
  EXPECT_EQ(api.Restore(agent).at("checkpoint_id"), json::value(ids[5]));
  // An agent without checkpoints.
  EXPECT_TRUE(api.CheckpointIds("nobody").empty());
  json::object none = api.Restore("nobody");
  EXPECT_EQ(none.at("found"), false);
  EXPECT_TRUE(none.at("checkpoint_id").is_null());
}

TEST_P(StorageApi, LimitsAreEnforcedAndChangeNothing) {
  Orchestra server(Options(Yaml()));
  Api api(server);
  // Keys up to 512 bytes, counted in bytes.
  const std::string longest(512, 'k');
  api.Store(longest, "1");
  EXPECT_EQ(api.Retrieve(longest), "1");
  std::string wide;
  for (int i = 0; i < 256; ++i)
    wide += "é";
  api.Store(wide, "2");
  EXPECT_EQ(api.Retrieve(wide), "2");
  auto too_long = api.Post("/memory/store", "{\"key\":\"" + longest + "x\",\"value\":1}");
  EXPECT_EQ(too_long.status, 400);
  EXPECT_EQ(ErrorParam(too_long), "key");
  EXPECT_EQ(api.Delete("/memory/" + longest + "x").status, 400);

  // Values up to storage.max_value_bytes (4096 here), counted as sent.
  const std::string biggest = "\"" + std::string(4094, 'v') + "\"";
  api.Store("big", biggest);
  EXPECT_EQ(api.Retrieve("big"), biggest);
  auto too_big =
      api.Post("/memory/store", "{\"key\":\"big\",\"value\":\"" + std::string(4095, 'w') + "\"}");
  EXPECT_EQ(too_big.status, 413);
  EXPECT_EQ(ErrorParam(too_big), "value");
  EXPECT_EQ(api.Retrieve("big"), biggest);  // unchanged

  const std::string big_state = "{\"s\":\"" + std::string(4100, 's') + "\"}";
  auto state = api.Post("/checkpoints/create", "{\"agent_id\":\"a\",\"state\":" + big_state + "}");
  EXPECT_EQ(state.status, 413);
  EXPECT_EQ(ErrorParam(state), "state");
  auto metadata = api.Post("/checkpoints/create",
                           "{\"agent_id\":\"a\",\"state\":{},\"metadata\":" + big_state + "}");
  EXPECT_EQ(metadata.status, 413);
  EXPECT_EQ(ErrorParam(metadata), "metadata");
  EXPECT_TRUE(api.CheckpointIds("a").empty());

  // The whole body is bounded by server.max_body_bytes (64 KiB here) before any of this.
  auto huge =
      api.Post("/memory/store", "{\"key\":\"big\",\"value\":\"" + std::string(70000, 'h') + "\"}");
  EXPECT_EQ(huge.status, 413);
  EXPECT_EQ(ErrorParam(huge), "");
  EXPECT_EQ(api.Retrieve("big"), biggest);
}

TEST_P(StorageApi, ExpiredEntriesDisappear) {
  Orchestra server(Options(Yaml("  sweep_interval: 300ms\n")));
  Api api(server);
  api.Store("short", "\"s\"", ",\"ttl\":1");
  api.Store("fraction", "\"f\"", ",\"ttl\":0.3");
  api.Store("long", "\"l\"", ",\"ttl\":3600");
  api.Store("forever", "\"v\"");
  // Stored with a TTL, then overwritten without one: it no longer expires.
  api.Store("renewed", "1", ",\"ttl\":1");
  api.Store("renewed", "2");
  EXPECT_EQ(api.Retrieve("long"), "\"l\"");
  // No tight timing: wait as long as a noisy machine needs for the 1 s entries to go.
  EXPECT_TRUE(Eventually([&] { return !api.Retrieve("short") && !api.Retrieve("fraction"); }))
      << "entries with a TTL did not expire";
  EXPECT_EQ(api.Keys("*"), (std::vector<std::string>{"forever", "long", "renewed"}));
  EXPECT_EQ(api.Retrieve("renewed"), "2");
  EXPECT_EQ(api.Retrieve("forever"), "\"v\"");
  EXPECT_EQ(Object(api.Delete("/memory/short")).at("deleted"), false);
}

TEST_P(StorageApi, TenantsNeverSeeEachOthersEntries) {
  OrchestraOptions o = Options(Yaml() + R"(
auth:
  keys:
    - {name: team, key_env: TEST_TEAM_KEY, scopes: [user]}
    - {name: "team:x", key_env: TEST_TEAM_X_KEY, scopes: [user]}
    - {name: ops, key_env: TEST_OPS_KEY, scopes: [admin]}
    - {name: nothing, key_env: TEST_NOTHING_KEY, scopes: []}
)");
  o.env.insert({{"TEST_TEAM_KEY", "team-key-1"},
                {"TEST_TEAM_X_KEY", "team-x-key-2"},
                {"TEST_OPS_KEY", "ops-key-3"},
                {"TEST_NOTHING_KEY", "nothing-key-4"}});
  Orchestra server(o);
  // Tenant names chosen so that a naive "tenant:key" namespace would collide.
  Api team(server, "team-key-1");
  Api team_x(server, "team-x-key-2");
  team.Store("x:shared", "\"team's\"");
  team_x.Store("shared", "\"team:x's\"");
  team.Store("only-team", "1");
  EXPECT_EQ(team.Retrieve("x:shared"), "\"team's\"");
  EXPECT_EQ(team.Retrieve("shared"), std::nullopt);
  EXPECT_EQ(team_x.Retrieve("shared"), "\"team:x's\"");
  EXPECT_EQ(team_x.Retrieve("x:shared"), std::nullopt);
  EXPECT_EQ(team_x.Retrieve("only-team"), std::nullopt);

  EXPECT_EQ(team.Keys("*"), (std::vector<std::string>{"only-team", "x:shared"}));
  EXPECT_EQ(team_x.Keys("*"), std::vector<std::string>{"shared"});
  // Patterns that try to reach outside the namespace find nothing more.
  for (const char* pattern : {"*team*", "..%2F*", "*%3A*", "%5C*", "%2A%3Ashared", "[a-z]*"}) {
    for (const std::string& key : team_x.Keys(pattern)) {
      EXPECT_EQ(key, "shared") << pattern;
    }
  }
  EXPECT_EQ(Object(team_x.Delete("/memory/only-team")).at("deleted"), false);
  EXPECT_EQ(team.Retrieve("only-team"), "1");

  const std::string id = team.CreateCheckpoint("agent", "{\"owner\":\"team\"}");
  EXPECT_TRUE(team_x.CheckpointIds("agent").empty());
  EXPECT_EQ(team_x.Restore("agent").at("found"), false);
  EXPECT_EQ(team_x.Restore("agent", id).at("found"), false);
  EXPECT_EQ(Object(team_x.Delete("/checkpoints/agent/" + id)).at("deleted"), false);
  EXPECT_EQ(team.CheckpointIds("agent"), std::vector<std::string>{id});

  // An admin key is a tenant of its own too.
  Api ops(server, "ops-key-3");
  EXPECT_EQ(ops.Retrieve("shared"), std::nullopt);
  EXPECT_TRUE(ops.Keys("*").empty());

  // Without a key there is no tenant at all; a key without a scope may not use storage.
  auto anonymous = server.Client()->Request("POST", "/memory/retrieve", R"({"key":"shared"})");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(ErrorParam(anonymous), "");
  auto unscoped = Api(server, "nothing-key-4").Post("/memory/retrieve", R"({"key":"shared"})");
  EXPECT_EQ(unscoped.status, 403);
  EXPECT_EQ(ErrorParam(unscoped), "");
}

// An acknowledged write (a 200) survives kill -9 of the server (DESIGN.md §6).
TEST_P(StorageApi, AcknowledgedWritesSurviveKill9) {
  const OrchestraOptions options = Options(Yaml("", 100000));
  auto server = std::make_unique<Orchestra>(options);
  const std::uint16_t port = server->port();

  struct Acked {
    std::vector<std::pair<std::string, std::string>> entries;      // key, value
    std::vector<std::pair<std::string, std::string>> checkpoints;  // id, state
  };
  constexpr int kWriters = 4;
  std::vector<Acked> acked(kWriters);
  std::atomic<int> total{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpClient client("127.0.0.1", port);
      client.set_timeout(10s);
      const std::string agent = "agent-" + std::to_string(w);
      try {
        for (int i = 0;; ++i) {
          const std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
          const std::string value = "{\"w\":" + std::to_string(w) + ",\"i\":" + std::to_string(i) +
                                    ",\"pad\":\"" + std::string(100, 'p') + "\"}";
          auto r = client.Request("POST", "/memory/store",
                                  "{\"key\":\"" + key + "\",\"value\":" + value + "}");
          if (r.status != 200 || !r.complete) break;
          acked[w].entries.emplace_back(key, value);
          ++total;
          if (i % 2 == 0) {
            const std::string state = "{\"i\":" + std::to_string(i) + "}";
            auto c = client.Request("POST", "/checkpoints/create",
                                    "{\"agent_id\":\"" + agent + "\",\"state\":" + state + "}");
            if (c.status != 200 || !c.complete) break;
            acked[w].checkpoints.emplace_back(
                std::string(json::parse(c.body).at("checkpoint_id").as_string()), state);
            ++total;
          }
        }
      } catch (const std::exception&) {
        // The server died under the request: that write was not acknowledged.
      }
    });
  }
  // Kill it mid-stream, once a few hundred writes were acknowledged.
  Eventually([&] { return total.load() >= 300; }, 20s);
  server->process().Signal(SIGKILL);
  EXPECT_EQ(server->process().Wait(10s), 128 + SIGKILL);
  for (auto& t : writers)
    t.join();
  ASSERT_GE(total.load(), 100);

  // Restart on the same data and find every acknowledged write.
  server = std::make_unique<Orchestra>(options);
  Api api(*server);
  std::size_t entries = 0;
  std::size_t checkpoints = 0;
  for (int w = 0; w < kWriters; ++w) {
    for (const auto& [key, value] : acked[w].entries) {
      ASSERT_EQ(api.Retrieve(key), value) << "acknowledged entry lost: " << key;
      ++entries;
    }
    const std::vector<std::string> ids = api.CheckpointIds("agent-" + std::to_string(w));
    const std::set<std::string> present(ids.begin(), ids.end());
    for (const auto& [id, state] : acked[w].checkpoints) {
      ASSERT_TRUE(present.contains(id)) << "acknowledged checkpoint lost: " << id;
      ++checkpoints;
    }
    if (!acked[w].checkpoints.empty()) {
      const auto& [id, state] = acked[w].checkpoints.back();
      auto r = api.Post("/checkpoints/restore", "{\"agent_id\":\"agent-" + std::to_string(w) +
                                                    "\",\"checkpoint_id\":\"" + id + "\"}");
      EXPECT_NE(r.body.find("\"state\":" + state + ","), std::string::npos) << r.body;
    }
  }
  EXPECT_GT(entries, 0u);
  EXPECT_GT(checkpoints, 0u);
}

// --- Errors (the same code for every backend: SQLite) ----------------------------------------

TEST(StorageApiErrors, EveryBadRequestIsA4xxInTheErrorShapeAndChangesNothing) {
  TempDir data;
  Orchestra server(Options(StorageYaml(Backend::kSqlite, data.path(), "")));
  Api api(server);
  api.Store("seed", R"({"v":1})");
  const std::string id = api.CreateCheckpoint("agent", R"({"s":1})");
  auto snapshot = [&] {
    return std::make_tuple(api.Keys("*"), api.Retrieve("seed"), api.CheckpointIds("agent"),
                           api.Get("/checkpoints/agent").body);
  };
  const auto before = snapshot();

  struct Case {
    const char* method;
    std::string target;
    std::string body;
    int status;
    std::string param;  // "" = null
  };
  const std::string bad_id = "01ARZ3NDEKTSV4RRFFQ69G5FA!";
  const std::vector<Case> cases = {
      // Malformed bodies.
      {"POST", "/memory/store", "", 400, ""},
      {"POST", "/memory/store", "not json", 400, ""},
      {"POST", "/memory/store", R"({"key":"seed","value":{"v":2})", 400, ""},
      {"POST", "/memory/store", R"([{"key":"seed","value":2}])", 400, ""},
      {"POST", "/memory/store", "{\"key\":\"seed\",\"value\":\"\xc3\x28\"}", 400, ""},
      {"POST", "/memory/store", R"({"key":"seed","value":2}{})", 400, ""},
      // Missing, wrong-typed, unknown or repeated fields.
      {"POST", "/memory/store", R"({"value":2})", 400, "key"},
      {"POST", "/memory/store", R"({"key":7,"value":2})", 400, "key"},
      {"POST", "/memory/store", R"({"key":"","value":2})", 400, "key"},
      {"POST", "/memory/store", R"({"key":"a\u0000b","value":2})", 400, "key"},
      {"POST", "/memory/store", R"({"key":"seed"})", 400, "value"},
      {"POST", "/memory/store", R"({"key":"seed","value":2,"ttl":"10"})", 400, "ttl"},
      {"POST", "/memory/store", R"({"key":"seed","value":2,"ttl":0})", 400, "ttl"},
      {"POST", "/memory/store", R"({"key":"seed","value":2,"ttl":-1})", 400, "ttl"},
      {"POST", "/memory/store", R"({"key":"seed","value":2,"ttl":1e300})", 400, "ttl"},
      {"POST", "/memory/store", R"({"key":"seed","value":2,"expires":10})", 400, "expires"},
      {"POST", "/memory/store", R"({"key":"seed","value":2,"key":"other"})", 400, "key"},
      {"POST", "/memory/retrieve", R"({})", 400, "key"},
      {"POST", "/memory/retrieve", R"({"key":["seed"]})", 400, "key"},
      {"POST", "/memory/retrieve", R"({"key":"seed","value":1})", 400, "value"},
      // Listing parameters.
      {"GET", "/memory/keys?limit=0", "", 400, "limit"},
      {"GET", "/memory/keys?limit=1001", "", 400, "limit"},
      {"GET", "/memory/keys?limit=ten", "", 400, "limit"},
      {"GET", "/memory/keys?pattern=%5Bz-a%5D", "", 400, "pattern"},
      {"GET", "/memory/keys?pattern=abc%5C", "", 400, "pattern"},
      {"GET", "/memory/keys?pattern=%ZZ", "", 400, "pattern"},
      {"GET", "/memory/keys?cursor=not-a-cursor", "", 400, "cursor"},
      {"GET", "/memory/keys?prefix=a", "", 400, "prefix"},
      {"GET", "/memory/keys?limit=1&limit=2", "", 400, "limit"},
      // Checkpoints.
      {"POST", "/checkpoints/create", R"({"state":{}})", 400, "agent_id"},
      {"POST", "/checkpoints/create", R"({"agent_id":"agent"})", 400, "state"},
      {"POST", "/checkpoints/create", R"({"agent_id":"agent","state":{},"metadata":"x"})", 400,
       "metadata"},
      {"POST", "/checkpoints/create", R"({"agent_id":"agent","state":{},"tags":[]})", 400, "tags"},
      {"POST", "/checkpoints/restore", R"({"agent_id":"agent","checkpoint_id":"nope"})", 400,
       "checkpoint_id"},
      {"POST", "/checkpoints/restore", R"({"agent_id":"agent","checkpoint_id":12})", 400,
       "checkpoint_id"},
      {"POST", "/checkpoints/restore", R"({"checkpoint_id":null})", 400, "agent_id"},
      {"DELETE", "/checkpoints/agent/" + bad_id, "", 400, "checkpoint_id"},
      {"DELETE", "/checkpoints/agent/" + id.substr(0, 20), "", 400, "checkpoint_id"},
      {"DELETE", "/checkpoints/" + std::string(513, 'a') + "/" + id, "", 400, "agent_id"},
      {"GET", "/checkpoints/" + std::string(513, 'a'), "", 400, "agent_id"},
      {"DELETE", "/memory/%FF", "", 400, "key"},
      // Routes and methods.
      {"GET", "/memory/store", "", 405, ""},
      {"PUT", "/memory/seed", "", 405, ""},
      {"POST", "/checkpoints/agent", "", 405, ""},
      {"GET", "/memory", "", 404, ""},
      {"DELETE", "/memory/", "", 404, ""},
      // Over server.max_body_bytes.
      {"POST", "/checkpoints/create", std::string(70000, ' '), 413, ""},
  };
  for (const Case& c : cases) {
    auto client = server.Client();
    auto r = client->Request(c.method, c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target.substr(0, 80) << " "
                                  << c.body.substr(0, 80) << " → " << r.body;
    EXPECT_EQ(ErrorParam(r), c.param)
        << c.method << " " << c.target.substr(0, 80) << " " << c.body.substr(0, 80);
  }
  EXPECT_EQ(snapshot(), before);
}

// --- Failover ----------------------------------------------------------------------------------

// Redis as the primary, SQLite as the secondary: the primary dies under load and every request
// keeps succeeding; /readyz and /metrics say so; calls go back once it answers again.
TEST(StorageApiFailover, RequestsKeepSucceedingWhenThePrimaryDies) {
  RedisServer primary;
  TempDir data;
  Orchestra server(Options("storage:\n  backend: redis\n  url: " + primary.url() +
                           "\n  operation_timeout: 2s\n  secondary:\n    backend: sqlite\n"
                           "    path: " +
                           data.path() + "/secondary.db\n"));
  Api api(server);
  api.Store("before", "1");
  EXPECT_NE(Metrics(server).find("orchestra_storage_failover_active 0"), std::string::npos);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::vector<std::string> failures;
  std::mutex failures_mutex;
  std::vector<std::thread> load;
  for (int t = 0; t < 3; ++t) {
    load.emplace_back([&, t] {
      HttpClient client("127.0.0.1", server.port());
      client.set_timeout(10s);
      for (int i = 0; !stop.load(); ++i) {
        const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        const std::pair<std::string, std::string> requests[] = {
            {"/memory/store", "{\"key\":\"" + key + "\",\"value\":" + std::to_string(i) + "}"},
            {"/memory/retrieve", "{\"key\":\"" + key + "\"}"},
            {"/checkpoints/create", "{\"agent_id\":\"" + key + "\",\"state\":{}}"},
        };
        for (const auto& [target, body] : requests) {
          try {
            auto r = client.Request("POST", target, body);
            if (r.status == 200) {
              ++ok;
              continue;
            }
            std::lock_guard lock(failures_mutex);
            failures.push_back(target + " → " + std::to_string(r.status) + " " + r.body);
          } catch (const std::exception& e) {
            std::lock_guard lock(failures_mutex);
            failures.push_back(target + " → " + e.what());
          }
          ++failed;
        }
      }
    });
  }
  Eventually([&] { return ok.load() >= 60; });
  primary.Stop();  // SIGKILL
  const int at_outage = ok.load();
  EXPECT_TRUE(Eventually([&] { return ok.load() >= at_outage + 150; }, 30s))
      << "requests stalled after the primary died";
  stop = true;
  for (auto& t : load)
    t.join();
  EXPECT_EQ(failed.load(), 0) << (failures.empty() ? "" : failures.front());

  auto ready = api.Get("/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_NE(ready.body.find("failover active"), std::string::npos) << ready.body;
  EXPECT_NE(ready.body.find("primary redis: down"), std::string::npos) << ready.body;
  EXPECT_NE(Metrics(server).find("orchestra_storage_failover_active 1"), std::string::npos);
  // Served by the secondary now: what was written before the outage is not there.
  api.Store("during", "2");
  EXPECT_EQ(api.Retrieve("during"), "2");
  EXPECT_EQ(api.Retrieve("before"), std::nullopt);

  // The primary comes back (empty: this Redis keeps nothing); calls go back to it.
  primary.Start();
  EXPECT_TRUE(Eventually([&] {
    return Metrics(server).find("orchestra_storage_failover_active 0") != std::string::npos;
  })) << "no failback";
  auto back = api.Get("/readyz");
  EXPECT_EQ(back.status, 200);
  EXPECT_EQ(back.body.find("failover active"), std::string::npos) << back.body;
  EXPECT_EQ(api.Retrieve("during"), std::nullopt);  // written to the secondary only
  api.Store("after", "3");
  EXPECT_EQ(api.Retrieve("after"), "3");
}

// Firestore as the primary (the emulator), SQLite as the secondary, and a second server on the
// same database without a secondary. The emulator is killed under load: the first server keeps
// every request succeeding and /readyz says it failed over; the second turns not ready and
// answers 503. The emulator comes back (empty: it keeps nothing): both serve from it again.
TEST(FirestoreFailover, ReadinessAndFailoverFollowTheEmulatorDownAndBack) {
  std::string why;
  if (!FirestoreAvailable(why)) GTEST_SKIP() << why;
  FirestoreEmulator& emulator = FirestoreEmulator::Shared();
  struct Restart {  // the emulator is shared with the other tests of this process
    FirestoreEmulator& e;
    ~Restart() { e.Start(); }
  } restart{emulator};
  TempDir data;
  const std::string root = FreshRoot();
  const std::string firestore =
      "storage:\n  backend: firestore\n  firestore: {project: "
      "demo-orchestra, root: " +
      root + "}\n  operation_timeout: 2s\n";
  OrchestraOptions with_secondary =
      Options(firestore + "  secondary:\n    backend: sqlite\n    path: " + data.path() +
              "/secondary.db\n");
  with_secondary.env["FIRESTORE_EMULATOR_HOST"] = emulator.host();
  OrchestraOptions alone = Options(firestore);
  alone.env["FIRESTORE_EMULATOR_HOST"] = emulator.host();
  Orchestra server(with_secondary);
  Orchestra lone(alone);
  Api api(server);
  Api lone_api(lone);
  api.Store("before", "1");
  EXPECT_EQ(lone_api.Retrieve("before"), "1");  // one database behind both
  EXPECT_EQ(lone_api.Get("/readyz").status, 200);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::vector<std::string> failures;
  std::mutex failures_mutex;
  std::vector<std::thread> load;
  for (int t = 0; t < 2; ++t) {
    load.emplace_back([&, t] {
      HttpClient client("127.0.0.1", server.port());
      client.set_timeout(10s);
      for (int i = 0; !stop.load(); ++i) {
        const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        const std::pair<std::string, std::string> requests[] = {
            {"/memory/store", "{\"key\":\"" + key + "\",\"value\":" + std::to_string(i) + "}"},
            {"/memory/retrieve", "{\"key\":\"" + key + "\"}"},
            {"/checkpoints/create", "{\"agent_id\":\"" + key + "\",\"state\":{}}"},
        };
        for (const auto& [target, body] : requests) {
          try {
            auto r = client.Request("POST", target, body);
            if (r.status == 200) {
              ++ok;
              continue;
            }
            std::lock_guard lock(failures_mutex);
            failures.push_back(target + " → " + std::to_string(r.status) + " " + r.body);
          } catch (const std::exception& e) {
            std::lock_guard lock(failures_mutex);
            failures.push_back(target + " → " + e.what());
          }
          ++failed;
        }
      }
    });
  }
  Eventually([&] { return ok.load() >= 60; });
  emulator.Stop();  // SIGKILL to gcloud, its shell and the JVM
  const int at_outage = ok.load();
  EXPECT_TRUE(Eventually([&] { return ok.load() >= at_outage + 150; }, 30s))
      << "requests stalled after the emulator died";
  stop = true;
  for (auto& t : load)
    t.join();
  EXPECT_EQ(failed.load(), 0) << (failures.empty() ? "" : failures.front());

  auto ready = api.Get("/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_NE(ready.body.find("failover active"), std::string::npos) << ready.body;
  EXPECT_NE(ready.body.find("primary firestore: down"), std::string::npos) << ready.body;
  EXPECT_NE(Metrics(server).find("orchestra_storage_failover_active 1"), std::string::npos);
  api.Store("during", "2");
  EXPECT_EQ(api.Retrieve("during"), "2");
  // Without a secondary: not ready, and storage calls are 503.
  auto lone_ready = lone_api.Get("/readyz");
  EXPECT_EQ(lone_ready.status, 503) << lone_ready.body;
  EXPECT_NE(lone_ready.body.find("primary firestore: down"), std::string::npos) << lone_ready.body;
  auto refused = lone_api.Post("/memory/store", R"({"key":"k","value":1})");
  EXPECT_EQ(refused.status, 503) << refused.body;

  emulator.Start();
  EXPECT_TRUE(Eventually(
      [&] {
        return Metrics(server).find("orchestra_storage_failover_active 0") != std::string::npos;
      },
      30s))
      << "no failback";
  auto back = api.Get("/readyz");
  EXPECT_EQ(back.status, 200);
  EXPECT_EQ(back.body.find("failover active"), std::string::npos) << back.body;
  EXPECT_EQ(api.Retrieve("during"), std::nullopt);  // written to the secondary only
  api.Store("after", "3");
  EXPECT_EQ(api.Retrieve("after"), "3");
  EXPECT_TRUE(Eventually([&] { return lone_api.Get("/readyz").status == 200; }));
  EXPECT_EQ(lone_api.Retrieve("after"), "3");
}

// --- Shutdown ----------------------------------------------------------------------------------

// A storage call still blocked when the drain timeout runs out (Redis frozen mid-call) finishes
// before the event loops it reports back to are destroyed: the process exits 0, and the ASan
// build would report the use after free if it did not.
TEST(StorageApiShutdown, ExitsCleanlyWhileAStorageCallIsStillBlocked) {
  RedisServer redis;
  Orchestra server(Options("  drain_timeout: 200ms\nstorage:\n  backend: redis\n  url: " +
                           redis.url() + "\n  operation_timeout: 2s\n"));
  Api api(server);
  api.Store("before", "1");

  redis.Pause();
  std::thread blocked([&] {
    HttpClient client("127.0.0.1", server.port());
    client.set_timeout(10s);
    try {
      client.Request("POST", "/memory/store", R"({"key":"during","value":2})");
    } catch (const std::exception&) {
      // The server may close the connection while it stops.
    }
  });
  std::this_thread::sleep_for(400ms);  // the call waits on the storage pool for Redis
  const std::optional<int> status = server.Stop();
  redis.Resume();
  blocked.join();
  ASSERT_TRUE(status.has_value()) << "did not exit";
  EXPECT_EQ(*status, 0);
}

}  // namespace
}  // namespace orchestra::testing
