// What every HTTP provider shares: secrets never reach a client through upstream text.

#include "providers/http_provider.hpp"

#include <gtest/gtest.h>

namespace orchestra::providers {
namespace {

// Exposes the protected redaction to the test; its calls are never made.
class Probe final : public HttpProvider {
 public:
  using HttpProvider::HttpProvider;
  using HttpProvider::Redacted;
  bool ForwardsRawBody() const override { return true; }
  boost::asio::awaitable<ProviderResult<wire::ChatResponse>> Chat(const wire::ChatRequest&,
                                                                  const CallOptions&) override {
    co_return Invalid(Error(ErrorCode::kInternal, "unused"));
  }
  boost::asio::awaitable<ProviderResult<StreamSummary>> ChatStream(const wire::ChatRequest&,
                                                                   const CallOptions&,
                                                                   ChunkSink&) override {
    co_return Invalid(Error(ErrorCode::kInternal, "unused"));
  }
  boost::asio::awaitable<ProviderResult<wire::EmbeddingResponse>> Embed(
      const wire::EmbeddingRequest&, const CallOptions&) override {
    co_return Invalid(Error(ErrorCode::kInternal, "unused"));
  }
};

struct Fixture {
  Fixture() {
    config.name = "p";
    config.type = config::ProviderType::kOpenAI;
    config.base_url = "http://127.0.0.1:1/v1";
    config.api_key_env = "KEY";
    config.headers = {{"X-Org-Token", "org-token-1234567890"}, {"X-Short", "abc"}};
  }
  config::ProviderConfig config;
  net::Upstreams upstreams{1};
  config::EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "KEY") return "my-private-upstream-key-0001";
    return std::nullopt;
  };
};

TEST(HttpProviderRedaction, HidesTheProvidersKeyAndHeaderSecretsInUpstreamText) {
  Fixture f;
  Probe probe(f.config, f.upstreams, f.env);
  EXPECT_EQ(probe.Redacted("Incorrect API key provided: my-private-upstream-key-0001."),
            "Incorrect API key provided: [redacted].");
  EXPECT_EQ(probe.Redacted("token org-token-1234567890 refused"), "token [redacted] refused");
  // Too short to be a secret worth hiding (and hiding it would garble ordinary words).
  EXPECT_EQ(probe.Redacted("abc def"), "abc def");
}

TEST(HttpProviderRedaction, HidesAnythingShapedLikeAProviderKey) {
  Fixture f;
  Probe probe(f.config, f.upstreams, f.env);
  EXPECT_EQ(probe.Redacted("key sk-proj-AbCdEf0123456789xyzXYZ is invalid"),
            "key [redacted] is invalid");
  EXPECT_EQ(probe.Redacted("AIzaSyA1234567890abcdefghij"), "[redacted]");
  // Short or embedded look-alikes are ordinary text.
  EXPECT_EQ(probe.Redacted("task-sk-1 and sk-short"), "task-sk-1 and sk-short");
}

}  // namespace
}  // namespace orchestra::providers
