// Per-key rate limits through the real binary (issue 13): requests, tokens and parallel requests
// per key and per key × model, OpenAI's x-ratelimit-* headers, 429 rate_limit_exceeded with
// Retry-After, and tokens settled on what the upstream reported.

#include <atomic>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "integration/orchestra_process.hpp"

namespace orchestra::testing {
namespace {

using namespace std::chrono_literals;

const std::vector<std::pair<std::string, std::string>> kApp = {
    {"Authorization", "Bearer app-secret"}};
const std::vector<std::pair<std::string, std::string>> kOther = {
    {"Authorization", "Bearer other-secret"}};

// `padding` bytes of prompt raise admission's token estimate (a quarter of the body's bytes)
// without many real tokens.
std::string Chat(std::string_view model, int padding = 0) {
  return R"({"model":")" + std::string(model) +
         R"(","messages":[{"role":"user","content":"hello there )" +
         std::string(static_cast<std::size_t>(padding), 'a') + R"("}]})";
}

OrchestraOptions WithKeys(const std::string& upstream_url, const std::string& app_policy) {
  OrchestraOptions o;
  o.env["APP_KEY"] = "app-secret";
  o.env["OTHER_KEY"] = "other-secret";
  o.config_yaml =
      "auth:\n  keys:\n"
      "    - {name: app, key_env: APP_KEY, scopes: [user], " +
      app_policy +
      "}\n"
      "    - {name: other, key_env: OTHER_KEY, scopes: [user]}\n"
      "providers:\n  - {name: up, type: openai, base_url: '" +
      upstream_url +
      "/v1'}\n"
      "models:\n"
      "  - {name: fast, targets: [{provider: up, model: x}]}\n"
      "  - {name: slow, targets: [{provider: up, model: 'x+latency=300ms'}]}\n";
  return o;
}

TEST(RateLimits, RpmRefusesPastTheLimitWithOpenAIsHeadersAndRetryAfter) {
  TestUpstream upstream;
  Orchestra orchestra(WithKeys(upstream.base_url(), "limits: {rpm: 3}"));
  auto c = orchestra.Client();
  for (int i = 0; i < 3; ++i) {
    auto r = c->Request("POST", "/v1/chat/completions", Chat("fast"), kApp);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("x-ratelimit-limit-requests"), "3");
    EXPECT_EQ(r.Header("x-ratelimit-remaining-requests"), std::to_string(2 - i));
    EXPECT_FALSE(r.Header("x-ratelimit-reset-requests").empty());
    EXPECT_TRUE(r.Header("x-ratelimit-limit-tokens").empty());  // no token limit configured
  }
  auto refused = c->Request("POST", "/v1/chat/completions", Chat("fast"), kApp);
  EXPECT_EQ(refused.status, 429);
  EXPECT_NE(refused.body.find(R"("code":"rate_limit_exceeded")"), std::string::npos)
      << refused.body;
  EXPECT_NE(refused.body.find("3 requests per minute"), std::string::npos) << refused.body;
  const int retry_after = std::stoi(refused.Header("retry-after"));
  EXPECT_GE(retry_after, 55);
  EXPECT_LE(retry_after, 61);
  EXPECT_EQ(refused.Header("x-ratelimit-remaining-requests"), "0");
  // Another key is not affected, and sees no rate-limit headers.
  auto other = c->Request("POST", "/v1/chat/completions", Chat("fast"), kOther);
  EXPECT_EQ(other.status, 200);
  EXPECT_TRUE(other.Header("x-ratelimit-limit-requests").empty());
}

TEST(RateLimits, TpmAdmitsOnTheEstimateAndChargesWhatWasUsed) {
  TestUpstream upstream;
  Orchestra orchestra(WithKeys(upstream.base_url(), "limits: {tpm: 2000}"));
  auto c = orchestra.Client();
  // A 6000-byte prompt: admitted on its estimate (~1500), which a second one would exceed while
  // the first is in flight...
  std::atomic<int> first_status{0};
  std::thread first([&] {
    auto c1 = orchestra.Client();
    first_status = c1->Request("POST", "/v1/chat/completions", Chat("slow", 6000), kApp).status;
  });
  std::this_thread::sleep_for(100ms);
  auto second = c->Request("POST", "/v1/chat/completions", Chat("fast", 6000), kApp);
  EXPECT_EQ(second.status, 429) << second.body;
  EXPECT_NE(second.body.find("2000 tokens per minute"), std::string::npos) << second.body;
  first.join();
  EXPECT_EQ(first_status.load(), 200);
  // ... but it used a few tokens (the test upstream's short reply): the rest came back.
  auto third = c->Request("POST", "/v1/chat/completions", Chat("fast", 6000), kApp);
  EXPECT_EQ(third.status, 200) << third.body;
  EXPECT_EQ(third.Header("x-ratelimit-limit-tokens"), "2000");
  const int remaining = std::stoi(third.Header("x-ratelimit-remaining-tokens"));
  EXPECT_LT(remaining, 500);  // the third's own estimate is held until it settles
  auto fourth = c->Request("POST", "/v1/chat/completions", Chat("fast"), kApp);
  EXPECT_EQ(fourth.status, 200);
  EXPECT_GT(std::stoi(fourth.Header("x-ratelimit-remaining-tokens")), 1800);
}

TEST(RateLimits, MaxParallelAndPerModelLimits) {
  TestUpstream upstream;
  Orchestra orchestra(WithKeys(upstream.base_url(),
                               "limits: {max_parallel: 1, per_model: [{model: fast, rpm: 1}]}"));
  std::atomic<int> slow_status{0};
  std::thread slow([&] {
    auto c1 = orchestra.Client();
    slow_status = c1->Request("POST", "/v1/chat/completions", Chat("slow"), kApp).status;
  });
  std::this_thread::sleep_for(100ms);
  auto c = orchestra.Client();
  auto parallel = c->Request("POST", "/v1/chat/completions", Chat("slow"), kApp);
  EXPECT_EQ(parallel.status, 429);
  EXPECT_NE(parallel.body.find("1 parallel requests"), std::string::npos) << parallel.body;
  slow.join();
  EXPECT_EQ(slow_status.load(), 200);
  auto fast = c->Request("POST", "/v1/chat/completions", Chat("fast"), kApp);
  EXPECT_EQ(fast.status, 200);
  EXPECT_EQ(fast.Header("x-ratelimit-limit-requests"), "1");
  auto again = c->Request("POST", "/v1/chat/completions", Chat("fast"), kApp);
  EXPECT_EQ(again.status, 429);
  EXPECT_NE(again.body.find("for model 'fast'"), std::string::npos) << again.body;
  EXPECT_EQ(c->Request("POST", "/v1/chat/completions", Chat("slow"), kApp).status, 200);
}

// Spend and budgets: every request costs what the price table says; a key whose day's spend
// reached its budget is refused with insufficient_quota; /admin/spend and /v1/me report it;
// a restarted instance keeps it (SQLite).
OrchestraOptions Priced(const std::string& upstream_url, const std::string& db) {
  OrchestraOptions o;
  o.env["APP_KEY"] = "app-secret";
  o.env["ADMIN_KEY"] = "admin-secret";
  o.config_yaml =
      "auth:\n  keys:\n"
      "    - {name: app, key_env: APP_KEY, scopes: [user], "
      "budget: {usd: 0.5, period: day}}\n"
      "    - {name: boss, key_env: ADMIN_KEY, scopes: [admin]}\n"
      "providers:\n  - {name: up, type: openai, base_url: '" +
      upstream_url +
      "/v1'}\n"
      "models:\n"
      "  - {name: fast, targets: [{provider: up, model: x}], "
      "price: {input_per_mtok: 1000, output_per_mtok: 2000}}\n"
      "storage: {backend: sqlite, path: '" +
      db +
      "'}\n"
      "limits: {spend_flush_interval: 50ms}\n";
  return o;
}

const std::vector<std::pair<std::string, std::string>> kBoss = {
    {"Authorization", "Bearer admin-secret"}};

double Number(const boost::json::value& v) {
  return v.is_double() ? v.as_double() : static_cast<double>(v.as_int64());
}

TEST(Budgets, ABudgetStopsSpendingWithinOneRequestAndSpendIsReportedAndKept) {
  TestUpstream upstream;
  TempDir dir;
  const std::string db = dir.path() + "/spend.db";
  double one_request = 0;
  int served = 0;
  {
    Orchestra orchestra(Priced(upstream.base_url(), db));
    auto c = orchestra.Client();
    HttpResponse last;
    for (int i = 0; i < 200; ++i) {
      last = c->Request("POST", "/v1/chat/completions", Chat("fast"), kApp);
      if (last.status != 200) break;
      ++served;
    }
    ASSERT_EQ(last.status, 429) << last.body;
    EXPECT_NE(last.body.find(R"("code":"insufficient_quota")"), std::string::npos) << last.body;
    EXPECT_NE(last.body.find(R"("type":"insufficient_quota")"), std::string::npos);
    ASSERT_GT(served, 1);

    auto me = c->Request("GET", "/v1/me", "", kApp);
    ASSERT_EQ(me.status, 200) << me.body;
    auto mine = boost::json::parse(me.body).as_object();
    EXPECT_EQ(mine.at("name"), "app");
    const double spent = Number(mine.at("budget").at("spent_usd"));
    EXPECT_GE(spent, 0.5);
    one_request = spent / served;
    EXPECT_LT(spent, 0.5 + one_request * 1.01);  // within one request of the budget
    EXPECT_EQ(Number(mine.at("budget").at("remaining_usd")), 0.0);
    EXPECT_EQ(mine.at("budget").at("period"), "day");

    // The admin view (after a flush).
    std::this_thread::sleep_for(300ms);
    auto spend = c->Request("GET", "/admin/spend?key=app&group_by=model", "", kBoss);
    ASSERT_EQ(spend.status, 200) << spend.body;
    auto report = boost::json::parse(spend.body).as_object();
    ASSERT_EQ(report.at("data").as_array().size(), 1u);
    const auto& row = report.at("data").as_array()[0].as_object();
    EXPECT_EQ(row.at("model"), "fast");
    EXPECT_EQ(row.at("requests").as_int64(), served);
    EXPECT_GT(row.at("prompt_tokens").as_int64(), 0);
    EXPECT_NEAR(Number(row.at("cost_usd")), spent, 1e-9);
    // Bad input is a 400 naming the parameter; a user key may not see it.
    auto bad = c->Request("GET", "/admin/spend?group_by=modle", "", kBoss);
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("did you mean 'model'"), std::string::npos) << bad.body;
    EXPECT_EQ(c->Request("GET", "/admin/spend?from=2026-02-30", "", kBoss).status, 400);
    EXPECT_EQ(c->Request("GET", "/admin/spend?colour=red", "", kBoss).status, 400);
    EXPECT_EQ(c->Request("GET", "/admin/spend", "", kApp).status, 403);
    ASSERT_EQ(orchestra.Stop(), 0);
  }
  // Restarted on the same database: the day's spend is still there, the key still refused.
  Orchestra again(Priced(upstream.base_url(), db));
  auto c = again.Client();
  auto refused = c->Request("POST", "/v1/chat/completions", Chat("fast"), kApp);
  EXPECT_EQ(refused.status, 429) << refused.body;
  auto spend = c->Request("GET", "/admin/spend?group_by=key", "", kBoss);
  auto report = boost::json::parse(spend.body).as_object();
  EXPECT_EQ(report.at("total").at("requests").as_int64(), served);
}

}  // namespace
}  // namespace orchestra::testing
