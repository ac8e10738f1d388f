// Admission + settlement cost of the in-process limit stages (issue 13's budget: ≤ 2 µs p50),
// on one core: a key with rpm + tpm + max_parallel and a per-model limit (two buckets per
// request), the budget check, and both together; with one thread and with 2 threads on the
// same key (contended buckets).
//
//   build/release/bench/orchestra_bench_limits [--benchmark_filter=...]

#include <benchmark/benchmark.h>

#include "limits/rate_limiter.hpp"
#include "limits/spend.hpp"

namespace {

using namespace orchestra::limits;

KeyPolicy Policy() {
  KeyPolicy p;
  p.limits = {1'000'000'000, 1'000'000'000'000, 1'000'000};
  p.per_model.push_back({"gpt-4o-mini", {1'000'000'000, 1'000'000'000'000, 1'000'000}});
  p.budget = Budget{1e12, BudgetPeriod::kMonth};
  return p;
}

Outcome Served() {
  Outcome o;
  o.status = 200;
  o.model = "gpt-4o-mini";
  o.usage_known = true;
  o.prompt_tokens = 120;
  o.completion_tokens = 40;
  o.cost_usd = 0.0001;
  return o;
}

void BM_RateLimiterAdmitSettle(benchmark::State& state) {
  static RateLimiter limiter;
  static const KeyPolicy policy = Policy();
  RateHeaders headers;
  Request r;
  r.principal = "app";  // every thread on the same key: the contended case
  r.model = "gpt-4o-mini";
  r.estimated_tokens = 200;
  r.policy = &policy;
  r.rate_headers = &headers;
  const Outcome outcome = Served();
  for (auto _ : state) {
    Ticket t;
    auto refused = limiter.Admit(r, t);
    benchmark::DoNotOptimize(refused);
    limiter.Settle(r, t, outcome);
  }
}
BENCHMARK(BM_RateLimiterAdmitSettle)->Threads(1)->Threads(2);

void BM_BudgetAdmitSettle(benchmark::State& state) {
  static SpendLedger ledger(nullptr, {});
  static const KeyPolicy policy = Policy();
  Request r;
  r.principal = "app";
  r.model = "gpt-4o-mini";
  r.policy = &policy;
  const Outcome outcome = Served();
  for (auto _ : state) {
    Ticket t;
    auto refused = ledger.Admit(r, t);
    benchmark::DoNotOptimize(refused);
    ledger.Settle(r, t, outcome);
  }
}
BENCHMARK(BM_BudgetAdmitSettle)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
