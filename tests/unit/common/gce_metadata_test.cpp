#include "common/gce_metadata.hpp"

#include <gtest/gtest.h>

namespace orchestra::gce {
namespace {

using namespace std::chrono_literals;

TEST(GceMetadata, HostComesFromTheEnvironmentWhenSet) {
  EXPECT_EQ(MetadataHost(std::nullopt), "metadata.google.internal");
  EXPECT_EQ(MetadataHost(std::string()), "metadata.google.internal");
  EXPECT_EQ(MetadataHost(std::string("127.0.0.1:8181")), "127.0.0.1:8181");
}

TEST(GceMetadata, ReadsTheTokenAndItsLifetime) {
  auto t = ParseTokenResponse(
      200, R"({"access_token":"ya29.a\/b","expires_in":3599,"token_type":"Bearer"})");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(t->token, "ya29.a/b");
  EXPECT_EQ(t->expires_in, 3599s);
}

TEST(GceMetadata, AnAnswerWithoutATokenIsUnavailableAndSaysWhy) {
  for (const auto& [status, body] : std::vector<std::pair<unsigned, std::string>>{
           {403, "Missing Metadata-Flavor:Google header."},
           {200, R"({"expires_in":3599})"},
           {200, "not json"},
           {200, R"({"access_token":""})"}}) {
    auto t = ParseTokenResponse(status, body);
    ASSERT_FALSE(t.has_value()) << body;
    EXPECT_EQ(t.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(t.error().message.find("metadata server"), std::string::npos) << t.error().message;
  }
}

TEST(GceMetadata, CachesATokenUntilAMinuteBeforeItExpires) {
  TokenCache cache;
  const auto now = TokenCache::Clock::now();
  EXPECT_EQ(cache.Get(now), std::nullopt);
  cache.Put({"tok", 3600s}, now);
  EXPECT_EQ(cache.Get(now), "tok");
  EXPECT_EQ(cache.Get(now + 3539s), "tok");
  EXPECT_EQ(cache.Get(now + 3540s), std::nullopt);
  cache.Invalidate();
  EXPECT_EQ(cache.Get(now), std::nullopt);
  // A token that lives less than the margin is used for this call only.
  cache.Put({"short", 30s}, now);
  EXPECT_EQ(cache.Get(now), std::nullopt);
}

}  // namespace
}  // namespace orchestra::gce
