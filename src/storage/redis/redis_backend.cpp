#include "storage/redis/redis_backend.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include <hiredis/hiredis.h>

#include "common/redis_url.hpp"
#include "common/text.hpp"
#include "storage/checkpoint_id.hpp"
#include "storage/validation.hpp"
#include <sys/time.h>

namespace orchestra::storage {
namespace {

using Clock = std::chrono::steady_clock;

// Scripts keep each checkpoint operation atomic. Ids are compared byte by byte (Lua's `<`
// follows the server's locale).
constexpr std::string_view kLuaHelpers = R"lua(
local alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
local function after(a, b)  -- a > b, bytewise
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local function next_id(s)
  local chars = {}
  for i = 1, #s do chars[i] = s:sub(i, i) end
  for i = #chars, 1, -1 do
    local pos = alphabet:find(chars[i], 1, true)
    if pos < 32 then
      chars[i] = alphabet:sub(pos + 1, pos + 1)
      return table.concat(chars)
    end
    chars[i] = '0'
  end
  return table.concat(chars)
end
)lua";

// KEYS: ids states meta. ARGV: id state metadata has_metadata keep_last.
constexpr std::string_view kCreateScript = R"lua(
local id = ARGV[1]
local latest = redis.call('ZRANGE', KEYS[1], -1, -1)[1]
if latest and not after(id, latest) then id = next_id(latest) end
redis.call('ZADD', KEYS[1], 0, id)
redis.call('HSET', KEYS[2], id, ARGV[2])
if ARGV[4] == '1' then redis.call('HSET', KEYS[3], id, ARGV[3]) end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
  for _, o in ipairs(old) do
    redis.call('HDEL', KEYS[2], o)
    redis.call('HDEL', KEYS[3], o)
  end
end
return id
)lua";

// KEYS: ids states meta. ARGV: id or ''. → {id, state, metadata or nil} or nil.
constexpr std::string_view kRestoreScript = R"lua(
local id = ARGV[1]
if id == '' then
  id = redis.call('ZRANGE', KEYS[1], -1, -1)[1]
  if not id then return false end
end
local state = redis.call('HGET', KEYS[2], id)
if not state then return false end
return {id, state, redis.call('HGET', KEYS[3], id)}
)lua";

// KEYS: ids meta. → {id1, metadata1 or nil, id2, ...}
constexpr std::string_view kListScript = R"lua(
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id)
end
return out
)lua";

// KEYS: ids states meta. ARGV: id. → 1 when it existed.
constexpr std::string_view kDeleteScript = R"lua(
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return removed
)lua";

const std::string& Script(std::string_view body) {
  // Built once per script; `body` is one of the constants above.
  static const std::string create = std::string(kLuaHelpers) + std::string(kCreateScript);
  if (body == kCreateScript) return create;
  static const std::string restore(kRestoreScript);
  if (body == kRestoreScript) return restore;
  static const std::string list(kListScript);
  if (body == kListScript) return list;
  static const std::string remove(kDeleteScript);
  return remove;
}

std::string LengthPrefixed(std::string_view s) {
  return std::to_string(s.size()) + ":" + std::string(s);
}

std::string KvPrefix(std::string_view tenant) {
  return "o:kv:" + LengthPrefixed(tenant) + ":";
}

struct CheckpointKeys {
  std::string ids;
  std::string states;
  std::string meta;
};

CheckpointKeys KeysFor(std::string_view tenant, std::string_view agent_id) {
  const std::string base =
      "o:cp:{" + LengthPrefixed(tenant) + ":" + LengthPrefixed(agent_id) + "}:";
  return {base + "ids", base + "states", base + "meta"};
}

timeval Remaining(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  if (left.count() < 1000) left = std::chrono::microseconds(1000);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(left.count() / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(left.count() % 1'000'000);
  return tv;
}

Error Unavailable(std::string message) {
  return MakeError(ErrorCode::kUnavailable, "redis: " + std::move(message));
}

// FNV-1a over the sorted keys of one SCAN reply (the cursor's check that the reply is the same).
std::uint64_t HashKeys(const std::vector<std::string>& keys) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const std::string& key : keys) {
    for (char c : key) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ULL;
    }
    h ^= 0xFF;
    h *= 1099511628211ULL;
  }
  return h;
}

bool ParseU64(std::string_view text, std::uint64_t& out, int base = 10) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && end == text.data() + text.size();
}

struct ScanCursor {
  std::uint64_t position = 0;  // Redis's SCAN cursor
  std::uint64_t count = 0;     // 0: not inside a reply
  std::uint64_t offset = 0;
  std::uint64_t hash = 0;
};

// "r<position>" or "r<position>.<count>.<offset>.<hash hex>"; "" is the start.
bool ParseScanCursor(std::string_view text, ScanCursor& out) {
  out = {};
  if (text.empty()) return true;
  if (text[0] != 'r') return false;
  text.remove_prefix(1);
  const auto dot = text.find('.');
  if (!ParseU64(text.substr(0, dot), out.position)) return false;
  if (dot == std::string_view::npos) return true;
  text.remove_prefix(dot + 1);
  const auto d2 = text.find('.');
  const auto d3 = d2 == std::string_view::npos ? d2 : text.find('.', d2 + 1);
  if (d3 == std::string_view::npos) return false;
  return ParseU64(text.substr(0, d2), out.count) && out.count >= 1 && out.count <= 100000 &&
         ParseU64(text.substr(d2 + 1, d3 - d2 - 1), out.offset) && out.offset >= 1 &&
         ParseU64(text.substr(d3 + 1), out.hash, 16);
}

std::string FormatScanCursor(const ScanCursor& c) {
  std::string out = "r" + std::to_string(c.position);
  if (c.count == 0) return out;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(c.hash));
  return out + "." + std::to_string(c.count) + "." + std::to_string(c.offset) + "." + hex;
}

}  // namespace

struct RedisBackend::Reply {
  struct Free {
    void operator()(redisReply* r) const { freeReplyObject(r); }
  };
  std::unique_ptr<redisReply, Free> ptr;
  const redisReply* operator->() const { return ptr.get(); }
};

namespace {

std::string_view Text(const redisReply* r) {
  return {r->str, r->len};
}

// Errors the server answers with: a replica, a loading or busy server are "down" for us.
Error ReplyError(const redisReply* r) {
  const std::string_view text = Text(r);
  for (std::string_view transient :
       {"LOADING", "READONLY", "MASTERDOWN", "BUSY", "OOM", "TRYAGAIN", "CLUSTERDOWN", "NOAUTH"}) {
    if (text.substr(0, transient.size()) == transient) return Unavailable(std::string(text));
  }
  return MakeError(ErrorCode::kInternal, "redis: " + std::string(text));
}

Error Unexpected(const redisReply* r) {
  return MakeError(ErrorCode::kInternal,
                   "redis: unexpected reply of type " + std::to_string(r->type));
}

}  // namespace

class RedisBackend::Connection {
 public:
  explicit Connection(redisContext* ctx) : ctx_(ctx) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { redisFree(ctx_); }

  redisContext* ctx() const { return ctx_; }
  bool broken = false;  // an I/O error or timeout left it unusable

 private:
  redisContext* ctx_;
};

std::unique_ptr<RedisBackend> RedisBackend::Create(const RedisOptions& options) {
  RedisAddress address = ParseRedisUrl(options.url, "storage");
  std::unique_ptr<RedisBackend> backend(new RedisBackend());
  RedisBackend* self = backend.get();
  backend->pool_.emplace("redis", static_cast<std::size_t>(std::max(1, options.pool_size)),
                         ConnectionPool<Connection>::Hooks{
                             .open = [self](Deadline deadline) { return self->Open(deadline); },
                             .reusable = [](const Connection& c) { return !c.broken; }});
  backend->host_ = std::move(address.host);
  backend->port_ = address.port;
  backend->user_ = std::move(address.user);
  backend->password_ = std::move(address.password);
  backend->db_ = address.db;
  return backend;
}

RedisBackend::~RedisBackend() = default;

Result<std::unique_ptr<RedisBackend::Connection>> RedisBackend::Open(Deadline deadline) {
  redisContext* ctx = redisConnectWithTimeout(host_.c_str(), port_, Remaining(deadline));
  if (ctx == nullptr) return Unavailable("cannot allocate a connection");
  auto connection = std::make_unique<Connection>(ctx);
  if (ctx->err != 0) {
    return Unavailable("cannot connect to " + host_ + ":" + std::to_string(port_) + ": " +
                       ctx->errstr);
  }
  redisEnableKeepAlive(ctx);
  redisSetTimeout(ctx, Remaining(deadline));
  auto setup = [&](const std::vector<std::string_view>& args) -> Result<void> {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (std::string_view a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    Reply reply{std::unique_ptr<redisReply, Reply::Free>(static_cast<redisReply*>(
        redisCommandArgv(ctx, static_cast<int>(args.size()), argv.data(), lens.data())))};
    if (!reply.ptr) return Unavailable(std::string("connection lost during setup: ") + ctx->errstr);
    if (reply->type == REDIS_REPLY_ERROR) return ReplyError(reply.ptr.get());
    return {};
  };
  if (!password_.empty()) {
    auto r = user_.empty() ? setup({"AUTH", password_}) : setup({"AUTH", user_, password_});
    if (!r) return r.error();
  }
  if (db_ != 0) {
    const std::string db = std::to_string(db_);
    if (auto r = setup({"SELECT", db}); !r) return r.error();
  }
  return connection;
}

Result<RedisBackend::Reply> RedisBackend::Command(Deadline deadline,
                                                  const std::vector<std::string_view>& args,
                                                  bool idempotent) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return pool_->Run(deadline, idempotent, [&](Connection& connection) -> Result<Reply> {
    redisContext* ctx = connection.ctx();
    redisSetTimeout(ctx, Remaining(deadline));
    Reply reply{std::unique_ptr<redisReply, Reply::Free>(static_cast<redisReply*>(
        redisCommandArgv(ctx, static_cast<int>(args.size()), argv.data(), lens.data())))};
    if (!reply.ptr) {
      connection.broken = true;
      const std::string reason = ctx->errstr;
      return Unavailable("connection to " + host_ + ":" + std::to_string(port_) +
                         " failed: " + (reason.empty() ? "timed out" : reason));
    }
    if (reply->type == REDIS_REPLY_ERROR) return ReplyError(reply.ptr.get());
    return reply;
  });
}

Result<void> RedisBackend::Ping(Deadline deadline) {
  auto reply = Command(deadline, {"PING"}, true);
  if (!reply) return reply.error();
  return {};
}

Result<void> RedisBackend::Store(const Call& call, std::string_view key, std::string_view value,
                                 std::optional<std::chrono::milliseconds> ttl) {
  const std::string full = KvPrefix(call.tenant) + std::string(key);
  Result<Reply> reply = MakeError(ErrorCode::kInternal, "unset");
  if (ttl) {
    const std::string ms = std::to_string(ttl->count());
    reply = Command(call.deadline, {"SET", full, value, "PX", ms}, true);
  } else {
    reply = Command(call.deadline, {"SET", full, value}, true);
  }
  if (!reply) return reply.error();
  return {};
}

Result<std::optional<std::string>> RedisBackend::Retrieve(const Call& call, std::string_view key) {
  const std::string full = KvPrefix(call.tenant) + std::string(key);
  auto reply = Command(call.deadline, {"GET", full}, true);
  if (!reply) return reply.error();
  if ((*reply)->type == REDIS_REPLY_NIL) return std::optional<std::string>();
  if ((*reply)->type != REDIS_REPLY_STRING) return Unexpected(reply->ptr.get());
  return std::optional<std::string>(std::string(Text(reply->ptr.get())));
}

Result<bool> RedisBackend::Delete(const Call& call, std::string_view key) {
  const std::string full = KvPrefix(call.tenant) + std::string(key);
  auto reply = Command(call.deadline, {"DEL", full}, true);
  if (!reply) return reply.error();
  if ((*reply)->type != REDIS_REPLY_INTEGER) return Unexpected(reply->ptr.get());
  return (*reply)->integer > 0;
}

Result<bool> RedisBackend::Exists(const Call& call, std::string_view key) {
  const std::string full = KvPrefix(call.tenant) + std::string(key);
  auto reply = Command(call.deadline, {"EXISTS", full}, true);
  if (!reply) return reply.error();
  if ((*reply)->type != REDIS_REPLY_INTEGER) return Unexpected(reply->ptr.get());
  return (*reply)->integer > 0;
}

Result<KeyPage> RedisBackend::ListKeys(const Call& call, const Glob& pattern, int limit,
                                       std::string_view cursor) {
  ScanCursor resume;
  if (!ParseScanCursor(cursor, resume)) return BadCursor();
  const std::string prefix = KvPrefix(call.tenant);
  const std::string match = pattern.ToRedisMatch(prefix);
  const std::uint64_t count =
      resume.count != 0 ? resume.count : std::clamp<std::uint64_t>(limit, 10, 1000);
  const std::string count_text = std::to_string(count);
  // A sparse pattern can take many SCAN steps; leave time to answer with a partial page.
  const Deadline soft_deadline = Clock::now() + (call.deadline - Clock::now()) / 2;
  KeyPage page;
  std::uint64_t position = resume.position;
  bool first = true;
  for (int round = 0;; ++round) {
    const std::string position_text = std::to_string(position);
    auto reply =
        Command(call.deadline, {"SCAN", position_text, "MATCH", match, "COUNT", count_text}, true);
    if (!reply) {
      // A cursor Redis rejects is not ours.
      if (reply.error().code == ErrorCode::kInternal && !cursor.empty()) return BadCursor();
      return reply.error();
    }
    const redisReply* r = reply->ptr.get();
    std::uint64_t next = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY ||
        !ParseU64(Text(r->element[0]), next)) {
      return Unexpected(r);
    }
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < r->element[1]->elements; ++i) {
      const redisReply* e = r->element[1]->element[i];
      if (e->type != REDIS_REPLY_STRING) continue;
      std::string_view full = Text(e);
      if (full.substr(0, prefix.size()) != prefix) continue;
      full.remove_prefix(prefix.size());
      if (pattern.Matches(full)) keys.emplace_back(full);
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    const std::uint64_t hash = HashKeys(keys);
    std::size_t skip = 0;
    if (first && resume.count != 0 && hash == resume.hash && resume.offset <= keys.size()) {
      skip = resume.offset;
    }
    first = false;
    const std::size_t room = static_cast<std::size_t>(limit) - page.keys.size();
    if (keys.size() - skip > room) {
      // This reply overflows the page: stop inside it.
      page.keys.insert(page.keys.end(), keys.begin() + static_cast<std::ptrdiff_t>(skip),
                       keys.begin() + static_cast<std::ptrdiff_t>(skip + room));
      page.next_cursor = FormatScanCursor({position, count, skip + room, hash});
      return page;
    }
    page.keys.insert(page.keys.end(), keys.begin() + static_cast<std::ptrdiff_t>(skip), keys.end());
    position = next;
    if (position == 0) return page;  // the end
    if (page.keys.size() == static_cast<std::size_t>(limit) || round >= 256 ||
        Clock::now() >= soft_deadline) {
      page.next_cursor = FormatScanCursor({position, 0, 0, 0});
      return page;
    }
  }
}

Result<std::string> RedisBackend::CreateCheckpoint(const Call& call, std::string_view agent_id,
                                                   std::string_view proposed_id,
                                                   std::string_view state,
                                                   std::optional<std::string_view> metadata,
                                                   int keep_last) {
  const CheckpointKeys keys = KeysFor(call.tenant, agent_id);
  const std::string keep = std::to_string(keep_last);
  // Not idempotent: a retry after a lost reply could store the checkpoint twice.
  auto reply = Command(call.deadline,
                       {"EVAL", Script(kCreateScript), "3", keys.ids, keys.states, keys.meta,
                        proposed_id, state, metadata.value_or(""), metadata ? "1" : "0", keep},
                       false);
  if (!reply) return reply.error();
  if ((*reply)->type != REDIS_REPLY_STRING) return Unexpected(reply->ptr.get());
  return std::string(Text(reply->ptr.get()));
}

Result<std::optional<Checkpoint>> RedisBackend::RestoreCheckpoint(
    const Call& call, std::string_view agent_id, std::optional<std::string_view> id) {
  const CheckpointKeys keys = KeysFor(call.tenant, agent_id);
  auto reply = Command(
      call.deadline,
      {"EVAL", Script(kRestoreScript), "3", keys.ids, keys.states, keys.meta, id.value_or("")},
      true);
  if (!reply) return reply.error();
  const redisReply* r = reply->ptr.get();
  if (r->type == REDIS_REPLY_NIL) return std::optional<Checkpoint>();
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
      r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING) {
    return Unexpected(r);
  }
  Checkpoint checkpoint;
  checkpoint.info.id = std::string(Text(r->element[0]));
  checkpoint.info.created_at = CheckpointIdTime(checkpoint.info.id);
  checkpoint.state = std::string(Text(r->element[1]));
  if (r->elements > 2 && r->element[2]->type == REDIS_REPLY_STRING) {
    checkpoint.info.metadata = std::string(Text(r->element[2]));
  }
  return std::optional<Checkpoint>(std::move(checkpoint));
}

Result<std::vector<CheckpointInfo>> RedisBackend::ListCheckpoints(const Call& call,
                                                                  std::string_view agent_id) {
  const CheckpointKeys keys = KeysFor(call.tenant, agent_id);
  auto reply =
      Command(call.deadline, {"EVAL", Script(kListScript), "2", keys.ids, keys.meta}, true);
  if (!reply) return reply.error();
  const redisReply* r = reply->ptr.get();
  if (r->type != REDIS_REPLY_ARRAY) return Unexpected(r);
  std::vector<CheckpointInfo> out;
  out.reserve(r->elements / 2);
  // Lua drops trailing nils from a table, so the last metadata may be missing.
  for (std::size_t i = 0; i < r->elements; i += 2) {
    if (r->element[i]->type != REDIS_REPLY_STRING) return Unexpected(r);
    CheckpointInfo info;
    info.id = std::string(Text(r->element[i]));
    info.created_at = CheckpointIdTime(info.id);
    if (i + 1 < r->elements && r->element[i + 1]->type == REDIS_REPLY_STRING) {
      info.metadata = std::string(Text(r->element[i + 1]));
    }
    out.push_back(std::move(info));
  }
  return out;
}

Result<bool> RedisBackend::DeleteCheckpoint(const Call& call, std::string_view agent_id,
                                            std::string_view id) {
  const CheckpointKeys keys = KeysFor(call.tenant, agent_id);
  auto reply =
      Command(call.deadline,
              {"EVAL", Script(kDeleteScript), "3", keys.ids, keys.states, keys.meta, id}, true);
  if (!reply) return reply.error();
  if ((*reply)->type != REDIS_REPLY_INTEGER) return Unexpected(reply->ptr.get());
  return (*reply)->integer > 0;
}

Result<std::uint64_t> RedisBackend::SweepExpired(Deadline /*deadline*/) {
  return std::uint64_t{0};  // Redis expires keys itself
}

// --- Records ---------------------------------------------------------------------------------

namespace {

// KEYS: sequence, log, then per collection of the batch: ids, data. ARGV: tenant, the count of
// writes, then six per write: op ('p'ut or 'd'elete), the index of its collection's ids key,
// collection, id, value, expectation ('a'ny, 'n'ot there, or the version). → the versions
// (put) / 1 or 0 (delete), or {-1, i} when the i-th write's precondition fails (nothing done).
constexpr std::string_view kWriteRecordsScript = R"lua(
local tenant = ARGV[1]
local n = tonumber(ARGV[2])
local current = {}
for i = 1, n do
  local b = 2 + (i - 1) * 6
  local k = tonumber(ARGV[b + 2])
  local stored = redis.call('HGET', KEYS[k + 1], ARGV[b + 4])
  local version = stored and tonumber(string.match(stored, '^%d+')) or false
  current[i] = version
  local e = ARGV[b + 6]
  if e == 'n' then
    if version then return {-1, i} end
  elseif e ~= 'a' then
    if not version or version ~= tonumber(e) then return {-1, i} end
  end
end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, n do
  local b = 2 + (i - 1) * 6
  local op, k, collection, id = ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3], ARGV[b + 4]
  local changed = false
  if op == 'p' then
    local version = (current[i] or 0) + 1
    redis.call('ZADD', KEYS[k], 0, id)
    redis.call('HSET', KEYS[k + 1], id, version .. ' ' .. ARGV[b + 5])
    out[i] = version
    changed = true
  elseif current[i] then
    redis.call('ZREM', KEYS[k], id)
    redis.call('HDEL', KEYS[k + 1], id)
    out[i] = 1
    changed = true
  else
    out[i] = 0
  end
  if changed then
    local seq = redis.call('INCR', KEYS[1])
    local member = seq .. ' ' .. ms .. ' ' .. (op == 'p' and '0' or '1') .. ' ' .. #tenant .. ':' ..
                   tenant .. #collection .. ':' .. collection .. id
    redis.call('ZADD', KEYS[2], seq, member)
  end
end
return out
)lua";

// KEYS: log. ARGV: retention in ms. Removes up to 1000 entries older than the retention by the
// server's clock, oldest first, never the newest. → how many.
constexpr std::string_view kPruneScript = R"lua(
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
local total = redis.call('ZCARD', KEYS[1])
local removed = 0
while removed < 1000 and total - removed > 1 do
  local batch = redis.call('ZRANGE', KEYS[1], 0, 99)
  if #batch == 0 then break end
  for _, m in ipairs(batch) do
    if total - removed <= 1 then return removed end
    local at = tonumber(string.match(m, '^%d+ (%d+) '))
    if not at or at >= cutoff then return removed end
    redis.call('ZREM', KEYS[1], m)
    removed = removed + 1
  end
end
return removed
)lua";

// KEYS: ids, data. ARGV: min, max (ZRANGEBYLEX), count. → {id, "version value", ...}
constexpr std::string_view kListRecordsScript = R"lua(
local ids = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out
)lua";

// KEYS: ids, counter. ARGV: id, then field, delta pairs. → the new values.
constexpr std::string_view kAddCounterScript = R"lua(
redis.call('ZADD', KEYS[1], 0, ARGV[1])
local out = {}
for i = 2, #ARGV, 2 do
  out[#out + 1] = redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
end
return out
)lua";

// KEYS: ids. ARGV: min, max, count, the counters' key prefix. → {id, {field, value, ...}, ...}
// (the counters' keys are derived from the ids, so not declared: Redis Cluster is unsupported).
constexpr std::string_view kListCountersScript = R"lua(
local ids = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', ARGV[4] .. id)
end
return out
)lua";

constexpr std::string_view kSequenceKey = "o:rec:seq";
constexpr std::string_view kLogKey = "o:rec:log";

// The hash-tagged base of a tenant's collection: "o:rec:{|T|:T:|C|:C}:" (or o:ctr:).
std::string CollectionBase(std::string_view kind, std::string_view tenant,
                           std::string_view collection) {
  return "o:" + std::string(kind) + ":{" + LengthPrefixed(tenant) + ":" +
         LengthPrefixed(collection) + "}:";
}

// ZRANGEBYLEX bounds for ids starting with `prefix` after `after`.
std::pair<std::string, std::string> LexRange(std::string_view prefix, std::string_view after) {
  std::string min = !after.empty() && after >= prefix ? "(" + std::string(after)
                    : prefix.empty()                  ? std::string("-")
                                                      : "[" + std::string(prefix);
  const std::string upper = prefix.empty() ? std::string() : PrefixUpperBound(prefix);
  return {std::move(min), upper.empty() ? std::string("+") : "(" + upper};
}

std::string FormatDouble(double d) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", d);
  return text;
}

// "<sequence> <ms> <deleted> <|T|>:<T><|C|>:<C><id>" → a Change.
std::optional<Change> ParseChange(std::string_view member) {
  Change change;
  auto field = [&](std::uint64_t& out) {
    const auto space = member.find(' ');
    if (space == std::string_view::npos || !ParseU64(member.substr(0, space), out)) return false;
    member.remove_prefix(space + 1);
    return true;
  };
  auto counted = [&](std::string& out) {
    const auto colon = member.find(':');
    std::uint64_t n = 0;
    if (colon == std::string_view::npos || !ParseU64(member.substr(0, colon), n) ||
        n > member.size() - colon - 1) {
      return false;
    }
    out = std::string(member.substr(colon + 1, n));
    member.remove_prefix(colon + 1 + n);
    return true;
  };
  std::uint64_t sequence = 0;
  std::uint64_t at = 0;
  std::uint64_t deleted = 0;
  if (!field(sequence) || !field(at) || !field(deleted) || !counted(change.tenant) ||
      !counted(change.collection) || member.empty()) {
    return std::nullopt;
  }
  change.sequence = static_cast<std::int64_t>(sequence);
  change.deleted = deleted != 0;
  change.id = std::string(member);
  return change;
}

// "<version> <value>" → a Record.
std::optional<Record> ParseStored(std::string_view id, std::string_view stored) {
  const auto space = stored.find(' ');
  std::uint64_t version = 0;
  if (space == std::string_view::npos || !ParseU64(stored.substr(0, space), version)) {
    return std::nullopt;
  }
  return Record{std::string(id), std::string(stored.substr(space + 1)),
                static_cast<std::int64_t>(version)};
}

}  // namespace

Result<std::vector<std::int64_t>> RedisBackend::WriteRecords(
    const Call& call, const std::vector<RecordWrite>& writes) {
  static const std::string script(kWriteRecordsScript);
  std::vector<std::string> keys{std::string(kSequenceKey), std::string(kLogKey)};
  std::vector<std::string> args{std::string(call.tenant), std::to_string(writes.size())};
  std::vector<std::pair<std::string, std::size_t>> collections;  // name → index of its ids key
  for (const RecordWrite& w : writes) {
    auto it = std::find_if(collections.begin(), collections.end(),
                           [&](const auto& c) { return c.first == w.collection; });
    if (it == collections.end()) {
      const std::string base = CollectionBase("rec", call.tenant, w.collection);
      keys.push_back(base + "ids");
      keys.push_back(base + "data");
      collections.emplace_back(w.collection, keys.size() - 1);  // Lua counts from 1
      it = collections.end() - 1;
    }
    args.emplace_back(w.op == RecordWrite::Op::kPut ? "p" : "d");
    args.push_back(std::to_string(it->second));
    args.push_back(w.collection);
    args.push_back(w.id);
    args.push_back(w.op == RecordWrite::Op::kPut ? w.value : std::string());
    switch (w.expect.kind) {
      case Expect::Kind::kAny:
        args.emplace_back("a");
        break;
      case Expect::Kind::kAbsent:
        args.emplace_back("n");
        break;
      case Expect::Kind::kVersion:
        args.push_back(std::to_string(w.expect.version));
        break;
    }
  }
  std::vector<std::string_view> argv{"EVAL", script};
  const std::string key_count = std::to_string(keys.size());
  argv.emplace_back(key_count);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  // Not idempotent: a retry after a lost reply could write the batch twice.
  auto reply = Command(call.deadline, argv, false);
  if (!reply) return reply.error();
  const redisReply* r = reply->ptr.get();
  if (r->type != REDIS_REPLY_ARRAY) return Unexpected(r);
  if (r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
      r->element[0]->integer == -1 && r->element[1]->type == REDIS_REPLY_INTEGER) {
    const auto i = static_cast<std::size_t>(r->element[1]->integer - 1);
    if (i >= writes.size()) return Unexpected(r);
    return RecordConflict(writes[i].collection, writes[i].id);
  }
  if (r->elements != writes.size()) return Unexpected(r);
  std::vector<std::int64_t> out;
  out.reserve(writes.size());
  for (std::size_t i = 0; i < r->elements; ++i) {
    if (r->element[i]->type != REDIS_REPLY_INTEGER) return Unexpected(r);
    out.push_back(r->element[i]->integer);
  }
  return out;
}

Result<std::optional<Record>> RedisBackend::GetRecord(const Call& call, std::string_view collection,
                                                      std::string_view id) {
  const std::string data = CollectionBase("rec", call.tenant, collection) + "data";
  auto reply = Command(call.deadline, {"HGET", data, id}, true);
  if (!reply) return reply.error();
  if ((*reply)->type == REDIS_REPLY_NIL) return std::optional<Record>();
  if ((*reply)->type != REDIS_REPLY_STRING) return Unexpected(reply->ptr.get());
  auto record = ParseStored(id, Text(reply->ptr.get()));
  if (!record) return MakeError(ErrorCode::kInternal, "redis: a record is not in our format");
  return std::optional<Record>(std::move(*record));
}

Result<RecordPage> RedisBackend::ListRecords(const Call& call, std::string_view collection,
                                             std::string_view prefix, std::string_view after,
                                             int limit) {
  static const std::string script(kListRecordsScript);
  const std::string base = CollectionBase("rec", call.tenant, collection);
  const auto [min, max] = LexRange(prefix, after);
  const std::string count = std::to_string(limit + 1);
  auto reply = Command(call.deadline,
                       {"EVAL", script, "2", base + "ids", base + "data", min, max, count}, true);
  if (!reply) return reply.error();
  const redisReply* r = reply->ptr.get();
  if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) return Unexpected(r);
  RecordPage page;
  for (std::size_t i = 0; i < r->elements; i += 2) {
    if (r->element[i]->type != REDIS_REPLY_STRING ||
        r->element[i + 1]->type != REDIS_REPLY_STRING) {
      return Unexpected(r);
    }
    if (static_cast<int>(page.records.size()) == limit) {
      page.next_cursor = page.records.back().id;
      break;
    }
    auto record = ParseStored(Text(r->element[i]), Text(r->element[i + 1]));
    if (!record) continue;  // deleted between the two reads cannot happen in a script
    page.records.push_back(std::move(*record));
  }
  return page;
}

Result<std::vector<Change>> RedisBackend::ChangesSince(Deadline deadline, std::int64_t sequence,
                                                       int limit) {
  const std::string min = std::to_string(sequence);  // inclusive: the reader's own entry
  const std::string count = std::to_string(limit + 1);
  auto reply =
      Command(deadline, {"ZRANGEBYSCORE", kLogKey, min, "+inf", "LIMIT", "0", count}, true);
  if (!reply) return reply.error();
  const redisReply* r = reply->ptr.get();
  if (r->type != REDIS_REPLY_ARRAY) return Unexpected(r);
  std::vector<Change> out;
  bool first = true;
  for (std::size_t i = 0; i < r->elements; ++i) {
    if (r->element[i]->type != REDIS_REPLY_STRING) return Unexpected(r);
    auto change = ParseChange(Text(r->element[i]));
    if (!change) return MakeError(ErrorCode::kInternal, "redis: a change is not in our format");
    if (first && sequence > 0) {
      first = false;
      if (change->sequence != sequence) return ChangeLogGap(sequence);
      continue;
    }
    first = false;
    if (static_cast<int>(out.size()) == limit) break;
    out.push_back(std::move(*change));
  }
  if (first && sequence > 0) return ChangeLogGap(sequence);
  return out;
}

Result<std::int64_t> RedisBackend::LatestSequence(Deadline deadline) {
  auto reply = Command(deadline, {"ZRANGE", kLogKey, "-1", "-1"}, true);
  if (!reply) return reply.error();
  const redisReply* r = reply->ptr.get();
  if (r->type != REDIS_REPLY_ARRAY) return Unexpected(r);
  if (r->elements == 0) return std::int64_t{0};
  if (r->element[0]->type != REDIS_REPLY_STRING) return Unexpected(r);
  auto change = ParseChange(Text(r->element[0]));
  if (!change) return MakeError(ErrorCode::kInternal, "redis: a change is not in our format");
  return change->sequence;
}

Result<std::uint64_t> RedisBackend::PruneChanges(Deadline deadline,
                                                 std::chrono::milliseconds retention) {
  static const std::string script(kPruneScript);
  const std::string ms = std::to_string(retention.count());
  std::uint64_t removed = 0;
  for (;;) {
    auto reply = Command(deadline, {"EVAL", script, "1", kLogKey, ms}, true);
    if (!reply) return reply.error();
    if ((*reply)->type != REDIS_REPLY_INTEGER) return Unexpected(reply->ptr.get());
    const auto batch = static_cast<std::uint64_t>((*reply)->integer);
    removed += batch;
    if (batch < 1000 || Clock::now() >= deadline) return removed;
  }
}

Result<std::vector<double>> RedisBackend::AddCounter(
    const Call& call, std::string_view collection, std::string_view id,
    const std::vector<std::pair<std::string, double>>& deltas) {
  static const std::string script(kAddCounterScript);
  const std::string base = CollectionBase("ctr", call.tenant, collection);
  const std::string counter = base + "c:" + std::string(id);
  std::vector<std::string> numbers;
  numbers.reserve(deltas.size());
  for (const auto& d : deltas)
    numbers.push_back(FormatDouble(d.second));
  const std::string ids = base + "ids";
  std::vector<std::string_view> argv{"EVAL", script, "2", ids, counter, id};
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    argv.emplace_back(deltas[i].first);
    argv.emplace_back(numbers[i]);
  }
  auto reply = Command(call.deadline, argv, false);
  if (!reply) return reply.error();
  const redisReply* r = reply->ptr.get();
  if (r->type != REDIS_REPLY_ARRAY || r->elements != deltas.size()) return Unexpected(r);
  std::vector<double> out;
  for (std::size_t i = 0; i < r->elements; ++i) {
    if (r->element[i]->type != REDIS_REPLY_STRING) return Unexpected(r);
    out.push_back(std::strtod(std::string(Text(r->element[i])).c_str(), nullptr));
  }
  return out;
}

Result<CounterPage> RedisBackend::ListCounters(const Call& call, std::string_view collection,
                                               std::string_view prefix, std::string_view after,
                                               int limit) {
  static const std::string script(kListCountersScript);
  const std::string base = CollectionBase("ctr", call.tenant, collection);
  const auto [min, max] = LexRange(prefix, after);
  const std::string count = std::to_string(limit + 1);
  auto reply = Command(call.deadline,
                       {"EVAL", script, "1", base + "ids", min, max, count, base + "c:"}, true);
  if (!reply) return reply.error();
  const redisReply* r = reply->ptr.get();
  if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) return Unexpected(r);
  CounterPage page;
  for (std::size_t i = 0; i < r->elements; i += 2) {
    const redisReply* fields = r->element[i + 1];
    if (r->element[i]->type != REDIS_REPLY_STRING || fields->type != REDIS_REPLY_ARRAY ||
        fields->elements % 2 != 0) {
      return Unexpected(r);
    }
    if (static_cast<int>(page.counters.size()) == limit) {
      page.next_cursor = page.counters.back().id;
      break;
    }
    Counter counter{std::string(Text(r->element[i])), {}};
    for (std::size_t f = 0; f < fields->elements; f += 2) {
      counter.fields.emplace_back(
          std::string(Text(fields->element[f])),
          std::strtod(std::string(Text(fields->element[f + 1])).c_str(), nullptr));
    }
    std::sort(counter.fields.begin(), counter.fields.end());
    page.counters.push_back(std::move(counter));
  }
  return page;
}

}  // namespace orchestra::storage
