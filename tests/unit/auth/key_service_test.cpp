// The virtual keys service against the in-memory record store: what create, patch, rotate and
// revoke store and do to the live table; bad input writes nothing; names are taken once;
// principals outlive a change; a second instance follows the change log; a restart reloads.

#include "auth/key_service.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "support/memory_records.hpp"

namespace orchestra::auth {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::MemoryRecords;
using testing::RunSync;

std::string Bearer(const std::string& secret) {
  return "Bearer " + secret;
}

// One instance: its key table and its service.
struct Instance {
  Instance(MemoryRecords& records, double* clock,
           std::vector<config::ApiKeyConfig> config_keys = {})
      : keys(MakeKeys(std::move(config_keys))), service(records, keys, Options(clock)) {}

  static ApiKeys MakeKeys(std::vector<config::ApiKeyConfig> config_keys) {
    config::AuthConfig auth;
    auth.keys = std::move(config_keys);
    return ApiKeys::FromConfig(
        auth, [](std::string_view) -> std::optional<std::string> { return "config-secret"; });
  }
  static KeyServiceOptions Options(double* clock) {
    KeyServiceOptions o;
    o.models = {"gpt-4o", "gpt-4o-mini"};
    o.poll_interval = 10ms;
    o.rotation_grace_s = 60;
    o.now = [clock] { return *clock; };
    return o;
  }
  // Waits for two more completed polls: every change stored before the call is then applied.
  void WaitForPolls() {
    const std::uint64_t start = service.polls();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (service.polls() < start + 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(2ms);
    ASSERT_GE(service.polls(), start + 2);
  }

  ApiKeys keys;
  KeyService service;
};

class KeyServiceTest : public ::testing::Test {
 protected:
  double clock_ = 1'800'000'000;
  MemoryRecords records_;
};

TEST_F(KeyServiceTest, CreatedKeyAuthenticatesAsItsPrincipalAndIsShownOnce) {
  Instance a(records_, &clock_);
  ASSERT_TRUE(a.service.Start());
  EXPECT_FALSE(a.keys.enabled());
  auto issued = RunSync(a.service.Create(
      R"({"name":"app","tenant":"team","scopes":["user"],"models":["gpt-4o*"],
          "limits":{"rpm":60},"budget":{"usd":5,"period":"day"}})"));
  ASSERT_TRUE(issued) << issued.error().message;
  EXPECT_TRUE(a.keys.enabled());
  auto who = a.keys.Authenticate(Bearer(issued->secret), clock_);
  ASSERT_TRUE(who) << who.error().message;
  EXPECT_EQ((*who)->name, "app");
  EXPECT_EQ((*who)->data_tenant(), "team");
  EXPECT_TRUE((*who)->user);
  EXPECT_FALSE((*who)->admin);
  EXPECT_EQ((*who)->policy.limits.rpm, 60);
  EXPECT_EQ((*who)->policy.models, std::vector<std::string>{"gpt-4o*"});
  EXPECT_FALSE(a.keys.Authenticate(Bearer(issued->secret + "x"), clock_));

  auto got = RunSync(a.service.Get(issued->record.id));
  ASSERT_TRUE(got);
  EXPECT_EQ(RenderKey(*got).find(issued->secret), std::string::npos);
  auto page = RunSync(a.service.List(10, ""));
  ASSERT_TRUE(page);
  ASSERT_EQ(page->keys.size(), 1u);
  EXPECT_EQ(page->keys[0].name, "app");
  EXPECT_FALSE(RunSync(a.service.Get("key_nope")));
  EXPECT_EQ(RunSync(a.service.Get("key_nope")).error().code, ErrorCode::kNotFound);
}

TEST_F(KeyServiceTest, BadInputAndReusedNamesWriteNothing) {
  config::ApiKeyConfig ops;
  ops.name = "ops";
  ops.key_env = "OPS";
  Instance a(records_, &clock_, {ops});
  ASSERT_TRUE(a.service.Start());
  ASSERT_TRUE(RunSync(a.service.Create(R"({"name":"app","scopes":["user"]})")));
  const std::int64_t before = *RunSync(records_.LatestSequence());
  for (const char* body : {R"({"name":"app","scopes":["admin"]})",  // taken by a stored key
                           R"({"name":"ops","scopes":["user"]})",   // taken by a config key
                           R"({"name":"b","scopes":["user"],"limits":{"rpm":-1}})",
                           R"({"name":"c","scopes":["user"],"models":["gpt-5"]})"}) {
    auto r = RunSync(a.service.Create(body));
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest) << body;
  }
  EXPECT_EQ(RunSync(a.service.Create(R"({"name":"ops","scopes":["user"]})")).error().param, "name");
  EXPECT_EQ(*RunSync(records_.LatestSequence()), before);
  EXPECT_EQ(RunSync(a.service.List(10, ""))->keys.size(), 1u);
  EXPECT_EQ(a.keys.stored(), 1u);
}

TEST_F(KeyServiceTest, PatchChangesThePolicyAndHeldPrincipalsStayValid) {
  Instance a(records_, &clock_);
  ASSERT_TRUE(a.service.Start());
  auto issued = RunSync(a.service.Create(R"({"name":"app","scopes":["user"]})"));
  ASSERT_TRUE(issued);
  const Principal* held = *a.keys.Authenticate(Bearer(issued->secret), clock_);
  auto patched =
      RunSync(a.service.Patch(issued->record.id, R"({"limits":{"tpm":1000},"models":["gpt-4o"]})"));
  ASSERT_TRUE(patched) << patched.error().message;
  const Principal* now = *a.keys.Authenticate(Bearer(issued->secret), clock_);
  EXPECT_EQ(now->policy.limits.tpm, 1000);
  EXPECT_EQ(now->policy.models, std::vector<std::string>{"gpt-4o"});
  // An in-flight request's principal is the one it authenticated as, still readable.
  EXPECT_EQ(held->name, "app");
  EXPECT_EQ(held->policy.limits.tpm, 0);

  auto bad = RunSync(a.service.Patch(issued->record.id, R"({"limits":{"tpm":-5}})"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().param, "limits.tpm");
  EXPECT_EQ((*a.keys.Authenticate(Bearer(issued->secret), clock_))->policy.limits.tpm, 1000);
  EXPECT_EQ(RunSync(a.service.Patch("key_nope", "{}")).error().code, ErrorCode::kNotFound);
}

TEST_F(KeyServiceTest, RevokedKeyIsRefusedHereAtOnceAndOnAnotherInstanceAfterAPoll) {
  Instance a(records_, &clock_);
  Instance b(records_, &clock_);
  ASSERT_TRUE(a.service.Start());
  ASSERT_TRUE(b.service.Start());
  auto issued = RunSync(a.service.Create(R"({"name":"app","scopes":["user"]})"));
  ASSERT_TRUE(issued);
  b.WaitForPolls();
  ASSERT_TRUE(b.keys.Authenticate(Bearer(issued->secret), clock_));

  ASSERT_TRUE(RunSync(a.service.Revoke(issued->record.id)));
  EXPECT_FALSE(a.keys.Authenticate(Bearer(issued->secret), clock_));
  b.WaitForPolls();
  EXPECT_FALSE(b.keys.Authenticate(Bearer(issued->secret), clock_));
  EXPECT_EQ(RunSync(a.service.Revoke(issued->record.id)).error().code, ErrorCode::kNotFound);
  // The name is free again.
  EXPECT_TRUE(RunSync(a.service.Create(R"({"name":"app","scopes":["user"]})")));
}

TEST_F(KeyServiceTest, RotationKeepsTheOldSecretForTheGracePeriodOnly) {
  Instance a(records_, &clock_);
  Instance b(records_, &clock_);
  ASSERT_TRUE(a.service.Start());
  ASSERT_TRUE(b.service.Start());
  auto issued = RunSync(a.service.Create(R"({"name":"app","scopes":["user"]})"));
  ASSERT_TRUE(issued);
  auto rotated = RunSync(a.service.Rotate(issued->record.id, ""));
  ASSERT_TRUE(rotated) << rotated.error().message;
  EXPECT_NE(rotated->secret, issued->secret);
  b.WaitForPolls();
  for (Instance* i : {&a, &b}) {
    EXPECT_TRUE(i->keys.Authenticate(Bearer(rotated->secret), clock_));
    EXPECT_TRUE(i->keys.Authenticate(Bearer(issued->secret), clock_ + 59));
    auto late = i->keys.Authenticate(Bearer(issued->secret), clock_ + 60);
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error().message, "API key expired");
  }
  // Without a grace period the old secret stops at once.
  auto again = RunSync(a.service.Rotate(issued->record.id, R"({"grace_seconds":0})"));
  ASSERT_TRUE(again);
  EXPECT_FALSE(a.keys.Authenticate(Bearer(rotated->secret), clock_));
  EXPECT_TRUE(a.keys.Authenticate(Bearer(again->secret), clock_));
}

TEST_F(KeyServiceTest, ExpiredKeysAreRefusedAtAuthentication) {
  Instance a(records_, &clock_);
  ASSERT_TRUE(a.service.Start());
  auto issued = RunSync(a.service.Create(R"({"name":"app","scopes":["user"],"expires_at":)" +
                                         std::to_string(static_cast<long>(clock_) + 100) + "}"));
  ASSERT_TRUE(issued) << issued.error().message;
  EXPECT_TRUE(a.keys.Authenticate(Bearer(issued->secret), clock_ + 99));
  EXPECT_FALSE(a.keys.Authenticate(Bearer(issued->secret), clock_ + 100));
}

TEST_F(KeyServiceTest, ARestartedInstanceLoadsTheStoredKeys) {
  std::string secret;
  {
    Instance a(records_, &clock_);
    ASSERT_TRUE(a.service.Start());
    auto issued = RunSync(a.service.Create(R"({"name":"app","scopes":["admin"]})"));
    ASSERT_TRUE(issued);
    secret = issued->secret;
    auto revoked = RunSync(a.service.Create(R"({"name":"gone","scopes":["user"]})"));
    ASSERT_TRUE(RunSync(a.service.Revoke(revoked->record.id)));
  }
  Instance restarted(records_, &clock_);
  ASSERT_TRUE(restarted.service.Start());
  auto who = restarted.keys.Authenticate(Bearer(secret), clock_);
  ASSERT_TRUE(who);
  EXPECT_TRUE((*who)->admin);
  EXPECT_EQ(restarted.keys.stored(), 1u);
}

TEST_F(KeyServiceTest, StartReportsAnUnreachableBackendAndConfigKeysStillWork) {
  config::ApiKeyConfig ops;
  ops.name = "ops";
  ops.key_env = "OPS";
  records_.down = true;
  Instance a(records_, &clock_, {ops});
  EXPECT_FALSE(a.service.Start());
  EXPECT_TRUE(a.keys.Authenticate("Bearer config-secret", clock_));
  records_.down = false;
  a.WaitForPolls();
  EXPECT_TRUE(RunSync(a.service.Create(R"({"name":"app","scopes":["user"]})")));
}

}  // namespace
}  // namespace orchestra::auth
