#include "limits/postgres_fleet_store.hpp"

#include <charconv>
#include <cstdio>
#include <stdexcept>

#include "storage/postgres/libpq_loader.hpp"

namespace orchestra::limits {
namespace {

namespace asio = boost::asio;

// @P@ stands for the prefix. The functions mirror RateLimiter::Window (rate_limiter.cpp) and the
// Redis scripts (redis_fleet_store.cpp) step by step; slots are 1-based array elements
// (slot % 241 + 1). Slot numbers exceed 2^31, so loops over them are WHILE loops on bigints (a
// plpgsql FOR loop counts in integers).
constexpr std::string_view kSchema = R"sql(
DO $schema$
BEGIN
  IF to_regclass('@P@windows_v1') IS NULL OR to_regclass('@P@leases_v1') IS NULL
     OR to_regclass('@P@budgets_v1') IS NULL OR to_regproc('@P@admit_v1') IS NULL
     OR to_regproc('@P@settle_v1') IS NULL OR to_regproc('@P@prune_v1') IS NULL THEN
    PERFORM pg_advisory_xact_lock(4242005);
    CREATE UNLOGGED TABLE IF NOT EXISTS @P@windows_v1 (
      principal TEXT COLLATE "C" NOT NULL,
      model TEXT COLLATE "C" NOT NULL,
      head BIGINT NOT NULL,
      rs BIGINT NOT NULL,
      ts BIGINT NOT NULL,
      r BIGINT[] NOT NULL,
      t BIGINT[] NOT NULL,
      expires_ms BIGINT NOT NULL,
      PRIMARY KEY (principal, model)
    );
    -- 2 x 241 bigints stay in the row, uncompressed (4 KB), one row a page: the other half of
    -- the page takes the row's next version, so an update stays on its page (HOT) and the table
    -- does not grow with every admission.
    ALTER TABLE @P@windows_v1 ALTER COLUMN r SET STORAGE PLAIN, ALTER COLUMN t SET STORAGE PLAIN,
      SET (fillfactor = 50);
    CREATE UNLOGGED TABLE IF NOT EXISTS @P@leases_v1 (
      principal TEXT COLLATE "C" NOT NULL,
      model TEXT COLLATE "C" NOT NULL,
      member TEXT COLLATE "C" NOT NULL,
      expires_ms BIGINT NOT NULL,
      PRIMARY KEY (principal, model, member)
    );
    CREATE TABLE IF NOT EXISTS @P@budgets_v1 (
      principal TEXT COLLATE "C" NOT NULL,
      period TEXT COLLATE "C" NOT NULL,
      spent DOUBLE PRECISION NOT NULL,
      expires_ms BIGINT NOT NULL,
      PRIMARY KEY (principal, period)
    );

    -- RateLimiter::Window::Advance.
    CREATE OR REPLACE FUNCTION @P@advance_v1(INOUT head BIGINT, INOUT rs BIGINT, INOUT ts BIGINT,
        INOUT r BIGINT[], INOUT t BIGINT[], slot BIGINT)
    LANGUAGE plpgsql IMMUTABLE AS $f$
    DECLARE
      i INT;
    BEGIN
      IF head IS NULL OR slot - head >= 241 THEN
        head := slot;
        rs := 0;
        ts := 0;
        r := array_fill(0::BIGINT, ARRAY[241]);
        t := array_fill(0::BIGINT, ARRAY[241]);
        RETURN;
      END IF;
      WHILE head < slot LOOP
        head := head + 1;
        i := (head % 241)::INT + 1;
        rs := rs - r[i];
        r[i] := 0;
        ts := ts - t[i];
        t[i] := 0;
      END LOOP;
    END
    $f$;

    -- RateLimiter::Window::WaitMs.
    CREATE OR REPLACE FUNCTION @P@wait_v1(s BIGINT[], head BIGINT, total BIGINT, amount BIGINT,
        lim BIGINT, now_ms BIGINT) RETURNS BIGINT
    LANGUAGE plpgsql IMMUTABLE AS $f$
    DECLARE
      freed BIGINT := 0;
      x BIGINT;
    BEGIN
      IF total + amount <= lim OR head IS NULL THEN
        RETURN 0;
      END IF;
      x := head - 240;
      WHILE x <= head LOOP
        freed := freed + s[(((x % 241) + 241) % 241)::INT + 1];
        IF total - freed + amount <= lim THEN
          RETURN greatest((x + 241) * 250 - now_ms, 1);
        END IF;
        x := x + 1;
      END LOOP;
      RETURN 241 * 250;
    END
    $f$;

    -- RateLimiter::Window::Correct.
    CREATE OR REPLACE FUNCTION @P@correct_v1(INOUT s BIGINT[], INOUT total BIGINT, head BIGINT,
        admitted BIGINT, delta BIGINT)
    LANGUAGE plpgsql IMMUTABLE AS $f$
    DECLARE
      i INT;
      nxt BIGINT;
    BEGIN
      IF delta = 0 OR head IS NULL THEN
        RETURN;
      END IF;
      IF admitted > head - 241 AND admitted <= head THEN
        i := (admitted % 241)::INT + 1;
        nxt := greatest(s[i] + delta, 0);
        total := total + (nxt - s[i]);
        s[i] := nxt;
      ELSIF delta > 0 THEN
        i := (head % 241)::INT + 1;
        s[i] := s[i] + delta;
        total := total + delta;
      END IF;
    END
    $f$;

    -- Writes a bucket's window (an update; an insert the first time).
    CREATE OR REPLACE FUNCTION @P@save_v1(p_principal TEXT, p_model TEXT, p_head BIGINT,
        p_rs BIGINT, p_ts BIGINT, p_r BIGINT[], p_t BIGINT[], now_ms BIGINT) RETURNS VOID
    LANGUAGE plpgsql AS $f$
    BEGIN
      UPDATE @P@windows_v1 w SET head = p_head, rs = p_rs, ts = p_ts, r = p_r, t = p_t,
          expires_ms = now_ms + 120000
        WHERE w.principal = p_principal AND w.model = p_model;
      IF NOT FOUND THEN
        INSERT INTO @P@windows_v1 AS w (principal, model, head, rs, ts, r, t, expires_ms)
          VALUES (p_principal, p_model, p_head, p_rs, p_ts, p_r, p_t, now_ms + 120000)
          ON CONFLICT (principal, model) DO UPDATE SET head = EXCLUDED.head, rs = EXCLUDED.rs,
            ts = EXCLUDED.ts, r = EXCLUDED.r, t = EXCLUDED.t, expires_ms = EXCLUDED.expires_ms;
      END IF;
    END
    $f$;

    -- One admission (see postgres_fleet_store.hpp). p_flags: 1 the key's bucket, 2 the key x
    -- model's. o_verdict: 0 admitted, 1 rate limit, 2 budget; o_which: 1 key, 2 model; o_what:
    -- 1 parallel, 2 rpm, 3 tpm, 4 tpm never.
    CREATE OR REPLACE FUNCTION @P@admit_v1(p_principal TEXT, p_model TEXT, p_now BIGINT,
        p_est BIGINT, p_member TEXT, p_lease_ms BIGINT, p_k_rpm BIGINT, p_k_tpm BIGINT,
        p_k_mp BIGINT, p_m_rpm BIGINT, p_m_tpm BIGINT, p_m_mp BIGINT, p_flags INT,
        p_budget DOUBLE PRECISION, p_seed DOUBLE PRECISION, p_period TEXT, p_budget_expires BIGINT,
        OUT o_verdict INT, OUT o_which INT, OUT o_what INT, OUT o_wait BIGINT, OUT o_slot BIGINT,
        OUT o_spent DOUBLE PRECISION, OUT o_k_rs BIGINT, OUT o_k_rreset BIGINT, OUT o_k_ts BIGINT,
        OUT o_k_treset BIGINT, OUT o_m_rs BIGINT, OUT o_m_rreset BIGINT, OUT o_m_ts BIGINT,
        OUT o_m_treset BIGINT)
    LANGUAGE plpgsql AS $f$
    DECLARE
      now_ms BIGINT := coalesce(p_now, floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT);
      use_k BOOLEAN := p_flags & 1 <> 0;
      use_m BOOLEAN := p_flags & 2 <> 0;
      kh BIGINT; kh0 BIGINT; krs BIGINT; kts BIGINT; kr BIGINT[]; kt BIGINT[]; k_in BIGINT := 0;
      mh BIGINT; mh0 BIGINT; mrs BIGINT; mts BIGINT; mr BIGINT[]; mt BIGINT[]; m_in BIGINT := 0;
      i INT;
    BEGIN
      o_verdict := 0; o_which := 0; o_what := 0; o_wait := 0; o_spent := 0;
      o_k_rs := 0; o_k_rreset := 0; o_k_ts := 0; o_k_treset := 0;
      o_m_rs := 0; o_m_rreset := 0; o_m_ts := 0; o_m_treset := 0;
      o_slot := now_ms / 250;
      PERFORM pg_advisory_xact_lock(4243, hashtext(p_principal));
      IF use_k THEN
        SELECT w.head, w.rs, w.ts, w.r, w.t INTO kh, krs, kts, kr, kt FROM @P@windows_v1 w
          WHERE w.principal = p_principal AND w.model = '';
        kh0 := kh;
        IF kh IS NULL OR kh < o_slot THEN
          SELECT * INTO kh, krs, kts, kr, kt FROM @P@advance_v1(kh, krs, kts, kr, kt, o_slot);
        END IF;
        IF p_k_mp > 0 THEN
          IF kh IS DISTINCT FROM kh0 THEN  -- expired leases go when the window moves
            DELETE FROM @P@leases_v1 l
              WHERE l.principal = p_principal AND l.model = '' AND l.expires_ms <= now_ms;
          END IF;
          SELECT count(*) INTO k_in FROM @P@leases_v1 l
            WHERE l.principal = p_principal AND l.model = '';
        END IF;
      END IF;
      IF use_m THEN
        SELECT w.head, w.rs, w.ts, w.r, w.t INTO mh, mrs, mts, mr, mt FROM @P@windows_v1 w
          WHERE w.principal = p_principal AND w.model = p_model;
        mh0 := mh;
        IF mh IS NULL OR mh < o_slot THEN
          SELECT * INTO mh, mrs, mts, mr, mt FROM @P@advance_v1(mh, mrs, mts, mr, mt, o_slot);
        END IF;
        IF p_m_mp > 0 THEN
          IF mh IS DISTINCT FROM mh0 THEN  -- expired leases go when the window moves
            DELETE FROM @P@leases_v1 l
              WHERE l.principal = p_principal AND l.model = p_model AND l.expires_ms <= now_ms;
          END IF;
          SELECT count(*) INTO m_in FROM @P@leases_v1 l
            WHERE l.principal = p_principal AND l.model = p_model;
        END IF;
      END IF;

      IF use_k THEN
        IF p_k_mp > 0 AND k_in >= p_k_mp THEN
          o_verdict := 1; o_which := 1; o_what := 1; o_wait := 1000;
        ELSIF p_k_rpm > 0 AND krs + 1 > p_k_rpm THEN
          o_verdict := 1; o_which := 1; o_what := 2;
          o_wait := @P@wait_v1(kr, kh, krs, 1, p_k_rpm, now_ms);
        ELSIF p_k_tpm > 0 AND p_est > 0 AND kts + p_est > p_k_tpm THEN
          o_verdict := 1; o_which := 1;
          IF p_est > p_k_tpm THEN
            o_what := 4; o_wait := 241 * 250;
          ELSE
            o_what := 3; o_wait := @P@wait_v1(kt, kh, kts, p_est, p_k_tpm, now_ms);
          END IF;
        END IF;
      END IF;
      IF o_verdict = 0 AND use_m THEN
        IF p_m_mp > 0 AND m_in >= p_m_mp THEN
          o_verdict := 1; o_which := 2; o_what := 1; o_wait := 1000;
        ELSIF p_m_rpm > 0 AND mrs + 1 > p_m_rpm THEN
          o_verdict := 1; o_which := 2; o_what := 2;
          o_wait := @P@wait_v1(mr, mh, mrs, 1, p_m_rpm, now_ms);
        ELSIF p_m_tpm > 0 AND p_est > 0 AND mts + p_est > p_m_tpm THEN
          o_verdict := 1; o_which := 2;
          IF p_est > p_m_tpm THEN
            o_what := 4; o_wait := 241 * 250;
          ELSE
            o_what := 3; o_wait := @P@wait_v1(mt, mh, mts, p_est, p_m_tpm, now_ms);
          END IF;
        END IF;
      END IF;
      IF o_verdict = 0 AND p_budget IS NOT NULL THEN
        SELECT b.spent INTO o_spent FROM @P@budgets_v1 b
          WHERE b.principal = p_principal AND b.period = p_period;
        IF NOT FOUND THEN
          INSERT INTO @P@budgets_v1 (principal, period, spent, expires_ms)
            VALUES (p_principal, p_period, greatest(p_seed, 0), p_budget_expires)
            ON CONFLICT DO NOTHING;
          SELECT b.spent INTO o_spent FROM @P@budgets_v1 b
            WHERE b.principal = p_principal AND b.period = p_period;
        END IF;
        IF o_spent >= p_budget THEN
          o_verdict := 2;
        END IF;
      END IF;

      IF o_verdict = 0 THEN
        IF use_k THEN
          i := (kh % 241)::INT + 1;
          kr[i] := kr[i] + 1;
          krs := krs + 1;
          IF p_est > 0 THEN
            kt[i] := kt[i] + p_est;
            kts := kts + p_est;
          END IF;
          IF p_k_mp > 0 THEN
            INSERT INTO @P@leases_v1 (principal, model, member, expires_ms)
              VALUES (p_principal, '', p_member, now_ms + p_lease_ms) ON CONFLICT DO NOTHING;
          END IF;
        END IF;
        IF use_m THEN
          i := (mh % 241)::INT + 1;
          mr[i] := mr[i] + 1;
          mrs := mrs + 1;
          IF p_est > 0 THEN
            mt[i] := mt[i] + p_est;
            mts := mts + p_est;
          END IF;
          IF p_m_mp > 0 THEN
            INSERT INTO @P@leases_v1 (principal, model, member, expires_ms)
              VALUES (p_principal, p_model, p_member, now_ms + p_lease_ms) ON CONFLICT DO NOTHING;
          END IF;
        END IF;
      END IF;
      IF use_k AND (o_verdict = 0 OR kh IS DISTINCT FROM kh0) THEN
        PERFORM @P@save_v1(p_principal, '', kh, krs, kts, kr, kt, now_ms);
      END IF;
      IF use_m AND (o_verdict = 0 OR mh IS DISTINCT FROM mh0) THEN
        PERFORM @P@save_v1(p_principal, p_model, mh, mrs, mts, mr, mt, now_ms);
      END IF;

      -- The headers' state (RecordHeaders): the wait only when nothing remains.
      IF use_k THEN
        o_k_rs := krs;
        o_k_ts := kts;
        IF p_k_rpm > 0 AND krs >= p_k_rpm THEN
          o_k_rreset := @P@wait_v1(kr, kh, krs, 1, p_k_rpm, now_ms);
        END IF;
        IF p_k_tpm > 0 AND kts >= p_k_tpm THEN
          o_k_treset := @P@wait_v1(kt, kh, kts, 1, p_k_tpm, now_ms);
        END IF;
      END IF;
      IF use_m THEN
        o_m_rs := mrs;
        o_m_ts := mts;
        IF p_m_rpm > 0 AND mrs >= p_m_rpm THEN
          o_m_rreset := @P@wait_v1(mr, mh, mrs, 1, p_m_rpm, now_ms);
        END IF;
        IF p_m_tpm > 0 AND mts >= p_m_tpm THEN
          o_m_treset := @P@wait_v1(mt, mh, mts, 1, p_m_tpm, now_ms);
        END IF;
      END IF;
    END
    $f$;

    -- One settlement. p_flags: 1 key charged, 2 model charged, 4 key leased, 8 model leased,
    -- 16 spend.
    CREATE OR REPLACE FUNCTION @P@settle_v1(p_principal TEXT, p_model TEXT, p_now BIGINT,
        p_admitted BIGINT, p_delta BIGINT, p_refused BOOLEAN, p_member TEXT, p_flags INT,
        p_cost DOUBLE PRECISION, p_period TEXT) RETURNS INT
    LANGUAGE plpgsql AS $f$
    DECLARE
      now_ms BIGINT := coalesce(p_now, floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT);
      bucket TEXT;
      h BIGINT; xrs BIGINT; xts BIGINT; xr BIGINT[]; xt BIGINT[];
    BEGIN
      IF (p_refused OR p_delta <> 0) AND p_flags & 3 <> 0 THEN
        PERFORM pg_advisory_xact_lock(4243, hashtext(p_principal));
        FOR i IN 1..2 LOOP
          CONTINUE WHEN p_flags & i = 0;
          bucket := CASE WHEN i = 1 THEN '' ELSE p_model END;
          SELECT w.head, w.rs, w.ts, w.r, w.t INTO h, xrs, xts, xr, xt FROM @P@windows_v1 w
            WHERE w.principal = p_principal AND w.model = bucket;
          IF h IS NULL OR h < now_ms / 250 THEN
            SELECT * INTO h, xrs, xts, xr, xt FROM @P@advance_v1(h, xrs, xts, xr, xt, now_ms / 250);
          END IF;
          IF p_refused THEN
            SELECT * INTO xr, xrs FROM @P@correct_v1(xr, xrs, h, p_admitted, -1);
          END IF;
          SELECT * INTO xt, xts FROM @P@correct_v1(xt, xts, h, p_admitted, p_delta);
          PERFORM @P@save_v1(p_principal, bucket, h, xrs, xts, xr, xt, now_ms);
        END LOOP;
      END IF;
      IF p_flags & 4 <> 0 THEN
        DELETE FROM @P@leases_v1 l
          WHERE l.principal = p_principal AND l.model = '' AND l.member = p_member;
      END IF;
      IF p_flags & 8 <> 0 THEN
        DELETE FROM @P@leases_v1 l
          WHERE l.principal = p_principal AND l.model = p_model AND l.member = p_member;
      END IF;
      IF p_flags & 16 <> 0 AND p_cost > 0 THEN
        -- A counter the database lost in a crash is seeded again from the ledger: not worth a
        -- WAL flush per request.
        PERFORM set_config('synchronous_commit', 'off', true);
        UPDATE @P@budgets_v1 b SET spent = b.spent + p_cost
          WHERE b.principal = p_principal AND b.period = p_period;
      END IF;
      RETURN 1;
    END
    $f$;

    -- Deletes what expired, at most 1,000 rows a table; returns how many went.
    CREATE OR REPLACE FUNCTION @P@prune_v1() RETURNS INT
    LANGUAGE plpgsql AS $f$
    DECLARE
      now_ms BIGINT := floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
      n INT := 0;
      k INT;
    BEGIN
      DELETE FROM @P@windows_v1 WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM @P@windows_v1 WHERE expires_ms < now_ms LIMIT 1000));
      GET DIAGNOSTICS k = ROW_COUNT;
      n := n + k;
      DELETE FROM @P@leases_v1 WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM @P@leases_v1 WHERE expires_ms < now_ms LIMIT 1000));
      GET DIAGNOSTICS k = ROW_COUNT;
      n := n + k;
      DELETE FROM @P@budgets_v1 WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM @P@budgets_v1 WHERE expires_ms < now_ms LIMIT 1000));
      GET DIAGNOSTICS k = ROW_COUNT;
      RETURN n + k;
    END
    $f$;
  END IF;
END
$schema$;
)sql";

enum Statement : std::uint8_t { kAdmit, kSettle, kPrune };

std::string WithPrefix(std::string_view text, const std::string& prefix) {
  std::string out;
  out.reserve(text.size() + 64);
  std::size_t at = 0;
  for (;;) {
    const std::size_t next = text.find("@P@", at);
    out.append(text.substr(at, next - at));
    if (next == std::string_view::npos) break;
    out.append(prefix);
    at = next + 3;
  }
  return out;
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 40) return false;
  if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z'))) return false;
  for (char c : s) {
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

std::string Number(double d) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", d);
  return text;
}

std::int64_t Int(const std::string& s) {
  std::int64_t out = 0;
  std::from_chars(s.data(), s.data() + s.size(), out);
  return out;
}

std::optional<FleetAdmissionReply> Parse(const storage::PgPipe::Reply& reply) {
  if (!reply.ok || reply.row.size() != 14) return std::nullopt;
  const auto& e = reply.row;
  FleetAdmissionReply r;
  r.verdict = static_cast<int>(Int(e[0]));
  r.which = static_cast<int>(Int(e[1]));
  r.what = static_cast<int>(Int(e[2]));
  r.wait_ms = Int(e[3]);
  r.slot = Int(e[4]);
  std::from_chars(e[5].data(), e[5].data() + e[5].size(), r.spent);
  for (std::size_t i = 0; i < r.buckets.size(); ++i)
    r.buckets[i] = Int(e[6 + i]);
  return r;
}

storage::PgPipe::Options PipeOptions(const PostgresFleetStore::Options& o) {
  storage::PgPipe::Options p;
  p.url = o.url;
  p.setup = PostgresFleetStore::Schema(o.prefix);
  p.statement_timeout = o.statement_timeout;
  p.connect_timeout = o.connect_timeout;
  std::string args;
  for (int i = 1; i <= 17; ++i)
    args += (i > 1 ? ", $" : "$") + std::to_string(i);
  p.statements = {
      {"o_lim_admit", "SELECT * FROM " + o.prefix + "admit_v1(" + args + ")"},
      {"o_lim_settle", "SELECT " + o.prefix + "settle_v1($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"},
      {"o_lim_prune", "SELECT " + o.prefix + "prune_v1()"},
  };
  return p;
}

}  // namespace

std::string PostgresFleetStore::Schema(const std::string& prefix) {
  return WithPrefix(kSchema, prefix);
}

PostgresFleetStore::PostgresFleetStore(asio::any_io_executor executor, const Options& options)
    : pipe_(std::move(executor), PipeOptions(options)),
      prune_interval_(options.prune_interval),
      last_prune_(std::chrono::steady_clock::now()) {}

FleetStoreFactory PostgresFleetStore::Factory(Options options) {
  storage::postgres::LoadLibpq();  // a missing libpq is a start-up error, not a crash later
  if (!IsIdentifier(options.prefix)) {
    throw std::invalid_argument("limits: the PostgreSQL table prefix '" + options.prefix +
                                "' is not a plain lower-case identifier");
  }
  FleetStoreFactory factory;
  factory.name = "PostgreSQL";
  factory.open = [options = std::move(options)](asio::any_io_executor executor) {
    return std::make_unique<PostgresFleetStore>(std::move(executor), options);
  };
  return factory;
}

asio::awaitable<Result<FleetAdmissionReply>> PostgresFleetStore::Admit(
    const FleetAdmission& a, std::chrono::microseconds timeout, Late late) {
  storage::PgPipe::Query q;
  q.statement = kAdmit;
  q.params = {
      std::string(a.principal),
      std::string(a.model),
      a.now_ms ? std::optional<std::string>(std::to_string(*a.now_ms)) : std::nullopt,
      std::to_string(a.estimate),
      std::string(a.member),
      std::to_string(a.lease_ms),
      std::to_string(a.key.rpm),
      std::to_string(a.key.tpm),
      std::to_string(a.key.max_parallel),
      std::to_string(a.model_limits.rpm),
      std::to_string(a.model_limits.tpm),
      std::to_string(a.model_limits.max_parallel),
      std::to_string((a.key_bucket ? 1 : 0) | (a.model_bucket ? 2 : 0)),
      a.budget_usd ? std::optional<std::string>(Number(*a.budget_usd)) : std::nullopt,
      Number(std::max(a.budget_seed, 0.0)),
      std::string(a.budget_period),
      std::to_string(a.budget_expires_ms),
  };
  storage::PgPipe::Late on_late;
  if (late) {
    on_late = [late = std::move(late)](storage::PgPipe::Replies& r) {
      if (r.size() != 1) return;
      if (auto parsed = Parse(r[0])) late(*parsed);
    };
  }
  std::vector<storage::PgPipe::Query> queries;
  queries.push_back(std::move(q));
  auto result = co_await pipe_.Call(std::move(queries), timeout, std::move(on_late));
  if (!result) co_return result.error();
  const storage::PgPipe::Reply& reply = (*result)[0];
  auto parsed = Parse(reply);
  if (!parsed) {
    co_return Error(ErrorCode::kUnavailable,
                    reply.ok ? "postgres: unexpected reply" : "postgres: " + reply.error);
  }
  co_return *parsed;
}

asio::awaitable<Result<std::size_t>> PostgresFleetStore::Settle(
    std::span<const FleetSettlement> batch, std::chrono::milliseconds timeout) {
  std::vector<storage::PgPipe::Query> queries;
  queries.reserve(batch.size() + 1);
  for (const FleetSettlement& s : batch) {
    storage::PgPipe::Query q;
    q.statement = kSettle;
    q.params = {
        s.principal,
        s.model,
        s.now_ms ? std::optional<std::string>(std::to_string(*s.now_ms)) : std::nullopt,
        std::to_string(s.admitted_slot),
        std::to_string(s.tokens_delta),
        std::string(s.refused ? "t" : "f"),
        s.member,
        std::to_string(s.flags),
        Number(s.cost_usd),
        s.budget_period,
    };
    queries.push_back(std::move(q));
  }
  const auto now = std::chrono::steady_clock::now();
  if (now - last_prune_ >= prune_interval_) {
    last_prune_ = now;
    queries.push_back({kPrune, {}});
  }
  auto result = co_await pipe_.Call(std::move(queries), timeout);
  if (!result) co_return result.error();
  std::size_t refused = 0;
  for (const storage::PgPipe::Reply& r : *result)
    refused += r.ok ? 0 : 1;
  co_return refused;
}

}  // namespace orchestra::limits
