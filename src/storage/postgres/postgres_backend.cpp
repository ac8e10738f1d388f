#include "storage/postgres/postgres_backend.hpp"

#include <algorithm>
#include <array>
#include <bitset>
#include <stdexcept>

#include <libpq-fe.h>

#include "storage/checkpoint_id.hpp"
#include "storage/validation.hpp"
#include <poll.h>

namespace orchestra::storage {
namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kTextOid = 25;
constexpr unsigned kInt8Oid = 20;
constexpr unsigned kFloat8Oid = 701;

// Created only when missing, so that a database user without CREATE on the schema can run
// Orchestra once an administrator has created the tables (CREATE ... IF NOT EXISTS still needs
// the privilege). The advisory lock serialises instances starting together.
constexpr std::string_view kSchema = R"sql(
DO $$
BEGIN
  IF to_regclass('orchestra_kv') IS NULL OR to_regclass('orchestra_kv_expires_at') IS NULL
     OR to_regclass('orchestra_checkpoints') IS NULL OR to_regclass('orchestra_records') IS NULL
     OR to_regclass('orchestra_record_changes') IS NULL
     OR to_regclass('orchestra_record_log') IS NULL OR to_regclass('orchestra_counters') IS NULL
  THEN
    PERFORM pg_advisory_xact_lock(4242004);
    CREATE TABLE IF NOT EXISTS orchestra_kv (
      tenant TEXT COLLATE "C" NOT NULL,
      key TEXT COLLATE "C" NOT NULL,
      value TEXT NOT NULL,
      expires_at TIMESTAMPTZ,
      PRIMARY KEY (tenant, key)
    );
    CREATE INDEX IF NOT EXISTS orchestra_kv_expires_at ON orchestra_kv (expires_at)
      WHERE expires_at IS NOT NULL;
    CREATE TABLE IF NOT EXISTS orchestra_checkpoints (
      tenant TEXT COLLATE "C" NOT NULL,
      agent_id TEXT COLLATE "C" NOT NULL,
      id TEXT COLLATE "C" NOT NULL,
      state TEXT NOT NULL,
      metadata TEXT,
      PRIMARY KEY (tenant, agent_id, id)
    );
    CREATE TABLE IF NOT EXISTS orchestra_records (
      tenant TEXT COLLATE "C" NOT NULL,
      collection TEXT COLLATE "C" NOT NULL,
      id TEXT COLLATE "C" NOT NULL,
      value TEXT NOT NULL,
      version BIGINT NOT NULL,
      PRIMARY KEY (tenant, collection, id)
    );
    CREATE TABLE IF NOT EXISTS orchestra_record_changes (
      sequence BIGINT PRIMARY KEY,
      tenant TEXT NOT NULL,
      collection TEXT NOT NULL,
      id TEXT NOT NULL,
      deleted BOOLEAN NOT NULL,
      at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
    );
    CREATE TABLE IF NOT EXISTS orchestra_record_log (
      one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
      sequence BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS orchestra_counters (
      tenant TEXT COLLATE "C" NOT NULL,
      collection TEXT COLLATE "C" NOT NULL,
      id TEXT COLLATE "C" NOT NULL,
      field TEXT COLLATE "C" NOT NULL,
      value DOUBLE PRECISION NOT NULL,
      PRIMARY KEY (tenant, collection, id, field)
    );
  END IF;
END
$$;
)sql";

// Parameter types: 't' text (sent in binary: the bytes as they are), 'i' bigint and 'd' double
// precision (sent as text).
struct StatementDef {
  const char* name;
  std::string_view types;
  const char* sql;
};

enum Statement : std::uint8_t {
  kPut,
  kGet,
  kDelete,
  kExists,
  kListAll,
  kListPrefix,
  kBegin,
  kCommit,
  kRollback,
  kCpLock,
  kCpLatestId,
  kCpInsert,
  kCpTrim,
  kCpGet,
  kCpGetLatest,
  kCpList,
  kCpDelete,
  kSweep,
  kPing,
  kRecGet,
  kRecLock,
  kRecInsert,
  kRecUpdate,
  kRecDelete,
  kRecListAll,
  kRecListPrefix,
  kLogTake,
  kLogAppend,
  kChanges,
  kLatest,
  kPrune,
  kCtrAdd,
  kCtrListAll,
  kCtrListPrefix,
  kStatementCount,
};

const std::array<StatementDef, kStatementCount> kStatements = {{
    {"o_put", "ttti",
     "INSERT INTO orchestra_kv (tenant, key, value, expires_at) VALUES ($1, $2, $3, "
     "now() + $4::bigint * interval '1 millisecond') ON CONFLICT (tenant, key) DO UPDATE SET "
     "value = EXCLUDED.value, expires_at = EXCLUDED.expires_at"},
    {"o_get", "tt",
     "SELECT value FROM orchestra_kv WHERE tenant = $1 AND key = $2 "
     "AND (expires_at IS NULL OR expires_at > now())"},
    {"o_delete", "tt",
     "DELETE FROM orchestra_kv WHERE tenant = $1 AND key = $2 "
     "RETURNING (expires_at IS NULL OR expires_at > now())"},
    {"o_exists", "tt",
     "SELECT 1 FROM orchestra_kv WHERE tenant = $1 AND key = $2 "
     "AND (expires_at IS NULL OR expires_at > now())"},
    {"o_list_all", "ttti",
     "SELECT key FROM orchestra_kv WHERE tenant = $1 AND key > $2 AND key ~ $3 "
     "AND (expires_at IS NULL OR expires_at > now()) ORDER BY key LIMIT $4"},
    {"o_list_prefix", "ttttti",
     "SELECT key FROM orchestra_kv WHERE tenant = $1 AND key > $2 AND key ~ $3 AND key >= $4 "
     "AND key < $5 AND (expires_at IS NULL OR expires_at > now()) ORDER BY key LIMIT $6"},
    {"o_begin", "", "BEGIN"},
    {"o_commit", "", "COMMIT"},
    {"o_rollback", "", "ROLLBACK"},
    {"o_cp_lock", "tt", "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))"},
    {"o_cp_latest", "tt",
     "SELECT id FROM orchestra_checkpoints WHERE tenant = $1 AND agent_id = $2 "
     "ORDER BY id DESC LIMIT 1"},
    {"o_cp_insert", "ttttt",
     "INSERT INTO orchestra_checkpoints (tenant, agent_id, id, state, metadata) "
     "VALUES ($1, $2, $3, $4, $5)"},
    {"o_cp_trim", "tti",
     "DELETE FROM orchestra_checkpoints WHERE tenant = $1 AND agent_id = $2 AND id <= "
     "(SELECT id FROM orchestra_checkpoints WHERE tenant = $1 AND agent_id = $2 "
     "ORDER BY id DESC OFFSET $3 LIMIT 1)"},
    {"o_cp_get", "ttt",
     "SELECT id, state, metadata FROM orchestra_checkpoints "
     "WHERE tenant = $1 AND agent_id = $2 AND id = $3"},
    {"o_cp_get_latest", "tt",
     "SELECT id, state, metadata FROM orchestra_checkpoints WHERE tenant = $1 AND agent_id = $2 "
     "ORDER BY id DESC LIMIT 1"},
    {"o_cp_list", "tt",
     "SELECT id, metadata FROM orchestra_checkpoints WHERE tenant = $1 AND agent_id = $2 "
     "ORDER BY id"},
    {"o_cp_delete", "ttt",
     "DELETE FROM orchestra_checkpoints WHERE tenant = $1 AND agent_id = $2 AND id = $3"},
    {"o_sweep", "",
     "DELETE FROM orchestra_kv WHERE ctid = ANY(ARRAY(SELECT ctid FROM orchestra_kv "
     "WHERE expires_at <= now() LIMIT 1000))"},
    {"o_ping", "", "SELECT 1"},
    {"o_rec_get", "ttt",
     "SELECT value, version FROM orchestra_records WHERE tenant = $1 AND collection = $2 "
     "AND id = $3"},
    {"o_rec_lock", "ttt",
     "SELECT version FROM orchestra_records WHERE tenant = $1 AND collection = $2 AND id = $3 "
     "FOR UPDATE"},
    {"o_rec_insert", "tttti",
     "INSERT INTO orchestra_records (tenant, collection, id, value, version) "
     "VALUES ($1, $2, $3, $4, $5)"},
    {"o_rec_update", "tttti",
     "UPDATE orchestra_records SET value = $4, version = $5 WHERE tenant = $1 "
     "AND collection = $2 AND id = $3"},
    {"o_rec_delete", "ttt",
     "DELETE FROM orchestra_records WHERE tenant = $1 AND collection = $2 AND id = $3"},
    {"o_rec_list_all", "ttti",
     "SELECT id, value, version FROM orchestra_records WHERE tenant = $1 AND collection = $2 "
     "AND id > $3 ORDER BY id LIMIT $4"},
    {"o_rec_list_prefix", "ttttti",
     "SELECT id, value, version FROM orchestra_records WHERE tenant = $1 AND collection = $2 "
     "AND id > $3 AND id >= $4 AND id < $5 ORDER BY id LIMIT $6"},
    // The batch's sequences: the last one is returned; the row stays locked until COMMIT.
    {"o_log_take", "i",
     "INSERT INTO orchestra_record_log (one, sequence) VALUES (true, $1) ON CONFLICT (one) "
     "DO UPDATE SET sequence = orchestra_record_log.sequence + EXCLUDED.sequence "
     "RETURNING sequence"},
    {"o_log_append", "ittti",
     "INSERT INTO orchestra_record_changes (sequence, tenant, collection, id, deleted) "
     "VALUES ($1, $2, $3, $4, $5 <> 0)"},
    {"o_changes", "ii",
     "SELECT sequence, tenant, collection, id, deleted FROM orchestra_record_changes "
     "WHERE sequence >= $1 ORDER BY sequence LIMIT $2"},
    {"o_latest", "", "SELECT coalesce(max(sequence), 0) FROM orchestra_record_changes"},
    {"o_prune", "i",
     "DELETE FROM orchestra_record_changes WHERE sequence IN (SELECT sequence FROM "
     "orchestra_record_changes WHERE at < clock_timestamp() - $1::bigint * interval "
     "'1 millisecond' AND sequence < (SELECT max(sequence) FROM orchestra_record_changes) "
     "ORDER BY sequence LIMIT 1000)"},
    {"o_ctr_add", "ttttd",
     "INSERT INTO orchestra_counters (tenant, collection, id, field, value) "
     "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, collection, id, field) "
     "DO UPDATE SET value = orchestra_counters.value + EXCLUDED.value RETURNING value"},
    {"o_ctr_list_all", "ttti",
     "SELECT id, field, value FROM orchestra_counters WHERE tenant = $1 AND collection = $2 "
     "AND id IN (SELECT DISTINCT id FROM orchestra_counters WHERE tenant = $1 "
     "AND collection = $2 AND id > $3 ORDER BY id LIMIT $4) ORDER BY id, field"},
    {"o_ctr_list_prefix", "ttttti",
     "SELECT id, field, value FROM orchestra_counters WHERE tenant = $1 AND collection = $2 "
     "AND id IN (SELECT DISTINCT id FROM orchestra_counters WHERE tenant = $1 "
     "AND collection = $2 AND id > $3 AND id >= $4 AND id < $5 ORDER BY id LIMIT $6) "
     "ORDER BY id, field"},
}};

struct FreeResult {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, FreeResult>;

// Exact: 17 significant digits read back as the same double.
std::string FormatDouble(double d) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", d);
  return text;
}

// One query parameter: text, a number or NULL.
struct Param {
  Param(std::string_view t) : text(t) {}                // NOLINT(google-explicit-constructor)
  Param(const std::string& t) : text(t) {}              // NOLINT(google-explicit-constructor)
  Param(std::int64_t n) : number(std::to_string(n)) {}  // NOLINT(google-explicit-constructor)
  Param(double d) : number(FormatDouble(d)) {}          // NOLINT(google-explicit-constructor)
  Param(std::nullopt_t) : null(true) {}                 // NOLINT(google-explicit-constructor)
  std::string_view text;
  std::string number;
  bool null = false;
};

Error Unavailable(std::string message) {
  return MakeError(ErrorCode::kUnavailable, "postgres: " + std::move(message));
}

std::string Trimmed(const char* message) {
  std::string s = message != nullptr ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

// Waits until the socket is ready for `events` or the deadline passes.
bool WaitSocket(int fd, short events, Deadline deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// Server errors: a shut-down, starting or overloaded server, a lost connection or a statement
// cut by statement_timeout mean the database is not serving; anything else is a bug of ours.
bool IsTransient(std::string_view sqlstate) {
  return sqlstate.substr(0, 2) == "08" || sqlstate.substr(0, 2) == "53" ||
         sqlstate.substr(0, 3) == "57P" || sqlstate == "57014" || sqlstate.empty();
}

std::string Column(const PGresult* r, int row, int column) {
  return {PQgetvalue(r, row, column), static_cast<std::size_t>(PQgetlength(r, row, column))};
}

std::optional<std::string> OptionalColumn(const PGresult* r, int row, int column) {
  if (PQgetisnull(r, row, column)) return std::nullopt;
  return Column(r, row, column);
}

}  // namespace

class PostgresBackend::Connection {
 public:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { PQfinish(conn_); }

  PGconn* conn() const { return conn_; }
  bool broken = false;  // must not go back to the pool
  // The SQLSTATE of the last statement that failed on the server ("" when none).
  const std::string& sqlstate() const { return sqlstate_; }

  // Sends the prepared statement (preparing it first on this connection) and waits for it.
  Result<PgResult> Exec(Statement which, const std::vector<Param>& params, Deadline deadline) {
    const StatementDef& def = kStatements[which];
    if (!prepared_[which]) {
      std::vector<unsigned> types;
      for (char t : def.types)
        types.push_back(t == 'i' ? kInt8Oid : t == 'd' ? kFloat8Oid : kTextOid);
      if (!PQsendPrepare(conn_, def.name, def.sql, static_cast<int>(types.size()), types.data())) {
        return Broken();
      }
      auto prepared = Await(deadline);
      if (!prepared) return prepared.error();
      prepared_[which] = true;
    }
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Param& p = params[i];
      if (p.null) {
        values.push_back(nullptr);
        lengths.push_back(0);
        formats.push_back(0);
      } else if (def.types[i] == 'i' || def.types[i] == 'd') {
        values.push_back(p.number.c_str());
        lengths.push_back(0);
        formats.push_back(0);
      } else {
        // Binary text is the bytes themselves: no NUL terminator needed.
        values.push_back(p.text.data() != nullptr ? p.text.data() : "");
        lengths.push_back(static_cast<int>(p.text.size()));
        formats.push_back(1);
      }
    }
    if (!PQsendQueryPrepared(conn_, def.name, static_cast<int>(params.size()), values.data(),
                             lengths.data(), formats.data(), 0)) {
      return Broken();
    }
    return Await(deadline);
  }

  // Runs a plain multi-statement string (the schema).
  Result<void> ExecScript(std::string_view sql, Deadline deadline) {
    if (!PQsendQuery(conn_, std::string(sql).c_str())) return Broken().error();
    auto r = Await(deadline);
    if (!r) return r.error();
    return {};
  }

 private:
  Result<PgResult> Broken() {
    broken = true;
    return Unavailable(Trimmed(PQerrorMessage(conn_)));
  }

  // Flushes the request and collects its results; the first error wins.
  Result<PgResult> Await(Deadline deadline) {
    const auto timed_out = [this] {
      broken = true;  // a statement is still running there
      return Unavailable("timed out (storage.operation_timeout)");
    };
    for (;;) {
      const int f = PQflush(conn_);
      if (f == 0) break;
      if (f < 0) return Broken();
      if (!WaitSocket(PQsocket(conn_), POLLIN | POLLOUT, deadline)) return timed_out();
      if (!PQconsumeInput(conn_)) return Broken();
    }
    PgResult last;
    PgResult error;
    sqlstate_.clear();
    for (;;) {
      while (PQisBusy(conn_)) {
        if (!WaitSocket(PQsocket(conn_), POLLIN, deadline)) return timed_out();
        if (!PQconsumeInput(conn_)) return Broken();
      }
      PGresult* r = PQgetResult(conn_);
      if (r == nullptr) break;
      const ExecStatusType status = PQresultStatus(r);
      if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
        if (!error)
          error.reset(r);
        else
          PQclear(r);
      } else {
        last.reset(r);
      }
    }
    if (error) {
      const char* state = PQresultErrorField(error.get(), PG_DIAG_SQLSTATE);
      const std::string sqlstate = state != nullptr ? state : "";
      sqlstate_ = sqlstate;
      const std::string message = Trimmed(PQresultErrorMessage(error.get()));
      if (PQstatus(conn_) == CONNECTION_BAD) broken = true;
      if (IsTransient(sqlstate) || broken) {
        broken = true;
        return Unavailable(message);
      }
      return MakeError(ErrorCode::kInternal, "postgres: " + message + " [" + sqlstate + "]");
    }
    if (PQstatus(conn_) == CONNECTION_BAD) return Broken();
    return last;
  }

  PGconn* conn_;
  std::bitset<kStatementCount> prepared_;
  std::string sqlstate_;
};

std::unique_ptr<PostgresBackend> PostgresBackend::Create(const PostgresOptions& options) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.url.c_str(), &error);
  if (parsed == nullptr) {
    std::string why = error != nullptr ? Trimmed(error) : "cannot parse it";
    PQfreemem(error);
    throw std::runtime_error("storage: bad PostgreSQL url: " + why +
                             " (expected postgresql://user[:password]@host[:port]/db)");
  }
  PQconninfoFree(parsed);
  std::unique_ptr<PostgresBackend> backend(new PostgresBackend());
  backend->url_ = options.url;
  PostgresBackend* self = backend.get();
  backend->pool_.emplace(
      "postgres", static_cast<std::size_t>(std::max(1, options.pool_size)),
      ConnectionPool<Connection>::Hooks{
          .open = [self](Deadline deadline) { return self->Open(deadline); },
          // A connection left inside a transaction (a failed ROLLBACK) is not reused either.
          .reusable =
              [](const Connection& c) {
                return !c.broken && PQtransactionStatus(c.conn()) == PQTRANS_IDLE;
              }});
  backend->statement_timeout_ms_ = std::to_string(options.statement_timeout.count());
  return backend;
}

PostgresBackend::~PostgresBackend() = default;

Result<std::unique_ptr<PostgresBackend::Connection>> PostgresBackend::Open(Deadline deadline) {
  const char* keywords[] = {"dbname", "application_name", "client_encoding", nullptr};
  const char* values[] = {url_.c_str(), "orchestra", "UTF8", nullptr};
  PGconn* conn = PQconnectStartParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Unavailable("cannot allocate a connection");
  auto connection = std::make_unique<Connection>(conn);
  auto failed = [&](const std::string& why) -> Result<std::unique_ptr<Connection>> {
    return Unavailable("cannot connect: " + why);
  };
  if (PQstatus(conn) == CONNECTION_BAD) return failed(Trimmed(PQerrorMessage(conn)));
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED) return failed(Trimmed(PQerrorMessage(conn)));
    const short events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (!WaitSocket(PQsocket(conn), events, deadline)) return failed("timed out");
    status = PQconnectPoll(conn);
  }
  PQsetnonblocking(conn, 1);
  // NOTICEs ("relation already exists, skipping") would go to stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  const std::string settings = "SET statement_timeout = " + statement_timeout_ms_;
  if (auto r = connection->ExecScript(settings, deadline); !r) return r.error();
  return connection;
}

Result<void> PostgresBackend::EnsureSchema(Connection& connection, Deadline deadline) {
  if (schema_ready_.load()) return {};
  auto r = connection.ExecScript(kSchema, deadline);
  if (!r) {
    if (PQtransactionStatus(connection.conn()) != PQTRANS_IDLE) connection.broken = true;
    return r.error();
  }
  schema_ready_.store(true);
  return {};
}

template <class Fn>
auto PostgresBackend::WithConnection(Deadline deadline, bool idempotent, Fn&& fn)
    -> decltype(fn(std::declval<Connection&>())) {
  return pool_->Run(deadline, idempotent, [&](Connection& c) -> decltype(fn(c)) {
    auto schema = EnsureSchema(c, deadline);
    if (!schema) return schema.error();
    return fn(c);
  });
}

Result<void> PostgresBackend::Ping(Deadline deadline) {
  return WithConnection(deadline, true, [&](Connection& c) -> Result<void> {
    auto r = c.Exec(kPing, {}, deadline);
    if (!r) return r.error();
    return {};
  });
}

Result<void> PostgresBackend::Store(const Call& call, std::string_view key, std::string_view value,
                                    std::optional<std::chrono::milliseconds> ttl) {
  return WithConnection(call.deadline, true, [&](Connection& c) -> Result<void> {
    std::vector<Param> params{call.tenant, key, value, std::nullopt};
    if (ttl) params[3] = Param(static_cast<std::int64_t>(ttl->count()));
    auto r = c.Exec(kPut, params, call.deadline);
    if (!r) return r.error();
    return {};
  });
}

Result<std::optional<std::string>> PostgresBackend::Retrieve(const Call& call,
                                                             std::string_view key) {
  return WithConnection(call.deadline, true,
                        [&](Connection& c) -> Result<std::optional<std::string>> {
                          auto r = c.Exec(kGet, {call.tenant, key}, call.deadline);
                          if (!r) return r.error();
                          if (PQntuples(r->get()) == 0) return std::optional<std::string>();
                          return std::optional<std::string>(Column(r->get(), 0, 0));
                        });
}

Result<bool> PostgresBackend::Delete(const Call& call, std::string_view key) {
  return WithConnection(call.deadline, true, [&](Connection& c) -> Result<bool> {
    auto r = c.Exec(kDelete, {call.tenant, key}, call.deadline);
    if (!r) return r.error();
    return PQntuples(r->get()) > 0 && Column(r->get(), 0, 0) == "t";
  });
}

Result<bool> PostgresBackend::Exists(const Call& call, std::string_view key) {
  return WithConnection(call.deadline, true, [&](Connection& c) -> Result<bool> {
    auto r = c.Exec(kExists, {call.tenant, key}, call.deadline);
    if (!r) return r.error();
    return PQntuples(r->get()) > 0;
  });
}

Result<KeyPage> PostgresBackend::ListKeys(const Call& call, const Glob& pattern, int limit,
                                          std::string_view cursor) {
  auto after = DecodeKeysetCursor(cursor);
  if (!after) return after.error();
  const std::string regex = pattern.ToPostgresRegex();
  const std::string& prefix = pattern.literal_prefix();
  const std::string upper = PrefixUpperBound(prefix);
  // One row more than the page tells whether the listing goes on.
  const auto fetch = static_cast<std::int64_t>(limit) + 1;
  return WithConnection(call.deadline, true, [&](Connection& c) -> Result<KeyPage> {
    auto r = upper.empty() ? c.Exec(kListAll, {call.tenant, *after, regex, fetch}, call.deadline)
                           : c.Exec(kListPrefix, {call.tenant, *after, regex, prefix, upper, fetch},
                                    call.deadline);
    if (!r) return r.error();
    KeyPage page;
    const int rows = PQntuples(r->get());
    for (int i = 0; i < std::min(rows, limit); ++i)
      page.keys.push_back(Column(r->get(), i, 0));
    if (rows > limit) page.next_cursor = EncodeKeysetCursor(page.keys.back());
    return page;
  });
}

Result<std::string> PostgresBackend::CreateCheckpoint(const Call& call, std::string_view agent_id,
                                                      std::string_view proposed_id,
                                                      std::string_view state,
                                                      std::optional<std::string_view> metadata,
                                                      int keep_last) {
  // Not idempotent once COMMIT was sent; a broken connection before that rolls back by itself.
  return WithConnection(call.deadline, false, [&](Connection& c) -> Result<std::string> {
    auto body = [&]() -> Result<std::string> {
      if (auto r = c.Exec(kBegin, {}, call.deadline); !r) return r.error();
      if (auto r = c.Exec(kCpLock, {call.tenant, agent_id}, call.deadline); !r) return r.error();
      std::string id(proposed_id);
      {
        auto r = c.Exec(kCpLatestId, {call.tenant, agent_id}, call.deadline);
        if (!r) return r.error();
        if (PQntuples(r->get()) > 0) {
          const std::string latest = Column(r->get(), 0, 0);
          if (id <= latest) id = NextCheckpointId(latest);
        }
      }
      std::vector<Param> insert{call.tenant, agent_id, id, state, std::nullopt};
      if (metadata) insert[4] = Param(*metadata);
      if (auto r = c.Exec(kCpInsert, insert, call.deadline); !r) return r.error();
      if (auto r = c.Exec(kCpTrim, {call.tenant, agent_id, static_cast<std::int64_t>(keep_last)},
                          call.deadline);
          !r) {
        return r.error();
      }
      if (auto r = c.Exec(kCommit, {}, call.deadline); !r) return r.error();
      return id;
    };
    auto result = body();
    if (!result && !c.broken && PQtransactionStatus(c.conn()) != PQTRANS_IDLE) {
      if (!c.Exec(kRollback, {}, call.deadline)) c.broken = true;
    }
    return result;
  });
}

Result<std::optional<Checkpoint>> PostgresBackend::RestoreCheckpoint(
    const Call& call, std::string_view agent_id, std::optional<std::string_view> id) {
  return WithConnection(
      call.deadline, true, [&](Connection& c) -> Result<std::optional<Checkpoint>> {
        auto r = id ? c.Exec(kCpGet, {call.tenant, agent_id, *id}, call.deadline)
                    : c.Exec(kCpGetLatest, {call.tenant, agent_id}, call.deadline);
        if (!r) return r.error();
        if (PQntuples(r->get()) == 0) return std::optional<Checkpoint>();
        Checkpoint checkpoint;
        checkpoint.info.id = Column(r->get(), 0, 0);
        checkpoint.info.created_at = CheckpointIdTime(checkpoint.info.id);
        checkpoint.state = Column(r->get(), 0, 1);
        checkpoint.info.metadata = OptionalColumn(r->get(), 0, 2);
        return std::optional<Checkpoint>(std::move(checkpoint));
      });
}

Result<std::vector<CheckpointInfo>> PostgresBackend::ListCheckpoints(const Call& call,
                                                                     std::string_view agent_id) {
  return WithConnection(call.deadline, true,
                        [&](Connection& c) -> Result<std::vector<CheckpointInfo>> {
                          auto r = c.Exec(kCpList, {call.tenant, agent_id}, call.deadline);
                          if (!r) return r.error();
                          std::vector<CheckpointInfo> out;
                          for (int i = 0; i < PQntuples(r->get()); ++i) {
                            CheckpointInfo info;
                            info.id = Column(r->get(), i, 0);
                            info.created_at = CheckpointIdTime(info.id);
                            info.metadata = OptionalColumn(r->get(), i, 1);
                            out.push_back(std::move(info));
                          }
                          return out;
                        });
}

Result<bool> PostgresBackend::DeleteCheckpoint(const Call& call, std::string_view agent_id,
                                               std::string_view id) {
  return WithConnection(call.deadline, true, [&](Connection& c) -> Result<bool> {
    auto r = c.Exec(kCpDelete, {call.tenant, agent_id, id}, call.deadline);
    if (!r) return r.error();
    return std::string_view(PQcmdTuples(r->get())) != "0";
  });
}

Result<std::uint64_t> PostgresBackend::SweepExpired(Deadline deadline) {
  std::uint64_t removed = 0;
  for (;;) {
    auto batch = WithConnection(deadline, true, [&](Connection& c) -> Result<std::uint64_t> {
      auto r = c.Exec(kSweep, {}, deadline);
      if (!r) return r.error();
      return static_cast<std::uint64_t>(std::stoull(PQcmdTuples(r->get())));
    });
    if (!batch) return batch.error();
    removed += *batch;
    if (*batch == 0 || Clock::now() >= deadline) return removed;
  }
}

// --- Records ---------------------------------------------------------------------------------

namespace {

// A batch that met another one (a deadlock, a serialization failure, a record created by both)
// is rolled back and run again: its preconditions then see the other's result.
bool IsRetryable(std::string_view sqlstate) {
  return sqlstate == "40P01" || sqlstate == "40001" || sqlstate == "23505";
}

double ParseDouble(const std::string& text) {
  return std::strtod(text.c_str(), nullptr);
}

// The prefix's upper bound; empty when there is none (list from `after` to the end).
std::string UpperBound(std::string_view prefix) {
  return prefix.empty() ? std::string() : PrefixUpperBound(prefix);
}

}  // namespace

template <class T, class Body>
Result<T> PostgresBackend::Transaction(Connection& c, Deadline deadline, Body&& body) {
  for (int attempt = 0;; ++attempt) {
    auto run = [&]() -> Result<T> {
      if (auto r = c.Exec(kBegin, {}, deadline); !r) return r.error();
      Result<T> result = body();
      if (!result) return result;
      if (auto r = c.Exec(kCommit, {}, deadline); !r) return r.error();
      return result;
    };
    Result<T> result = run();
    if (result) return result;
    const bool retry = IsRetryable(c.sqlstate()) && !c.broken;
    if (!c.broken && PQtransactionStatus(c.conn()) != PQTRANS_IDLE) {
      if (!c.Exec(kRollback, {}, deadline)) c.broken = true;
    }
    if (!retry || c.broken || Clock::now() >= deadline || attempt >= 100) return result;
  }
}

Result<std::vector<std::int64_t>> PostgresBackend::WriteRecords(
    const Call& call, const std::vector<RecordWrite>& writes) {
  // Not idempotent: a lost COMMIT reply could have applied the batch.
  return WithConnection(call.deadline, false, [&](Connection& c) {
    return Transaction<std::vector<std::int64_t>>(
        c, call.deadline, [&]() -> Result<std::vector<std::int64_t>> {
          std::vector<std::optional<std::int64_t>> current;
          current.reserve(writes.size());
          for (const RecordWrite& w : writes) {
            auto r = c.Exec(kRecLock, {call.tenant, w.collection, w.id}, call.deadline);
            if (!r) return r.error();
            current.push_back(PQntuples(r->get()) > 0
                                  ? std::optional<std::int64_t>(std::stoll(Column(r->get(), 0, 0)))
                                  : std::nullopt);
            if (!ExpectHolds(w.expect, current.back())) return RecordConflict(w.collection, w.id);
          }
          std::vector<std::int64_t> out;
          out.reserve(writes.size());
          std::vector<std::size_t> logged;
          for (std::size_t i = 0; i < writes.size(); ++i) {
            const RecordWrite& w = writes[i];
            if (w.op == RecordWrite::Op::kPut) {
              const std::int64_t version = current[i].value_or(0) + 1;
              auto r = c.Exec(current[i] ? kRecUpdate : kRecInsert,
                              {call.tenant, w.collection, w.id, w.value, version}, call.deadline);
              if (!r) return r.error();
              out.push_back(version);
              logged.push_back(i);
            } else {
              out.push_back(current[i] ? 1 : 0);
              if (!current[i]) continue;
              auto r = c.Exec(kRecDelete, {call.tenant, w.collection, w.id}, call.deadline);
              if (!r) return r.error();
              logged.push_back(i);
            }
          }
          if (logged.empty()) return out;
          // Last: the log row stays locked from here to COMMIT.
          auto taken = c.Exec(kLogTake, {static_cast<std::int64_t>(logged.size())}, call.deadline);
          if (!taken) return taken.error();
          if (PQntuples(taken->get()) != 1) {
            return MakeError(ErrorCode::kInternal, "postgres: taking sequences returned no row");
          }
          std::int64_t sequence =
              std::stoll(Column(taken->get(), 0, 0)) - static_cast<std::int64_t>(logged.size());
          for (std::size_t i : logged) {
            const RecordWrite& w = writes[i];
            auto r = c.Exec(kLogAppend,
                            {++sequence, call.tenant, w.collection, w.id,
                             static_cast<std::int64_t>(w.op == RecordWrite::Op::kDelete ? 1 : 0)},
                            call.deadline);
            if (!r) return r.error();
          }
          return out;
        });
  });
}

Result<std::optional<Record>> PostgresBackend::GetRecord(const Call& call,
                                                         std::string_view collection,
                                                         std::string_view id) {
  return WithConnection(call.deadline, true, [&](Connection& c) -> Result<std::optional<Record>> {
    auto r = c.Exec(kRecGet, {call.tenant, collection, id}, call.deadline);
    if (!r) return r.error();
    if (PQntuples(r->get()) == 0) return std::optional<Record>();
    return std::optional<Record>(
        Record{std::string(id), Column(r->get(), 0, 0), std::stoll(Column(r->get(), 0, 1))});
  });
}

Result<RecordPage> PostgresBackend::ListRecords(const Call& call, std::string_view collection,
                                                std::string_view prefix, std::string_view after,
                                                int limit) {
  const std::string upper = UpperBound(prefix);
  const auto fetch = static_cast<std::int64_t>(limit) + 1;
  return WithConnection(call.deadline, true, [&](Connection& c) -> Result<RecordPage> {
    auto r = upper.empty()
                 ? c.Exec(kRecListAll, {call.tenant, collection, after, fetch}, call.deadline)
                 : c.Exec(kRecListPrefix, {call.tenant, collection, after, prefix, upper, fetch},
                          call.deadline);
    if (!r) return r.error();
    RecordPage page;
    const int rows = PQntuples(r->get());
    for (int i = 0; i < std::min(rows, limit); ++i) {
      page.records.push_back(Record{Column(r->get(), i, 0), Column(r->get(), i, 1),
                                    std::stoll(Column(r->get(), i, 2))});
    }
    if (rows > limit) page.next_cursor = page.records.back().id;
    return page;
  });
}

Result<std::vector<Change>> PostgresBackend::ChangesSince(Deadline deadline, std::int64_t sequence,
                                                          int limit) {
  return WithConnection(deadline, true, [&](Connection& c) -> Result<std::vector<Change>> {
    auto r = c.Exec(kChanges, {sequence, static_cast<std::int64_t>(limit) + 1}, deadline);
    if (!r) return r.error();
    const int rows = PQntuples(r->get());
    int row = 0;
    if (sequence > 0) {
      // The reader's own entry must still be there.
      if (rows == 0 || std::stoll(Column(r->get(), 0, 0)) != sequence) {
        return ChangeLogGap(sequence);
      }
      row = 1;
    }
    std::vector<Change> out;
    for (; row < rows && static_cast<int>(out.size()) < limit; ++row) {
      out.push_back(Change{std::stoll(Column(r->get(), row, 0)), Column(r->get(), row, 1),
                           Column(r->get(), row, 2), Column(r->get(), row, 3),
                           Column(r->get(), row, 4) == "t"});
    }
    return out;
  });
}

Result<std::int64_t> PostgresBackend::LatestSequence(Deadline deadline) {
  return WithConnection(deadline, true, [&](Connection& c) -> Result<std::int64_t> {
    auto r = c.Exec(kLatest, {}, deadline);
    if (!r) return r.error();
    if (PQntuples(r->get()) == 0) return std::int64_t{0};
    return std::int64_t{std::stoll(Column(r->get(), 0, 0))};
  });
}

Result<std::uint64_t> PostgresBackend::PruneChanges(Deadline deadline,
                                                    std::chrono::milliseconds retention) {
  std::uint64_t removed = 0;
  for (;;) {
    auto batch = WithConnection(deadline, true, [&](Connection& c) -> Result<std::uint64_t> {
      auto r = c.Exec(kPrune, {static_cast<std::int64_t>(retention.count())}, deadline);
      if (!r) return r.error();
      return static_cast<std::uint64_t>(std::stoull(PQcmdTuples(r->get())));
    });
    if (!batch) return batch.error();
    removed += *batch;
    if (*batch == 0 || Clock::now() >= deadline) return removed;
  }
}

Result<std::vector<double>> PostgresBackend::AddCounter(
    const Call& call, std::string_view collection, std::string_view id,
    const std::vector<std::pair<std::string, double>>& deltas) {
  // Fields in name order: two additions to one counter lock its rows in the same order.
  std::vector<std::size_t> order(deltas.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return deltas[a].first < deltas[b].first; });
  return WithConnection(call.deadline, false, [&](Connection& c) {
    return Transaction<std::vector<double>>(c, call.deadline, [&]() -> Result<std::vector<double>> {
      std::vector<double> out(deltas.size());
      for (std::size_t i : order) {
        auto r = c.Exec(kCtrAdd, {call.tenant, collection, id, deltas[i].first, deltas[i].second},
                        call.deadline);
        if (!r) return r.error();
        if (PQntuples(r->get()) != 1) {
          return MakeError(ErrorCode::kInternal, "postgres: an upsert returned no row");
        }
        out[i] = ParseDouble(Column(r->get(), 0, 0));
      }
      return out;
    });
  });
}

Result<CounterPage> PostgresBackend::ListCounters(const Call& call, std::string_view collection,
                                                  std::string_view prefix, std::string_view after,
                                                  int limit) {
  const std::string upper = UpperBound(prefix);
  const auto fetch = static_cast<std::int64_t>(limit) + 1;
  return WithConnection(call.deadline, true, [&](Connection& c) -> Result<CounterPage> {
    auto r = upper.empty()
                 ? c.Exec(kCtrListAll, {call.tenant, collection, after, fetch}, call.deadline)
                 : c.Exec(kCtrListPrefix, {call.tenant, collection, after, prefix, upper, fetch},
                          call.deadline);
    if (!r) return r.error();
    CounterPage page;
    for (int row = 0; row < PQntuples(r->get()); ++row) {
      std::string counter_id = Column(r->get(), row, 0);
      if (page.counters.empty() || page.counters.back().id != counter_id) {
        if (static_cast<int>(page.counters.size()) == limit) {
          page.next_cursor = page.counters.back().id;
          break;
        }
        page.counters.push_back(Counter{std::move(counter_id), {}});
      }
      page.counters.back().fields.emplace_back(Column(r->get(), row, 1),
                                               ParseDouble(Column(r->get(), row, 2)));
    }
    return page;
  });
}

}  // namespace orchestra::storage
