// storage::PgPipe against a real PostgreSQL (tests/services): calls pipelined on one connection
// answer in order, a failing query spoils no other, a call that times out gets its answer late,
// and a stopped server fails calls at once and is reconnected to when it is back.

#include "storage/postgres/pg_pipe.hpp"

#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "services/postgres_server.hpp"
#include "storage/postgres/libpq_loader.hpp"

namespace orchestra::storage {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::services::PostgresServer;

enum : std::size_t { kDouble, kDivide, kSleep };

PgPipe::Options Options(const PostgresServer& server) {
  postgres::LoadLibpq();
  PgPipe::Options o;
  o.url = server.url();
  o.connect_timeout = 5s;
  o.backoff = 100ms;
  o.statements = {{"double", "SELECT $1::int * 2"},
                  {"divide", "SELECT 10 / $1::int"},
                  {"sleep", "SELECT pg_sleep($1::float8), 7"}};
  return o;
}

PgPipe::Query Q(std::size_t statement, std::string arg) {
  return {statement, {std::move(arg)}};
}

// A pipe on its own event loop thread.
class Loop {
 public:
  explicit Loop(PgPipe::Options options)
      : work_(asio::make_work_guard(io_)),
        pipe_(io_.get_executor(), std::move(options)),
        thread_([this] { io_.run(); }) {}
  ~Loop() {
    asio::post(io_, [this] { pipe_.Close(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }
  Result<PgPipe::Replies> Call(std::vector<PgPipe::Query> q, std::chrono::microseconds timeout,
                               PgPipe::Late late = {}) {
    return asio::co_spawn(io_, pipe_.Call(std::move(q), timeout, std::move(late)), asio::use_future)
        .get();
  }
  asio::io_context& io() { return io_; }
  PgPipe& pipe() { return pipe_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  PgPipe pipe_;
  std::thread thread_;
};

TEST(PgPipe, PipelinedCallsAnswerInOrderAndAFailingQuerySpoilsNoOther) {
  Loop loop(Options(PostgresServer::Shared()));
  ASSERT_TRUE(loop.Call({Q(kDouble, "1")}, 5s));  // connected
  // 200 calls in flight at once on the one connection, each of three queries, the middle one
  // failing (division by zero).
  std::vector<std::future<Result<PgPipe::Replies>>> calls;
  for (int i = 0; i < 200; ++i) {
    calls.push_back(asio::co_spawn(loop.io(),
                                   loop.pipe().Call({Q(kDouble, std::to_string(i)), Q(kDivide, "0"),
                                                     Q(kDivide, std::to_string(i % 5 + 1))},
                                                    5s),
                                   asio::use_future));
  }
  for (int i = 0; i < 200; ++i) {
    auto r = calls[static_cast<std::size_t>(i)].get();
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->size(), 3u);
    EXPECT_TRUE((*r)[0].ok);
    EXPECT_EQ((*r)[0].row, std::vector<std::string>{std::to_string(2 * i)});
    EXPECT_FALSE((*r)[1].ok);
    EXPECT_EQ((*r)[1].sqlstate, "22012");
    EXPECT_NE((*r)[1].error.find("division by zero"), std::string::npos) << (*r)[1].error;
    EXPECT_TRUE((*r)[2].ok);
    EXPECT_EQ((*r)[2].row, std::vector<std::string>{std::to_string(10 / (i % 5 + 1))});
  }
}

TEST(PgPipe, ACallThatTimesOutGetsItsAnswerLateAndTheNextOneItsOwn) {
  Loop loop(Options(PostgresServer::Shared()));
  ASSERT_TRUE(loop.Call({Q(kDouble, "1")}, 5s));
  std::promise<std::vector<std::string>> late;
  const auto start = std::chrono::steady_clock::now();
  auto slow = loop.Call({Q(kSleep, "0.3")}, 20ms, [&late](PgPipe::Replies& r) {
    late.set_value(r.size() == 1 ? r[0].row : std::vector<std::string>{});
  });
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 250ms);
  // Written behind the slow one: answered after it, with its own answer.
  auto next = loop.Call({Q(kDouble, "21")}, 5s);
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ((*next)[0].row, std::vector<std::string>{"42"});
  auto future = late.get_future();
  ASSERT_EQ(future.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(future.get(), (std::vector<std::string>{"", "7"}));
}

TEST(PgPipe, AStoppedServerFailsCallsAtOnceAndIsReconnectedTo) {
  PostgresServer server;
  Loop loop(Options(server));
  ASSERT_TRUE(loop.Call({Q(kDouble, "1")}, 5s));
  server.Stop();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    auto r = loop.Call({Q(kDouble, "1")}, 1s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().message;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms);  // a hang: seconds
  server.Start();
  Result<PgPipe::Replies> r = Error(ErrorCode::kUnavailable, "not yet");
  for (int i = 0; i < 100 && !r; ++i) {
    std::this_thread::sleep_for(50ms);
    r = loop.Call({Q(kDouble, "4")}, 2s);
  }
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)[0].row, std::vector<std::string>{"8"});
}

}  // namespace
}  // namespace orchestra::storage
