#pragma once

#include <memory>
#include <string>

#include "services/child.hpp"

// A throwaway redis-server for tests: a free port on 127.0.0.1, no persistence, its files in a
// temp directory. Stop() and Start() again (same port) simulate an outage.
namespace orchestra::testing::services {

class RedisServer {
 public:
  // Starts it; throws std::runtime_error (with the server's log) when it cannot.
  RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer();

  // One server for the whole test process, started on first use and stopped at exit. Tests that
  // share it keep apart by using their own tenants.
  static RedisServer& Shared();

  void Stop();   // SIGKILL and reap: an abrupt outage
  void Start();  // on the same port
  // SIGSTOP / SIGCONT: a server that accepts nothing and answers nothing until resumed.
  void Pause();
  void Resume();
  bool running() const { return child_ != nullptr; }

  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

 private:
  bool TryStart();

  ScratchDir dir_;
  int port_ = 0;
  std::unique_ptr<Child> child_;
};

}  // namespace orchestra::testing::services
