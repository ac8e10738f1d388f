#pragma once

#include <chrono>
#include <string>

#include "limits/fleet_store.hpp"
#include "storage/postgres/pg_pipe.hpp"

// The fleet-wide limits' windows, leases and budgets in PostgreSQL (limits/fleet_store.hpp), the
// equivalent of the Redis store for fleets whose shared backend is PostgreSQL.
//
// An admission is one call of a plpgsql function (one round trip, one transaction): it takes a
// transaction-scoped advisory lock on the API key (so a key's admissions and corrections are
// serialised across the fleet, and different keys never wait for each other), reads the key's
// and the key x model's windows, sweeps their expired in-flight leases, checks every limit and
// the budget counter, and reserves all of them or none, on the server's clock
// (clock_timestamp()) unless a clock is injected. A settlement is a call of a second function;
// a batch is pipelined calls, one round trip.
//
// Tables (`prefix` + name; created with the functions at first contact, under an advisory lock
// and only when missing, as the storage schema is; the names carry a version, _v1, so that a
// later layout never clashes with this one during a rolling upgrade):
//   windows_v1 (principal, model, head, rs, ts, r bigint[241], t bigint[241], expires_ms)
//     UNLOGGED: one row per bucket ('' the key's own), the slots of RateLimiter::Window as
//     arrays stored uncompressed in the row. Unlogged, so an admission writes no WAL; after a
//     crash of the database (or on a failover to a replica) the windows start empty.
//   leases_v1 (principal, model, member, expires_ms) UNLOGGED: in-flight requests.
//   budgets_v1 (principal, period, spent, expires_ms): budget counters, logged (a counter the
//     database lost would be seeded again from the ledger).
// Rows that expired are deleted by the settlement path about once a minute per connection
// (at most 1,000 per table at a time): windows 2 minutes after their last change, leases at
// their expiry, budget counters a day after their period.
//
// Connection: storage::PgPipe (one per worker event loop, libpq pipeline mode).
namespace orchestra::limits {

class PostgresFleetStore final : public FleetStore {
 public:
  struct Options {
    std::string url;                          // postgresql://...
    std::string prefix = "orchestra_limit_";  // of every table and function (an identifier)
    std::chrono::milliseconds statement_timeout{2000};
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds prune_interval{60'000};
  };

  PostgresFleetStore(boost::asio::any_io_executor executor, const Options& options);

  // Stores of every worker. Throws std::invalid_argument on a prefix that is not a plain
  // identifier.
  static FleetStoreFactory Factory(Options options);
  // The schema and functions, as created at first contact (for docs and administrators).
  static std::string Schema(const std::string& prefix);

  void Connect() override { pipe_.Connect(); }
  void Close() override { pipe_.Close(); }
  bool closed() const override { return pipe_.closed(); }
  boost::asio::awaitable<Result<FleetAdmissionReply>> Admit(const FleetAdmission& admission,
                                                            std::chrono::microseconds timeout,
                                                            Late late) override;
  boost::asio::awaitable<Result<std::size_t>> Settle(std::span<const FleetSettlement> batch,
                                                     std::chrono::milliseconds timeout) override;

 private:
  storage::PgPipe pipe_;
  std::chrono::milliseconds prune_interval_;
  std::chrono::steady_clock::time_point last_prune_{};
};

}  // namespace orchestra::limits
