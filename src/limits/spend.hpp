#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "limits/admission.hpp"
#include "storage/record_store.hpp"

// Spend and budgets as an admission stage (issue 13, "Budgets and spend").
//
// Settle adds every served request's tokens and cost (Outcome::cost_usd, from the price table)
// to its key × model × UTC day, in memory; a flusher thread writes what accumulated to the
// RecordStore's counters every `flush_interval` (collection "spend", tenant kSystemTenant, one
// counter per key × day × model with fields requests, prompt_tokens, completion_tokens,
// cost_usd), so the request path never waits on storage. After each flush it reads back, for
// every key seen, what the whole fleet spent in the key's budget period, so the check below sees
// other instances' spend within one flush interval, and a restarted instance starts from what
// the backend holds.
//
// Admit refuses a model request (one that names a model) of a key whose budget period's spend (the
// backend's total plus what this instance settled since) has reached its budget: 429
// `insufficient_quota`, as OpenAI answers a spent quota. A request already admitted finishes, so a
// budget is overrun by at most the requests in flight when it was reached. Cached answers
// (Outcome::cache_hit) cost nothing.
//
// Thread-safety: Admit and Settle take one mutex for a hash lookup and a few additions.
namespace orchestra::limits {

// Days since 1970-01-01 (UTC) and their ISO form.
std::int64_t DayOf(std::int64_t unix_ms);
std::string DayText(std::int64_t day);  // "2026-12-03"
std::optional<std::int64_t> ParseDay(std::string_view text);
// The first day of the budget period holding `day` (week: from Monday; month: from the 1st).
std::int64_t PeriodStart(BudgetPeriod period, std::int64_t day);
std::string_view ToString(BudgetPeriod period);

// The 429 insufficient_quota refusal of a key that spent `spent` of its `budget`.
Refusal BudgetRefusal(const Budget& budget, double spent);

inline constexpr std::string_view kSpendCollection = "spend";
// A spend counter's id: key \x1f day \x1f model.
std::string SpendCounterId(std::string_view key, std::string_view day, std::string_view model);

class SpendLedger final : public Stage {
 public:
  using Clock = std::function<std::int64_t()>;  // unix milliseconds
  struct Options {
    std::chrono::milliseconds flush_interval{1000};
    Clock clock;  // empty: the wall clock
  };

  // `store` may be null (nothing persisted: budgets per process). It must outlive the ledger.
  SpendLedger(storage::RecordStore* store, Options options);
  ~SpendLedger() override;  // Stop() without the last flush

  // Loads the current periods' spend and starts the flusher thread.
  void Start();
  // Stops the flusher thread and writes what settled since its last flush. Call it while the
  // store still runs (before the storage is shut down): a flush whose storage call can never
  // complete would hold the thread, and the process's exit, forever. Idempotent.
  void Stop();

  std::string_view name() const override { return "budget"; }
  std::optional<Refusal> Admit(const Request& request, Ticket& ticket) override;
  void Settle(const Request& request, const Ticket& ticket, const Outcome& outcome) override;

  // What `key` spent in the current `period` (the fleet's as of the last flush, plus this
  // instance's since).
  double PeriodSpend(std::string_view key, BudgetPeriod period);

  // Writes what accumulated and refreshes the period totals now (tests; shutdown).
  void FlushNow();

 private:
  struct Totals {
    std::int64_t requests = 0;
    std::int64_t prompt_tokens = 0;
    std::int64_t completion_tokens = 0;
    double cost_usd = 0;
  };
  struct KeyState {
    // Per day, the cost the backend held at the last refresh, and what was settled here since.
    std::map<std::int64_t, double> stored;
    std::map<std::int64_t, double> unflushed;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::int64_t Now() const;
  void StopThread();
  double PeriodSpendLocked(KeyState& state, BudgetPeriod period, std::int64_t today);
  void Flush();
  void Run();

  storage::RecordStore* store_;
  Options options_;
  std::mutex mutex_;
  std::unordered_map<std::string, KeyState, Hash, std::equal_to<>> keys_;
  std::unordered_map<std::string, Totals, Hash, std::equal_to<>> pending_;  // by counter id
  std::mutex flush_mutex_;                                                  // one flush at a time
  std::mutex run_mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace orchestra::limits
