#include "limits/fleet_limiter.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <deque>
#include <random>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/sha.h>

#include "limits/spend.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"

namespace orchestra::limits {
namespace {

namespace asio = boost::asio;
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

// Ticket::token of a fleet admission: the admission's slot + 1 (as RateLimiter's), and what it
// holds in Redis. Ticket::lease names its in-flight leases (nonzero for every fleet ticket).
constexpr std::uint64_t kChargedKey = 1ULL << 63;
constexpr std::uint64_t kChargedModel = 1ULL << 62;
constexpr std::uint64_t kLeasedKey = 1ULL << 61;
constexpr std::uint64_t kLeasedModel = 1ULL << 60;
constexpr std::uint64_t kSlotMask = (1ULL << 48) - 1;

// The windows of RateLimiter::Window, in one Redis hash per key: for each bucket (prefix 'k:' for
// the key's own, 'm:<model>:' per model) the fields <p>h (the newest slot), <p>rs and <p>ts (the
// sums), <p>r<slot> and <p>t<slot> (the slots' counts). ARGV[1]: the time in ms, '' for TIME.
// Each redis.call in a script costs a few microseconds (far more than the Lua around it), so both
// buckets are read with one HMGET (with the current slot's counts), changed in Lua and written
// back with one HSET; expired leases are swept and expiries refreshed only when a window moved
// (at most every 250 ms).
constexpr std::string_view kWindowLua = R"lua(
local N, SLOT_MS = 241, 250
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local slot = math.floor(now / SLOT_MS)
-- Deletes bucket p's slots from..to; returns the requests and tokens they held.
local function drop(key, p, from, to)
  local fields = {}
  for s = from, to do
    fields[#fields + 1] = p .. 'r' .. s
    fields[#fields + 1] = p .. 't' .. s
  end
  local old = redis.call('HMGET', key, unpack(fields))
  local gone, r, t = {}, 0, 0
  for i = 1, #fields, 2 do
    local x, y = tonumber(old[i]), tonumber(old[i + 1])
    if x then r = r + x; gone[#gone + 1] = fields[i] end
    if y then t = t + y; gone[#gone + 1] = fields[i + 1] end
  end
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
  return r, t
end
-- Reads buckets (by prefix) and moves each to the present, dropping the slots that left its
-- window (written at once; the rest waits for save). b.r, b.t: the newest slot's counts.
local function load(key, prefixes)
  local fields = {}
  for _, p in ipairs(prefixes) do
    fields[#fields + 1] = p .. 'h'
    fields[#fields + 1] = p .. 'rs'
    fields[#fields + 1] = p .. 'ts'
    fields[#fields + 1] = p .. 'r' .. slot
    fields[#fields + 1] = p .. 't' .. slot
  end
  local v = redis.call('HMGET', key, unpack(fields))
  local out = {}
  for i, p in ipairs(prefixes) do
    local o = (i - 1) * 5
    local b = {p = p}
    local head = tonumber(v[o + 1])
    if head == nil or slot - head >= N then
      if head ~= nil then drop(key, p, head - N + 1, head) end
      b.rs, b.ts, b.cur, b.r, b.t, b.moved = 0, 0, slot, 0, 0, true
    else
      b.rs, b.ts = tonumber(v[o + 2]) or 0, tonumber(v[o + 3]) or 0
      if head >= slot then
        b.cur, b.moved = head, false
        if head == slot then
          b.r, b.t = tonumber(v[o + 4]) or 0, tonumber(v[o + 5]) or 0
        else
          local c = redis.call('HMGET', key, p .. 'r' .. head, p .. 't' .. head)
          b.r, b.t = tonumber(c[1]) or 0, tonumber(c[2]) or 0
        end
      else
        local r, t = drop(key, p, head + 1 - N, slot - N)
        b.rs, b.ts = b.rs - r, b.ts - t
        b.cur, b.moved, b.r, b.t = slot, true, 0, 0
      end
    end
    out[i] = b
  end
  return out
end
local function save(key, buckets)
  local args, moved = {}, false
  for _, b in ipairs(buckets) do
    local p = b.p
    args[#args + 1] = p .. 'h'; args[#args + 1] = b.cur
    args[#args + 1] = p .. 'rs'; args[#args + 1] = b.rs
    args[#args + 1] = p .. 'ts'; args[#args + 1] = b.ts
    args[#args + 1] = p .. 'r' .. b.cur; args[#args + 1] = b.r
    args[#args + 1] = p .. 't' .. b.cur; args[#args + 1] = b.t
    moved = moved or b.moved
    b.moved = false
  end
  if #args == 0 then return end
  redis.call('HSET', key, unpack(args))
  if moved then redis.call('PEXPIRE', key, 120000) end
end
-- Milliseconds until the window (fields `p`<slot>, as saved) has room for `amount` more under
-- `limit`.
local function wait_ms(key, p, sum, amount, limit, cur)
  if sum + amount <= limit then return 0 end
  local fields = {}
  for i = cur - N + 1, cur do fields[#fields + 1] = p .. i end
  local vals = redis.call('HMGET', key, unpack(fields))
  local freed = 0
  for k = 1, #fields do
    freed = freed + (tonumber(vals[k]) or 0)
    if sum - freed + amount <= limit then return math.max((cur + k) * SLOT_MS - now, 1) end
  end
  return N * SLOT_MS
end
)lua";

// KEYS: the key's hash, key leases, model leases, budget counter.
// ARGV: now, estimate, lease member, lease ms, key rpm tpm max_parallel, model rpm tpm
// max_parallel, budget usd ('' none), budget seed, budget expiry (unix ms), flags (1 key, 2 model),
// the model bucket's prefix.
// → {verdict (0 admitted, 1 rate limit, 2 budget), which (1 key, 2 model), what (1 parallel,
//    2 rpm, 3 tpm, 4 tpm never), wait ms, slot, spent, then per bucket (key, model): requests
//    sum, requests reset ms, tokens sum, tokens reset ms}
constexpr std::string_view kAdmitLua = R"lua(
local est = tonumber(ARGV[2])
local flags = tonumber(ARGV[14])
local prefixes, specs = {}, {}
if flags % 2 == 1 then
  prefixes[#prefixes + 1] = 'k:'
  specs[#specs + 1] = {which = 1, leases = KEYS[2], a = 5}
end
if math.floor(flags / 2) % 2 == 1 then
  prefixes[#prefixes + 1] = ARGV[15]
  specs[#specs + 1] = {which = 2, leases = KEYS[3], a = 8}
end
local buckets = {}
if #prefixes > 0 then buckets = load(KEYS[1], prefixes) end
local moved = false
for i, b in ipairs(buckets) do
  local spec = specs[i]
  b.which, b.leases = spec.which, spec.leases
  b.rpm, b.tpm, b.mp = tonumber(ARGV[spec.a]), tonumber(ARGV[spec.a + 1]), tonumber(ARGV[spec.a + 2])
  b.inflight = 0
  if b.mp > 0 then
    if b.moved then
      redis.call('ZREMRANGEBYSCORE', b.leases, '-inf', now)
      b.swept = true
    end
    b.inflight = redis.call('ZCARD', b.leases)
  end
  moved = moved or b.moved
end
if moved then save(KEYS[1], buckets) end
local verdict, which, what, wait = 0, 0, 0, 0
for _, b in ipairs(buckets) do
  if b.mp > 0 and b.inflight >= b.mp then
    verdict, what, wait = 1, 1, 1000
  elseif b.rpm > 0 and b.rs + 1 > b.rpm then
    verdict, what, wait = 1, 2, wait_ms(KEYS[1], b.p .. 'r', b.rs, 1, b.rpm, b.cur)
  elseif b.tpm > 0 and est > 0 and b.ts + est > b.tpm then
    if est > b.tpm then
      verdict, what, wait = 1, 4, N * SLOT_MS
    else
      verdict, what, wait = 1, 3, wait_ms(KEYS[1], b.p .. 't', b.ts, est, b.tpm, b.cur)
    end
  end
  if verdict ~= 0 then which = b.which; break end
end
local spent = ''
if verdict == 0 and ARGV[11] ~= '' then
  spent = redis.call('GET', KEYS[4])
  if not spent then
    spent = ARGV[12]
    redis.call('SET', KEYS[4], spent, 'PXAT', ARGV[13])
  end
  if tonumber(spent) >= tonumber(ARGV[11]) then verdict = 2 end
end
if verdict == 0 then
  for _, b in ipairs(buckets) do
    b.r, b.rs = b.r + 1, b.rs + 1
    if est > 0 then b.t, b.ts = b.t + est, b.ts + est end
  end
  save(KEYS[1], buckets)
  for _, b in ipairs(buckets) do
    if b.mp > 0 then
      redis.call('ZADD', b.leases, now + tonumber(ARGV[4]), ARGV[3])
      if b.inflight == 0 or b.swept then
        redis.call('PEXPIRE', b.leases, tonumber(ARGV[4]) + 1000)
      end
    end
  end
end
local out = {verdict, which, what, wait, slot, tostring(spent), 0, 0, 0, 0, 0, 0, 0, 0}
for _, b in ipairs(buckets) do
  local at = 3 + 4 * b.which
  out[at] = b.rs
  if b.rpm > 0 then
    out[at + 1] = wait_ms(KEYS[1], b.p .. 'r', b.rs, (b.rpm - b.rs > 0) and 0 or 1, b.rpm, b.cur)
  end
  out[at + 2] = b.ts
  if b.tpm > 0 then
    out[at + 3] = wait_ms(KEYS[1], b.p .. 't', b.ts, (b.tpm - b.ts > 0) and 0 or 1, b.tpm, b.cur)
  end
end
return out
)lua";

// KEYS: as admission. ARGV: now, admitted slot, tokens correction, refused ('1'), lease member,
// flags (1 key charged, 2 model charged, 4 key leased, 8 model leased, 16 spend), cost, the model
// bucket's prefix.
constexpr std::string_view kSettleLua = R"lua(
local admitted = tonumber(ARGV[2])
local delta = tonumber(ARGV[3])
local refused = ARGV[4] == '1'
local flags = tonumber(ARGV[6])
local function bit(n) return math.floor(flags / n) % 2 == 1 end
-- RateLimiter::Window::Correct on a loaded bucket ('r' requests, 't' tokens).
local function correct(b, p, d)
  if d == 0 then return end
  local sum = p .. 's'
  if admitted > b.cur - N and admitted <= b.cur then
    local s
    if admitted == b.cur then
      s = b[p]
    else
      s = tonumber(redis.call('HGET', KEYS[1], b.p .. p .. admitted)) or 0
    end
    local nxt = math.max(s + d, 0)
    b[sum] = b[sum] + (nxt - s)
    if admitted == b.cur then
      b[p] = nxt
    else
      redis.call('HSET', KEYS[1], b.p .. p .. admitted, nxt)
    end
  elseif d > 0 then
    b[p] = b[p] + d
    b[sum] = b[sum] + d
  end
end
local prefixes = {}
if refused or delta ~= 0 then
  if bit(1) then prefixes[#prefixes + 1] = 'k:' end
  if bit(2) then prefixes[#prefixes + 1] = ARGV[8] end
end
if #prefixes > 0 then
  local buckets = load(KEYS[1], prefixes)
  for _, b in ipairs(buckets) do
    if refused then correct(b, 'r', -1) end
    correct(b, 't', delta)
  end
  save(KEYS[1], buckets)
end
if bit(4) then redis.call('ZREM', KEYS[2], ARGV[5]) end
if bit(8) then redis.call('ZREM', KEYS[3], ARGV[5]) end
if bit(16) and tonumber(ARGV[7]) > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('INCRBYFLOAT', KEYS[4], ARGV[7])
end
return 1
)lua";

struct Script {
  std::string body;
  std::string sha;  // hex SHA-1, what EVALSHA names
};

Script MakeScript(std::string_view part) {
  Script s;
  s.body = std::string(kWindowLua) + std::string(part);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.body.data()), s.body.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : digest) {
    s.sha.push_back(kHex[c >> 4]);
    s.sha.push_back(kHex[c & 15]);
  }
  return s;
}

const Script& AdmitScript() {
  static const Script s = MakeScript(kAdmitLua);
  return s;
}

const Script& SettleScript() {
  static const Script s = MakeScript(kSettleLua);
  return s;
}

// A script call: EVALSHA (or EVAL) + its script, then `tail` (numkeys, keys and arguments in
// RESP), `argc` arguments in all.
void AppendScriptCall(std::string& wire, const Script& script, bool by_sha, std::size_t argc,
                      std::string_view tail) {
  char number[24];
  auto put = [&](char prefix, std::size_t n) {
    wire.push_back(prefix);
    wire.append(number, std::to_chars(number, number + sizeof number, n).ptr);
    wire.append("\r\n", 2);
  };
  put('*', argc + 2);
  const std::string_view verb = by_sha ? "EVALSHA" : "EVAL";
  const std::string_view what = by_sha ? std::string_view(script.sha) : script.body;
  put('$', verb.size());
  wire.append(verb).append("\r\n", 2);
  put('$', what.size());
  wire.append(what).append("\r\n", 2);
  wire.append(tail);
}

// RESP bulk strings, appended one by one.
struct Tail {
  std::string text;
  std::size_t count = 0;
  void Add(std::string_view s) {
    char number[24];
    text.push_back('$');
    text.append(number, std::to_chars(number, number + sizeof number, s.size()).ptr);
    text.append("\r\n", 2);
    text.append(s);
    text.append("\r\n", 2);
    ++count;
  }
  void Add(std::int64_t v) {
    char number[24];
    Add(std::string_view(number, std::to_chars(number, number + sizeof number, v).ptr));
  }
};

constexpr std::size_t kKeys = 4;
constexpr std::size_t kSettleArgs = 8;
constexpr std::int64_t kMsPerDay = 86'400'000;

bool IsNoScript(const storage::RedisValue& v) {
  return v.is_error() && v.text.rfind("NOSCRIPT", 0) == 0;
}

std::int64_t Int(const storage::RedisValue& v) {
  if (v.type == storage::RedisValue::Type::kInteger) return v.integer;
  std::int64_t out = 0;
  std::from_chars(v.text.data(), v.text.data() + v.text.size(), out);
  return out;
}

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

std::string Lengthed(std::string_view s) {
  return std::to_string(s.size()) + ":" + std::string(s);
}

}  // namespace

struct FleetLimiter::Worker {
  std::unique_ptr<storage::RedisPipe> pipe;
  asio::any_io_executor executor;
  std::mutex mutex;
  std::thread::id thread;         // the event loop's
  std::deque<std::string> queue;  // settle calls' tails
  std::size_t sending = 0;        // of them, in the batch on its way
  std::size_t urgent = 0;         // spend settlements written on their own, not yet answered
  bool flushing = false;
};

struct FleetLimiter::Keys {
  std::string hash;  // the key's windows
  std::string key_leases;
  std::string model_leases;
  std::string model_prefix;  // of the model bucket's fields in `hash`
  std::string budget;        // of the current period; the key's name when it has no budget
  std::int64_t budget_expires_ms = 0;
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
        "Calls to the fleet-wide limits' Redis that failed or timed out, by operation (admit: the "
        "request was then handled as limits.on_backend_error says; settle: a settlement batch).",
        {"op"});
    admit_errors_ = &errors.With({"admit"});
    settle_errors_ = &errors.With({"settle"});
    settle_dropped_ = &registry
                           ->AddCounter("orchestra_limits_settle_dropped_total",
                                        "Settlements of fleet-wide limits dropped because too "
                                        "many were waiting for Redis.",
                                        {})
                           .With({});
  }
}

FleetLimiter::~FleetLimiter() = default;

void FleetLimiter::StartWorker(int index, asio::any_io_executor executor) {
  auto w = std::make_unique<Worker>();
  w->thread = std::this_thread::get_id();
  w->executor = executor;
  w->pipe = std::make_unique<storage::RedisPipe>(std::move(executor), options_.endpoint);
  w->pipe->Connect();  // before the first request, which would otherwise wait for it
  workers_.at(static_cast<std::size_t>(index)) = std::move(w);
}

void FleetLimiter::StopWorkers() {
  for (auto& w : workers_) {
    if (w) w->pipe->Close();
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

FleetLimiter::Keys FleetLimiter::KeysFor(const Request& request, std::int64_t now_ms) const {
  Keys k;
  const std::string base = options_.prefix + "{" + Lengthed(request.principal) + "}:";
  k.hash = base + "w";
  k.key_leases = base + "kl";
  k.model_leases = base + "ml:" + std::string(request.model);
  k.model_prefix = "m:" + std::string(request.model) + ":";
  if (request.policy != nullptr && request.policy->budget) {
    const BudgetPeriod period = request.policy->budget->period;
    const std::int64_t start = PeriodStart(period, DayOf(now_ms));
    k.budget = base + "b:" + std::string(ToString(period)) + ":" + DayText(start);
    k.budget_expires_ms = (PeriodEnd(period, start) + 1) * kMsPerDay;
  } else {
    k.budget = base + "b";
  }
  return k;
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
          ? "limits: Redis did not answer; requests are admitted under this instance's own "
            "limits until it does (limits.on_backend_error: allow)"
          : "limits: Redis did not answer; rate-limited requests are refused until it does "
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
    Error refused(ErrorCode::kUnavailable,
                  "rate limits cannot be checked (their Redis does not answer); retry shortly");
    refused.retry_after_s = 1;
    return Refusal{std::move(refused), "limits_backend"};
  };
  if (worker == nullptr) co_return fallback(Error(ErrorCode::kUnavailable, "no connection"));

  const std::int64_t now_ms = NowMs();
  Keys keys = KeysFor(request, now_ms);
  const std::int64_t estimate = std::max<std::int64_t>(request.estimated_tokens, 0);
  const std::uint64_t lease = next_lease_.fetch_add(1, std::memory_order_relaxed);
  const std::string member = instance_ + ":" + std::to_string(lease);
  const RateLimits none;
  const RateLimits& kl = key_limits != nullptr ? *key_limits : none;
  const RateLimits& ml = model_limits != nullptr ? *model_limits : none;

  Tail tail;
  tail.Add(static_cast<std::int64_t>(kKeys));
  tail.Add(keys.hash);
  tail.Add(keys.key_leases);
  tail.Add(keys.model_leases);
  tail.Add(keys.budget);
  if (options_.clock) {
    tail.Add(now_ms);
  } else {
    tail.Add(std::string_view());
  }
  tail.Add(estimate);
  tail.Add(member);
  tail.Add(static_cast<std::int64_t>(options_.inflight_lease.count()));
  tail.Add(kl.rpm);
  tail.Add(kl.tpm);
  tail.Add(kl.max_parallel);
  tail.Add(ml.rpm);
  tail.Add(ml.tpm);
  tail.Add(ml.max_parallel);
  if (budget != nullptr) {
    char text[40];
    std::snprintf(text, sizeof text, "%.17g", budget->usd);
    tail.Add(std::string_view(text));
    const double seed =
        options_.period_spend ? options_.period_spend(request.principal, budget->period) : 0.0;
    std::snprintf(text, sizeof text, "%.17g", std::max(seed, 0.0));
    tail.Add(std::string_view(text));
    tail.Add(keys.budget_expires_ms);
  } else {
    tail.Add(std::string_view());
    tail.Add(std::string_view("0"));
    tail.Add(std::int64_t{0});
  }
  tail.Add(static_cast<std::int64_t>((key_limits != nullptr ? 1 : 0) |
                                     (model_limits != nullptr ? 2 : 0)));
  tail.Add(keys.model_prefix);
  const std::size_t argc = tail.count;

  const std::uint64_t leased =
      (kl.max_parallel > 0 ? kLeasedKey : 0) | (ml.max_parallel > 0 ? kLeasedModel : 0);
  const std::uint64_t charged =
      (key_limits != nullptr ? kChargedKey : 0) | (model_limits != nullptr ? kChargedModel : 0);
  // A reservation whose answer comes after the timeout is given back at once.
  const int worker_index = request.worker;
  auto give_back = [this, worker_index, keys, member, estimate, charged, leased,
                    clocked = static_cast<bool>(options_.clock)](storage::RedisPipe::Replies& r) {
    if (r.size() != 1 || r[0].type != storage::RedisValue::Type::kArray ||
        r[0].elements.size() < 5 || Int(r[0].elements[0]) != 0) {
      return;
    }
    Tail t;
    t.Add(static_cast<std::int64_t>(kKeys));
    t.Add(keys.hash);
    t.Add(keys.key_leases);
    t.Add(keys.model_leases);
    t.Add(keys.budget);
    if (clocked) {
      t.Add(NowMs());
    } else {
      t.Add(std::string_view());
    }
    t.Add(Int(r[0].elements[4]));
    t.Add(-estimate);
    t.Add(std::string_view("1"));
    t.Add(member);
    t.Add(static_cast<std::int64_t>(
        ((charged & kChargedKey) != 0 ? 1 : 0) | ((charged & kChargedModel) != 0 ? 2 : 0) |
        ((leased & kLeasedKey) != 0 ? 4 : 0) | ((leased & kLeasedModel) != 0 ? 8 : 0)));
    t.Add(std::string_view("0"));
    t.Add(keys.model_prefix);
    QueueSettle(worker_index, std::move(t.text));
  };

  const auto started = std::chrono::steady_clock::now();
  std::string wire;
  AppendScriptCall(wire, AdmitScript(), true, argc, tail.text);
  auto result = co_await worker->pipe->Call(std::move(wire), 1, options_.timeout, give_back);
  if (result && IsNoScript((*result)[0])) {
    // Not loaded on this server yet (or flushed): EVAL loads it, within the same time limit.
    const auto left = options_.timeout - std::chrono::duration_cast<std::chrono::microseconds>(
                                             std::chrono::steady_clock::now() - started);
    std::string eval;
    AppendScriptCall(eval, AdmitScript(), false, argc, tail.text);
    result = co_await worker->pipe->Call(std::move(eval), 1,
                                         std::max(left, std::chrono::microseconds(100)), give_back);
  }
  if (!result) co_return fallback(result.error());
  const storage::RedisValue& reply = (*result)[0];
  if (reply.type != storage::RedisValue::Type::kArray || reply.elements.size() != 14) {
    co_return fallback(Error(ErrorCode::kUnavailable, reply.is_error()
                                                          ? "redis: " + reply.text
                                                          : "redis: unexpected reply"));
  }
  const auto& e = reply.elements;
  const std::int64_t verdict = Int(e[0]);
  const std::int64_t which = Int(e[1]);
  const std::int64_t what = Int(e[2]);
  const std::int64_t wait = Int(e[3]);
  const std::int64_t slot = Int(e[4]);

  if (request.rate_headers != nullptr) {
    RateHeaders& h = *request.rate_headers;
    h = {};
    auto record = [&](const RateLimits& limits, std::size_t at) {
      if (limits.rpm > 0) {
        const std::int64_t remaining = std::max<std::int64_t>(limits.rpm - Int(e[at]), 0);
        if (h.limit_requests == 0 || remaining < h.remaining_requests) {
          h.limit_requests = limits.rpm;
          h.remaining_requests = remaining;
          h.reset_requests_ms = Int(e[at + 1]);
        }
      }
      if (limits.tpm > 0) {
        const std::int64_t remaining = std::max<std::int64_t>(limits.tpm - Int(e[at + 2]), 0);
        if (h.limit_tokens == 0 || remaining < h.remaining_tokens) {
          h.limit_tokens = limits.tpm;
          h.remaining_tokens = remaining;
          h.reset_tokens_ms = Int(e[at + 3]);
        }
      }
    };
    if (key_limits != nullptr) record(*key_limits, 6);
    if (model_limits != nullptr) record(*model_limits, 10);
  }
  if (verdict == 1) {
    const RateLimits& l = which == 2 ? ml : kl;
    switch (what) {
      case 1:
        co_return RateLimitRefusal("parallel requests", l.max_parallel, wait, false, which == 2,
                                   request.model, estimate);
      case 2:
        co_return RateLimitRefusal("requests per minute", l.rpm, wait, false, which == 2,
                                   request.model, estimate);
      default:
        co_return RateLimitRefusal("tokens per minute", l.tpm, wait, what == 4, which == 2,
                                   request.model, estimate);
    }
  }
  if (verdict == 2) {
    double spent = 0;
    std::from_chars(e[5].text.data(), e[5].text.data() + e[5].text.size(), spent);
    co_return BudgetRefusal(*budget, spent);
  }
  ticket.amount = estimate;
  ticket.token = (static_cast<std::uint64_t>(slot + 1) & kSlotMask) | charged | leased;
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
  const Keys keys = KeysFor(request, now_ms);
  Tail t;
  t.Add(static_cast<std::int64_t>(kKeys));
  t.Add(keys.hash);
  t.Add(keys.key_leases);
  t.Add(keys.model_leases);
  t.Add(keys.budget);
  if (options_.clock) {
    t.Add(now_ms);
  } else {
    t.Add(std::string_view());
  }
  t.Add(fleet ? static_cast<std::int64_t>(ticket.token & kSlotMask) - 1 : 0);
  t.Add(fleet ? used - ticket.amount : 0);
  t.Add(std::string_view(outcome.refused ? "1" : "0"));
  t.Add(instance_ + ":" + std::to_string(ticket.lease));
  std::int64_t flags = 0;
  if (fleet) {
    flags |= (ticket.token & kChargedKey) != 0 ? 1 : 0;
    flags |= (ticket.token & kChargedModel) != 0 ? 2 : 0;
    flags |= (ticket.token & kLeasedKey) != 0 ? 4 : 0;
    flags |= (ticket.token & kLeasedModel) != 0 ? 8 : 0;
  }
  if (spends) flags |= 16;
  t.Add(flags);
  char cost[40];
  std::snprintf(cost, sizeof cost, "%.17g", spends ? outcome.cost_usd : 0.0);
  t.Add(std::string_view(cost));
  t.Add(keys.model_prefix);
  QueueSettle(request.worker, std::move(t.text), spends);
}

void FleetLimiter::QueueSettle(int worker_index, std::string tail, bool urgent) {
  const auto index = static_cast<std::size_t>(worker_index);
  Worker* w = index < workers_.size() ? workers_[index].get() : nullptr;
  if (w == nullptr) {
    if (settle_dropped_ != nullptr) settle_dropped_->Inc();
    return;
  }
  if (urgent && std::this_thread::get_id() == w->thread) {
    // Spend: written now, pipelined past any batch on its way, so that the client's next request
    // finds it in Redis wherever it lands. A failure leaves it to the queue (and its retries).
    {
      std::lock_guard lock(w->mutex);
      ++w->urgent;
    }
    asio::co_spawn(
        w->executor,
        [this, w, worker_index, call = std::move(tail)]() mutable -> asio::awaitable<void> {
          std::string wire;
          AppendScriptCall(wire, SettleScript(), true, kKeys + kSettleArgs + 1, call);
          auto result = co_await w->pipe->Call(std::move(wire), 1, options_.settle_timeout);
          if (result && IsNoScript((*result)[0])) {
            std::string eval;
            AppendScriptCall(eval, SettleScript(), false, kKeys + kSettleArgs + 1, call);
            result = co_await w->pipe->Call(std::move(eval), 1, options_.settle_timeout);
          }
          if (result) {
            if ((*result)[0].is_error())
              BackendError("settle", Error(ErrorCode::kInternal, "redis: " + (*result)[0].text));
          } else if (result.error().code == ErrorCode::kDeadlineExceeded) {
            BackendError("settle", result.error());  // maybe applied: not sent again
          } else if (!w->pipe->closed()) {
            QueueSettle(worker_index, std::move(call));
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
    w->queue.push_back(std::move(tail));
    if (w->flushing) return;
    w->flushing = true;
  }
  // On the worker's own thread (the pipeline settles there) the flush starts here and writes at
  // once, before the response goes out, so the next request of the client, whichever instance
  // takes it, finds this one settled in Redis (budgets stop within one request). From then on the
  // flush takes whatever settles while its batch is on the way: batching under load, one write
  // per settlement at rest. From another thread it starts on the worker's loop.
  asio::co_spawn(
      w->executor,
      [this, w]() -> asio::awaitable<void> {
        for (;;) {
          std::vector<std::string> batch;
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
          std::string wire;
          for (const std::string& call : batch)
            AppendScriptCall(wire, SettleScript(), true, kKeys + kSettleArgs + 1, call);
          auto result =
              co_await w->pipe->Call(std::move(wire), batch.size(), options_.settle_timeout);
          if (result) {
            std::string again;
            std::size_t n = 0;
            for (std::size_t i = 0; i < batch.size(); ++i) {
              const storage::RedisValue& r = (*result)[i];
              if (IsNoScript(r)) {
                AppendScriptCall(again, SettleScript(), false, kKeys + kSettleArgs + 1, batch[i]);
                ++n;
              } else if (r.is_error()) {
                BackendError("settle", Error(ErrorCode::kInternal, "redis: " + r.text));
              }
            }
            if (n > 0) {
              auto retried = co_await w->pipe->Call(std::move(again), n, options_.settle_timeout);
              if (!retried) BackendError("settle", retried.error());
            }
            std::lock_guard lock(w->mutex);
            w->sending = 0;
            continue;
          }
          if (w->pipe->closed()) {  // shutting down: what is left is not sent
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
