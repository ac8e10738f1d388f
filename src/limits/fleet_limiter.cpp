#include "limits/fleet_limiter.hpp"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <random>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "limits/spend.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"

namespace orchestra::limits {
namespace {

namespace asio = boost::asio;
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

// Ticket::token of a fleet admission: the admission's slot + 1 (as RateLimiter's), and what it
// holds in the store. Ticket::lease names its in-flight leases (nonzero for every fleet ticket).
constexpr std::uint64_t kChargedKey = 1ULL << 63;
constexpr std::uint64_t kChargedModel = 1ULL << 62;
constexpr std::uint64_t kLeasedKey = 1ULL << 61;
constexpr std::uint64_t kLeasedModel = 1ULL << 60;
constexpr std::uint64_t kSlotMask = (1ULL << 48) - 1;

constexpr std::int64_t kMsPerDay = 86'400'000;

// The first day after the budget period that starts on `start`.
std::int64_t PeriodEnd(BudgetPeriod period, std::int64_t start) {
  switch (period) {
    case BudgetPeriod::kDay:
      return start + 1;
    case BudgetPeriod::kWeek:
      return start + 7;
    case BudgetPeriod::kMonth:
      return PeriodStart(BudgetPeriod::kMonth, start + 31);
  }
  return start + 31;
}

}  // namespace

struct FleetLimiter::Worker {
  std::unique_ptr<FleetStore> store;
  asio::any_io_executor executor;
  std::mutex mutex;
  std::thread::id thread;             // the event loop's
  std::deque<FleetSettlement> queue;  // settlements not sent yet
  std::size_t sending = 0;            // of them, in the batch on its way
  std::size_t urgent = 0;             // spend settlements written on their own, not yet answered
  bool flushing = false;
};

FleetLimiter::FleetLimiter(int workers, Options options, observability::Registry* registry)
    : options_(std::move(options)) {
  std::random_device random;
  char id[17];
  std::snprintf(id, sizeof id, "%08x%08x", random(), random());
  instance_ = id;
  workers_.resize(static_cast<std::size_t>(std::max(workers, 1)));
  if (registry != nullptr) {
    auto& errors = registry->AddCounter(
        "orchestra_limits_backend_errors_total",
        "Calls to the fleet-wide limits' backend (Redis or PostgreSQL) that failed or timed out, "
        "by operation (admit: the request was then handled as limits.on_backend_error says; "
        "settle: a settlement batch).",
        {"op"});
    admit_errors_ = &errors.With({"admit"});
    settle_errors_ = &errors.With({"settle"});
    settle_dropped_ = &registry
                           ->AddCounter("orchestra_limits_settle_dropped_total",
                                        "Settlements of fleet-wide limits dropped because too "
                                        "many were waiting for their backend.",
                                        {})
                           .With({});
  }
}

FleetLimiter::~FleetLimiter() = default;

void FleetLimiter::StartWorker(int index, asio::any_io_executor executor) {
  auto w = std::make_unique<Worker>();
  w->thread = std::this_thread::get_id();
  w->executor = executor;
  w->store = options_.store.open(std::move(executor));
  w->store->Connect();  // before the first request, which would otherwise wait for it
  workers_.at(static_cast<std::size_t>(index)) = std::move(w);
}

void FleetLimiter::StopWorkers() {
  for (auto& w : workers_) {
    if (w) w->store->Close();
  }
}

std::int64_t FleetLimiter::NowMs() const {
  return options_.clock ? options_.clock() : RateLimiter::WallClockMs();
}

std::size_t FleetLimiter::queued_settles() const {
  std::size_t n = 0;
  for (const auto& w : workers_) {
    if (!w) continue;
    std::lock_guard lock(w->mutex);
    n += w->queue.size() + w->sending + w->urgent;
  }
  return n;
}

std::string FleetLimiter::BudgetPeriodName(const Request& request, std::int64_t now_ms,
                                           std::int64_t* expires_ms) {
  if (request.policy == nullptr || !request.policy->budget) return {};
  const BudgetPeriod period = request.policy->budget->period;
  const std::int64_t start = PeriodStart(period, DayOf(now_ms));
  if (expires_ms != nullptr) *expires_ms = (PeriodEnd(period, start) + 1) * kMsPerDay;
  return std::string(ToString(period)) + ":" + DayText(start);
}

void FleetLimiter::BackendError(std::string_view op, const Error& error) {
  if (op == "admit") {
    if (admit_errors_ != nullptr) admit_errors_->Inc();
  } else if (settle_errors_ != nullptr) {
    settle_errors_->Inc();
  }
  const std::int64_t now = RateLimiter::WallClockMs();
  std::int64_t last = last_log_ms_.load(std::memory_order_relaxed);
  if (last != 0 && now - last < 60'000) {
    unlogged_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!last_log_ms_.compare_exchange_strong(last, now)) {
    unlogged_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  observability::Log(
      observability::Severity::kWarning,
      options_.on_error == OnError::kAllow
          ? "limits: " + options_.store.name +
                " did not answer; requests are admitted under this instance's own limits until "
                "it does (limits.on_backend_error: allow)"
          : "limits: " + options_.store.name +
                " did not answer; rate-limited requests are refused until it does "
                "(limits.on_backend_error: deny)",
      {{"operation", std::string(op)},
       {"error", error.message},
       {"not_logged_since_last", unlogged_.exchange(0)}});
}

std::optional<Refusal> FleetLimiter::Admit(const Request& request, Ticket& ticket) {
  return local_.Admit(request, ticket);
}

asio::awaitable<std::optional<Refusal>> FleetLimiter::AdmitAsync(const Request& request,
                                                                 Ticket& ticket) {
  ticket = {};
  if (request.policy == nullptr) co_return std::nullopt;
  const KeyPolicy& policy = *request.policy;
  const RateLimits* key_limits = policy.limits.any() ? &policy.limits : nullptr;
  const ModelLimits* model = FindModelLimits(policy, request.model);
  const RateLimits* model_limits = model != nullptr ? &model->limits : nullptr;
  const Budget* budget = policy.budget && !request.model.empty() ? &*policy.budget : nullptr;
  if (key_limits == nullptr && model_limits == nullptr && budget == nullptr) co_return std::nullopt;
  const auto index = static_cast<std::size_t>(request.worker);
  Worker* worker = index < workers_.size() ? workers_[index].get() : nullptr;
  auto fallback = [&](const Error& error) -> std::optional<Refusal> {
    BackendError("admit", error);
    if (options_.on_error == OnError::kAllow) return local_.Admit(request, ticket);
    Error refused(ErrorCode::kUnavailable, "rate limits cannot be checked (their " +
                                               options_.store.name +
                                               " does not answer); retry shortly");
    refused.retry_after_s = 1;
    return Refusal{std::move(refused), "limits_backend"};
  };
  if (worker == nullptr) co_return fallback(Error(ErrorCode::kUnavailable, "no connection"));

  const std::int64_t now_ms = NowMs();
  const std::uint64_t lease = next_lease_.fetch_add(1, std::memory_order_relaxed);
  const std::string member = instance_ + ":" + std::to_string(lease);
  const RateLimits none;
  const RateLimits& kl = key_limits != nullptr ? *key_limits : none;
  const RateLimits& ml = model_limits != nullptr ? *model_limits : none;

  FleetAdmission a;
  a.principal = request.principal;
  a.model = request.model;
  if (options_.clock) a.now_ms = now_ms;
  a.estimate = std::max<std::int64_t>(request.estimated_tokens, 0);
  a.member = member;
  a.lease_ms = static_cast<std::int64_t>(options_.inflight_lease.count());
  a.key = kl;
  a.model_limits = ml;
  a.key_bucket = key_limits != nullptr;
  a.model_bucket = model_limits != nullptr;
  std::string period;
  if (budget != nullptr) {
    a.budget_usd = budget->usd;
    a.budget_seed =
        options_.period_spend ? options_.period_spend(request.principal, budget->period) : 0.0;
    period = BudgetPeriodName(request, now_ms, &a.budget_expires_ms);
    a.budget_period = period;
  }
  const std::int64_t estimate = a.estimate;

  const std::uint64_t leased =
      (kl.max_parallel > 0 ? kLeasedKey : 0) | (ml.max_parallel > 0 ? kLeasedModel : 0);
  const std::uint64_t charged =
      (key_limits != nullptr ? kChargedKey : 0) | (model_limits != nullptr ? kChargedModel : 0);
  // A reservation whose answer comes after the timeout is given back at once.
  FleetSettlement back;
  back.principal = request.principal;
  back.model = request.model;
  back.tokens_delta = -estimate;
  back.refused = true;
  back.member = member;
  back.flags = ((charged & kChargedKey) != 0 ? FleetSettlement::kKeyCharged : 0) |
               ((charged & kChargedModel) != 0 ? FleetSettlement::kModelCharged : 0) |
               ((leased & kLeasedKey) != 0 ? FleetSettlement::kKeyLeased : 0) |
               ((leased & kLeasedModel) != 0 ? FleetSettlement::kModelLeased : 0);
  const int worker_index = request.worker;
  auto give_back = [this, worker_index, back = std::move(back)](const FleetAdmissionReply& r) {
    if (r.verdict != FleetAdmissionReply::kAdmitted) return;
    FleetSettlement s = back;
    if (options_.clock) s.now_ms = NowMs();
    s.admitted_slot = r.slot;
    QueueSettle(worker_index, std::move(s));
  };

  auto result = co_await worker->store->Admit(a, options_.timeout, std::move(give_back));
  if (!result) co_return fallback(result.error());
  const FleetAdmissionReply& reply = *result;

  if (request.rate_headers != nullptr) {
    RateHeaders& h = *request.rate_headers;
    h = {};
    auto record = [&](const RateLimits& limits, std::size_t at) {
      const auto& e = reply.buckets;
      if (limits.rpm > 0) {
        const std::int64_t remaining = std::max<std::int64_t>(limits.rpm - e[at], 0);
        if (h.limit_requests == 0 || remaining < h.remaining_requests) {
          h.limit_requests = limits.rpm;
          h.remaining_requests = remaining;
          h.reset_requests_ms = e[at + 1];
        }
      }
      if (limits.tpm > 0) {
        const std::int64_t remaining = std::max<std::int64_t>(limits.tpm - e[at + 2], 0);
        if (h.limit_tokens == 0 || remaining < h.remaining_tokens) {
          h.limit_tokens = limits.tpm;
          h.remaining_tokens = remaining;
          h.reset_tokens_ms = e[at + 3];
        }
      }
    };
    if (key_limits != nullptr) record(*key_limits, 0);
    if (model_limits != nullptr) record(*model_limits, 4);
  }
  if (reply.verdict == FleetAdmissionReply::kRateLimited) {
    const bool per_model = reply.which == 2;
    const RateLimits& l = per_model ? ml : kl;
    switch (reply.what) {
      case 1:
        co_return RateLimitRefusal("parallel requests", l.max_parallel, reply.wait_ms, false,
                                   per_model, request.model, estimate);
      case 2:
        co_return RateLimitRefusal("requests per minute", l.rpm, reply.wait_ms, false, per_model,
                                   request.model, estimate);
      default:
        co_return RateLimitRefusal("tokens per minute", l.tpm, reply.wait_ms, reply.what == 4,
                                   per_model, request.model, estimate);
    }
  }
  if (reply.verdict == FleetAdmissionReply::kOverBudget) {
    co_return BudgetRefusal(*budget, reply.spent);
  }
  ticket.amount = estimate;
  ticket.token = (static_cast<std::uint64_t>(reply.slot + 1) & kSlotMask) | charged | leased;
  ticket.lease = lease;
  co_return std::nullopt;
}

void FleetLimiter::Settle(const Request& request, const Ticket& ticket, const Outcome& outcome) {
  if (ticket.lease == 0 && ticket.token != 0) local_.Settle(request, ticket, outcome);
  const bool spends = request.policy != nullptr && request.policy->budget && !outcome.refused &&
                      !outcome.model.empty() && !outcome.cache_hit && outcome.cost_usd > 0;
  if (ticket.lease == 0 && !spends) return;
  if (ticket.lease != 0 && !spends &&
      (ticket.token & (kChargedKey | kChargedModel | kLeasedKey | kLeasedModel)) == 0) {
    return;  // a budget's admission that spent nothing
  }
  std::int64_t used = 0;
  if (!outcome.refused && outcome.usage_known && !outcome.cache_hit) {
    used = std::max<std::int64_t>(outcome.prompt_tokens, 0) +
           std::max<std::int64_t>(outcome.completion_tokens, 0);
  }
  const bool fleet = ticket.lease != 0;
  if (fleet && !spends && !outcome.refused && used == ticket.amount &&
      (ticket.token & (kLeasedKey | kLeasedModel)) == 0) {
    return;  // the estimate was right and nothing is held: nothing to correct
  }
  const std::int64_t now_ms = NowMs();
  FleetSettlement s;
  s.principal = request.principal;
  s.model = request.model;
  if (options_.clock) s.now_ms = now_ms;
  s.admitted_slot = fleet ? static_cast<std::int64_t>(ticket.token & kSlotMask) - 1 : 0;
  s.tokens_delta = fleet ? used - ticket.amount : 0;
  s.refused = outcome.refused;
  s.member = instance_ + ":" + std::to_string(ticket.lease);
  if (fleet) {
    s.flags |= (ticket.token & kChargedKey) != 0 ? FleetSettlement::kKeyCharged : 0;
    s.flags |= (ticket.token & kChargedModel) != 0 ? FleetSettlement::kModelCharged : 0;
    s.flags |= (ticket.token & kLeasedKey) != 0 ? FleetSettlement::kKeyLeased : 0;
    s.flags |= (ticket.token & kLeasedModel) != 0 ? FleetSettlement::kModelLeased : 0;
  }
  if (spends) {
    s.flags |= FleetSettlement::kSpends;
    s.cost_usd = outcome.cost_usd;
    s.budget_period = BudgetPeriodName(request, now_ms, nullptr);
  }
  QueueSettle(request.worker, std::move(s), spends);
}

void FleetLimiter::QueueSettle(int worker_index, FleetSettlement settlement, bool urgent) {
  const auto index = static_cast<std::size_t>(worker_index);
  Worker* w = index < workers_.size() ? workers_[index].get() : nullptr;
  if (w == nullptr) {
    if (settle_dropped_ != nullptr) settle_dropped_->Inc();
    return;
  }
  if (urgent && std::this_thread::get_id() == w->thread) {
    // Spend: written now, on its own round trip past any batch on its way, so that the client's
    // next request finds it in the store wherever it lands. A failure leaves it to the queue
    // (and its retries).
    {
      std::lock_guard lock(w->mutex);
      ++w->urgent;
    }
    asio::co_spawn(
        w->executor,
        [this, w, worker_index, s = std::move(settlement)]() mutable -> asio::awaitable<void> {
          auto result = co_await w->store->Settle(std::span<const FleetSettlement>(&s, 1),
                                                  options_.settle_timeout);
          if (result) {
            if (*result > 0)
              BackendError("settle",
                           Error(ErrorCode::kInternal, "the backend refused a settlement"));
          } else if (result.error().code == ErrorCode::kDeadlineExceeded) {
            BackendError("settle", result.error());  // maybe applied: not sent again
          } else if (!w->store->closed()) {
            QueueSettle(worker_index, std::move(s));
          }
          std::lock_guard lock(w->mutex);
          --w->urgent;
        },
        asio::detached);
    return;
  }
  {
    std::lock_guard lock(w->mutex);
    if (w->queue.size() >= options_.max_queued_settles) {
      if (settle_dropped_ != nullptr) settle_dropped_->Inc();
      return;
    }
    w->queue.push_back(std::move(settlement));
    if (w->flushing) return;
    w->flushing = true;
  }
  // On the worker's own thread (the pipeline settles there) the flush starts here and writes at
  // once, before the response goes out, so the next request of the client, whichever instance
  // takes it, finds this one settled in the store (budgets stop within one request). From then
  // on the flush takes whatever settles while its batch is on the way: batching under load, one
  // write per settlement at rest. From another thread it starts on the worker's loop.
  asio::co_spawn(
      w->executor,
      [this, w]() -> asio::awaitable<void> {
        for (;;) {
          std::vector<FleetSettlement> batch;
          {
            std::lock_guard lock(w->mutex);
            if (w->queue.empty()) {
              w->flushing = false;
              co_return;
            }
            while (!w->queue.empty() && batch.size() < options_.settle_batch) {
              batch.push_back(std::move(w->queue.front()));
              w->queue.pop_front();
            }
            w->sending = batch.size();
          }
          auto result = co_await w->store->Settle(batch, options_.settle_timeout);
          if (result) {
            for (std::size_t i = 0; i < *result; ++i)
              BackendError("settle",
                           Error(ErrorCode::kInternal, "the backend refused a settlement"));
            std::lock_guard lock(w->mutex);
            w->sending = 0;
            continue;
          }
          if (w->store->closed()) {  // shutting down: what is left is not sent
            std::lock_guard lock(w->mutex);
            w->sending = 0;
            w->queue.clear();
            w->flushing = false;
            co_return;
          }
          BackendError("settle", result.error());
          if (result.error().code == ErrorCode::kDeadlineExceeded) {
            std::lock_guard lock(w->mutex);
            w->sending = 0;
            continue;  // maybe applied: not sent again
          }
          // Never sent, or the connection broke: again after a pause, oldest first.
          {
            std::lock_guard lock(w->mutex);
            w->sending = 0;
            for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
              if (w->queue.size() >= options_.max_queued_settles) {
                if (settle_dropped_ != nullptr) settle_dropped_->Inc();
                continue;
              }
              w->queue.push_front(std::move(*it));
            }
          }
          asio::steady_timer pause(w->executor, std::chrono::milliseconds(250));
          co_await pause.async_wait(kAsTuple);
        }
      },
      asio::detached);
}

}  // namespace orchestra::limits
