// Virtual keys as stored and as the admin API reads them: secrets, globs, every bad body
// (refused with the field named, the record untouched), the stored form's round trip, and the
// admission stage that holds a key to its models.

#include "auth/key_record.hpp"

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "auth/model_access.hpp"
#include "common/text.hpp"

namespace orchestra::auth {
namespace {

const std::vector<std::string> kModels{"gpt-4o", "gpt-4o-mini", "local-extractive"};
constexpr double kNow = 1'800'000'000;

TEST(KeySecrets, AreOkPrefixedBase62Of32RandomBytes) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    const std::string s = NewSecret();
    ASSERT_EQ(s.rfind("ok-", 0), 0u) << s;
    EXPECT_EQ(s.size(), 3u + 43u) << s;  // 32 bytes need 43 base62 digits
    for (char c : s.substr(3))
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << s;
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 50u);
  const std::string id = NewKeyId();
  EXPECT_EQ(id.rfind("key_", 0), 0u);
  EXPECT_EQ(id.size(), 4u + 24u);
}

TEST(KeySecrets, Base62IsTheBigEndianNumber) {
  const std::uint8_t zero[2] = {0, 0};
  EXPECT_EQ(Base62(zero), "000");
  const std::uint8_t n61[1] = {61};
  EXPECT_EQ(Base62(n61), "0z");
  const std::uint8_t n62[1] = {62};
  EXPECT_EQ(Base62(n62), "10");
  const std::uint8_t n256[2] = {1, 0};  // 256 = 4·62 + 8
  EXPECT_EQ(Base62(n256), "048");
  std::array<std::uint8_t, 32> max{};
  max.fill(0xFF);
  EXPECT_EQ(Base62(max).size(), 43u);
}

TEST(ModelGlobs, MatchStarAndQuestionMark) {
  struct Case {
    const char* pattern;
    const char* model;
    bool match;
  };
  for (const Case& c : std::vector<Case>{{"gpt-4o", "gpt-4o", true},
                                         {"gpt-4o", "gpt-4o-mini", false},
                                         {"gpt-4o*", "gpt-4o-mini", true},
                                         {"gpt-4o*", "gpt-4o", true},
                                         {"gpt-4o*", "gpt-4", false},
                                         {"*", "anything", true},
                                         {"*mini", "gpt-4o-mini", true},
                                         {"a?c", "abc", true},
                                         {"a?c", "ac", false},
                                         {"a*b*c", "aXXbYYc", true},
                                         {"a*b", "aXbY", false},
                                         {"**", "", true}}) {
    EXPECT_EQ(ModelMatches(c.pattern, c.model), c.match) << c.pattern << " vs " << c.model;
  }
  limits::KeyPolicy open;
  EXPECT_TRUE(ModelAllowed(open, "whatever"));
  limits::KeyPolicy some;
  some.models = {"gpt-4o-mini", "local-*"};
  EXPECT_TRUE(ModelAllowed(some, "local-extractive"));
  EXPECT_FALSE(ModelAllowed(some, "gpt-4o"));
}

TEST(KeyBodies, CreateReadsEveryField) {
  auto r = ParseCreate(R"({"name":"app-1","tenant":"team","scopes":["user","admin"],
      "models":["gpt-4o*"],"limits":{"rpm":600,"tpm":100000,"max_parallel":4,
      "per_model":{"gpt-4o":{"rpm":60,"tpm":1000}}},"budget":{"usd":12.5,"period":"week"},
      "expires_at":1900000000,"metadata":{"owner":"ana"}})",
                       kModels, kNow);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->name, "app-1");
  EXPECT_EQ(r->tenant, "team");
  EXPECT_TRUE(r->user);
  EXPECT_TRUE(r->admin);
  EXPECT_EQ(r->policy.models, std::vector<std::string>{"gpt-4o*"});
  EXPECT_EQ(r->policy.limits.rpm, 600);
  EXPECT_EQ(r->policy.limits.tpm, 100000);
  EXPECT_EQ(r->policy.limits.max_parallel, 4);
  ASSERT_EQ(r->policy.per_model.size(), 1u);
  EXPECT_EQ(r->policy.per_model[0].model, "gpt-4o");
  EXPECT_EQ(r->policy.per_model[0].limits.rpm, 60);
  ASSERT_TRUE(r->policy.budget);
  EXPECT_EQ(r->policy.budget->usd, 12.5);
  EXPECT_EQ(r->policy.budget->period, limits::BudgetPeriod::kWeek);
  EXPECT_EQ(r->expires_at, 1900000000);
  EXPECT_EQ(r->metadata, R"({"owner":"ana"})");

  auto minimal = ParseCreate(R"({"name":"x","scopes":["user"]})", kModels, kNow);
  ASSERT_TRUE(minimal);
  EXPECT_EQ(minimal->tenant, "x");  // the name, when no tenant is given
  EXPECT_TRUE(minimal->policy.unrestricted());
}

TEST(KeyBodies, EveryBadCreateNamesItsField) {
  struct Case {
    const char* body;
    const char* param;
    const char* message_part;
  };
  const std::vector<Case> cases{
      {"not json", "", "not valid JSON"},
      {"[1]", "", "object"},
      {"{}", "name", "required"},
      {R"({"name":"a"})", "scopes", "required"},
      {R"({"name":"a","scopes":[]})", "scopes", ""},
      {R"({"name":"a","scopes":["root"]})", "scopes", ""},
      {R"({"name":"a","scopes":["admn"]})", "scopes", "did you mean 'admin'"},
      {R"({"name":"a b","scopes":["user"]})", "name", ""},
      {R"({"name":"","scopes":["user"]})", "name", ""},
      {R"({"name":"a","tenant":"~system","scopes":["user"]})", "tenant", ""},
      {R"({"name":"a","scope":["user"]})", "scope", "did you mean 'scopes'"},
      {R"({"name":"a","scopes":["user"],"limits":{"rpm":-1}})", "limits.rpm", "whole number"},
      {R"({"name":"a","scopes":["user"],"limits":{"rpm":1.5}})", "limits.rpm", ""},
      {R"({"name":"a","scopes":["user"],"limits":{"tpm":1e12}})", "limits.tpm", ""},
      {R"({"name":"a","scopes":["user"],"limits":{"rpm":"10"}})", "limits.rpm", "number"},
      {R"({"name":"a","scopes":["user"],"limits":{"rmp":10}})", "limits.rmp", "did you mean 'rpm'"},
      {R"({"name":"a","scopes":["user"],"limits":[]})", "limits", ""},
      {R"({"name":"a","scopes":["user"],"limits":{"per_model":{"gpt-5":{"rpm":1}}}})",
       "limits.per_model.gpt-5", "unknown model"},
      {R"({"name":"a","scopes":["user"],"limits":{"per_model":{"gpt-4o":{"rpm":-2}}}})",
       "limits.per_model.gpt-4o.rpm", ""},
      {R"({"name":"a","scopes":["user"],"limits":{"per_model":{"gpt-4o":{"budget":1}}}})",
       "limits.per_model.gpt-4o.budget", "unknown field"},
      {R"({"name":"a","scopes":["user"],"models":["gpt-4x"]})", "models", "did you mean 'gpt-4o'"},
      {R"({"name":"a","scopes":["user"],"models":["claude*"]})", "models", "matches no"},
      {R"({"name":"a","scopes":["user"],"models":"gpt-4o"})", "models", ""},
      {R"({"name":"a","scopes":["user"],"budget":{"usd":5}})", "budget.period", "period"},
      {R"({"name":"a","scopes":["user"],"budget":{"usd":-5,"period":"day"}})", "budget.usd", ""},
      {R"({"name":"a","scopes":["user"],"budget":{"usd":5,"period":"year"}})", "budget.period", ""},
      {R"({"name":"a","scopes":["user"],"budget":{"usd":5,"period":"wek"}})", "budget.period",
       "did you mean 'week'"},
      {R"({"name":"a","scopes":["user"],"budget":{"period":"day"}})", "budget.usd", "required"},
      {R"({"name":"a","scopes":["user"],"expires_at":1000})", "expires_at", "future"},
      {R"({"name":"a","scopes":["user"],"expires_at":"tomorrow"})", "expires_at", "RFC 3339"},
      {R"({"name":"a","scopes":["user"],"expires_at":"2030-01-01T00:00:00"})", "expires_at", ""},
      {R"({"name":"a","scopes":["user"],"expires_at":"2020-01-01T00:00:00Z"})", "expires_at",
       "future"},
      {R"({"name":"a","scopes":["user"],"metadata":"x"})", "metadata", ""},
  };
  for (const Case& c : cases) {
    auto r = ParseCreate(c.body, kModels, kNow);
    ASSERT_FALSE(r) << c.body;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest) << c.body;
    EXPECT_EQ(r.error().param, c.param) << c.body << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos)
        << c.body << ": " << r.error().message;
  }
}

TEST(KeyBodies, ExpiryIsEpochSecondsOrRfc3339) {
  auto at = [](const std::string& value) {
    auto r =
        ParseCreate(R"({"name":"a","scopes":["user"],"expires_at":)" + value + "}", kModels, kNow);
    return r ? r->expires_at : -1;
  };
  EXPECT_EQ(at("1900000000"), 1900000000);
  EXPECT_EQ(at(R"("2030-01-01T00:00:00Z")"), 1893456000);
  EXPECT_EQ(at(R"("2030-01-01T01:00:00+01:00")"), 1893456000);
  EXPECT_EQ(at(R"("2030-01-01T00:00:00.5Z")"), 1893456000.5);
  EXPECT_EQ(at("null"), 0);
}

TEST(KeyBodies, ABadPatchLeavesTheRecordAsItWas) {
  auto r = ParseCreate(R"({"name":"a","scopes":["user"],"limits":{"rpm":5}})", kModels, kNow);
  ASSERT_TRUE(r);
  const KeyRecord before = *r;
  for (const char* body :
       {R"({"limits":{"rpm":7},"budget":{"usd":1}})", R"({"name":"b"})", R"({"tenant":"t"})",
        R"({"scopes":["user"],"models":["nope"]})", "{", R"({"colour":1})"}) {
    auto patched = ApplyPatch(body, kModels, kNow, *r);
    EXPECT_FALSE(patched) << body;
    EXPECT_EQ(r->policy, before.policy) << body;
    EXPECT_EQ(r->user, before.user);
  }
  ASSERT_TRUE(ApplyPatch(R"({"limits":{"tpm":9},"models":["gpt-4o"],"scopes":["admin"],
                            "budget":{"usd":3,"period":"day"}})",
                         kModels, kNow, *r));
  EXPECT_EQ(r->policy.limits.rpm, 0);  // limits is replaced whole
  EXPECT_EQ(r->policy.limits.tpm, 9);
  EXPECT_FALSE(r->user);
  EXPECT_TRUE(r->admin);
  ASSERT_TRUE(ApplyPatch(R"({"models":null,"budget":null})", kModels, kNow, *r));
  EXPECT_TRUE(r->policy.models.empty());
  EXPECT_FALSE(r->policy.budget);
}

TEST(KeyBodies, RotateTakesAnOptionalGrace) {
  EXPECT_EQ(*ParseRotate("", 3600), 3600);
  EXPECT_EQ(*ParseRotate("{}", 3600), 3600);
  EXPECT_EQ(*ParseRotate(R"({"grace_seconds":0})", 3600), 0);
  EXPECT_EQ(*ParseRotate(R"({"grace_seconds":60})", 3600), 60);
  EXPECT_EQ(ParseRotate(R"({"grace_seconds":-1})", 3600).error().param, "grace_seconds");
  EXPECT_EQ(ParseRotate(R"({"grace_seconds":1e9})", 3600).error().param, "grace_seconds");
  EXPECT_EQ(ParseRotate(R"({"grace":1})", 3600).error().param, "grace");
}

TEST(KeyRecords, RoundTripAndNeverShowADigest) {
  auto r = ParseCreate(R"({"name":"app","scopes":["user"],"models":["gpt-4o*"],
      "limits":{"rpm":1,"per_model":{"gpt-4o":{"tpm":2}}},"budget":{"usd":1,"period":"day"},
      "metadata":{"k":[1,2]}})",
                       kModels, kNow);
  ASSERT_TRUE(r);
  r->id = NewKeyId();
  r->digest = Sha256("ok-secret");
  r->previous_digest = Sha256("ok-old");
  r->previous_valid_until = kNow + 60;
  r->created_at = kNow;
  const std::string stored = EncodeStored(*r);
  auto back = DecodeStored(stored);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->id, r->id);
  EXPECT_EQ(back->name, r->name);
  EXPECT_EQ(back->tenant, r->tenant);
  EXPECT_EQ(back->policy, r->policy);
  EXPECT_EQ(back->digest, r->digest);
  EXPECT_EQ(back->previous_digest, r->previous_digest);
  EXPECT_EQ(back->previous_valid_until, r->previous_valid_until);
  EXPECT_EQ(back->metadata, r->metadata);
  EXPECT_EQ(stored.find("ok-secret"), std::string::npos);

  const std::string shown = RenderKey(*r);
  EXPECT_EQ(shown.find("sha256"), std::string::npos) << shown;
  EXPECT_EQ(shown.find(HexEncode(r->digest)), std::string::npos);
  EXPECT_EQ(shown.find("\"key\""), std::string::npos);
  EXPECT_NE(RenderKey(*r, "ok-abc").find(R"("key":"ok-abc")"), std::string::npos);

  EXPECT_FALSE(DecodeStored("{}"));
  EXPECT_FALSE(DecodeStored("nope"));
}

TEST(ModelAccessStage, RefusesModelsOutsideTheKeysList) {
  ModelAccess stage;
  limits::KeyPolicy policy;
  policy.models = {"gpt-4o*"};
  limits::Request request;
  request.policy = &policy;
  limits::Ticket ticket;
  request.model = "gpt-4o-mini";
  EXPECT_FALSE(stage.Admit(request, ticket));
  request.model = "";  // a route without a model
  EXPECT_FALSE(stage.Admit(request, ticket));
  request.model = "local-extractive";
  auto refused = stage.Admit(request, ticket);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->error.code, ErrorCode::kModelNotAllowed);
  EXPECT_EQ(refused->reason, "model_not_allowed");
  EXPECT_NE(refused->error.message.find("'local-extractive'"), std::string::npos);
  limits::KeyPolicy open;
  request.policy = &open;
  EXPECT_FALSE(stage.Admit(request, ticket));
}

}  // namespace
}  // namespace orchestra::auth
