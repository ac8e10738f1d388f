// The stored model record: round trips, and damaged values refused with a reason.

#include "versions/record.hpp"

#include <gtest/gtest.h>

namespace orchestra::versions {
namespace {

TEST(ModelRecord, RoundTripsThroughItsJson) {
  ModelRecord r;
  r.model_id = "chat";
  r.versions = {{"v1", "up/a", {"chat", "json"}, 1715000000.25}, {"v2", "up/b/c", {}, 2}};
  r.deployment = {DeploymentState::kBlueGreen, "v1", "v2", 30};
  auto back = Decode(Encode(r));
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->model_id, "chat");
  ASSERT_EQ(back->versions.size(), 2u);
  EXPECT_EQ(back->versions[0].capabilities, (std::vector<std::string>{"chat", "json"}));
  EXPECT_EQ(back->versions[0].created_at, 1715000000.25);
  EXPECT_EQ(back->versions[1].endpoint, "up/b/c");
  EXPECT_EQ(back->deployment.state, DeploymentState::kBlueGreen);
  EXPECT_EQ(back->deployment.green_percent, 30);
  r.deployment = {};
  EXPECT_EQ(Decode(Encode(r))->deployment.state, DeploymentState::kNone);
}

TEST(ModelRecord, DamagedValuesAreRefusedWithAReason) {
  const char* bad[] = {
      "",
      "[]",
      R"({"versions":[]})",
      R"({"model_id":"m"})",
      R"({"model_id":"m","versions":[{"version":"v"}]})",
      R"({"model_id":"m","versions":[{"version":"v","endpoint":"no-slash"}]})",
      R"({"model_id":"m","versions":[{"version":"v","endpoint":"a/b"},{"version":"v","endpoint":"a/c"}]})",
      R"({"model_id":"m","versions":[{"version":"v","endpoint":"a/b"}],"deployment":{"state":"blue_green","blue_version":"v","green_version":"w","green_traffic_percentage":5}})",
      R"({"model_id":"m","versions":[{"version":"v","endpoint":"a/b"}],"deployment":{"state":"blue_green","blue_version":"v","green_version":"v","green_traffic_percentage":101}})",
      R"({"model_id":"m","versions":[{"version":"v","endpoint":"a/b"}],"deployment":{"state":"sideways","blue_version":"v","green_version":"v","green_traffic_percentage":1}})",
      R"({"model_id":"m","versions":[{"version":"v","endpoint":"a/b"}],"deployment":7})",
  };
  for (const char* text : bad) {
    auto r = Decode(text);
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kInternal) << text;
    EXPECT_NE(r.error().message.find("stored model record"), std::string::npos);
  }
}

TEST(ModelRecord, PlansFollowTheDeployment) {
  ModelRecord r;
  r.model_id = "chat";
  r.versions = {{"b", "up/blue", {}, 0}, {"g", "other/green/x", {}, 0}};
  EXPECT_TRUE(PlanFor(r).empty());
  r.deployment = {DeploymentState::kBlueGreen, "b", "g", 25};
  auto plan = PlanFor(r);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].provider, "up");
  EXPECT_EQ(plan[0].weight, 75);
  EXPECT_EQ(plan[1].upstream_model, "green/x");
  EXPECT_EQ(plan[1].weight, 25);
  r.deployment.green_percent = 0;
  EXPECT_EQ(PlanFor(r).size(), 1u);
  r.deployment.state = DeploymentState::kPromoted;
  ASSERT_EQ(PlanFor(r).size(), 1u);
  EXPECT_EQ(PlanFor(r)[0].provider, "other");
  r.deployment.state = DeploymentState::kRolledBack;
  EXPECT_EQ(PlanFor(r)[0].provider, "up");
}

TEST(ModelRecord, EndpointsSplitAtTheFirstSlash) {
  EXPECT_EQ(SplitEndpoint("a/b/c")->upstream_model, "b/c");
  EXPECT_FALSE(SplitEndpoint("ab"));
  EXPECT_FALSE(SplitEndpoint("/b"));
  EXPECT_FALSE(SplitEndpoint("a/"));
}

}  // namespace
}  // namespace orchestra::versions
