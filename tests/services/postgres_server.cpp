#include "services/postgres_server.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <libpq-fe.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

namespace orchestra::testing::services {
namespace {

// Runs `sql` on the server; the first string is the first cell of the result (or "").
bool Query(int port, const std::string& db, const std::string& sql, std::string* cell) {
  const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port) +
                               " user=postgres connect_timeout=2 dbname=" + db;
  PGconn* conn = PQconnectdb(conninfo.c_str());
  bool ok = false;
  if (PQstatus(conn) == CONNECTION_OK) {
    PGresult* r = PQexec(conn, sql.c_str());
    const auto status = PQresultStatus(r);
    ok = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
    if (ok && cell != nullptr) {
      *cell = status == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    }
    PQclear(r);
  }
  PQfinish(conn);
  return ok;
}

}  // namespace

std::string PostgresBinDir() {
  if (const char* env = std::getenv("ORCHESTRA_PG_BIN"); env != nullptr && *env != '\0') {
    return env;
  }
  return "/usr/lib/postgresql/15/bin";
}

PostgresServer::PostgresServer() : dir_("orchestra-pg") {
  const auto run_as = PostgresUser();
  if (run_as && ::chown(dir_.path().c_str(), run_as->uid, run_as->gid) != 0) {
    throw std::runtime_error("cannot chown " + dir_.path() + " to postgres");
  }
  data_ = dir_.path() + "/data";
  const std::string bin = PostgresBinDir();
  if (!std::filesystem::exists(bin + "/postgres")) {
    throw std::runtime_error("PostgreSQL 15 not found in " + bin +
                             " (install postgresql; scripts/setup.sh does)");
  }
  RunOrThrow({bin + "/initdb", "-D", data_, "-A", "trust", "-U", "postgres", "-E", "UTF8",
              "--locale=C", "--no-sync", "--no-instructions"},
             dir_.path() + "/initdb.log", run_as, std::chrono::seconds(120));
  bool started = false;
  for (int attempt = 0; attempt < 5 && !started; ++attempt) {
    port_ = FreePort();
    started = TryStart();
  }
  if (!started) {
    throw std::runtime_error("postgres did not start:\n" + Tail(dir_.path() + "/postgres.log"));
  }
  if (!Query(port_, "postgres", "CREATE DATABASE orchestra_test ENCODING 'UTF8' TEMPLATE template0",
             nullptr)) {
    throw std::runtime_error("cannot create the test database:\n" +
                             Tail(dir_.path() + "/postgres.log"));
  }
}

PostgresServer::~PostgresServer() {
  Stop();
}

PostgresServer& PostgresServer::Shared() {
  static PostgresServer server;
  return server;
}

bool PostgresServer::TryStart() {
  const std::string bin = PostgresBinDir();
  child_ = std::make_unique<Child>(
      std::vector<std::string>{bin + "/postgres", "-D", data_, "-p", std::to_string(port_), "-k",
                               dir_.path(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                               "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                               "shared_buffers=16MB"},
      dir_.path() + "/postgres.log", PostgresUser());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!child_->Running()) break;
    std::string directory;
    // Our cluster, not a stale server that holds the port.
    if (Query(port_, "postgres", "SHOW data_directory", &directory) && directory == data_) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  child_.reset();
  return false;
}

void PostgresServer::Stop() {
  if (child_) child_->Stop(SIGINT, std::chrono::seconds(10));
  child_.reset();
}

void PostgresServer::Start() {
  if (child_) return;
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (TryStart()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("postgres did not restart on port " + std::to_string(port_) + ":\n" +
                           Tail(dir_.path() + "/postgres.log"));
}

}  // namespace orchestra::testing::services
