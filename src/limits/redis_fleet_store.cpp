#include "limits/redis_fleet_store.hpp"

#include <charconv>
#include <cstdio>
#include <vector>

#include <openssl/sha.h>

namespace orchestra::limits {
namespace {

namespace asio = boost::asio;

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
bool IsNoScript(const storage::RedisValue& v) {
  return v.is_error() && v.text.rfind("NOSCRIPT", 0) == 0;
}

std::int64_t Int(const storage::RedisValue& v) {
  if (v.type == storage::RedisValue::Type::kInteger) return v.integer;
  std::int64_t out = 0;
  std::from_chars(v.text.data(), v.text.data() + v.text.size(), out);
  return out;
}

std::string Lengthed(std::string_view s) {
  return std::to_string(s.size()) + ":" + std::string(s);
}

std::string_view Number(double d, char (&text)[40]) {
  const int n = std::snprintf(text, sizeof text, "%.17g", d);
  return {text, static_cast<std::size_t>(n)};
}

// The keys and arguments every script call starts with: KEYS (the key's hash, key leases, model
// leases, budget counter) and ARGV[1] (the time in ms, '' for the server's TIME).
void AddKeys(Tail& t, std::string_view prefix, std::string_view principal, std::string_view model,
             std::string_view budget_period, std::optional<std::int64_t> now_ms) {
  const std::string base = std::string(prefix) + "{" + Lengthed(principal) + "}:";
  t.Add(static_cast<std::int64_t>(kKeys));
  t.Add(base + "w");
  t.Add(base + "kl");
  t.Add(base + "ml:" + std::string(model));
  t.Add(budget_period.empty() ? base + "b" : base + "b:" + std::string(budget_period));
  if (now_ms) {
    t.Add(*now_ms);
  } else {
    t.Add(std::string_view());
  }
}

std::string ModelPrefix(std::string_view model) {
  return "m:" + std::string(model) + ":";
}

// The script's reply, when it has the admission's shape.
std::optional<FleetAdmissionReply> Parse(const storage::RedisValue& reply) {
  if (reply.type != storage::RedisValue::Type::kArray || reply.elements.size() != 14) {
    return std::nullopt;
  }
  const auto& e = reply.elements;
  FleetAdmissionReply r;
  r.verdict = static_cast<int>(Int(e[0]));
  r.which = static_cast<int>(Int(e[1]));
  r.what = static_cast<int>(Int(e[2]));
  r.wait_ms = Int(e[3]);
  r.slot = Int(e[4]);
  std::from_chars(e[5].text.data(), e[5].text.data() + e[5].text.size(), r.spent);
  for (std::size_t i = 0; i < r.buckets.size(); ++i)
    r.buckets[i] = Int(e[6 + i]);
  return r;
}

void AppendSettle(std::string& wire, const FleetSettlement& s, bool by_sha,
                  std::string_view prefix) {
  Tail t;
  AddKeys(t, prefix, s.principal, s.model, s.budget_period, s.now_ms);
  t.Add(s.admitted_slot);
  t.Add(s.tokens_delta);
  t.Add(std::string_view(s.refused ? "1" : "0"));
  t.Add(s.member);
  t.Add(static_cast<std::int64_t>(s.flags));
  char cost[40];
  t.Add(Number(s.cost_usd, cost));
  t.Add(ModelPrefix(s.model));
  AppendScriptCall(wire, SettleScript(), by_sha, kKeys + kSettleArgs + 1, t.text);
}

}  // namespace

RedisFleetStore::RedisFleetStore(asio::any_io_executor executor, storage::RedisEndpoint endpoint,
                                 std::string prefix)
    : pipe_(std::move(executor), std::move(endpoint)), prefix_(std::move(prefix)) {}

FleetStoreFactory RedisFleetStore::Factory(storage::RedisEndpoint endpoint, std::string prefix) {
  FleetStoreFactory factory;
  factory.name = "Redis";
  factory.open = [endpoint = std::move(endpoint),
                  prefix = std::move(prefix)](asio::any_io_executor executor) {
    return std::make_unique<RedisFleetStore>(std::move(executor), endpoint, prefix);
  };
  return factory;
}

asio::awaitable<Result<FleetAdmissionReply>> RedisFleetStore::Admit(
    const FleetAdmission& a, std::chrono::microseconds timeout, Late late) {
  // ARGV: now, estimate, lease member, lease ms, key rpm tpm max_parallel, model rpm tpm
  // max_parallel, budget usd ('' none), budget seed, budget expiry (unix ms), flags (1 key,
  // 2 model), the model bucket's prefix.
  Tail tail;
  AddKeys(tail, prefix_, a.principal, a.model, a.budget_usd ? a.budget_period : "", a.now_ms);
  tail.Add(a.estimate);
  tail.Add(a.member);
  tail.Add(a.lease_ms);
  tail.Add(a.key.rpm);
  tail.Add(a.key.tpm);
  tail.Add(a.key.max_parallel);
  tail.Add(a.model_limits.rpm);
  tail.Add(a.model_limits.tpm);
  tail.Add(a.model_limits.max_parallel);
  if (a.budget_usd) {
    char text[40];
    tail.Add(Number(*a.budget_usd, text));
    tail.Add(Number(std::max(a.budget_seed, 0.0), text));
    tail.Add(a.budget_expires_ms);
  } else {
    tail.Add(std::string_view());
    tail.Add(std::string_view("0"));
    tail.Add(std::int64_t{0});
  }
  tail.Add(static_cast<std::int64_t>((a.key_bucket ? 1 : 0) | (a.model_bucket ? 2 : 0)));
  tail.Add(ModelPrefix(a.model));
  const std::size_t argc = tail.count;

  storage::RedisPipe::Late on_late;
  if (late) {
    on_late = [late = std::move(late)](storage::RedisPipe::Replies& r) {
      if (r.size() != 1) return;
      if (auto parsed = Parse(r[0])) late(*parsed);
    };
  }
  const auto started = std::chrono::steady_clock::now();
  std::string wire;
  AppendScriptCall(wire, AdmitScript(), true, argc, tail.text);
  auto result = co_await pipe_.Call(std::move(wire), 1, timeout, on_late);
  if (result && IsNoScript((*result)[0])) {
    // Not loaded on this server yet (or flushed): EVAL loads it, within the same time limit.
    const auto left = timeout - std::chrono::duration_cast<std::chrono::microseconds>(
                                    std::chrono::steady_clock::now() - started);
    std::string eval;
    AppendScriptCall(eval, AdmitScript(), false, argc, tail.text);
    result = co_await pipe_.Call(std::move(eval), 1, std::max(left, std::chrono::microseconds(100)),
                                 on_late);
  }
  if (!result) co_return result.error();
  const storage::RedisValue& reply = (*result)[0];
  auto parsed = Parse(reply);
  if (!parsed) {
    co_return Error(ErrorCode::kUnavailable,
                    reply.is_error() ? "redis: " + reply.text : "redis: unexpected reply");
  }
  co_return *parsed;
}

asio::awaitable<Result<std::size_t>> RedisFleetStore::Settle(std::span<const FleetSettlement> batch,
                                                             std::chrono::milliseconds timeout) {
  std::string wire;
  for (const FleetSettlement& s : batch)
    AppendSettle(wire, s, true, prefix_);
  auto result = co_await pipe_.Call(std::move(wire), batch.size(), timeout);
  if (!result) co_return result.error();
  std::string again;
  std::size_t n = 0;
  std::size_t refused = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const storage::RedisValue& r = (*result)[i];
    if (IsNoScript(r)) {
      AppendSettle(again, batch[i], false, prefix_);
      ++n;
    } else if (r.is_error()) {
      ++refused;
    }
  }
  if (n > 0) {
    // The first call's other settlements are applied: a failure here is counted, not returned
    // (which would have the whole batch sent again).
    auto retried = co_await pipe_.Call(std::move(again), n, timeout);
    if (!retried) co_return refused + n;
    for (const storage::RedisValue& r : *retried)
      refused += r.is_error() ? 1 : 0;
  }
  co_return refused;
}

}  // namespace orchestra::limits
