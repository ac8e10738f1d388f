#include "limits/spend.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "observability/log.hpp"
#include "storage/validation.hpp"

namespace orchestra::limits {
namespace {

namespace asio = boost::asio;

constexpr std::int64_t kMsPerDay = 86'400'000;
constexpr char kSeparator = '\x1f';
// Every period starts at most this many days back.
constexpr std::int64_t kLongestPeriodDays = 31;

// Howard Hinnant's civil-from-days and days-from-civil.
void CivilFromDays(std::int64_t z, int& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0));
}

std::int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Runs `work` to completion on a private io_context (the flusher thread's).
template <class T>
T RunSync(asio::awaitable<T> work) {
  asio::io_context io;
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(work), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) out.emplace(std::move(value));
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

struct ParsedId {
  std::string_view key;
  std::string_view day;
  std::string_view model;
};

std::optional<ParsedId> ParseCounterId(std::string_view id) {
  const auto a = id.find(kSeparator);
  if (a == std::string_view::npos) return std::nullopt;
  const auto b = id.find(kSeparator, a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  return ParsedId{id.substr(0, a), id.substr(a + 1, b - a - 1), id.substr(b + 1)};
}

double CostField(const storage::Counter& c) {
  for (const auto& [name, value] : c.fields) {
    if (name == "cost_usd") return value;
  }
  return 0;
}

}  // namespace

std::int64_t DayOf(std::int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / kMsPerDay : (unix_ms - kMsPerDay + 1) / kMsPerDay;
}

std::string DayText(std::int64_t day) {
  int y = 0;
  unsigned m = 0;
  unsigned d = 0;
  CivilFromDays(day, y, m, d);
  // By hand, not snprintf: this runs at every request's settlement.
  std::string text = "0000-00-00";
  const auto put = [&text](std::size_t at, unsigned value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10)
      text[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
  };
  if (y < 0 || y > 9999) {
    char buffer[24];
    std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02u", y, m, d);
    return buffer;
  }
  put(0, static_cast<unsigned>(y), 4);
  put(5, m, 2);
  put(8, d, 2);
  return text;
}

std::optional<std::int64_t> ParseDay(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  auto digits = [&](std::size_t from, std::size_t n) -> int {
    int v = 0;
    for (std::size_t i = from; i < from + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return -1;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  const int y = digits(0, 4);
  const int m = digits(5, 2);
  const int d = digits(8, 2);
  if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) return std::nullopt;
  const std::int64_t day = DaysFromCivil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
  if (DayText(day) != text) return std::nullopt;  // 2026-02-30
  return day;
}

std::int64_t PeriodStart(BudgetPeriod period, std::int64_t day) {
  switch (period) {
    case BudgetPeriod::kDay:
      return day;
    case BudgetPeriod::kWeek:
      return day - (day + 3) % 7;  // 1970-01-01 was a Thursday
    case BudgetPeriod::kMonth: {
      int y = 0;
      unsigned m = 0;
      unsigned d = 0;
      CivilFromDays(day, y, m, d);
      return DaysFromCivil(y, m, 1);
    }
  }
  return day;
}

std::string_view ToString(BudgetPeriod period) {
  switch (period) {
    case BudgetPeriod::kDay:
      return "day";
    case BudgetPeriod::kWeek:
      return "week";
    case BudgetPeriod::kMonth:
      return "month";
  }
  return "month";
}

namespace {

void AssignSpendCounterId(std::string& id, std::string_view key, std::string_view day,
                          std::string_view model) {
  id.clear();
  id.reserve(key.size() + day.size() + model.size() + 2);
  id.append(key).append(1, kSeparator).append(day).append(1, kSeparator).append(model);
}

}  // namespace

std::string SpendCounterId(std::string_view key, std::string_view day, std::string_view model) {
  std::string id;
  AssignSpendCounterId(id, key, day, model);
  return id;
}

Refusal BudgetRefusal(const Budget& budget, double spent) {
  char amount[64];
  std::snprintf(amount, sizeof amount, "%.4f of its %.4f USD", spent, budget.usd);
  Error error(ErrorCode::kInsufficientQuota,
              "this API key has spent its budget for the " + std::string(ToString(budget.period)) +
                  " (" + amount + "); it is refused until the next " +
                  std::string(ToString(budget.period)) + " begins (UTC) or its budget is raised");
  return Refusal{std::move(error), "budget"};
}

SpendLedger::SpendLedger(storage::RecordStore* store, Options options)
    : store_(store), options_(std::move(options)) {}

SpendLedger::~SpendLedger() {
  // No last flush here: by the time main's scope unwinds, the storage's own workers may be
  // stopped (main calls Stop() before that).
  StopThread();
}

void SpendLedger::StopThread() {
  {
    std::lock_guard lock(run_mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SpendLedger::Stop() {
  StopThread();
  FlushNow();
}

std::int64_t SpendLedger::Now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SpendLedger::Start() {
  if (store_ != nullptr) {
    // What every key spent in the periods that may still be current. Ids sort by key, then
    // day: at a key's first day older than that, the listing jumps to the key's oldest current
    // day, so start-up reads each key's last month, not its whole history.
    const std::int64_t oldest = DayOf(Now()) - kLongestPeriodDays;
    // Small pages while keys' old days come up (each key's first id is its oldest).
    constexpr int kSkipping = 64;
    std::string cursor;
    int limit = kSkipping;
    try {
      do {
        auto page =
            RunSync(store_->Counters(storage::kSystemTenant, kSpendCollection, "", limit, cursor));
        if (!page) {
          observability::Log(observability::Severity::kWarning,
                             "spend: cannot load spend from storage; budgets count from zero "
                             "until it can be read",
                             {{"error", page.error().message}});
          break;
        }
        std::string jump;
        {
          std::lock_guard lock(mutex_);
          for (const storage::Counter& c : page->counters) {
            auto id = ParseCounterId(c.id);
            if (!id) continue;
            auto day = ParseDay(id->day);
            if (day && *day < oldest) {
              // "key\x1f<oldest>" sorts just before the key's first current id.
              jump = storage::CursorAfter(std::string(id->key) + kSeparator + DayText(oldest));
              break;
            }
            if (!day) continue;
            auto it = keys_.find(id->key);
            if (it == keys_.end()) it = keys_.emplace(std::string(id->key), KeyState{}).first;
            it->second.stored[*day] += CostField(c);
          }
        }
        limit = jump.empty() ? storage::kMaxRecordListLimit : kSkipping;
        cursor = jump.empty() ? std::move(page->next_cursor) : std::move(jump);
      } while (!cursor.empty());
    } catch (const std::exception& e) {
      observability::Log(observability::Severity::kWarning, "spend: loading failed",
                         {{"error", e.what()}});
    }
  }
  thread_ = std::thread([this] { Run(); });
}

void SpendLedger::Run() {
  std::unique_lock lock(run_mutex_);
  while (!stop_) {
    wake_.wait_for(lock, options_.flush_interval, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    FlushNow();
    lock.lock();
  }
}

double SpendLedger::PeriodSpendLocked(KeyState& state, BudgetPeriod period, std::int64_t today) {
  const std::int64_t start = PeriodStart(period, today);
  double total = 0;
  for (auto it = state.stored.lower_bound(start); it != state.stored.end(); ++it)
    total += it->second;
  for (auto it = state.unflushed.lower_bound(start); it != state.unflushed.end(); ++it)
    total += it->second;
  return total;
}

double SpendLedger::PeriodSpend(std::string_view key, BudgetPeriod period) {
  const std::int64_t today = DayOf(Now());
  std::lock_guard lock(mutex_);
  auto it = keys_.find(key);
  return it == keys_.end() ? 0 : PeriodSpendLocked(it->second, period, today);
}

std::optional<Refusal> SpendLedger::Admit(const Request& request, Ticket& /*ticket*/) {
  // Only model requests spend: /v1/me, memory and the other routes stay usable.
  if (request.policy == nullptr || !request.policy->budget || request.model.empty())
    return std::nullopt;
  const Budget& budget = *request.policy->budget;
  const double spent = PeriodSpend(request.principal, budget.period);
  if (spent < budget.usd) return std::nullopt;
  return BudgetRefusal(budget, spent);
}

void SpendLedger::Settle(const Request& request, const Ticket& /*ticket*/, const Outcome& outcome) {
  if (outcome.refused || outcome.model.empty() || outcome.cache_hit) return;
  if (!outcome.usage_known && outcome.cost_usd == 0) return;
  const std::int64_t today = DayOf(Now());
  // The counter's id in a per-thread buffer (Settle never suspends), so that a counter already
  // pending costs no allocation.
  thread_local std::string id;
  thread_local std::int64_t day = -1;
  thread_local std::string day_text;
  if (store_ != nullptr) {
    if (day != today) {
      day = today;
      day_text = DayText(today);
    }
    AssignSpendCounterId(id, request.principal, day_text, outcome.model);
  }
  std::lock_guard lock(mutex_);
  if (store_ != nullptr) {
    auto pending = pending_.find(std::string_view(id));
    if (pending == pending_.end()) pending = pending_.emplace(id, Totals{}).first;
    Totals& t = pending->second;
    t.requests += 1;
    t.prompt_tokens += std::max<std::int64_t>(outcome.prompt_tokens, 0);
    t.completion_tokens += std::max<std::int64_t>(outcome.completion_tokens, 0);
    t.cost_usd += outcome.cost_usd;
  }
  auto it = keys_.find(request.principal);
  if (it == keys_.end()) it = keys_.emplace(std::string(request.principal), KeyState{}).first;
  std::map<std::int64_t, double>& unflushed = it->second.unflushed;
  if (!unflushed.empty() && unflushed.rbegin()->first == today) {
    unflushed.rbegin()->second += outcome.cost_usd;  // the usual case: no search
  } else {
    unflushed[today] += outcome.cost_usd;
  }
}

void SpendLedger::FlushNow() {
  std::lock_guard flush_lock(flush_mutex_);
  Flush();
}

void SpendLedger::Flush() {
  if (store_ == nullptr) return;
  std::map<std::string, Totals> batch;  // in id order, so that a failed write can requeue the rest
  std::unordered_map<std::string, std::map<std::int64_t, double>> flushed;  // by key
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, totals] : pending_)
      batch.emplace(id, totals);
    pending_.clear();
    for (auto& [key, state] : keys_) {
      if (!state.unflushed.empty()) flushed[key] = state.unflushed;
    }
  }
  // Written counter by counter (each Add is atomic); one that fails goes back to pending.
  for (auto& [id, t] : batch) {
    Result<std::vector<double>> added = Error(ErrorCode::kUnavailable, "not written");
    try {
      added = RunSync(store_->Add(storage::kSystemTenant, kSpendCollection, id,
                                  {{"completion_tokens", static_cast<double>(t.completion_tokens)},
                                   {"cost_usd", t.cost_usd},
                                   {"prompt_tokens", static_cast<double>(t.prompt_tokens)},
                                   {"requests", static_cast<double>(t.requests)}}));
    } catch (const std::exception& e) {
      added = Error(ErrorCode::kUnavailable, e.what());
    }
    if (!added) {
      observability::Log(observability::Severity::kWarning,
                         "spend: cannot write to storage; kept for the next flush",
                         {{"error", added.error().message}});
      std::lock_guard lock(mutex_);
      for (auto& [rest_id, rest] : batch) {
        if (rest_id < id) continue;
        Totals& p = pending_[rest_id];
        p.requests += rest.requests;
        p.prompt_tokens += rest.prompt_tokens;
        p.completion_tokens += rest.completion_tokens;
        p.cost_usd += rest.cost_usd;
      }
      return;  // unflushed stays counted locally; refreshed next time
    }
  }
  // Read back each key's periods: the fleet's spend, this instance's flushed share included.
  const std::int64_t oldest = DayOf(Now()) - kLongestPeriodDays;
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, state] : keys_)
      names.push_back(key);
  }
  for (const std::string& key : names) {
    std::map<std::int64_t, double> stored;
    // From the oldest day a budget period can hold: ids sort by day (ISO dates), and
    // "key\x1f<day>" sorts just before that day's first id, so the history before it, which
    // grows for as long as the key is used, is never read.
    std::string cursor = storage::CursorAfter(key + kSeparator + DayText(oldest));
    bool ok = true;
    do {
      Result<storage::CounterPage> page = Error(ErrorCode::kUnavailable, "not read");
      try {
        page = RunSync(store_->Counters(storage::kSystemTenant, kSpendCollection, key + kSeparator,
                                        storage::kMaxRecordListLimit, cursor));
      } catch (const std::exception& e) {
        page = Error(ErrorCode::kUnavailable, e.what());
      }
      if (!page) {
        ok = false;
        break;
      }
      for (const storage::Counter& c : page->counters) {
        auto id = ParseCounterId(c.id);
        if (!id) continue;
        auto day = ParseDay(id->day);
        if (day && *day >= oldest) stored[*day] += CostField(c);
      }
      cursor = std::move(page->next_cursor);
    } while (!cursor.empty());
    if (!ok) continue;
    std::lock_guard lock(mutex_);
    KeyState& state = keys_[key];
    state.stored = std::move(stored);
    // What was written is now in `stored`; what settled during the flush stays unflushed.
    if (auto f = flushed.find(key); f != flushed.end()) {
      for (const auto& [day, cost] : f->second) {
        auto u = state.unflushed.find(day);
        if (u == state.unflushed.end()) continue;
        u->second -= cost;
        if (u->second <= 1e-12) state.unflushed.erase(u);
      }
    }
  }
}

}  // namespace orchestra::limits
