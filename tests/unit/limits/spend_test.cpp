#include "limits/spend.hpp"

#include <gtest/gtest.h>

#include "support/memory_records.hpp"

namespace orchestra::limits {
namespace {

using testing::RunSync;

TEST(SpendDays, CivilDaysPeriodsAndTheirText) {
  const std::int64_t day = *ParseDay("2026-12-03");  // a Thursday
  EXPECT_EQ(DayText(day), "2026-12-03");
  EXPECT_EQ(DayText(PeriodStart(BudgetPeriod::kDay, day)), "2026-12-03");
  EXPECT_EQ(DayText(PeriodStart(BudgetPeriod::kWeek, day)), "2026-11-30");  // Monday
  EXPECT_EQ(DayText(PeriodStart(BudgetPeriod::kMonth, day)), "2026-12-01");
  EXPECT_EQ(DayOf(1'764'720'000'000), *ParseDay("2025-12-03"));
  for (const char* bad : {"2026-02-30", "2026-13-01", "26-12-03", "2026-12-3x", "", "1969-12-31"})
    EXPECT_FALSE(ParseDay(bad)) << bad;
}

struct Fixture {
  std::int64_t now_ms = *ParseDay("2026-12-03") * 86'400'000 + 3'600'000;
  testing::MemoryRecords store;
  KeyPolicy policy;

  SpendLedger::Options Options() {
    SpendLedger::Options o;
    o.flush_interval = std::chrono::hours(1);
    o.clock = [this] { return now_ms; };
    return o;
  }
  Request Make() {
    Request r;
    r.principal = "app";
    r.model = "m";
    r.policy = &policy;
    return r;
  }
};

Outcome Served(double cost) {
  Outcome o;
  o.status = 200;
  o.model = "m";
  o.usage_known = true;
  o.prompt_tokens = 10;
  o.completion_tokens = 5;
  o.cost_usd = cost;
  return o;
}

TEST(SpendLedger, RefusesWithInsufficientQuotaOnceThePeriodsSpendReachedTheBudget) {
  Fixture f;
  f.policy.budget = Budget{1.0, BudgetPeriod::kDay};
  SpendLedger ledger(&f.store, f.Options());
  ledger.Start();
  Ticket t;
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(ledger.Admit(f.Make(), t)) << i;
    ledger.Settle(f.Make(), t, Served(0.4));
  }
  auto refused = ledger.Admit(f.Make(), t);  // 1.2 spent
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->error.code, ErrorCode::kInsufficientQuota);
  EXPECT_EQ(refused->reason, "budget");
  // The next day is a new period.
  f.now_ms += 86'400'000;
  EXPECT_FALSE(ledger.Admit(f.Make(), t));
  // A monthly budget still counts yesterday.
  f.policy.budget = Budget{1.0, BudgetPeriod::kMonth};
  EXPECT_TRUE(ledger.Admit(f.Make(), t));
}

TEST(SpendLedger, FlushesCountersByKeyDayAndModelAndANewLedgerStartsFromThem) {
  Fixture f;
  f.policy.budget = Budget{1.0, BudgetPeriod::kWeek};
  {
    SpendLedger ledger(&f.store, f.Options());
    ledger.Start();
    Ticket t;
    ledger.Settle(f.Make(), t, Served(0.7));
    ledger.Settle(f.Make(), t, Served(0.2));
    Outcome hit = Served(5);
    hit.cache_hit = true;  // costs nothing
    ledger.Settle(f.Make(), t, hit);
    ledger.FlushNow();
    EXPECT_DOUBLE_EQ(ledger.PeriodSpend("app", BudgetPeriod::kWeek), 0.9);
  }
  // Another instance (or this one restarted) sees the spend.
  SpendLedger restarted(&f.store, f.Options());
  restarted.Start();
  EXPECT_DOUBLE_EQ(restarted.PeriodSpend("app", BudgetPeriod::kWeek), 0.9);
  Ticket t;
  EXPECT_FALSE(restarted.Admit(f.Make(), t));
  restarted.Settle(f.Make(), t, Served(0.2));
  EXPECT_TRUE(restarted.Admit(f.Make(), t));
}

TEST(SpendLedger, ABackendThatIsDownKeepsSpendForTheNextFlush) {
  Fixture f;
  SpendLedger ledger(&f.store, f.Options());
  ledger.Start();
  Ticket t;
  f.store.down = true;
  ledger.Settle(f.Make(), t, Served(0.5));
  ledger.FlushNow();
  EXPECT_DOUBLE_EQ(ledger.PeriodSpend("app", BudgetPeriod::kDay), 0.5);
  f.store.down = false;
  ledger.FlushNow();
  EXPECT_DOUBLE_EQ(ledger.PeriodSpend("app", BudgetPeriod::kDay), 0.5);
  SpendLedger other(&f.store, f.Options());
  other.Start();
  EXPECT_DOUBLE_EQ(other.PeriodSpend("app", BudgetPeriod::kDay), 0.5);
}

// Start-up and the read-back after each flush read from the oldest day a budget period can
// hold: a key's history before that, which grows for as long as the key is used, is not read
// (at every start, and every second).
TEST(SpendLedger, ReadsBackOnlyTheDaysABudgetPeriodCanHold) {
  Fixture f;
  f.policy.budget = Budget{1.0, BudgetPeriod::kMonth};
  const std::int64_t today = DayOf(f.now_ms);
  for (std::int64_t day = today - 400; day < today - 40; ++day) {
    ASSERT_TRUE(
        RunSync(f.store.Add(storage::kSystemTenant, kSpendCollection,
                            SpendCounterId("app", DayText(day), "m"), {{"cost_usd", 5.0}})));
  }
  // One counter inside the month, and another key's whose days sort after app's.
  ASSERT_TRUE(
      RunSync(f.store.Add(storage::kSystemTenant, kSpendCollection,
                          SpendCounterId("app", DayText(today - 1), "m"), {{"cost_usd", 0.25}})));
  ASSERT_TRUE(
      RunSync(f.store.Add(storage::kSystemTenant, kSpendCollection,
                          SpendCounterId("app2", DayText(today), "m"), {{"cost_usd", 9.0}})));
  SpendLedger ledger(&f.store, f.Options());
  ledger.Start();  // skips app's old days too: a small page from app's oldest, then the rest
  EXPECT_LE(f.store.counters_listed, 64u + 2u);
  EXPECT_DOUBLE_EQ(ledger.PeriodSpend("app", BudgetPeriod::kMonth), 0.25);
  EXPECT_DOUBLE_EQ(ledger.PeriodSpend("app2", BudgetPeriod::kDay), 9.0);
  Ticket t;
  ledger.Settle(f.Make(), t, Served(0.5));
  const std::size_t before = f.store.counters_listed;
  ledger.FlushNow();
  // app's today and yesterday, app2's today; not app's 360 old days.
  EXPECT_LE(f.store.counters_listed - before, 3u);
  EXPECT_DOUBLE_EQ(ledger.PeriodSpend("app", BudgetPeriod::kMonth), 0.75);
}

}  // namespace
}  // namespace orchestra::limits
