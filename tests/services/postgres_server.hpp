#pragma once

#include <memory>
#include <string>

#include "services/child.hpp"

// A throwaway PostgreSQL 15 cluster for tests: a server on a free port of 127.0.0.1 with its
// socket and data in a temp directory (in /dev/shm when it has a GiB free, else $TMPDIR; owned by
// the postgres user when running as root, since PostgreSQL refuses to run as root), trust
// authentication, and a UTF8 database `orchestra_test`.
//
// initdb costs seconds and ctest runs every test in its own process, so the cluster is made once
// per build and PostgreSQL version: a template data directory (initdb + the database, shut down
// cleanly) is cached in $ORCHESTRA_BUILD_DIR/test-cache (else $TMPDIR/orchestra-test-cache-<uid>)
// and each server starts on its own copy of it (0.2-0.3 s). Parallel test processes build the
// template once between them (a lock file); a half-built one is never used (it is renamed into
// place when complete). Delete the cache directory to force a rebuild.
namespace orchestra::testing::services {

class PostgresServer {
 public:
  // Throws std::runtime_error (with the server's log) when it cannot start.
  PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  ~PostgresServer();  // immediate shutdown: the data is thrown away

  // One cluster for the whole test process, started on first use and stopped at exit.
  static PostgresServer& Shared();

  void Stop();   // fast shutdown (SIGINT), so the postmaster reaps its backends
  void Start();  // on the same port and data
  bool running() const { return child_ != nullptr; }

  int port() const { return port_; }
  std::string url() const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/orchestra_test";
  }

 private:
  bool TryStart();

  ScratchDir dir_;
  std::string data_;
  int port_ = 0;
  std::unique_ptr<Child> child_;
};

// Where PostgreSQL's server binaries are ($ORCHESTRA_PG_BIN, else /usr/lib/postgresql/15/bin).
std::string PostgresBinDir();

// The cached template data directory (built on first use, see above); the caller copies it.
// Throws std::runtime_error when it cannot be built.
std::string PostgresTemplateDataDir();

}  // namespace orchestra::testing::services
