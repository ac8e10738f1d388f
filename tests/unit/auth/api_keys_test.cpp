#include "auth/api_keys.hpp"

#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "common/text.hpp"

namespace orchestra::auth {
namespace {

config::EnvLookup Env(std::map<std::string, std::string, std::less<>> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

config::ApiKeyConfig Key(std::string name, std::string env, std::vector<config::Scope> scopes) {
  config::ApiKeyConfig k;
  k.name = std::move(name);
  k.key_env = std::move(env);
  k.scopes = std::move(scopes);
  return k;
}

TEST(ApiKeys, AuthenticatesEachSourceAndScope) {
  config::AuthConfig auth;
  auth.keys.push_back(Key("app", "APP_KEY", {config::Scope::kUser}));
  auth.keys.push_back(Key("ops", "OPS_KEY", {config::Scope::kAdmin}));
  config::ApiKeyConfig hashed;
  hashed.name = "hashed";
  Digest d = Sha256("s3cret");
  hashed.sha256 = HexEncode(d);
  auth.keys.push_back(hashed);
  std::string file = testing::TempDir() + "/orchestra_key";
  std::ofstream(file) << "from-file\n";
  config::ApiKeyConfig from_file;
  from_file.name = "file";
  from_file.key_file = file;
  auth.keys.push_back(from_file);

  ApiKeys keys =
      ApiKeys::FromConfig(auth, Env({{"APP_KEY", "app-key"}, {"OPS_KEY", " ops-key\n"}}));
  ASSERT_TRUE(keys.enabled());
  auto app = keys.Authenticate("Bearer app-key");
  ASSERT_TRUE(app.has_value());
  EXPECT_EQ((*app)->name, "app");
  EXPECT_TRUE((*app)->user);
  EXPECT_FALSE((*app)->admin);
  auto ops = keys.Authenticate("bearer ops-key");
  ASSERT_TRUE(ops.has_value());
  EXPECT_TRUE((*ops)->admin);
  EXPECT_EQ((*keys.Authenticate("Bearer s3cret"))->name, "hashed");
  EXPECT_EQ((*keys.Authenticate("Bearer from-file"))->name, "file");
}

TEST(ApiKeys, RejectsMissingMalformedAndWrongKeys) {
  config::AuthConfig auth;
  auth.keys.push_back(Key("app", "APP_KEY", {config::Scope::kUser}));
  ApiKeys keys = ApiKeys::FromConfig(auth, Env({{"APP_KEY", "app-key"}}));
  for (const char* bad :
       {"", "app-key", "Basic YXBwOmtleQ==", "Bearer ", "Bearer app-key2", "Bearer app-ke"}) {
    auto r = keys.Authenticate(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
    EXPECT_EQ(r.error().message.find("app-key"), std::string::npos) << "a key in a message";
  }
}

TEST(ApiKeys, MissingSourceFailsAtStartWithItsName) {
  config::AuthConfig auth;
  auth.keys.push_back(Key("app", "MISSING_KEY", {config::Scope::kUser}));
  try {
    ApiKeys::FromConfig(auth, Env({}));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("MISSING_KEY is not set"), std::string::npos);
  }
}

TEST(ApiKeys, NoKeysMeansDisabled) {
  ApiKeys keys = ApiKeys::FromConfig({}, Env({}));
  EXPECT_FALSE(keys.enabled());
  EXPECT_EQ(keys.anonymous().name, "default");
}

}  // namespace
}  // namespace orchestra::auth

namespace orchestra::auth {
namespace {

TEST(ApiKeys, ConfigKeysCarryTheirPolicyAndStoredKeysJoinThem) {
  config::AuthConfig auth;
  config::ApiKeyConfig k;
  k.name = "app";
  k.key_env = "APP_KEY";
  k.policy.models = {"local-*"};
  k.policy.limits.rpm = 10;
  auth.keys.push_back(k);
  ApiKeys keys = ApiKeys::FromConfig(
      auth, [](std::string_view) -> std::optional<std::string> { return "app-secret"; });
  auto who = keys.Authenticate("Bearer app-secret");
  ASSERT_TRUE(who);
  EXPECT_EQ((*who)->policy.models, std::vector<std::string>{"local-*"});
  EXPECT_EQ((*who)->policy.limits.rpm, 10);
  EXPECT_EQ((*who)->data_tenant(), "app");

  Principal stored;
  stored.name = "virtual";
  stored.tenant = "team";
  stored.user = true;
  const Principal* kept = keys.Keep(stored);
  keys.Publish({{Sha256("ok-virtual"), kept, 2000}});
  EXPECT_EQ(keys.stored(), 1u);
  EXPECT_EQ(*keys.Authenticate("Bearer ok-virtual", 1999), kept);
  EXPECT_EQ(keys.Authenticate("Bearer ok-virtual", 2000).error().message, "API key expired");
  EXPECT_TRUE(keys.Authenticate("Bearer app-secret", 2000));  // config keys stay
  keys.Publish({});
  EXPECT_FALSE(keys.Authenticate("Bearer ok-virtual", 1999));
  EXPECT_EQ(kept->name, "virtual");  // still readable by a request that holds it
}

TEST(ApiKeys, AuthDisabledNeverRequiresStoredKeys) {
  config::AuthConfig auth;
  auth.disabled = true;
  ApiKeys keys = ApiKeys::FromConfig(auth, [](std::string_view) { return std::nullopt; });
  Principal p;
  p.name = "v";
  keys.Publish({{Sha256("ok-v"), keys.Keep(p), 0}});
  EXPECT_FALSE(keys.enabled());
  ApiKeys loopback;
  EXPECT_FALSE(loopback.enabled());
  loopback.Publish({{Sha256("ok-v"), loopback.Keep(p), 0}});
  EXPECT_TRUE(loopback.enabled());
}

}  // namespace
}  // namespace orchestra::auth
