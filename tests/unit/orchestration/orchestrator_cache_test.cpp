// The orchestrator's cache policy with an in-memory shared tier: memory then shared tier, fills
// of both, Cache-Control, tenants, errors and foreign values as misses, streams recorded and
// replayed.

#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "orchestration/orchestrator.hpp"
#include "providers/provider.hpp"
#include "wire/openai_scan.hpp"

namespace orchestra::orchestration {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Answers every call, counting them: a JSON body, or a stream of two events and a usage event.
class CountingProvider final : public providers::Provider {
 public:
  const std::string& name() const override { return name_; }
  config::ProviderType type() const override { return config::ProviderType::kOpenAI; }
  bool ForwardsRawBody() const override { return true; }

  asio::awaitable<providers::ProviderResult<wire::ChatResponse>> Chat(
      const wire::ChatRequest& /*request*/, const providers::CallOptions& /*options*/) override {
    ++calls;
    wire::ChatResponse r;
    r.raw = R"({"id":"chatcmpl-)" + std::to_string(calls) + R"(","choices":[]})";
    r.usage = {10, 5, 15, true, false};
    co_return r;
  }
  asio::awaitable<providers::ProviderResult<providers::StreamSummary>> ChatStream(
      const wire::ChatRequest& /*request*/, const providers::CallOptions& /*options*/,
      providers::ChunkSink& sink) override {
    ++calls;
    for (std::string raw : {R"({"n":1})", R"({"n":2})", R"({"usage":{}})"}) {
      wire::ChatChunk chunk;
      chunk.raw = raw + std::to_string(calls);
      chunk.usage_only = raw.find("usage") != std::string::npos;
      co_await sink.OnChunk(chunk);
    }
    providers::StreamSummary summary;
    summary.usage = {3, 2, 5, true, false};
    co_return summary;
  }
  asio::awaitable<providers::ProviderResult<wire::EmbeddingResponse>> Embed(
      const wire::EmbeddingRequest& /*request*/,
      const providers::CallOptions& /*options*/) override {
    co_return providers::ProviderError{MakeError(ErrorCode::kInternal, "no"),
                                       providers::FailureKind::kProtocol};
  }
  asio::awaitable<Result<std::string>> Warmup(int /*worker*/) override { co_return "ok"; }

  int calls = 0;

 private:
  std::string name_ = "up";
};

class MapTier final : public SharedCacheTier {
 public:
  asio::awaitable<Result<std::optional<std::string>>> Get(int /*worker*/,
                                                          std::string key) override {
    ++gets;
    if (failing) co_return Error(ErrorCode::kDeadlineExceeded, "slow");
    auto it = values.find(key);
    if (it == values.end()) co_return std::optional<std::string>{};
    co_return std::optional<std::string>(it->second);
  }
  void Put(const asio::any_io_executor& /*executor*/, int /*worker*/, std::string key,
           std::string value, std::chrono::milliseconds ttl) override {
    last_ttl = ttl;
    values[std::move(key)] = std::move(value);
    ++puts;
  }

  std::map<std::string, std::string> values;
  bool failing = false;
  int gets = 0;
  int puts = 0;
  std::chrono::milliseconds last_ttl{0};
};

class Chunks final : public StreamWriter {
 public:
  asio::awaitable<bool> Begin(const Served& s) override {
    hit = s.cache_hit;
    co_return true;
  }
  asio::awaitable<bool> Write(wire::ChatChunk& chunk) override {
    events.push_back(chunk.raw + (chunk.usage_only ? " (usage)" : ""));
    co_return true;
  }
  std::vector<std::string> events;
  bool hit = false;
};

class OrchestratorCache : public ::testing::Test {
 protected:
  OrchestratorCache() {
    config::ModelConfig m;
    m.name = "cached";
    m.targets = {{"up", "echo-1", 1}};
    m.cache_ttl = 60s;
    config_.models.push_back(m);
    providers_["up"] = &provider_;
    routes_ = std::make_unique<RouteTable>(config_, providers_, metrics_, RealClock());
    orchestrator_ =
        std::make_unique<Orchestrator>(*routes_, metrics_, &cache_, RealClock(), &tier_);
  }

  Result<ChatResult> Chat(const std::string& body, std::string_view tenant = "t1",
                          CacheDirectives directives = {}) {
    auto request = wire::openai::ScanChatRequest(body);
    EXPECT_TRUE(request);
    RequestInfo info;
    info.tenant = tenant;
    info.cache_read = directives.read;
    info.cache_write = directives.write;
    info.start = std::chrono::steady_clock::now();
    Result<ChatResult> out = Error(ErrorCode::kInternal, "not run");
    asio::io_context io;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { out = co_await orchestrator_->Chat(*request, info); },
        asio::detached);
    io.run();
    return out;
  }

  std::vector<std::string> Stream(const std::string& body, bool* hit) {
    auto request = wire::openai::ScanChatRequest(body);
    EXPECT_TRUE(request);
    RequestInfo info;
    info.tenant = "t1";
    info.start = std::chrono::steady_clock::now();
    Chunks writer;
    asio::io_context io;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          Served served;
          bool started = false;
          auto r = co_await orchestrator_->ChatStream(*request, info, writer, served, &started);
          EXPECT_TRUE(r);
        },
        asio::detached);
    io.run();
    *hit = writer.hit;
    return writer.events;
  }

  const std::string body_ = R"({"model":"cached","messages":[{"role":"user","content":"hi"}]})";
  CountingProvider provider_;
  ProviderMap providers_;
  config::Config config_;
  observability::Registry registry_;
  Metrics metrics_{registry_};
  ResponseCache cache_{ResponseCache::Options{}, RealClock()};
  MapTier tier_;
  std::unique_ptr<RouteTable> routes_;
  std::unique_ptr<Orchestrator> orchestrator_;
};

TEST_F(OrchestratorCache, AFillWritesBothTiersWithTheModelsTtl) {
  auto first = Chat(body_);
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->served.cache_hit);
  EXPECT_TRUE(first->served.cache_miss);
  EXPECT_EQ(tier_.puts, 1);
  EXPECT_EQ(tier_.last_ttl, 60s);
  const std::string key = SharedCacheKey(MakeCacheKey("cached", "t1", body_));
  ASSERT_TRUE(tier_.values.contains(key));
  auto stored = DecodeCachedResponse(tier_.values[key]);
  ASSERT_NE(stored, nullptr);
  EXPECT_EQ(stored->response.body, first->response.raw);
  EXPECT_EQ(stored->response.usage.total_tokens, 15);
  auto second = Chat(body_);
  EXPECT_TRUE(second->served.cache_hit);
  EXPECT_EQ(second->response.raw, first->response.raw);
  EXPECT_EQ(provider_.calls, 1);
  EXPECT_EQ(tier_.gets, 1);  // the second was a memory hit
}

TEST_F(OrchestratorCache, AMemoryMissIsAnsweredByTheSharedTierAndKeptInMemory) {
  CachedResponse r;
  r.body = R"({"id":"from-another-instance"})";
  r.provider = "up";
  r.upstream_model = "echo-1";
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  tier_.values[SharedCacheKey(MakeCacheKey("cached", "t1", body_))] =
      EncodeCachedResponse(r, now_ms + 60'000);
  auto hit = Chat(body_);
  ASSERT_TRUE(hit);
  EXPECT_TRUE(hit->served.cache_hit);
  EXPECT_EQ(hit->response.raw, r.body);
  EXPECT_EQ(hit->served.provider, "up");
  EXPECT_EQ(hit->served.upstream_model, "echo-1");
  EXPECT_FALSE(hit->served.usage.known);  // a hit is charged nothing
  EXPECT_EQ(provider_.calls, 0);
  EXPECT_EQ(cache_.entries(), 1u);
  // Another tenant's identical request is not answered by it.
  EXPECT_FALSE(Chat(body_, "t2")->served.cache_hit);
  EXPECT_EQ(provider_.calls, 1);
}

TEST_F(OrchestratorCache, ExpiredForeignOrUnroutableValuesAndTierErrorsAreMisses) {
  const std::string key = SharedCacheKey(MakeCacheKey("cached", "t1", body_));
  CachedResponse r;
  r.body = "{}";
  r.provider = "up";
  r.upstream_model = "echo-1";
  CachedResponse elsewhere = r;
  elsewhere.upstream_model = "a-model-the-route-no-longer-has";
  const std::string values[] = {"not ours", EncodeCachedResponse(r, 1'000),
                                EncodeCachedResponse(elsewhere, INT64_MAX / 2)};
  int calls = 0;
  for (const std::string& v : values) {
    tier_.values[key] = v;
    auto result = Chat(body_, "t1", {.read = true, .write = false});
    EXPECT_FALSE(result->served.cache_hit);
    EXPECT_EQ(provider_.calls, ++calls);
  }
  tier_.failing = true;
  auto result = Chat(body_, "t1", {.read = true, .write = false});
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->served.cache_hit);
  EXPECT_EQ(provider_.calls, ++calls);
}

TEST_F(OrchestratorCache, NoStoreNeitherReadsNorWritesAndNoCacheOnlyWrites) {
  ASSERT_TRUE(Chat(body_));
  EXPECT_EQ(tier_.puts, 1);
  auto no_store = Chat(body_, "t1", {.read = false, .write = false});
  EXPECT_FALSE(no_store->served.cache_hit);
  EXPECT_TRUE(no_store->served.cache_miss);
  EXPECT_EQ(tier_.puts, 1);
  EXPECT_EQ(provider_.calls, 2);
  auto no_cache = Chat(body_, "t1", {.read = false, .write = true});
  EXPECT_FALSE(no_cache->served.cache_hit);
  EXPECT_EQ(tier_.puts, 2);
  EXPECT_EQ(provider_.calls, 3);
  // The fresh answer (the third call's) replaced the entry.
  auto hit = Chat(body_);
  EXPECT_TRUE(hit->served.cache_hit);
  EXPECT_EQ(hit->response.raw, no_cache->response.raw);
  EXPECT_NE(hit->response.raw, no_store->response.raw);
}

TEST_F(OrchestratorCache, AStreamIsRecordedAndReplayedEventForEvent) {
  const std::string body =
      R"({"model":"cached","stream":true,"messages":[{"role":"user","content":"hi"}]})";
  bool hit = true;
  const std::vector<std::string> first = Stream(body, &hit);
  EXPECT_FALSE(hit);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[2], R"({"usage":{}}1 (usage))");
  const std::vector<std::string> replayed = Stream(body, &hit);
  EXPECT_TRUE(hit);
  EXPECT_EQ(replayed, first);
  EXPECT_EQ(provider_.calls, 1);
  // The non-streamed form is another entry.
  EXPECT_FALSE(Chat(body_)->served.cache_hit);
  EXPECT_EQ(provider_.calls, 2);
}

}  // namespace
}  // namespace orchestra::orchestration
