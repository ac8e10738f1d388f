// Virtual API keys through the real binary (issue 13) on SQLite, a real Redis and a real
// PostgreSQL (tests/services): the admin API's whole life cycle of a key, its refusals in the
// one error shape, a key's models, revocation reaching a second instance sharing the backend
// within a second, a restart keeping the keys, tenants kept apart, and no secret in a listing,
// a log line or a metric.

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "integration/orchestra_process.hpp"
#include "services/postgres_server.hpp"
#include "services/redis_server.hpp"

namespace orchestra::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using services::PostgresServer;
using services::RedisServer;
using Headers = std::vector<std::pair<std::string, std::string>>;

enum class Backend { kSqlite, kRedis, kPostgres };

std::string Name(Backend b) {
  switch (b) {
    case Backend::kSqlite:
      return "sqlite";
    case Backend::kRedis:
      return "redis";
    case Backend::kPostgres:
      return "postgres";
  }
  return "?";
}

constexpr const char* kAdminSecret = "admin-secret-for-tests";
constexpr const char* kUserSecret = "user-secret-for-tests";

json::object Object(const HttpResponse& r) {
  json::value v = r.Json();
  EXPECT_TRUE(v.is_object()) << r.body;
  return v.is_object() ? v.as_object() : json::object();
}

// The one error shape; returns {code, param}.
std::pair<std::string, std::string> ErrorOf(const HttpResponse& r) {
  json::object top = Object(r);
  if (!top.contains("error")) return {"<not an error>", ""};
  const json::object& e = top.at("error").as_object();
  EXPECT_EQ(e.size(), 4u) << r.body;
  return {std::string(e.at("code").as_string()),
          e.at("param").is_null() ? "" : std::string(e.at("param").as_string())};
}

Headers Auth(const std::string& secret) {
  return {{"Authorization", "Bearer " + secret}};
}

class Keys : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kRedis) {
      redis_ = std::make_unique<RedisServer>();
      url_ = redis_->url();
    } else if (GetParam() == Backend::kPostgres) {
      postgres_ = std::make_unique<PostgresServer>();
      url_ = postgres_->url();
    }
  }

  OrchestraOptions Options() const {
    std::string yaml =
        "auth:\n  keys:\n"
        "    - {name: ops, key_env: TEST_ADMIN_KEY, scopes: [admin]}\n"
        "    - {name: app, key_env: TEST_USER_KEY, scopes: [user]}\n"
        "storage:\n  backend: " +
        Name(GetParam()) + "\n";
    if (GetParam() == Backend::kSqlite) {
      yaml += "  path: " + data_.path() + "/orchestra.db\n";
    } else {
      yaml += "  url: " + url_ + "\n";
    }
    OrchestraOptions o;
    o.config_yaml = yaml;
    o.env = {{"TEST_ADMIN_KEY", kAdminSecret}, {"TEST_USER_KEY", kUserSecret}};
    return o;
  }

  // Creates a key through the admin API; returns the response object (with "key").
  json::object Create(Orchestra& server, const std::string& body) {
    auto r = server.Client()->Request("POST", "/admin/keys", body, Auth(kAdminSecret));
    EXPECT_EQ(r.status, 200u) << r.body;
    return Object(r);
  }

  TempDir data_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<PostgresServer> postgres_;
  std::string url_;
};

std::string ParamName(const ::testing::TestParamInfo<Backend>& info) {
  return Name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Backends, Keys,
                         ::testing::Values(Backend::kSqlite, Backend::kRedis, Backend::kPostgres),
                         ParamName);

TEST_P(Keys, LifeCycleThroughTheAdminApi) {
  Orchestra server(Options());
  auto c = server.Client();
  const std::string create =
      R"({"name":"team-a","scopes":["user"],"models":["local-extractive"],
          "limits":{"rpm":600,"per_model":{"local-extractive":{"tpm":5000}}},
          "budget":{"usd":10,"period":"month"},"metadata":{"owner":"ana"}})";

  // Only the admin scope manages keys.
  auto anonymous = c->Request("POST", "/admin/keys", create);
  EXPECT_EQ(anonymous.status, 401u) << anonymous.body;
  auto user = c->Request("POST", "/admin/keys", create, Auth(kUserSecret));
  EXPECT_EQ(user.status, 403u) << user.body;
  EXPECT_EQ(ErrorOf(user).first, "permission_denied");
  EXPECT_EQ(c->Request("GET", "/admin/keys", "", Auth(kUserSecret)).status, 403u);

  json::object key = Create(server, create);
  const std::string secret(key.at("key").as_string());
  const std::string id(key.at("id").as_string());
  EXPECT_EQ(secret.rfind("ok-", 0), 0u);
  EXPECT_GE(secret.size(), 3u + 43u);
  EXPECT_EQ(key.at("name"), "team-a");
  EXPECT_EQ(key.at("tenant"), "team-a");
  EXPECT_EQ(key.at("limits").at("rpm"), 600);
  EXPECT_EQ(key.at("limits").at("per_model").at("local-extractive").at("tpm"), 5000);
  EXPECT_EQ(key.at("budget").at("period"), "month");
  EXPECT_EQ(key.at("metadata").at("owner"), "ana");

  // Listed and read back, never with the secret.
  auto list = c->Request("GET", "/admin/keys", "", Auth(kAdminSecret));
  ASSERT_EQ(list.status, 200u) << list.body;
  EXPECT_EQ(list.body.find(secret), std::string::npos);
  EXPECT_EQ(list.body.find("\"key\""), std::string::npos);
  json::object listing = Object(list);
  ASSERT_EQ(listing.at("data").as_array().size(), 1u);
  EXPECT_EQ(listing.at("data").as_array()[0].at("id"), id.c_str());
  EXPECT_EQ(listing.at("has_more"), false);
  auto one = c->Request("GET", "/admin/keys/" + id, "", Auth(kAdminSecret));
  ASSERT_EQ(one.status, 200u) << one.body;
  EXPECT_EQ(one.body.find(secret), std::string::npos);

  // The key works, for its models only.
  auto chat = c->Request(
      "POST", "/v1/chat/completions",
      R"({"model":"local-extractive","messages":[{"role":"system","content":"Paris is the capital of France."},{"role":"user","content":"What is the capital of France?"}]})",
      Auth(secret));
  EXPECT_EQ(chat.status, 200u) << chat.body;
  auto other =
      c->Request("POST", "/v1/embeddings", R"({"model":"local-embed","input":"hi"})", Auth(secret));
  EXPECT_EQ(other.status, 403u) << other.body;
  EXPECT_EQ(ErrorOf(other), (std::pair<std::string, std::string>{"model_not_allowed", "model"}));
  EXPECT_NE(other.body.find("local-embed"), std::string::npos);
  auto models = Object(c->Request("GET", "/v1/models", "", Auth(secret)));
  ASSERT_EQ(models.at("data").as_array().size(), 1u);
  EXPECT_EQ(models.at("data").as_array()[0].at("id"), "local-extractive");
  auto task_models = Object(c->Request("GET", "/models", "", Auth(secret)));
  EXPECT_EQ(json::serialize(task_models.at("models")), R"(["local-extractive"])");
  auto all_models = Object(c->Request("GET", "/v1/models", "", Auth(kUserSecret)));
  EXPECT_GE(all_models.at("data").as_array().size(), 2u);

  // Patch: bad input names the field and changes nothing; good input applies at once.
  auto bad =
      c->Request("PATCH", "/admin/keys/" + id, R"({"limits":{"rpm":-1}})", Auth(kAdminSecret));
  EXPECT_EQ(bad.status, 400u) << bad.body;
  EXPECT_EQ(ErrorOf(bad).second, "limits.rpm");
  auto patched =
      c->Request("PATCH", "/admin/keys/" + id, R"({"models":["local-*"]})", Auth(kAdminSecret));
  ASSERT_EQ(patched.status, 200u) << patched.body;
  EXPECT_EQ(Object(patched).at("limits").at("rpm"), 600);  // untouched fields stay
  EXPECT_EQ(
      c->Request("POST", "/v1/embeddings", R"({"model":"local-embed","input":"hi"})", Auth(secret))
          .status,
      200u);

  // Rotate without grace: the old secret stops, the new one works.
  auto rotated = c->Request("POST", "/admin/keys/" + id + "/rotate", R"({"grace_seconds":0})",
                            Auth(kAdminSecret));
  ASSERT_EQ(rotated.status, 200u) << rotated.body;
  const std::string fresh(Object(rotated).at("key").as_string());
  EXPECT_NE(fresh, secret);
  EXPECT_EQ(c->Request("GET", "/v1/models", "", Auth(secret)).status, 401u);
  EXPECT_EQ(c->Request("GET", "/v1/models", "", Auth(fresh)).status, 200u);
  // With the default grace the previous secret keeps working.
  auto graced = c->Request("POST", "/admin/keys/" + id + "/rotate", "", Auth(kAdminSecret));
  ASSERT_EQ(graced.status, 200u) << graced.body;
  const std::string newest(Object(graced).at("key").as_string());
  EXPECT_EQ(c->Request("GET", "/v1/models", "", Auth(fresh)).status, 200u);
  EXPECT_EQ(c->Request("GET", "/v1/models", "", Auth(newest)).status, 200u);
  EXPECT_FALSE(Object(graced).at("rotation_grace_until").is_null());

  // Revoke: refused at once, gone from the API.
  auto revoked = c->Request("DELETE", "/admin/keys/" + id, "", Auth(kAdminSecret));
  ASSERT_EQ(revoked.status, 200u) << revoked.body;
  EXPECT_EQ(Object(revoked).at("deleted"), true);
  EXPECT_EQ(c->Request("GET", "/v1/models", "", Auth(newest)).status, 401u);
  EXPECT_EQ(c->Request("GET", "/v1/models", "", Auth(fresh)).status, 401u);
  EXPECT_EQ(c->Request("GET", "/admin/keys/" + id, "", Auth(kAdminSecret)).status, 404u);
  EXPECT_EQ(c->Request("DELETE", "/admin/keys/" + id, "", Auth(kAdminSecret)).status, 404u);

  // No secret in the metrics or the logs.
  auto metrics = c->Request("GET", "/metrics", "", Auth(kAdminSecret));
  ASSERT_EQ(metrics.status, 200u);
  for (const std::string& s : {secret, fresh, newest}) {
    EXPECT_EQ(metrics.body.find(s), std::string::npos);
    EXPECT_EQ(server.process().CapturedOutput().find(s), std::string::npos);
  }
  EXPECT_NE(metrics.body.find(R"(orchestra_http_rejected_total{reason="model_not_allowed"} 1)"),
            std::string::npos);
}

TEST_P(Keys, BadBodiesAreRefusedWithTheFieldNamedAndWriteNothing) {
  Orchestra server(Options());
  auto c = server.Client();
  Create(server, R"({"name":"taken","scopes":["user"]})");
  struct Case {
    const char* body;
    const char* param;
  };
  for (const Case& k : std::vector<Case>{
           {"{", ""},
           {R"({"scopes":["user"]})", "name"},
           {R"({"name":"taken","scopes":["user"]})", "name"},
           {R"({"name":"ops","scopes":["user"]})", "name"},
           {R"({"name":"n1","scopes":["user"],"limits":{"tpm":-5}})", "limits.tpm"},
           {R"({"name":"n2","scopes":["user"],"limits":{"rpm":1e15}})", "limits.rpm"},
           {R"({"name":"n3","scopes":["user"],"models":["gpt-9"]})", "models"},
           {R"({"name":"n4","scopes":["user"],"budget":{"usd":3}})", "budget.period"},
           {R"({"name":"n5","scopes":["superuser"]})", "scopes"},
           {R"({"name":"n6","scopes":["user"],"colour":"red"})", "colour"},
       }) {
    auto r = c->Request("POST", "/admin/keys", k.body, Auth(kAdminSecret));
    EXPECT_EQ(r.status, 400u) << k.body << " → " << r.body;
    EXPECT_EQ(ErrorOf(r), (std::pair<std::string, std::string>{"invalid_request", k.param}))
        << k.body << " → " << r.body;
  }
  auto list = Object(c->Request("GET", "/admin/keys", "", Auth(kAdminSecret)));
  EXPECT_EQ(list.at("data").as_array().size(), 1u);
  auto bad_query = c->Request("GET", "/admin/keys?limit=0", "", Auth(kAdminSecret));
  EXPECT_EQ(ErrorOf(bad_query).second, "limit");
  EXPECT_EQ(c->Request("GET", "/admin/keys/key_missing", "", Auth(kAdminSecret)).status, 404u);
  EXPECT_EQ(c->Request("POST", "/admin/keys/key_missing/rotate", "", Auth(kAdminSecret)).status,
            404u);
}

TEST_P(Keys, ListingIsPaged) {
  Orchestra server(Options());
  auto c = server.Client();
  for (int i = 0; i < 5; ++i)
    Create(server, R"({"name":"k)" + std::to_string(i) + R"(","scopes":["user"]})");
  std::vector<std::string> names;
  std::string cursor;
  int pages = 0;
  do {
    std::string target = "/admin/keys?limit=2";
    if (!cursor.empty()) target += "&cursor=" + cursor;
    auto page = Object(c->Request("GET", target, "", Auth(kAdminSecret)));
    ++pages;
    for (const json::value& k : page.at("data").as_array())
      names.emplace_back(k.at("name").as_string());
    cursor =
        page.at("next_cursor").is_null() ? "" : std::string(page.at("next_cursor").as_string());
    ASSERT_LT(pages, 10);
  } while (!cursor.empty());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"k0", "k1", "k2", "k3", "k4"}));
  EXPECT_GE(pages, 3);
}

TEST_P(Keys, RevocationReachesAnotherInstanceWithinASecond) {
  Orchestra a(Options());
  Orchestra b(Options());
  json::object key = Create(a, R"({"name":"shared","scopes":["user"]})");
  const std::string secret(key.at("key").as_string());
  const std::string id(key.at("id").as_string());
  auto cb = b.Client();
  // The creation reaches b the same way.
  const auto created_deadline = std::chrono::steady_clock::now() + 2s;
  while (cb->Request("GET", "/v1/models", "", Auth(secret)).status != 200 &&
         std::chrono::steady_clock::now() < created_deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_EQ(cb->Request("GET", "/v1/models", "", Auth(secret)).status, 200u);

  ASSERT_EQ(a.Client()->Request("DELETE", "/admin/keys/" + id, "", Auth(kAdminSecret)).status,
            200u);
  const auto revoked_at = std::chrono::steady_clock::now();
  unsigned status = 200;
  while (status != 401 && std::chrono::steady_clock::now() - revoked_at < 3s) {
    status = cb->Request("GET", "/v1/models", "", Auth(secret)).status;
    if (status != 401) std::this_thread::sleep_for(10ms);
  }
  const auto took = std::chrono::steady_clock::now() - revoked_at;
  EXPECT_EQ(status, 401u);
  // The contract of issue 13 (auth.keys_refresh_interval is 250 ms by default).
  EXPECT_LT(took, 1s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms";
}

TEST_P(Keys, ARestartKeepsTheKeysAndTenantsStayApart) {
  std::string first;
  std::string second;
  {
    Orchestra server(Options());
    first = std::string(
        Create(server, R"({"name":"one","tenant":"t1","scopes":["user"]})").at("key").as_string());
    second = std::string(
        Create(server, R"({"name":"two","tenant":"t2","scopes":["user"]})").at("key").as_string());
    auto c = server.Client();
    ASSERT_EQ(
        c->Request("POST", "/memory/store", R"({"key":"plan","value":"t1's"})", Auth(first)).status,
        200u);
    ASSERT_EQ(server.Stop(), 0);
  }
  Orchestra restarted(Options());
  auto c = restarted.Client();
  auto mine = c->Request("POST", "/memory/retrieve", R"({"key":"plan"})", Auth(first));
  ASSERT_EQ(mine.status, 200u) << mine.body;
  EXPECT_NE(mine.body.find("t1's"), std::string::npos);
  auto theirs = c->Request("POST", "/memory/retrieve", R"({"key":"plan"})", Auth(second));
  EXPECT_EQ(theirs.status, 200u) << theirs.body;
  EXPECT_EQ(Object(theirs).at("exists"), false) << theirs.body;
  EXPECT_EQ(theirs.body.find("t1's"), std::string::npos);
  auto keys_of_two = c->Request("GET", "/memory/keys", "", Auth(second));
  EXPECT_EQ(keys_of_two.body.find("plan"), std::string::npos) << keys_of_two.body;
}

}  // namespace
}  // namespace orchestra::testing
