// The AI Orchestra API as its clients call it (issue 11), through the real binary: each request
// body copied from AI Orchestra's pydantic models with their defaults left out (and with them
// sent explicitly as null), the fields its responses carry next to Orchestra's own, its
// /health, and every bad input named in docs/API.md answered with a 4xx in the one error shape.
// Also what a new user tripped over: a second server on a taken port, embeddings from a chat
// model, models.retrieve, and models whose provider has no key.

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "integration/orchestra_process.hpp"

namespace orchestra::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

// Asserts the one error shape, the status and the param; returns the message.
std::string ExpectError(const HttpResponse& r, int status, std::string_view param) {
  EXPECT_EQ(r.status, status) << r.body;
  json::value v = r.Json();
  const json::object& top = v.as_object();
  EXPECT_EQ(top.size(), 1u) << r.body;
  const json::object& e = top.at("error").as_object();
  EXPECT_TRUE(e.at("type").is_string()) << r.body;
  EXPECT_TRUE(e.at("code").is_string()) << r.body;
  if (param.empty()) {
    EXPECT_TRUE(e.at("param").is_null()) << r.body;
  } else {
    EXPECT_EQ(e.at("param"), json::value(param)) << r.body;
  }
  return std::string(e.at("message").as_string());
}

json::object Object(const HttpResponse& r) {
  EXPECT_EQ(r.status, 200) << r.body;
  return r.Json().as_object();
}

// The keys of a JSON object, to compare response shapes.
std::set<std::string> Keys(const json::object& o) {
  std::set<std::string> keys;
  for (const auto& [k, v] : o)
    keys.emplace(k);
  return keys;
}

class AiOrchestraApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new Orchestra(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { c_ = server_->Client(); }
  HttpResponse Post(std::string_view path, std::string_view body) {
    return c_->Request("POST", path, body);
  }

  static Orchestra* server_;
  std::unique_ptr<HttpClient> c_;
};
Orchestra* AiOrchestraApi::server_ = nullptr;

// MemoryStoreRequest {key, value: Any, ttl: Optional[int] = None} → MemoryStoreResponse
// {success, key}; MemoryRetrieveRequest {key} → {key, value, exists}.
TEST_F(AiOrchestraApi, MemoryStoreAndRetrieveTakeItsBodiesAndAnswerInItsShape) {
  auto stored = Object(Post("/memory/store", R"({"key":"ao:prefs","value":{"theme":"dark"}})"));
  EXPECT_EQ(stored.at("success"), true);
  EXPECT_EQ(stored.at("key"), "ao:prefs");
  EXPECT_EQ(stored.at("stored"), true);  // Orchestra's own field stays
  // Its defaults sent explicitly, an int ttl, and values of every JSON type.
  for (std::string_view body :
       {R"({"key":"ao:null-ttl","value":"v","ttl":null})",
        R"({"key":"ao:ttl","value":[1,2],"ttl":60})", R"({"key":"ao:n","value":42})",
        R"({"key":"ao:null","value":null})"}) {
    auto r = Post("/memory/store", body);
    ASSERT_EQ(r.status, 200) << body << " " << r.body;
    EXPECT_EQ(r.Json().at("success"), true);
  }

  auto found = Object(Post("/memory/retrieve", R"({"key":"ao:prefs"})"));
  EXPECT_EQ(Keys(found), (std::set<std::string>{"key", "value", "exists"}));
  EXPECT_EQ(found.at("key"), "ao:prefs");
  EXPECT_EQ(found.at("value").at("theme"), "dark");
  EXPECT_EQ(found.at("exists"), true);
  // A missing key is 200 with exists false and value null, as AI Orchestra answers it.
  auto missing = Object(Post("/memory/retrieve", R"({"key":"ao:never-stored"})"));
  EXPECT_EQ(missing.at("key"), "ao:never-stored");
  EXPECT_TRUE(missing.at("value").is_null());
  EXPECT_EQ(missing.at("exists"), false);
  // A stored null is told apart by exists.
  auto null_value = Object(Post("/memory/retrieve", R"({"key":"ao:null"})"));
  EXPECT_TRUE(null_value.at("value").is_null());
  EXPECT_EQ(null_value.at("exists"), true);
}

TEST_F(AiOrchestraApi, MemoryDeleteAndKeysAnswerInItsShape) {
  ASSERT_EQ(Post("/memory/store", R"({"key":"del:one","value":1})").status, 200);
  auto deleted = Object(c_->Request("DELETE", "/memory/del%3Aone"));
  EXPECT_EQ(deleted.at("success"), true);
  EXPECT_EQ(deleted.at("key"), "del:one");
  EXPECT_EQ(deleted.at("deleted"), true);
  // Deleting what is not there completes too (AI Orchestra's success); `deleted` tells.
  auto again = Object(c_->Request("DELETE", "/memory/del%3Aone"));
  EXPECT_EQ(again.at("success"), true);
  EXPECT_EQ(again.at("deleted"), false);

  for (std::string_view key : {"ls:a", "ls:b", "other"})
    ASSERT_EQ(Post("/memory/store", R"({"key":")" + std::string(key) + R"(","value":0})").status,
              200);
  // GET /memory/keys?pattern=* (its default) → {keys, pattern}, plus Orchestra's paging.
  auto star = Object(c_->Request("GET", "/memory/keys?pattern=*"));
  EXPECT_EQ(star.at("pattern"), "*");
  EXPECT_TRUE(star.at("next_cursor").is_null());
  EXPECT_GE(star.at("keys").as_array().size(), 3u);
  auto absent = Object(c_->Request("GET", "/memory/keys"));
  EXPECT_EQ(absent.at("pattern"), "*");
  EXPECT_EQ(absent.at("keys"), star.at("keys"));
  auto prefix = Object(c_->Request("GET", "/memory/keys?pattern=ls%3A*"));
  EXPECT_EQ(prefix.at("pattern"), "ls:*");
  EXPECT_EQ(prefix.at("keys"), json::value(json::array{"ls:a", "ls:b"}));
}

// CheckpointCreateRequest {agent_id, state: Dict, metadata: Optional[Dict] = None} →
// {checkpoint_id, agent_id}; CheckpointRestoreRequest {agent_id, checkpoint_id = None} →
// {agent_id, checkpoint_id, state, found}; GET → {agent_id, checkpoints}; DELETE → {success, …}.
TEST_F(AiOrchestraApi, CheckpointsTakeItsBodiesAndAnswerInItsShape) {
  auto first = Object(Post("/checkpoints/create", R"({"agent_id":"ao-agent","state":{"step":1}})"));
  const std::string id1(first.at("checkpoint_id").as_string());
  EXPECT_EQ(first.at("agent_id"), "ao-agent");
  auto second =
      Object(Post("/checkpoints/create",
                  R"({"agent_id":"ao-agent","state":{"step":2},"metadata":{"why":"t"}})"));
  const std::string id2(second.at("checkpoint_id").as_string());
  auto third = Object(
      Post("/checkpoints/create", R"({"agent_id":"ao-agent","state":{"step":3},"metadata":null})"));
  const std::string id3(third.at("checkpoint_id").as_string());

  // The latest, by leaving checkpoint_id out and by sending its default.
  for (std::string_view body :
       {R"({"agent_id":"ao-agent"})", R"({"agent_id":"ao-agent","checkpoint_id":null})"}) {
    auto latest = Object(Post("/checkpoints/restore", body));
    EXPECT_EQ(latest.at("agent_id"), "ao-agent");
    EXPECT_EQ(latest.at("checkpoint_id"), json::value(id3));
    EXPECT_EQ(latest.at("state").at("step"), 3);
    EXPECT_EQ(latest.at("found"), true);
  }
  auto given = Object(
      Post("/checkpoints/restore", R"({"agent_id":"ao-agent","checkpoint_id":")" + id2 + "\"}"));
  EXPECT_EQ(given.at("state").at("step"), 2);
  EXPECT_EQ(given.at("metadata").at("why"), "t");
  auto nobody = Object(Post("/checkpoints/restore", R"({"agent_id":"ao-nobody"})"));
  EXPECT_EQ(nobody.at("found"), false);
  EXPECT_TRUE(nobody.at("state").is_null());
  EXPECT_TRUE(nobody.at("checkpoint_id").is_null());

  auto list = Object(c_->Request("GET", "/checkpoints/ao-agent"));
  EXPECT_EQ(list.at("agent_id"), "ao-agent");
  const json::array& items = list.at("checkpoints").as_array();
  ASSERT_EQ(items.size(), 3u);
  double previous = 0;
  for (const json::value& item : items) {
    // AI Orchestra's {checkpoint_id, timestamp, metadata} and Orchestra's created_at.
    const json::object& o = item.as_object();
    EXPECT_TRUE(o.at("checkpoint_id").is_string());
    EXPECT_TRUE(o.at("created_at").is_string());
    EXPECT_TRUE(o.contains("metadata"));
    const double t = o.at("timestamp").to_number<double>();
    EXPECT_GT(t, 1.7e9);
    EXPECT_GE(t, previous);
    previous = t;
  }
  EXPECT_EQ(items[0].at("checkpoint_id"), json::value(id1));

  auto deleted = Object(c_->Request("DELETE", "/checkpoints/ao-agent/" + id3));
  EXPECT_EQ(deleted.at("success"), true);
  EXPECT_EQ(deleted.at("agent_id"), "ao-agent");
  EXPECT_EQ(deleted.at("checkpoint_id"), json::value(id3));
  EXPECT_EQ(deleted.at("deleted"), true);
  auto again = Object(c_->Request("DELETE", "/checkpoints/ao-agent/" + id3));
  EXPECT_EQ(again.at("success"), true);
  EXPECT_EQ(again.at("deleted"), false);
  EXPECT_EQ(Object(Post("/checkpoints/restore", R"({"agent_id":"ao-agent"})")).at("checkpoint_id"),
            json::value(id2));
}

// The AI task endpoints with AI Orchestra's bodies, defaults left out (the lead's conversion in
// api/tasks.cpp; here as its clients call them, next to memory and checkpoints).
TEST_F(AiOrchestraApi, TaskBodiesWithTheirDefaultsLeftOut) {
  auto text = Object(Post("/generate-text", R"({"prompt":"Cats purr. What do cats do?"})"));
  EXPECT_EQ(text.at("text"), "Cats purr.");
  EXPECT_TRUE(text.at("model_id").is_string());
  auto embeddings = Object(Post("/generate-embeddings", R"({"texts":["one","two"]})"));
  EXPECT_EQ(embeddings.at("embeddings").as_array().size(), 2u);
  EXPECT_EQ(embeddings.at("model_id"), "local-embed");
  auto classified = Object(Post(
      "/classify-text", R"({"text":"please pay the invoice","categories":["invoice","weather"]})"));
  EXPECT_TRUE(classified.at("classifications").as_object().contains("invoice"));
  auto answer = Object(Post(
      "/answer-question", R"({"question":"What colour is the sky","context":"The sky is blue."})"));
  EXPECT_EQ(answer.at("answer"), "The sky is blue.");
  auto summary =
      Object(Post("/summarize-text", R"({"text":"Orchestra routes. It keeps memory."})"));
  EXPECT_TRUE(summary.at("summary").is_string());
  EXPECT_TRUE(summary.at("model_id").is_string());
  auto models = Object(c_->Request("GET", "/models"));
  EXPECT_TRUE(models.at("models").is_array());
}

TEST_F(AiOrchestraApi, HealthAndRootAnswerInItsShape) {
  auto health = c_->Request("GET", "/health");
  ASSERT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"status":"healthy"})");
  EXPECT_EQ(c_->Request("HEAD", "/health").status, 200);
  auto root = Object(c_->Request("GET", "/"));
  EXPECT_EQ(root.at("name"), "orchestra");
  EXPECT_TRUE(root.at("version").is_string());
  ExpectError(c_->Request("POST", "/health"), 405, "");
}

// Every bad input named in docs/API.md for these routes: a 4xx in the one error shape naming
// the field, and nothing changed.
TEST_F(AiOrchestraApi, BadInputIsA4xxNamingTheFieldAndChangesNothing) {
  struct Case {
    std::string_view path;
    std::string_view body;
    int status;
    std::string_view param;
  };
  const Case cases[] = {
      {"/memory/store", R"({"value":1})", 400, "key"},
      {"/memory/store", R"({"key":"bad","ttl":5})", 400, "value"},
      {"/memory/store", R"({"key":7,"value":1})", 400, "key"},
      {"/memory/store", R"({"key":"","value":1})", 400, "key"},
      {"/memory/store", R"({"key":"bad","value":1,"ttl":"60"})", 400, "ttl"},
      // AI Orchestra keeps an entry forever for ttl 0 and expires it at once for a negative
      // one; Orchestra refuses both (docs/API.md, "AI Orchestra's API").
      {"/memory/store", R"({"key":"bad","value":1,"ttl":0})", 400, "ttl"},
      {"/memory/store", R"({"key":"bad","value":1,"ttl":-5})", 400, "ttl"},
      {"/memory/store", R"({"key":"bad","value":1,"tll":5})", 400, "tll"},
      {"/memory/store", R"({"key":"bad","value":1,"key":"again"})", 400, "key"},
      {"/memory/store", R"({"key":"bad","value":)", 400, ""},
      {"/memory/store", R"(["key","bad"])", 400, ""},
      {"/memory/retrieve", R"({})", 400, "key"},
      {"/memory/retrieve", R"({"key":null})", 400, "key"},
      {"/memory/retrieve", R"({"key":"k","value":1})", 400, "value"},
      {"/checkpoints/create", R"({"state":{}})", 400, "agent_id"},
      {"/checkpoints/create", R"({"agent_id":"bad-agent"})", 400, "state"},
      {"/checkpoints/create", R"({"agent_id":"bad-agent","state":{},"metadata":[1]})", 400,
       "metadata"},
      {"/checkpoints/create", R"({"agent_id":"bad-agent","state":{},"tags":[]})", 400, "tags"},
      {"/checkpoints/restore", R"({})", 400, "agent_id"},
      {"/checkpoints/restore", R"({"agent_id":"bad-agent","checkpoint_id":5})", 400,
       "checkpoint_id"},
      // AI Orchestra's ids are UUIDs; Orchestra's are ULIDs, and anything else is refused.
      {"/checkpoints/restore",
       R"({"agent_id":"bad-agent","checkpoint_id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427"})", 400,
       "checkpoint_id"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.path) + " " + std::string(c.body));
    ExpectError(Post(c.path, c.body), c.status, c.param);
  }
  EXPECT_EQ(Object(Post("/memory/retrieve", R"({"key":"bad"})")).at("exists"), false);
  EXPECT_TRUE(
      Object(c_->Request("GET", "/checkpoints/bad-agent")).at("checkpoints").as_array().empty());

  ExpectError(c_->Request("GET", "/memory/keys?pattern=%5B"), 400, "pattern");
  ExpectError(c_->Request("GET", "/memory/keys?patern=*"), 400, "patern");
  ExpectError(c_->Request("GET", "/memory/keys?limit=0"), 400, "limit");
  ExpectError(c_->Request("DELETE", "/checkpoints/bad-agent/not-an-id"), 400, "checkpoint_id");
  ExpectError(c_->Request("DELETE", "/memory/" + std::string(513, 'k')), 400, "key");
}

// /health is public like the probes: no key needed when keys are configured.
TEST(AiOrchestraHealth, NeedsNoKey) {
  OrchestraOptions o;
  o.config_yaml = "auth:\n  keys:\n    - {name: app, key_env: TEST_APP_KEY, scopes: [user]}\n";
  o.env = {{"TEST_APP_KEY", "app-key-123456"}};
  Orchestra server(o);
  auto c = server.Client();
  EXPECT_EQ(c->Request("GET", "/health").body, R"({"status":"healthy"})");
  EXPECT_EQ(c->Request("POST", "/memory/retrieve", R"({"key":"k"})").status, 401);
}

// --- What a new user trips over --------------------------------------------------------------

// The listening sockets of `port` in /proc/net/tcp (state 0A).
int ListenersOn(std::uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  char hex[8];
  std::snprintf(hex, sizeof hex, ":%04X", port);
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (local.size() > 5 && local.substr(local.size() - 5) == hex && state == "0A") ++n;
  }
  return n;
}

TEST(SecondServer, FailsWithAddressInUseWhileOneProcessesWorkersShareThePort) {
  OrchestraOptions o;
  o.config_yaml = "server: {threads: 3}\n";
  Orchestra first(o);
  const std::uint16_t port = first.port();
  EXPECT_EQ(ListenersOn(port), 3) << "one listener per worker, all on the port";

  OrchestraOptions again = o;
  again.listen = "127.0.0.1:" + std::to_string(port);
  again.wait_until_listening = false;
  Orchestra second(again);
  EXPECT_EQ(second.process().Wait(20s), 1) << second.process().CapturedOutput();
  const std::string output = second.process().CapturedOutput();
  EXPECT_NE(output.find("Address already in use"), std::string::npos) << output;
  EXPECT_NE(output.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << output;

  // Every new connection is still the first server's, spread over its workers.
  EXPECT_EQ(ListenersOn(port), 3);
  for (int i = 0; i < 12; ++i) {
    HttpClient c("127.0.0.1", port);
    EXPECT_EQ(c.Request("GET", "/healthz").status, 200);
  }

  // Once the first has gone, the port is free at once for the next (no TIME_WAIT trouble).
  ASSERT_EQ(first.Stop(), 0);
  OrchestraOptions next = o;
  next.listen = again.listen;
  Orchestra third(next);
  EXPECT_EQ(third.port(), port);
  EXPECT_EQ(third.Client()->Request("GET", "/health").status, 200);
}

TEST(EmbeddingsApi, AChatModelIs400NamingTheModelAndAnUnknownOne404) {
  Orchestra server;
  auto c = server.Client();
  const std::string message = ExpectError(
      c->Request("POST", "/v1/embeddings", R"({"model":"local-extractive","input":"hello"})"), 400,
      "model");
  EXPECT_EQ(message, "local-extractive is a chat model and has no embeddings: use local-embed");
  ExpectError(c->Request("POST", "/generate-embeddings",
                         R"({"texts":["hello"],"model_id":"local-extractive"})"),
              400, "model");
  ExpectError(c->Request("POST", "/v1/chat/completions",
                         R"({"model":"local-embed","messages":[{"role":"user","content":"hi"}]})"),
              400, "model");
  ExpectError(c->Request("POST", "/v1/embeddings", R"({"model":"local-nope","input":"hello"})"),
              404, "model");
  EXPECT_EQ(
      c->Request("POST", "/v1/embeddings", R"({"model":"local-embed","input":"hello"})").status,
      200);
}

// GET /v1/models/{id} (the SDKs' models.retrieve) and the usable/reason fields of model objects.
TEST(ModelsApi, RetrieveAndUsabilityWithoutLeakingKeys) {
  TestUpstream upstream;
  OrchestraOptions o;
  o.config_yaml =
      "providers:\n"
      "  - {name: keyed, type: openai, base_url: '" +
      upstream.base_url() +
      "/v1', api_key_env: TEST_PRESENT_KEY}\n"
      "  - {name: keyless, type: openai, base_url: '" +
      upstream.base_url() +
      "/v1', api_key_env: TEST_ABSENT_KEY}\n"
      "models:\n"
      "  - {name: good, targets: [{provider: keyed, model: echo}]}\n"
      "  - {name: mixed, targets: [{provider: keyless, model: echo}, {provider: "
      "keyed, model: echo}]}\n"
      "  - {name: broken, targets: [{provider: keyless, model: echo}], fallbacks: "
      "[good]}\n"
      "  - {name: dead, targets: [{provider: keyless, model: echo}]}\n";
  o.env = {{"TEST_PRESENT_KEY", "sk-present-secret-123456"}};
  Orchestra server(o);
  auto c = server.Client();

  auto list = c->Request("GET", "/v1/models");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body.find("sk-present-secret"), std::string::npos);
  std::map<std::string, json::object> by_id;
  const json::value listed = list.Json();
  for (const json::value& m : listed.at("data").as_array())
    by_id[std::string(m.at("id").as_string())] = m.as_object();
  ASSERT_EQ(by_id.size(), 6u) << list.body;
  EXPECT_EQ(by_id["good"].at("usable"), true);
  EXPECT_FALSE(by_id["good"].contains("reason"));
  EXPECT_EQ(by_id["mixed"].at("usable"), true);  // one target can serve
  EXPECT_EQ(by_id["broken"].at("usable"), false);
  EXPECT_EQ(by_id["broken"].at("reason"),
            "provider keyless: environment variable TEST_ABSENT_KEY is not set (requests fall "
            "back to good)");
  EXPECT_EQ(by_id["dead"].at("reason"),
            "provider keyless: environment variable TEST_ABSENT_KEY is not set");
  EXPECT_EQ(by_id["local-embed"].at("usable"), true);

  // One model, in OpenAI's shape; the same object as in the list.
  auto one = c->Request("GET", "/v1/models/local-extractive");
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(
      one.body,
      R"({"id":"local-extractive","object":"model","created":0,"owned_by":"local","usable":true})");
  auto dead = c->Request("GET", "/v1/models/dead");
  EXPECT_EQ(dead.Json().as_object(), by_id["dead"]);
  const std::string message =
      ExpectError(c->Request("GET", "/v1/models/gpt-4o-mini"), 404, "model");
  EXPECT_NE(message.find("gpt-4o-mini"), std::string::npos);
  EXPECT_EQ(c->Request("GET", "/v1/models/gpt-4o-mini").Json().at("error").at("type"),
            "not_found_error");

  // Start-up said so in the log; the process never wrote the key anywhere.
  server.process().WaitForLine("\"model unusable until restarted\"");
  ASSERT_EQ(server.Stop(), 0);
  const std::string output = server.process().CapturedOutput();
  EXPECT_NE(output.find("\"model\":\"dead\""), std::string::npos) << output;
  EXPECT_EQ(output.find("sk-present-secret"), std::string::npos);

  // check-config warns too, on stderr, and still accepts the configuration.
  TempDir dir;
  const std::string config = dir.File("orchestra.yaml");
  std::ofstream(config) << o.config_yaml;
  CommandResult checked = RunOrchestra({"check-config", "--config", config},
                                       {{"TEST_PRESENT_KEY", "sk-present-secret-123456"}});
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_NE(checked.output.find("orchestra: warning: model 'dead' is unusable: provider keyless: "
                                "environment variable TEST_ABSENT_KEY is not set"),
            std::string::npos)
      << checked.output;
  EXPECT_EQ(checked.output.find("model 'good' is unusable"), std::string::npos);
  EXPECT_EQ(checked.output.find("sk-present-secret"), std::string::npos);
}

}  // namespace
}  // namespace orchestra::testing
