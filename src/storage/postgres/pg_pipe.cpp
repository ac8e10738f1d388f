#include "storage/postgres/pg_pipe.hpp"

#include <deque>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <libpq-fe.h>

#include <poll.h>

namespace orchestra::storage {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;
using Descriptor = asio::posix::stream_descriptor;
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

Error Unavailable(std::string message) {
  return Error(ErrorCode::kUnavailable, "postgres: " + std::move(message));
}

std::string Trimmed(const char* message) {
  std::string s = message != nullptr ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

// Level-triggered readiness right now. Asio's reactor is edge-triggered and a wait is not
// speculative, so readiness that came while no wait was queued is checked for here first.
bool ReadyNow(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 0) > 0;
}

struct Waiter {
  Waiter(const asio::any_io_executor& ex, std::vector<PgPipe::Query> q)
      : queries(std::move(q)), timer(ex) {}
  std::vector<PgPipe::Query> queries;
  PgPipe::Replies replies;
  std::optional<Error> error;
  bool done = false;
  bool abandoned = false;  // its caller timed out
  PgPipe::Late late;
  asio::steady_timer timer;
};

}  // namespace

struct PgPipe::State : std::enable_shared_from_this<PgPipe::State> {
  enum class Phase : std::uint8_t { kDisconnected, kConnecting, kReady };

  State(asio::any_io_executor ex, Options opts)
      : executor(std::move(ex)), options(std::move(opts)) {}
  ~State() { Drop(); }

  asio::any_io_executor executor;
  Options options;
  Phase phase = Phase::kDisconnected;
  std::uint64_t generation = 0;  // of the current connection
  PGconn* conn = nullptr;
  std::shared_ptr<Descriptor> socket;  // libpq's socket, watched (never closed) by asio
  SteadyClock::time_point failed_at{};
  bool failed_once = false;
  bool closed = false;
  bool writing = false;
  std::deque<std::shared_ptr<Waiter>> unsent;  // while connecting
  std::deque<std::shared_ptr<Waiter>> sent;    // in order of their replies
  Reply current;                               // of the query being answered
  bool has_current = false;
  bool connect_expired = false;  // the connection attempt in progress ran out of time

  void Complete(const std::shared_ptr<Waiter>& w) {
    w->done = true;
    if (w->abandoned) {
      if (w->late && !w->error) w->late(w->replies);
      w->late = nullptr;
    } else {
      w->timer.cancel();
    }
  }

  // Forgets the connection (the descriptor is released, not closed: libpq owns the socket).
  void Drop() {
    if (socket) {
      boost::system::error_code ignored;
      socket->cancel(ignored);
      socket->release();
      socket.reset();
    }
    if (conn != nullptr) {
      PQfinish(conn);
      conn = nullptr;
    }
  }

  void Fail(std::uint64_t gen, const std::string& why) {
    if (gen != generation || phase == Phase::kDisconnected) return;
    phase = Phase::kDisconnected;
    ++generation;
    failed_at = SteadyClock::now();
    failed_once = true;
    Drop();
    writing = false;
    has_current = false;
    std::deque<std::shared_ptr<Waiter>> failed;
    failed.swap(sent);
    for (auto& w : unsent)
      failed.push_back(std::move(w));
    unsent.clear();
    for (auto& w : failed) {
      w->error = Unavailable(why);
      Complete(w);
    }
  }

  void Kick() {
    if (phase == Phase::kDisconnected) {
      phase = Phase::kConnecting;
      const std::uint64_t gen = ++generation;
      asio::co_spawn(executor, Connect(shared_from_this(), gen), asio::detached);
    }
  }

  // Watches libpq's socket `fd` (again when libpq changed it while connecting).
  void Watch(int fd) {
    if (socket && socket->native_handle() == fd) return;
    if (socket) {
      socket->release();
      socket.reset();
    }
    socket = std::make_shared<Descriptor>(executor, fd);
  }

  // Until the socket is ready for `what`; false when the wait failed or was cancelled.
  static asio::awaitable<bool> Wait(std::shared_ptr<Descriptor> socket,
                                    Descriptor::wait_type what) {
    const short events = what == Descriptor::wait_read ? POLLIN : POLLOUT;
    if (ReadyNow(socket->native_handle(), events)) co_return true;
    auto [ec] = co_await socket->async_wait(what, kAsTuple);
    co_return !ec;
  }

  // Gives the waiter's queries to libpq (each followed by a Sync) and starts writing.
  bool Send(const std::shared_ptr<Waiter>& w) {
    for (const Query& q : w->queries) {
      std::vector<const char*> values;
      values.reserve(q.params.size());
      for (const auto& p : q.params)
        values.push_back(p ? p->c_str() : nullptr);
      if (!PQsendQueryPrepared(conn, options.statements.at(q.statement).name.c_str(),
                               static_cast<int>(values.size()), values.data(), nullptr, nullptr,
                               0) ||
          !PQpipelineSync(conn)) {
        return false;
      }
    }
    sent.push_back(w);
    return true;
  }

  void Flush(std::uint64_t gen) {
    if (writing) return;
    const int f = PQflush(conn);
    if (f < 0) {
      Fail(gen, "write: " + Trimmed(PQerrorMessage(conn)));
      return;
    }
    Drain(gen);  // a flush may have read replies into libpq's buffer
    if (f == 1 && gen == generation) {
      writing = true;
      asio::co_spawn(executor, Write(shared_from_this(), gen), asio::detached);
    }
  }

  // Takes the replies libpq has read, without reading more.
  void Drain(std::uint64_t gen) {
    int nulls = 0;
    while (gen == generation && !PQisBusy(conn)) {
      PGresult* r = PQgetResult(conn);
      if (r == nullptr) {
        if (sent.empty() || ++nulls >= 2) return;  // nothing more buffered
        continue;
      }
      nulls = 0;
      const ExecStatusType status = PQresultStatus(r);
      if (status == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        if (sent.empty()) {
          Fail(gen, "a reply nobody asked for");
          return;
        }
        if (!has_current) {
          current = Reply{};
          current.error = "no result";
        }
        std::shared_ptr<Waiter> w = sent.front();
        w->replies.push_back(std::move(current));
        has_current = false;
        if (w->replies.size() == w->queries.size()) {
          sent.pop_front();
          Complete(w);
        }
        continue;
      }
      if (!has_current) {
        has_current = true;
        current = Reply{};
        if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK ||
            status == PGRES_SINGLE_TUPLE) {
          current.ok = true;
          if (PQntuples(r) > 0) {
            const int columns = PQnfields(r);
            for (int c = 0; c < columns; ++c) {
              current.row.emplace_back(PQgetvalue(r, 0, c),
                                       static_cast<std::size_t>(PQgetlength(r, 0, c)));
            }
          }
        } else {
          current.error = Trimmed(PQresultErrorMessage(r));
          const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
          current.sqlstate = state != nullptr ? state : "";
          if (current.error.empty()) current.error = PQresStatus(status);
        }
      }
      PQclear(r);
    }
  }

  static asio::awaitable<void> Write(std::shared_ptr<State> self, std::uint64_t gen) {
    while (gen == self->generation) {
      auto socket = self->socket;
      if (!co_await Wait(socket, Descriptor::wait_write)) {
        self->Fail(gen, "write: the connection failed");
        co_return;
      }
      if (gen != self->generation) co_return;
      const int f = PQflush(self->conn);
      if (f < 0) {
        self->Fail(gen, "write: " + Trimmed(PQerrorMessage(self->conn)));
        co_return;
      }
      self->Drain(gen);
      if (f == 0) break;
    }
    if (gen == self->generation) self->writing = false;
  }

  static asio::awaitable<void> Read(std::shared_ptr<State> self, std::uint64_t gen) {
    while (gen == self->generation) {
      auto socket = self->socket;
      if (!co_await Wait(socket, Descriptor::wait_read)) {
        self->Fail(gen, "read: the connection failed");
        co_return;
      }
      if (gen != self->generation) co_return;
      if (!PQconsumeInput(self->conn)) {
        self->Fail(gen, Trimmed(PQerrorMessage(self->conn)));
        co_return;
      }
      self->Drain(gen);
    }
  }

  // Runs one plain query (not in pipeline mode) to its end; "" or why it failed.
  static asio::awaitable<std::string> Plain(std::shared_ptr<State> self, std::uint64_t gen,
                                            std::function<int(PGconn*)> send) {
    PGconn* conn = self->conn;
    auto expired = [&] { return self->connect_expired || gen != self->generation; };
    if (!send(conn)) co_return Trimmed(PQerrorMessage(conn));
    while (PQflush(conn) == 1) {
      if (expired() || !co_await Wait(self->socket, Descriptor::wait_write) || expired())
        co_return "timed out";
      if (!PQconsumeInput(conn)) co_return Trimmed(PQerrorMessage(conn));
    }
    std::string error;
    for (;;) {
      while (PQisBusy(conn)) {
        if (expired() || !co_await Wait(self->socket, Descriptor::wait_read) || expired())
          co_return "timed out";
        if (!PQconsumeInput(conn)) co_return Trimmed(PQerrorMessage(conn));
      }
      PGresult* r = PQgetResult(conn);
      if (r == nullptr) break;
      const ExecStatusType status = PQresultStatus(r);
      if ((status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) && error.empty())
        error = Trimmed(PQresultErrorMessage(r));
      PQclear(r);
    }
    co_return error;
  }

  static asio::awaitable<void> Connect(std::shared_ptr<State> self, std::uint64_t gen) {
    const char* keywords[] = {"dbname", "application_name", "client_encoding", nullptr};
    const char* values[] = {self->options.url.c_str(), "orchestra-limits", "UTF8", nullptr};
    self->conn = PQconnectStartParams(keywords, values, /*expand_dbname=*/1);
    if (self->conn == nullptr) {
      self->Fail(gen, "cannot allocate a connection");
      co_return;
    }
    // Connecting and `setup` must end in time: the timer cancels the wait in progress.
    auto timer = std::make_shared<asio::steady_timer>(self->executor);
    self->connect_expired = false;
    timer->expires_after(self->options.connect_timeout);
    std::weak_ptr<State> weak = self;
    timer->async_wait([weak, gen](boost::system::error_code ec) {
      auto s = weak.lock();
      if (ec || !s || s->generation != gen || s->phase != Phase::kConnecting) return;
      s->connect_expired = true;
      if (s->socket) {
        boost::system::error_code ignored;
        s->socket->cancel(ignored);
      }
    });
    auto failed = [&](const std::string& why) {
      timer->cancel();
      self->Fail(gen,
                 "cannot connect: " + (self->connect_expired ? std::string("timed out") : why));
    };
    if (PQstatus(self->conn) == CONNECTION_BAD)
      co_return failed(Trimmed(PQerrorMessage(self->conn)));
    PostgresPollingStatusType status = PGRES_POLLING_WRITING;
    while (status != PGRES_POLLING_OK) {
      if (status == PGRES_POLLING_FAILED || self->connect_expired)
        co_return failed(Trimmed(PQerrorMessage(self->conn)));
      self->Watch(PQsocket(self->conn));
      const bool ready =
          co_await Wait(self->socket, status == PGRES_POLLING_READING ? Descriptor::wait_read
                                                                      : Descriptor::wait_write);
      if (gen != self->generation) co_return;
      if (!ready) co_return failed("the connection failed");
      status = PQconnectPoll(self->conn);
    }
    self->Watch(PQsocket(self->conn));
    PQsetnonblocking(self->conn, 1);
    PQsetNoticeProcessor(
        self->conn, [](void*, const char*) {}, nullptr);
    std::string setup =
        "SET statement_timeout = " + std::to_string(self->options.statement_timeout.count());
    if (!self->options.setup.empty()) setup += ";\n" + self->options.setup;
    std::string error =
        co_await Plain(self, gen, [&setup](PGconn* c) { return PQsendQuery(c, setup.c_str()); });
    if (gen != self->generation) co_return;
    if (!error.empty()) co_return failed(error);
    for (const Statement& s : self->options.statements) {
      error = co_await Plain(self, gen, [&s](PGconn* c) {
        return PQsendPrepare(c, s.name.c_str(), s.sql.c_str(), 0, nullptr);
      });
      if (gen != self->generation) co_return;
      if (!error.empty()) co_return failed("preparing " + s.name + ": " + error);
    }
    if (!PQenterPipelineMode(self->conn)) co_return failed(Trimmed(PQerrorMessage(self->conn)));
    timer->cancel();
    self->phase = Phase::kReady;
    asio::co_spawn(self->executor, Read(self, gen), asio::detached);
    std::deque<std::shared_ptr<Waiter>> waiting;
    waiting.swap(self->unsent);
    for (auto& w : waiting) {
      if (gen != self->generation) break;
      if (!self->Send(w)) {
        self->unsent.push_back(w);  // failed with the rest below
        self->Fail(gen, "write: " + Trimmed(PQerrorMessage(self->conn)));
        co_return;
      }
    }
    if (gen == self->generation) self->Flush(gen);
  }
};

PgPipe::PgPipe(asio::any_io_executor executor, Options options)
    : state_(std::make_shared<State>(std::move(executor), std::move(options))) {}

PgPipe::~PgPipe() {
  Close();
}

void PgPipe::Connect() {
  if (!state_->closed && state_->phase == State::Phase::kDisconnected) state_->Kick();
}

void PgPipe::Close() {
  state_->closed = true;
  state_->Fail(state_->generation, "closed");
}

bool PgPipe::closed() const {
  return state_->closed;
}

bool PgPipe::connected() const {
  return state_->phase == State::Phase::kReady;
}

asio::awaitable<Result<PgPipe::Replies>> PgPipe::Call(std::vector<Query> queries,
                                                      std::chrono::microseconds timeout,
                                                      Late late) {
  std::shared_ptr<State> s = state_;
  if (s->closed) co_return Unavailable("closed");
  if (queries.empty()) co_return Replies{};
  if (s->phase == State::Phase::kDisconnected && s->failed_once &&
      SteadyClock::now() - s->failed_at < s->options.backoff) {
    co_return Unavailable("not connected (retrying shortly)");
  }
  if (s->sent.size() + s->unsent.size() >= s->options.max_pending)
    co_return Unavailable("too many calls waiting");
  auto w = std::make_shared<Waiter>(s->executor, std::move(queries));
  w->timer.expires_after(timeout);
  if (s->phase == State::Phase::kReady) {
    const std::uint64_t gen = s->generation;
    if (!s->Send(w)) {
      s->Fail(gen, "write: " + Trimmed(PQerrorMessage(s->conn)));
      co_return Unavailable("the connection failed");
    }
    s->Flush(gen);
  } else {
    s->unsent.push_back(w);
    s->Kick();
  }
  if (!w->done) co_await w->timer.async_wait(kAsTuple);
  if (!w->done) {
    w->abandoned = true;
    w->late = std::move(late);
    co_return Error(ErrorCode::kDeadlineExceeded, "postgres: no answer in time");
  }
  if (w->error) co_return *w->error;
  co_return std::move(w->replies);
}

}  // namespace orchestra::storage
