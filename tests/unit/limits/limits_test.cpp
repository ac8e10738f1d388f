#include <gtest/gtest.h>

#include "limits/load_shedder.hpp"
#include "limits/usage_recorder.hpp"

namespace orchestra::limits {
namespace {

TEST(LoadShedder, RefusesPastTheCeilingWithRetryAfterAndGivesSlotsBackAtSettlement) {
  observability::Registry registry;
  LoadShedder shedder({2, 3}, nullptr, registry);
  Request r;
  Ticket t;
  EXPECT_FALSE(shedder.Admit(r, t));
  EXPECT_FALSE(shedder.Admit(r, t));
  auto refused = shedder.Admit(r, t);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->error.code, ErrorCode::kOverloaded);
  EXPECT_EQ(refused->error.retry_after_s, 3);
  EXPECT_EQ(refused->reason, "overload");
  EXPECT_EQ(shedder.inflight(), 2);
  shedder.Settle(r, t, Outcome{});
  EXPECT_EQ(shedder.inflight(), 1);
  EXPECT_FALSE(shedder.Admit(r, t));
  EXPECT_NE(registry.Render().find("orchestra_http_inflight_requests 2"), std::string::npos);
}

TEST(LoadShedder, ShedsByTheWorkersLoopDelayNotByHowManyWait) {
  observability::Registry registry;
  LoopLoad load(2);
  LoadShedder::Options options;
  options.max_inflight = 1'000'000;
  options.max_loop_delay = std::chrono::milliseconds(10);
  LoadShedder shedder(options, &load, registry);
  Request on_worker_1;
  on_worker_1.worker = 1;
  Ticket t;
  // Thousands waiting on upstreams with loops that keep up: all admitted.
  for (int i = 0; i < 5000; ++i)
    ASSERT_FALSE(shedder.Admit(on_worker_1, t));
  // Worker 1 falls 25 ms behind (smoothed): past twice the target every request is shed, with
  // Retry-After; worker 0's requests still pass.
  for (int i = 0; i < 40; ++i)
    load.Record(1, std::chrono::milliseconds(25));
  auto refused = shedder.Admit(on_worker_1, t);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->error.code, ErrorCode::kOverloaded);
  EXPECT_EQ(refused->reason, "overload");
  Request on_worker_0;
  EXPECT_FALSE(shedder.Admit(on_worker_0, t));
  // Between the target and twice it, a share is shed.
  for (int i = 0; i < 40; ++i)
    load.Record(1, std::chrono::milliseconds(15));
  int shed = 0;
  for (int i = 0; i < 1000; ++i)
    shed += shedder.Admit(on_worker_1, t) ? 1 : 0;
  EXPECT_GT(shed, 300);
  EXPECT_LT(shed, 700);
  EXPECT_NE(registry.Render().find("orchestra_event_loop_delay_seconds 0.01"), std::string::npos);
}

TEST(LoadShedder, ShedsOverTheMemoryBound) {
  observability::Registry registry;
  LoopLoad load(1);
  LoadShedder::Options options;
  options.max_memory_bytes = 100 << 20;
  LoadShedder shedder(options, &load, registry);
  Request r;
  Ticket t;
  load.SetResidentBytes(50 << 20);
  EXPECT_FALSE(shedder.Admit(r, t));
  load.SetResidentBytes(150 << 20);
  EXPECT_TRUE(shedder.Admit(r, t));
}

TEST(UsageRecorder, CountsTokensAndCostByModelProviderAndKey) {
  observability::Registry registry;
  UsageRecorder usage(registry);
  Request r;
  r.principal = "app";
  Outcome o;
  o.model = "fast";
  o.provider = "up";
  o.prompt_tokens = 100;
  o.cached_tokens = 40;
  o.completion_tokens = 20;
  o.usage_known = true;
  o.cost_usd = 0.25;
  Ticket t;
  usage.Settle(r, t, o);
  usage.Settle(r, t, o);
  const std::string text = registry.Render();
  for (const char* line : {
           R"(orchestra_tokens_total{model="fast",provider="up",key="app",kind="input"} 120)",
           R"(orchestra_tokens_total{model="fast",provider="up",key="app",kind="cached_input"} 80)",
           R"(orchestra_tokens_total{model="fast",provider="up",key="app",kind="output"} 40)",
           R"(orchestra_cost_usd_total{model="fast",provider="up",key="app"} 0.5)",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST(UsageRecorder, NothingServedOrRefusedRecordsNothing) {
  observability::Registry registry;
  UsageRecorder usage(registry);
  Request r;
  Outcome refused;
  refused.refused = true;
  refused.model = "fast";
  refused.usage_known = true;
  refused.prompt_tokens = 5;
  Ticket t;
  usage.Settle(r, t, refused);
  Outcome nothing;
  usage.Settle(r, t, nothing);
  EXPECT_EQ(registry.Render().find("orchestra_tokens_total{"), std::string::npos);
}

TEST(UsageRecorder, LabelCombinationsAreBounded) {
  observability::Registry registry;
  UsageRecorder usage(registry, 3);
  Ticket t;
  for (int i = 0; i < 50; ++i) {
    const std::string key = "key" + std::to_string(i);
    Request r;
    r.principal = key;
    Outcome o;
    o.model = "m";
    o.provider = "p";
    o.usage_known = true;
    o.prompt_tokens = 1;
    usage.Settle(r, t, o);
  }
  const std::string text = registry.Render();
  EXPECT_NE(
      text.find(
          R"(orchestra_tokens_total{model="other",provider="other",key="other",kind="input"} 47)"),
      std::string::npos)
      << text;
  EXPECT_EQ(text.find("key49"), std::string::npos);
}

}  // namespace
}  // namespace orchestra::limits
