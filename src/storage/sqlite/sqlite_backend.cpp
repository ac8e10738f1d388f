#include "storage/sqlite/sqlite_backend.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include <sqlite3.h>

#include "storage/checkpoint_id.hpp"
#include "storage/validation.hpp"

namespace orchestra::storage {
namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS kv (
  tenant TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER,  -- Unix milliseconds; NULL = never
  PRIMARY KEY (tenant, key)
);
CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS checkpoints (
  tenant TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  id TEXT NOT NULL,
  state TEXT NOT NULL,
  metadata TEXT,
  PRIMARY KEY (tenant, agent_id, id)
);
CREATE TABLE IF NOT EXISTS records (
  tenant TEXT NOT NULL,
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  value TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (tenant, collection, id)
) WITHOUT ROWID;
-- AUTOINCREMENT: a sequence is never handed out twice, even after the newest row went.
CREATE TABLE IF NOT EXISTS record_changes (
  sequence INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  at INTEGER NOT NULL  -- Unix milliseconds
);
CREATE TABLE IF NOT EXISTS counters (
  tenant TEXT NOT NULL,
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  field TEXT NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (tenant, collection, id, field)
) WITHOUT ROWID;
)sql";

enum Statement : std::uint8_t {
  kPut,
  kGet,
  kDelete,
  kExists,
  kList,
  kBegin,
  kCommit,
  kRollback,
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
  kRecVersion,
  kRecUpsert,
  kRecDelete,
  kRecLog,
  kRecList,
  kChanges,
  kLatest,
  kPrune,
  kCtrAdd,
  kCtrList,
  kStatementCount,
};

constexpr std::array<std::string_view, kStatementCount> kSql = {
    // kPut
    "INSERT INTO kv (tenant, key, value, expires_at) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, "
    "expires_at = excluded.expires_at",
    // kGet
    "SELECT value FROM kv WHERE tenant = ?1 AND key = ?2 "
    "AND (expires_at IS NULL OR expires_at > ?3)",
    // kDelete: an expired row goes too, but only a live one counts as deleted
    "DELETE FROM kv WHERE tenant = ?1 AND key = ?2 RETURNING expires_at",
    // kExists
    "SELECT 1 FROM kv WHERE tenant = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
    // kList
    "SELECT key FROM kv WHERE tenant = ?1 AND key > ?2 AND key >= ?3 "
    "AND (expires_at IS NULL OR expires_at > ?4) ORDER BY key",
    // kBegin, kCommit, kRollback
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    // kCpLatestId
    "SELECT id FROM checkpoints WHERE tenant = ?1 AND agent_id = ?2 ORDER BY id DESC LIMIT 1",
    // kCpInsert
    "INSERT INTO checkpoints (tenant, agent_id, id, state, metadata) VALUES (?1, ?2, ?3, ?4, ?5)",
    // kCpTrim: everything at or below the (keep_last + 1)-th newest
    "DELETE FROM checkpoints WHERE tenant = ?1 AND agent_id = ?2 AND id <= "
    "(SELECT id FROM checkpoints WHERE tenant = ?1 AND agent_id = ?2 "
    "ORDER BY id DESC LIMIT 1 OFFSET ?3)",
    // kCpGet
    "SELECT id, state, metadata FROM checkpoints WHERE tenant = ?1 AND agent_id = ?2 AND id = ?3",
    // kCpGetLatest
    "SELECT id, state, metadata FROM checkpoints WHERE tenant = ?1 AND agent_id = ?2 "
    "ORDER BY id DESC LIMIT 1",
    // kCpList
    "SELECT id, metadata FROM checkpoints WHERE tenant = ?1 AND agent_id = ?2 ORDER BY id",
    // kCpDelete
    "DELETE FROM checkpoints WHERE tenant = ?1 AND agent_id = ?2 AND id = ?3",
    // kSweep: in batches, so that the writer is never held long
    "DELETE FROM kv WHERE rowid IN "
    "(SELECT rowid FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT 1000)",
    // kPing
    "SELECT count(*) FROM sqlite_schema",
    // kRecGet
    "SELECT value, version FROM records WHERE tenant = ?1 AND collection = ?2 AND id = ?3",
    // kRecVersion
    "SELECT version FROM records WHERE tenant = ?1 AND collection = ?2 AND id = ?3",
    // kRecUpsert
    "INSERT INTO records (tenant, collection, id, value, version) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (tenant, collection, id) DO UPDATE SET value = excluded.value, "
    "version = excluded.version",
    // kRecDelete
    "DELETE FROM records WHERE tenant = ?1 AND collection = ?2 AND id = ?3",
    // kRecLog
    "INSERT INTO record_changes (tenant, collection, id, deleted, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    // kRecList: after the cursor, within the prefix range (?5 NULL: no upper bound)
    "SELECT id, value, version FROM records WHERE tenant = ?1 AND collection = ?2 AND id > ?3 "
    "AND id >= ?4 AND (?5 IS NULL OR id < ?5) ORDER BY id LIMIT ?6",
    // kChanges: from the reader's own entry on, to tell whether it is still there
    "SELECT sequence, tenant, collection, id, deleted FROM record_changes WHERE sequence >= ?1 "
    "ORDER BY sequence LIMIT ?2",
    // kLatest
    "SELECT coalesce(max(sequence), 0) FROM record_changes",
    // kPrune: in batches; never the newest entry
    "DELETE FROM record_changes WHERE sequence IN (SELECT sequence FROM record_changes "
    "WHERE at < ?1 AND sequence < (SELECT max(sequence) FROM record_changes) "
    "ORDER BY sequence LIMIT 1000)",
    // kCtrAdd
    "INSERT INTO counters (tenant, collection, id, field, value) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (tenant, collection, id, field) DO UPDATE SET value = value + excluded.value "
    "RETURNING value",
    // kCtrList: the fields of the first ?6 counters after the cursor within the prefix range
    "SELECT id, field, value FROM counters WHERE tenant = ?1 AND collection = ?2 AND id IN "
    "(SELECT DISTINCT id FROM counters WHERE tenant = ?1 AND collection = ?2 AND id > ?3 "
    "AND id >= ?4 AND (?5 IS NULL OR id < ?5) ORDER BY id LIMIT ?6) ORDER BY id, field",
};

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsUnavailable(int code) {
  switch (code & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
      return true;
    default:
      return false;
  }
}

Error TimedOut(std::string_view what) {
  return MakeError(ErrorCode::kUnavailable,
                   "sqlite: timed out waiting for " + std::string(what) + " connection");
}

std::string ColumnText(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  return text == nullptr ? std::string() : std::string(text, sqlite3_column_bytes(stmt, column));
}

std::optional<std::string> ColumnOptionalText(sqlite3_stmt* stmt, int column) {
  if (sqlite3_column_type(stmt, column) == SQLITE_NULL) return std::nullopt;
  return ColumnText(stmt, column);
}

}  // namespace

// One sqlite3 handle and its prepared statements; used by one thread at a time.
class SqliteBackend::Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    for (sqlite3_stmt* stmt : statements_)
      sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  // Throws std::runtime_error (start-up only).
  void Open(const std::string& path, int flags, std::chrono::milliseconds busy_timeout) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      throw std::runtime_error("storage: cannot open SQLite database '" + path +
                               "': " + (db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
  }

  void ExecOrThrow(std::string_view sql, const std::string& path) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
      std::string reason = message != nullptr ? message : sqlite3_errstr(rc);
      sqlite3_free(message);
      throw std::runtime_error("storage: cannot initialise SQLite database '" + path +
                               "': " + reason);
    }
  }

  // The prepared statement, reset and with no bindings.
  Result<sqlite3_stmt*> Get(Statement which) {
    sqlite3_stmt*& stmt = statements_[which];
    if (stmt == nullptr) {
      const std::string_view sql = kSql[which];
      const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                        SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return Fail(rc);
    }
    return stmt;
  }

  Error Fail(int rc) const {
    const std::string message = std::string("sqlite: ") + sqlite3_errmsg(db_);
    return MakeError(IsUnavailable(rc) ? ErrorCode::kUnavailable : ErrorCode::kInternal, message);
  }

  sqlite3* db() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::array<sqlite3_stmt*, kStatementCount> statements_{};
};

namespace {

// Binds and steps one prepared statement; resets it when done so it can be reused.
class Query {
 public:
  Query(SqliteBackend::Connection& connection, sqlite3_stmt* stmt)
      : connection_(connection), stmt_(stmt) {}
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Query& Text(int index, std::string_view text) {
    // SQLITE_STATIC: the text outlives the statement's use (reset in the destructor).
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
    return *this;
  }
  Query& Int(int index, std::int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  Query& Real(int index, double value) {
    sqlite3_bind_double(stmt_, index, value);
    return *this;
  }
  Query& Null(int index) {
    sqlite3_bind_null(stmt_, index);
    return *this;
  }

  // true: a row is available; false: done.
  Result<bool> Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return connection_.Fail(rc);
  }
  Result<void> Run() {
    for (;;) {
      auto row = Step();
      if (!row) return row.error();
      if (!*row) return {};
    }
  }

  sqlite3_stmt* stmt() const { return stmt_; }

 private:
  SqliteBackend::Connection& connection_;
  sqlite3_stmt* stmt_;
};

// Starts a query, or yields the error that prevented preparing it.
#define ORCHESTRA_SQLITE_QUERY(name, connection, statement) \
  auto name##_stmt = (connection).Get(statement);           \
  if (!name##_stmt) return name##_stmt.error();             \
  Query name((connection), *name##_stmt)

}  // namespace

std::unique_ptr<SqliteBackend> SqliteBackend::Open(const SqliteOptions& options) {
  const std::filesystem::path path(options.path);
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      throw std::runtime_error("storage: cannot create directory '" + path.parent_path().string() +
                               "' for storage.path: " + ec.message());
    }
  }
  std::unique_ptr<SqliteBackend> backend(new SqliteBackend());
  backend->writer_ = std::make_unique<Connection>();
  Connection& writer = *backend->writer_;
  writer.Open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, options.busy_timeout);
  writer.ExecOrThrow("PRAGMA journal_mode=WAL", options.path);
  writer.ExecOrThrow(options.full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                     options.path);
  writer.ExecOrThrow(kSchema, options.path);
  const int readers = std::max(1, options.readers);
  for (int i = 0; i < readers; ++i) {
    auto reader = std::make_unique<Connection>();
    reader->Open(options.path, SQLITE_OPEN_READWRITE, options.busy_timeout);
    reader->ExecOrThrow("PRAGMA query_only=1", options.path);
    backend->idle_readers_.push_back(reader.get());
    backend->readers_.push_back(std::move(reader));
  }
  return backend;
}

SqliteBackend::~SqliteBackend() = default;

template <class Fn>
auto SqliteBackend::WithWriter(Deadline deadline, Fn&& fn)
    -> decltype(fn(std::declval<Connection&>())) {
  std::unique_lock lock(writer_mutex_, std::defer_lock);
  if (!lock.try_lock_until(deadline)) return TimedOut("the writer");
  return fn(*writer_);
}

template <class Fn>
auto SqliteBackend::WithReader(Deadline deadline, Fn&& fn)
    -> decltype(fn(std::declval<Connection&>())) {
  Connection* connection = nullptr;
  {
    std::unique_lock lock(readers_mutex_);
    if (!readers_cv_.wait_until(lock, deadline, [this] { return !idle_readers_.empty(); })) {
      return TimedOut("a reader");
    }
    connection = idle_readers_.back();
    idle_readers_.pop_back();
  }
  auto result = fn(*connection);
  {
    std::lock_guard lock(readers_mutex_);
    idle_readers_.push_back(connection);
  }
  readers_cv_.notify_one();
  return result;
}

Result<void> SqliteBackend::Ping(Deadline deadline) {
  return WithReader(deadline, [](Connection& c) -> Result<void> {
    ORCHESTRA_SQLITE_QUERY(q, c, kPing);
    return q.Run();
  });
}

Result<void> SqliteBackend::Store(const Call& call, std::string_view key, std::string_view value,
                                  std::optional<std::chrono::milliseconds> ttl) {
  return WithWriter(call.deadline, [&](Connection& c) -> Result<void> {
    ORCHESTRA_SQLITE_QUERY(q, c, kPut);
    q.Text(1, call.tenant).Text(2, key).Text(3, value);
    if (ttl) {
      q.Int(4, NowMs() + ttl->count());
    } else {
      q.Null(4);
    }
    return q.Run();
  });
}

Result<std::optional<std::string>> SqliteBackend::Retrieve(const Call& call, std::string_view key) {
  return WithReader(call.deadline, [&](Connection& c) -> Result<std::optional<std::string>> {
    ORCHESTRA_SQLITE_QUERY(q, c, kGet);
    q.Text(1, call.tenant).Text(2, key).Int(3, NowMs());
    auto row = q.Step();
    if (!row) return row.error();
    if (!*row) return std::optional<std::string>();
    return std::optional<std::string>(ColumnText(q.stmt(), 0));
  });
}

Result<bool> SqliteBackend::Delete(const Call& call, std::string_view key) {
  return WithWriter(call.deadline, [&](Connection& c) -> Result<bool> {
    ORCHESTRA_SQLITE_QUERY(q, c, kDelete);
    q.Text(1, call.tenant).Text(2, key);
    auto row = q.Step();
    if (!row) return row.error();
    bool live = false;
    if (*row) {
      live = sqlite3_column_type(q.stmt(), 0) == SQLITE_NULL ||
             sqlite3_column_int64(q.stmt(), 0) > NowMs();
      if (auto done = q.Run(); !done) return done.error();
    }
    return live;
  });
}

Result<bool> SqliteBackend::Exists(const Call& call, std::string_view key) {
  return WithReader(call.deadline, [&](Connection& c) -> Result<bool> {
    ORCHESTRA_SQLITE_QUERY(q, c, kExists);
    q.Text(1, call.tenant).Text(2, key).Int(3, NowMs());
    return q.Step();
  });
}

Result<KeyPage> SqliteBackend::ListKeys(const Call& call, const Glob& pattern, int limit,
                                        std::string_view cursor) {
  auto after = DecodeKeysetCursor(cursor);
  if (!after) return after.error();
  return WithReader(call.deadline, [&](Connection& c) -> Result<KeyPage> {
    ORCHESTRA_SQLITE_QUERY(q, c, kList);
    const std::string& prefix = pattern.literal_prefix();
    q.Text(1, call.tenant).Text(2, *after).Text(3, prefix).Int(4, NowMs());
    KeyPage page;
    std::size_t scanned = 0;
    for (;;) {
      auto row = q.Step();
      if (!row) return row.error();
      if (!*row) return page;  // the end: no cursor
      std::string key = ColumnText(q.stmt(), 0);
      if (key.compare(0, prefix.size(), prefix) != 0) return page;  // past the prefix range
      if (pattern.Matches(key)) {
        if (static_cast<int>(page.keys.size()) == limit) {
          // One more match exists: the page is full and the listing goes on after its last key.
          page.next_cursor = EncodeKeysetCursor(page.keys.back());
          return page;
        }
        page.keys.push_back(std::move(key));
      } else if (++scanned % 4096 == 0 && std::chrono::steady_clock::now() >= call.deadline) {
        // A sparse pattern over many keys: hand back what we have and continue later.
        page.next_cursor = EncodeKeysetCursor(key);
        return page;
      }
    }
  });
}

Result<std::string> SqliteBackend::CreateCheckpoint(const Call& call, std::string_view agent_id,
                                                    std::string_view proposed_id,
                                                    std::string_view state,
                                                    std::optional<std::string_view> metadata,
                                                    int keep_last) {
  return WithWriter(call.deadline, [&](Connection& c) -> Result<std::string> {
    {
      ORCHESTRA_SQLITE_QUERY(begin, c, kBegin);
      if (auto r = begin.Run(); !r) return r.error();
    }
    auto body = [&]() -> Result<std::string> {
      std::string id(proposed_id);
      {
        ORCHESTRA_SQLITE_QUERY(latest, c, kCpLatestId);
        latest.Text(1, call.tenant).Text(2, agent_id);
        auto row = latest.Step();
        if (!row) return row.error();
        if (*row) {
          const std::string latest_id = ColumnText(latest.stmt(), 0);
          if (id <= latest_id) id = NextCheckpointId(latest_id);
        }
      }
      {
        ORCHESTRA_SQLITE_QUERY(insert, c, kCpInsert);
        insert.Text(1, call.tenant).Text(2, agent_id).Text(3, id).Text(4, state);
        if (metadata) {
          insert.Text(5, *metadata);
        } else {
          insert.Null(5);
        }
        if (auto r = insert.Run(); !r) return r.error();
      }
      {
        ORCHESTRA_SQLITE_QUERY(trim, c, kCpTrim);
        trim.Text(1, call.tenant).Text(2, agent_id).Int(3, keep_last);
        if (auto r = trim.Run(); !r) return r.error();
      }
      ORCHESTRA_SQLITE_QUERY(commit, c, kCommit);
      if (auto r = commit.Run(); !r) return r.error();
      return id;
    };
    auto result = body();
    if (!result && !sqlite3_get_autocommit(c.db())) {
      ORCHESTRA_SQLITE_QUERY(rollback, c, kRollback);
      (void)rollback.Run();
    }
    return result;
  });
}

Result<std::optional<Checkpoint>> SqliteBackend::RestoreCheckpoint(
    const Call& call, std::string_view agent_id, std::optional<std::string_view> id) {
  return WithReader(call.deadline, [&](Connection& c) -> Result<std::optional<Checkpoint>> {
    ORCHESTRA_SQLITE_QUERY(q, c, id ? kCpGet : kCpGetLatest);
    q.Text(1, call.tenant).Text(2, agent_id);
    if (id) q.Text(3, *id);
    auto row = q.Step();
    if (!row) return row.error();
    if (!*row) return std::optional<Checkpoint>();
    Checkpoint checkpoint;
    checkpoint.info.id = ColumnText(q.stmt(), 0);
    checkpoint.info.created_at = CheckpointIdTime(checkpoint.info.id);
    checkpoint.state = ColumnText(q.stmt(), 1);
    checkpoint.info.metadata = ColumnOptionalText(q.stmt(), 2);
    return std::optional<Checkpoint>(std::move(checkpoint));
  });
}

Result<std::vector<CheckpointInfo>> SqliteBackend::ListCheckpoints(const Call& call,
                                                                   std::string_view agent_id) {
  return WithReader(call.deadline, [&](Connection& c) -> Result<std::vector<CheckpointInfo>> {
    ORCHESTRA_SQLITE_QUERY(q, c, kCpList);
    q.Text(1, call.tenant).Text(2, agent_id);
    std::vector<CheckpointInfo> out;
    for (;;) {
      auto row = q.Step();
      if (!row) return row.error();
      if (!*row) return out;
      CheckpointInfo info;
      info.id = ColumnText(q.stmt(), 0);
      info.created_at = CheckpointIdTime(info.id);
      info.metadata = ColumnOptionalText(q.stmt(), 1);
      out.push_back(std::move(info));
    }
  });
}

Result<bool> SqliteBackend::DeleteCheckpoint(const Call& call, std::string_view agent_id,
                                             std::string_view id) {
  return WithWriter(call.deadline, [&](Connection& c) -> Result<bool> {
    ORCHESTRA_SQLITE_QUERY(q, c, kCpDelete);
    q.Text(1, call.tenant).Text(2, agent_id).Text(3, id);
    if (auto r = q.Run(); !r) return r.error();
    return sqlite3_changes(c.db()) > 0;
  });
}

Result<std::uint64_t> SqliteBackend::SweepExpired(Deadline deadline) {
  std::uint64_t removed = 0;
  // One batch per writer turn, so that requests interleave with a long sweep.
  for (;;) {
    auto batch = WithWriter(deadline, [&](Connection& c) -> Result<int> {
      ORCHESTRA_SQLITE_QUERY(q, c, kSweep);
      q.Int(1, NowMs());
      if (auto r = q.Run(); !r) return r.error();
      return sqlite3_changes(c.db());
    });
    if (!batch) return batch.error();
    removed += static_cast<std::uint64_t>(*batch);
    if (*batch == 0 || std::chrono::steady_clock::now() >= deadline) return removed;
  }
}

// --- Records ---------------------------------------------------------------------------------

namespace {

// BEGIN IMMEDIATE; body(); COMMIT, or ROLLBACK when the body or the commit fails.
template <class T, class Body>
Result<T> InTransaction(SqliteBackend::Connection& c, Body&& body) {
  {
    ORCHESTRA_SQLITE_QUERY(begin, c, kBegin);
    if (auto r = begin.Run(); !r) return r.error();
  }
  auto run = [&]() -> Result<T> {
    Result<T> result = body();
    if (!result) return result;
    ORCHESTRA_SQLITE_QUERY(commit, c, kCommit);
    if (auto r = commit.Run(); !r) return r.error();
    return result;
  };
  Result<T> result = run();
  if (!result && !sqlite3_get_autocommit(c.db())) {
    ORCHESTRA_SQLITE_QUERY(rollback, c, kRollback);
    (void)rollback.Run();
  }
  return result;
}

// The prefix's upper bound, or NULL (no bound).
void BindUpper(Query& q, int index, const std::string& upper) {
  if (upper.empty()) {
    q.Null(index);
  } else {
    q.Text(index, upper);
  }
}

}  // namespace

Result<std::vector<std::int64_t>> SqliteBackend::WriteRecords(
    const Call& call, const std::vector<RecordWrite>& writes) {
  return WithWriter(call.deadline, [&](Connection& c) -> Result<std::vector<std::int64_t>> {
    return InTransaction<std::vector<std::int64_t>>(c, [&]() -> Result<std::vector<std::int64_t>> {
      // Every precondition first, against the state before the batch.
      std::vector<std::optional<std::int64_t>> current;
      current.reserve(writes.size());
      for (const RecordWrite& w : writes) {
        ORCHESTRA_SQLITE_QUERY(q, c, kRecVersion);
        q.Text(1, call.tenant).Text(2, w.collection).Text(3, w.id);
        auto row = q.Step();
        if (!row) return row.error();
        current.push_back(*row ? std::optional<std::int64_t>(sqlite3_column_int64(q.stmt(), 0))
                               : std::nullopt);
        if (!ExpectHolds(w.expect, current.back())) return RecordConflict(w.collection, w.id);
      }
      const std::int64_t now = NowMs();
      std::vector<std::int64_t> out;
      out.reserve(writes.size());
      for (std::size_t i = 0; i < writes.size(); ++i) {
        const RecordWrite& w = writes[i];
        const bool put = w.op == RecordWrite::Op::kPut;
        if (put) {
          const std::int64_t version = current[i].value_or(0) + 1;
          ORCHESTRA_SQLITE_QUERY(q, c, kRecUpsert);
          q.Text(1, call.tenant).Text(2, w.collection).Text(3, w.id).Text(4, w.value);
          q.Int(5, version);
          if (auto r = q.Run(); !r) return r.error();
          out.push_back(version);
        } else {
          out.push_back(current[i] ? 1 : 0);
          if (!current[i]) continue;  // nothing to delete, nothing to log
          ORCHESTRA_SQLITE_QUERY(q, c, kRecDelete);
          q.Text(1, call.tenant).Text(2, w.collection).Text(3, w.id);
          if (auto r = q.Run(); !r) return r.error();
        }
        ORCHESTRA_SQLITE_QUERY(log, c, kRecLog);
        log.Text(1, call.tenant).Text(2, w.collection).Text(3, w.id).Int(4, put ? 0 : 1);
        log.Int(5, now);
        if (auto r = log.Run(); !r) return r.error();
      }
      return out;
    });
  });
}

Result<std::optional<Record>> SqliteBackend::GetRecord(const Call& call,
                                                       std::string_view collection,
                                                       std::string_view id) {
  return WithReader(call.deadline, [&](Connection& c) -> Result<std::optional<Record>> {
    ORCHESTRA_SQLITE_QUERY(q, c, kRecGet);
    q.Text(1, call.tenant).Text(2, collection).Text(3, id);
    auto row = q.Step();
    if (!row) return row.error();
    if (!*row) return std::optional<Record>();
    return std::optional<Record>(
        Record{std::string(id), ColumnText(q.stmt(), 0), sqlite3_column_int64(q.stmt(), 1)});
  });
}

Result<RecordPage> SqliteBackend::ListRecords(const Call& call, std::string_view collection,
                                              std::string_view prefix, std::string_view after,
                                              int limit) {
  const std::string upper = PrefixUpperBound(prefix);
  return WithReader(call.deadline, [&](Connection& c) -> Result<RecordPage> {
    ORCHESTRA_SQLITE_QUERY(q, c, kRecList);
    q.Text(1, call.tenant).Text(2, collection).Text(3, after).Text(4, prefix);
    BindUpper(q, 5, upper);
    q.Int(6, static_cast<std::int64_t>(limit) + 1);  // one more tells whether the listing goes on
    RecordPage page;
    for (;;) {
      auto row = q.Step();
      if (!row) return row.error();
      if (!*row) return page;
      if (static_cast<int>(page.records.size()) == limit) {
        page.next_cursor = page.records.back().id;
        return page;
      }
      page.records.push_back(Record{ColumnText(q.stmt(), 0), ColumnText(q.stmt(), 1),
                                    sqlite3_column_int64(q.stmt(), 2)});
    }
  });
}

Result<std::vector<Change>> SqliteBackend::ChangesSince(Deadline deadline, std::int64_t sequence,
                                                        int limit) {
  return WithReader(deadline, [&](Connection& c) -> Result<std::vector<Change>> {
    ORCHESTRA_SQLITE_QUERY(q, c, kChanges);
    q.Int(1, sequence).Int(2, static_cast<std::int64_t>(limit) + 1);
    std::vector<Change> out;
    bool first = true;
    for (;;) {
      auto row = q.Step();
      if (!row) return row.error();
      if (!*row) break;
      const std::int64_t seq = sqlite3_column_int64(q.stmt(), 0);
      if (first && sequence > 0) {
        first = false;
        if (seq != sequence) return ChangeLogGap(sequence);
        continue;  // the reader's own entry
      }
      first = false;
      if (static_cast<int>(out.size()) == limit) break;
      out.push_back(Change{seq, ColumnText(q.stmt(), 1), ColumnText(q.stmt(), 2),
                           ColumnText(q.stmt(), 3), sqlite3_column_int(q.stmt(), 4) != 0});
    }
    if (first && sequence > 0) return ChangeLogGap(sequence);  // not even its own entry
    return out;
  });
}

Result<std::int64_t> SqliteBackend::LatestSequence(Deadline deadline) {
  return WithReader(deadline, [&](Connection& c) -> Result<std::int64_t> {
    ORCHESTRA_SQLITE_QUERY(q, c, kLatest);
    auto row = q.Step();
    if (!row) return row.error();
    return *row ? sqlite3_column_int64(q.stmt(), 0) : 0;
  });
}

Result<std::uint64_t> SqliteBackend::PruneChanges(Deadline deadline,
                                                  std::chrono::milliseconds retention) {
  const std::int64_t cutoff = NowMs() - retention.count();
  std::uint64_t removed = 0;
  for (;;) {
    auto batch = WithWriter(deadline, [&](Connection& c) -> Result<int> {
      ORCHESTRA_SQLITE_QUERY(q, c, kPrune);
      q.Int(1, cutoff);
      if (auto r = q.Run(); !r) return r.error();
      return sqlite3_changes(c.db());
    });
    if (!batch) return batch.error();
    removed += static_cast<std::uint64_t>(*batch);
    if (*batch == 0 || std::chrono::steady_clock::now() >= deadline) return removed;
  }
}

Result<std::vector<double>> SqliteBackend::AddCounter(
    const Call& call, std::string_view collection, std::string_view id,
    const std::vector<std::pair<std::string, double>>& deltas) {
  return WithWriter(call.deadline, [&](Connection& c) -> Result<std::vector<double>> {
    return InTransaction<std::vector<double>>(c, [&]() -> Result<std::vector<double>> {
      std::vector<double> out;
      out.reserve(deltas.size());
      for (const auto& [field, delta] : deltas) {
        ORCHESTRA_SQLITE_QUERY(q, c, kCtrAdd);
        q.Text(1, call.tenant).Text(2, collection).Text(3, id).Text(4, field).Real(5, delta);
        auto row = q.Step();
        if (!row) return row.error();
        if (!*row) return MakeError(ErrorCode::kInternal, "sqlite: an upsert returned no row");
        out.push_back(sqlite3_column_double(q.stmt(), 0));
        if (auto r = q.Run(); !r) return r.error();
      }
      return out;
    });
  });
}

Result<CounterPage> SqliteBackend::ListCounters(const Call& call, std::string_view collection,
                                                std::string_view prefix, std::string_view after,
                                                int limit) {
  const std::string upper = PrefixUpperBound(prefix);
  return WithReader(call.deadline, [&](Connection& c) -> Result<CounterPage> {
    ORCHESTRA_SQLITE_QUERY(q, c, kCtrList);
    q.Text(1, call.tenant).Text(2, collection).Text(3, after).Text(4, prefix);
    BindUpper(q, 5, upper);
    q.Int(6, static_cast<std::int64_t>(limit) + 1);
    CounterPage page;
    for (;;) {
      auto row = q.Step();
      if (!row) return row.error();
      if (!*row) return page;
      std::string counter_id = ColumnText(q.stmt(), 0);
      if (page.counters.empty() || page.counters.back().id != counter_id) {
        if (static_cast<int>(page.counters.size()) == limit) {
          page.next_cursor = page.counters.back().id;
          return page;
        }
        page.counters.push_back(Counter{std::move(counter_id), {}});
      }
      page.counters.back().fields.emplace_back(ColumnText(q.stmt(), 1),
                                               sqlite3_column_double(q.stmt(), 2));
    }
  });
}

}  // namespace orchestra::storage
