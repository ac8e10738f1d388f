// The response cache through the real binary (issue 13): the Redis tier shared by instances,
// the client's Cache-Control, tenants kept apart, streams replayed from the cache, Redis down,
// and cached answers that cost no tokens or budget but count as requests.

#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "integration/orchestra_process.hpp"
#include "services/redis_server.hpp"

namespace orchestra::testing {
namespace {

using namespace std::chrono_literals;
using services::RedisServer;
using Headers = std::vector<std::pair<std::string, std::string>>;

const Headers kAlice = {{"Authorization", "Bearer alice-secret"}};
const Headers kBob = {{"Authorization", "Bearer bob-secret"}};
const Headers kOps = {{"Authorization", "Bearer ops-secret"}};

// A chat body unique to `text` (tests share one Redis: each uses its own prompts).
std::string Chat(std::string_view text, std::string_view extra = "") {
  return R"({"model":"cached","messages":[{"role":"user","content":")" + std::string(text) +
         R"("}])" + std::string(extra) + "}";
}

constexpr std::string_view kStreamWithUsage =
    R"(,"stream":true,"stream_options":{"include_usage":true})";

// The value of a metric series in /metrics text, or -1 when absent.
double Metric(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

double MetricOf(const Orchestra& o, const std::string& series) {
  return Metric(o.Client()->Request("GET", "/metrics", "", kOps).body, series);
}

// Waits until `o` has written `n` entries to Redis (writes are off the request's path).
void AwaitSharedWrites(const Orchestra& o, double n) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (MetricOf(o, R"(orchestra_cache_shared_writes_total{result="ok"})") < n) {
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "no write to Redis";
    std::this_thread::sleep_for(5ms);
  }
}

std::int64_t UpstreamRequests(TestUpstream& upstream) {
  return upstream.Stats().at("requests_total").as_int64();
}

// An instance with two tenants (alice and bob) in front of `upstream`, its cache shared through
// `redis_url` (none when empty).
OrchestraOptions Instance(const TestUpstream& upstream, const std::string& redis_url,
                          const std::string& model_extra = "", const std::string& alice_extra = "",
                          const std::string& redis_timeout = "1s") {
  OrchestraOptions o;
  o.env = {{"ALICE_KEY", "alice-secret"}, {"BOB_KEY", "bob-secret"}, {"OPS_KEY", "ops-secret"}};
  o.config_yaml =
      "server: {threads: 2}\n"
      "auth:\n  keys:\n"
      "    - {name: alice, key_env: ALICE_KEY, scopes: [user]" +
      alice_extra +
      "}\n"
      "    - {name: bob, key_env: BOB_KEY, scopes: [user]}\n"
      "    - {name: ops, key_env: OPS_KEY, scopes: [admin]}\n"
      "providers:\n  - {name: up, type: openai, base_url: '" +
      upstream.base_url() +
      "/v1'}\n"
      "models:\n"
      "  - {name: cached, targets: [{provider: up, model: echo-1}], cache_ttl: 60s" +
      model_extra + "}\n";
  // A generous lookup bound: these tests are about what is shared, not how fast, and a loaded CI
  // machine (or the ASan build) can miss the default 5ms (a miss, counted as an error).
  if (!redis_url.empty()) {
    o.config_yaml +=
        "cache: {redis_url: '" + redis_url + "', redis_timeout: " + redis_timeout + "}\n";
  }
  return o;
}

TEST(SharedCache, AnAnswerCachedThroughOneInstanceIsAHitOnAnother) {
  TestUpstream upstream;
  RedisServer& redis = RedisServer::Shared();
  Orchestra a(Instance(upstream, redis.url()));
  Orchestra b(Instance(upstream, redis.url()));
  const std::string body = Chat("shared across instances");
  auto first = a.Client()->Request("POST", "/v1/chat/completions", body, kAlice);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.Header("x-orchestra-cache"), "miss");
  AwaitSharedWrites(a, 1);

  auto second = b.Client()->Request("POST", "/v1/chat/completions", body, kAlice);
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.Header("x-orchestra-cache"), "hit");
  EXPECT_EQ(second.Header("x-orchestra-provider"), "up");
  EXPECT_EQ(second.Header("x-orchestra-model"), "echo-1");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(UpstreamRequests(upstream), 1);
  EXPECT_EQ(MetricOf(b, R"(orchestra_cache_tier_requests_total{tier="redis",result="hit"})"), 1);
  // B keeps it in memory now: the next hit does not ask Redis.
  auto third = b.Client()->Request("POST", "/v1/chat/completions", body, kAlice);
  EXPECT_EQ(third.Header("x-orchestra-cache"), "hit");
  EXPECT_EQ(MetricOf(b, R"(orchestra_cache_tier_requests_total{tier="memory",result="hit"})"), 1);
  EXPECT_EQ(UpstreamRequests(upstream), 1);
}

TEST(SharedCache, TenantsNeverShareAnEntryInMemoryOrInRedis) {
  TestUpstream upstream;
  RedisServer& redis = RedisServer::Shared();
  Orchestra a(Instance(upstream, redis.url()));
  Orchestra b(Instance(upstream, redis.url()));
  const std::string body = Chat("one tenant's secret prompt");
  auto alice = a.Client()->Request("POST", "/v1/chat/completions", body, kAlice);
  ASSERT_EQ(alice.status, 200) << alice.body;
  AwaitSharedWrites(a, 1);
  // Bob asks the same: neither A's memory nor Redis, which hold Alice's answer, answers him.
  auto bob = a.Client()->Request("POST", "/v1/chat/completions", body, kBob);
  EXPECT_EQ(bob.Header("x-orchestra-cache"), "miss");
  EXPECT_EQ(MetricOf(a, R"(orchestra_cache_tier_requests_total{tier="redis",result="miss"})"), 2);
  EXPECT_EQ(UpstreamRequests(upstream), 2);
  AwaitSharedWrites(a, 2);
  // Each finds their own entry on B, from Redis.
  auto alice_b = b.Client()->Request("POST", "/v1/chat/completions", body, kAlice);
  auto bob_b = b.Client()->Request("POST", "/v1/chat/completions", body, kBob);
  EXPECT_EQ(alice_b.Header("x-orchestra-cache"), "hit");
  EXPECT_EQ(bob_b.Header("x-orchestra-cache"), "hit");
  EXPECT_EQ(alice_b.body, alice.body);
  EXPECT_EQ(bob_b.body, bob.body);
  EXPECT_EQ(UpstreamRequests(upstream), 2);
}

TEST(SharedCache, NoStoreNeitherReadsNorWritesAndNoCacheStoresTheFreshAnswer) {
  TestUpstream upstream;
  RedisServer& redis = RedisServer::Shared();
  Orchestra a(Instance(upstream, redis.url()));
  Orchestra b(Instance(upstream, redis.url()));
  auto c = a.Client();
  const std::string body = Chat("cache-control directives");
  auto no_store =
      c->Request("POST", "/v1/chat/completions", body, {kAlice[0], {"Cache-Control", "no-store"}});
  ASSERT_EQ(no_store.status, 200) << no_store.body;
  EXPECT_EQ(no_store.Header("x-orchestra-cache"), "miss");
  // Nothing was stored, here or in Redis.
  auto plain = c->Request("POST", "/v1/chat/completions", body, kAlice);
  EXPECT_EQ(plain.Header("x-orchestra-cache"), "miss");
  EXPECT_EQ(UpstreamRequests(upstream), 2);
  AwaitSharedWrites(a, 1);  // the plain request's answer
  EXPECT_EQ(MetricOf(a, R"(orchestra_cache_shared_writes_total{result="ok"})"), 1);
  // An entry exists now, yet no-store and no-cache do not read it.
  auto no_store_again =
      c->Request("POST", "/v1/chat/completions", body, {kAlice[0], {"Cache-Control", "No-Store"}});
  EXPECT_EQ(no_store_again.Header("x-orchestra-cache"), "miss");
  auto no_cache = b.Client()->Request("POST", "/v1/chat/completions", body,
                                      {kAlice[0], {"Cache-Control", "max-age=60, no-cache"}});
  EXPECT_EQ(no_cache.Header("x-orchestra-cache"), "miss");
  EXPECT_EQ(UpstreamRequests(upstream), 4);
  // no-cache stored its fresh answer (B's write), no-store did not (A wrote only once).
  AwaitSharedWrites(b, 1);
  EXPECT_EQ(MetricOf(a, R"(orchestra_cache_shared_writes_total{result="ok"})"), 1);
  auto hit = b.Client()->Request("POST", "/v1/chat/completions", body, kAlice);
  EXPECT_EQ(hit.Header("x-orchestra-cache"), "hit");
  EXPECT_EQ(hit.body, no_cache.body);
  EXPECT_EQ(UpstreamRequests(upstream), 4);
}

TEST(SharedCache, AStreamIsReplayedFromTheCacheAsItWasSent) {
  TestUpstream upstream;
  RedisServer& redis = RedisServer::Shared();
  Orchestra a(Instance(upstream, redis.url()));
  Orchestra b(Instance(upstream, redis.url()));
  const std::string body = Chat("stream me a story", kStreamWithUsage);
  auto first = a.Client()->Request("POST", "/v1/chat/completions", body, kAlice);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.Header("content-type"), "text/event-stream");
  EXPECT_EQ(first.Header("x-orchestra-cache"), "miss");
  ASSERT_NE(first.body.find(R"("usage")"), std::string::npos) << first.body;
  AwaitSharedWrites(a, 1);

  auto replayed = b.Client()->Request("POST", "/v1/chat/completions", body, kAlice);
  ASSERT_EQ(replayed.status, 200) << replayed.body;
  EXPECT_EQ(replayed.Header("content-type"), "text/event-stream");
  EXPECT_EQ(replayed.Header("x-orchestra-cache"), "hit");
  EXPECT_EQ(replayed.body, first.body);
  EXPECT_TRUE(replayed.body.ends_with("data: [DONE]\n\n")) << replayed.body;
  EXPECT_EQ(UpstreamRequests(upstream), 1);
  // The same prompt without "stream" is another request (another entry).
  auto plain =
      b.Client()->Request("POST", "/v1/chat/completions", Chat("stream me a story"), kAlice);
  EXPECT_EQ(plain.Header("x-orchestra-cache"), "miss");
  EXPECT_EQ(UpstreamRequests(upstream), 2);
  // A stream without usage asked: replayed without the usage chunk, from its own entry.
  const std::string no_usage = Chat("stream me a story", R"(,"stream":true)");
  auto plain_stream = a.Client()->Request("POST", "/v1/chat/completions", no_usage, kAlice);
  AwaitSharedWrites(a, 2);
  auto plain_replay = b.Client()->Request("POST", "/v1/chat/completions", no_usage, kAlice);
  EXPECT_EQ(plain_replay.Header("x-orchestra-cache"), "hit");
  EXPECT_EQ(plain_replay.body, plain_stream.body);
  EXPECT_EQ(plain_replay.body.find(R"("usage")"), std::string::npos) << plain_replay.body;
  EXPECT_EQ(UpstreamRequests(upstream), 3);
}

TEST(SharedCache, RedisDownOrStalledMeansMissesAndRequestsAreStillServed) {
  TestUpstream upstream;
  RedisServer redis;
  Orchestra a(Instance(upstream, redis.url(), "", "", "20ms"));
  auto c = a.Client();
  redis.Pause();  // accepts connections, answers nothing: every lookup times out
  auto stalled = c->Request("POST", "/v1/chat/completions", Chat("redis stalled"), kAlice);
  ASSERT_EQ(stalled.status, 200) << stalled.body;
  EXPECT_EQ(stalled.Header("x-orchestra-cache"), "miss");
  EXPECT_GE(MetricOf(a, R"(orchestra_cache_tier_requests_total{tier="redis",result="error"})"), 1);
  redis.Resume();
  redis.Stop();
  auto down = c->Request("POST", "/v1/chat/completions", Chat("redis down"), kAlice);
  ASSERT_EQ(down.status, 200) << down.body;
  EXPECT_EQ(down.Header("x-orchestra-cache"), "miss");
  // The in-process tier still answers.
  auto again = c->Request("POST", "/v1/chat/completions", Chat("redis down"), kAlice);
  EXPECT_EQ(again.Header("x-orchestra-cache"), "hit");
  EXPECT_EQ(UpstreamRequests(upstream), 2);
  EXPECT_GE(MetricOf(a, R"(orchestra_cache_tier_requests_total{tier="redis",result="error"})"), 2);
}

double Number(const boost::json::value& v) {
  return v.is_double() ? v.as_double() : static_cast<double>(v.as_int64());
}

TEST(SharedCache, CachedAnswersCostNoBudgetButCountAsRequests) {
  TestUpstream upstream;
  Orchestra a(Instance(upstream, "", ", price: {input_per_mtok: 1000, output_per_mtok: 2000}",
                       ", limits: {rpm: 6}, budget: {usd: 100, period: day}"));
  auto c = a.Client();
  const std::string body = Chat("what does a hit cost");
  ASSERT_EQ(c->Request("POST", "/v1/chat/completions", body, kAlice).status, 200);
  auto spent = [&] {
    auto me = c->Request("GET", "/v1/me", "", kAlice);
    EXPECT_EQ(me.status, 200) << me.body;
    return Number(boost::json::parse(me.body).at("budget").at("spent_usd"));
  };
  const double after_miss = spent();
  ASSERT_GT(after_miss, 0);
  for (int i = 0; i < 3; ++i) {
    auto hit = c->Request("POST", "/v1/chat/completions", body, kAlice);
    ASSERT_EQ(hit.status, 200) << hit.body;
    EXPECT_EQ(hit.Header("x-orchestra-cache"), "hit");
  }
  EXPECT_EQ(spent(), after_miss);
  // rpm 6: the miss, three hits and two /v1/me; the seventh request is refused, hit or not.
  auto refused = c->Request("POST", "/v1/chat/completions", body, kAlice);
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(UpstreamRequests(upstream), 1);
}

}  // namespace
}  // namespace orchestra::testing
