#pragma once

#include <memory>
#include <string>

#include "services/child.hpp"

// A throwaway PostgreSQL 15 cluster for tests: initdb in a temp directory (owned by the
// postgres user when running as root, since PostgreSQL refuses to run as root), a server on a
// free port of 127.0.0.1 with its socket in that directory, trust authentication, and a UTF8
// database `orchestra_test`. Starting one takes about a second: share it (Shared()).
namespace orchestra::testing::services {

class PostgresServer {
 public:
  // Throws std::runtime_error (with the server's log) when it cannot start.
  PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  ~PostgresServer();

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

}  // namespace orchestra::testing::services
