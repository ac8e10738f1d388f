#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"

// A non-blocking PostgreSQL connection on one event loop, the twin of storage::RedisPipe for
// the admission path (the fleet-wide limits on PostgreSQL, limits/postgres_fleet_store.hpp):
// libpq in pipeline mode, its socket watched by the loop (asio::posix::stream_descriptor), so a
// caller co_awaits one round trip without occupying a thread, and calls made while others are on
// their way are written behind them (each query followed by its own Sync, so one failing query
// aborts no other). Every call has a timeout; a call that timed out still gets its answer read
// (in order) and handed to its `late` hook. After a failed connection, calls fail at once for a
// short back-off instead of reconnecting on every call.
//
// At each (re)connection, before pipeline mode: `setup` (plain SQL, may hold several statements:
// the schema, created idempotently) runs, then every statement of `statements` is prepared.
//
// Connecting resolves the host name in libpq (getaddrinfo, blocking): give an IP address or a
// name /etc/hosts answers.
//
// Thread-safety: none; a pipe belongs to one io_context and is used on its thread. Lifetime: as
// RedisPipe's (Close first; coroutines it spawned finish with the io_context).
namespace orchestra::storage {

class PgPipe {
 public:
  struct Statement {
    std::string name;
    std::string sql;  // parameters $1..$n, all sent as text
  };
  struct Options {
    std::string url;    // postgresql://... (libpq's connection string or URI)
    std::string setup;  // run once per connection; may be empty
    std::vector<Statement> statements;
    std::chrono::milliseconds connect_timeout{2000};  // including `setup`
    std::chrono::milliseconds backoff{250};
    std::chrono::milliseconds statement_timeout{2000};  // server-side bound on each statement
    std::size_t max_pending = 100'000;
  };
  // One execution of a prepared statement: its index in Options::statements, its parameters
  // (nullopt: NULL).
  struct Query {
    std::size_t statement = 0;
    std::vector<std::optional<std::string>> params;
  };
  // A query's answer: its first row (text; NULL as ""), or the server's error.
  struct Reply {
    bool ok = false;
    std::string error;     // when !ok
    std::string sqlstate;  // when !ok
    std::vector<std::string> row;
  };
  using Replies = std::vector<Reply>;
  using Late = std::function<void(Replies&)>;

  PgPipe(boost::asio::any_io_executor executor, Options options);
  ~PgPipe();
  PgPipe(const PgPipe&) = delete;
  PgPipe& operator=(const PgPipe&) = delete;

  // Sends `queries` and waits at most `timeout` for all their replies. kUnavailable when not
  // connected (or in back-off) or the connection failed; kDeadlineExceeded on the timeout (then
  // `late`, when given, gets the replies should they come). A query the server refused is a
  // Reply with !ok, not an Error.
  boost::asio::awaitable<Result<Replies>> Call(std::vector<Query> queries,
                                               std::chrono::microseconds timeout, Late late = {});

  void Connect();  // starts connecting now (when not connected)
  void Close();    // closes the connection; pending calls fail
  bool connected() const;
  bool closed() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace orchestra::storage
