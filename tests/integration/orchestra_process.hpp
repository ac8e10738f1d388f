#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/http_client.hpp"
#include "support/process.hpp"

// The real `orchestra` binary, started for a test with its own config file and data directory.
namespace orchestra::testing {

struct OrchestraOptions {
  std::string config_yaml;                 // written to <tmp>/orchestra.yaml
  std::map<std::string, std::string> env;  // added to the environment
  std::vector<std::string> extra_args;     // after `serve --config ...`
  std::string listen = "127.0.0.1:0";
  bool wait_until_listening = true;
  int max_open_files = 0;  // > 0: the process's RLIMIT_NOFILE (started through prlimit)
};

class Orchestra {
 public:
  explicit Orchestra(OrchestraOptions options = {});
  ~Orchestra();

  std::uint16_t port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  ChildProcess& process() { return *process_; }
  const TempDir& dir() const { return dir_; }
  // A new client connection to this server.
  std::unique_ptr<HttpClient> Client() const;
  // SIGTERM and wait for the exit code.
  std::optional<int> Stop(std::chrono::milliseconds timeout = std::chrono::seconds(15));

  static std::string BinaryPath();

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

// Runs `orchestra <args>` to completion.
CommandResult RunOrchestra(const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env = {});

}  // namespace orchestra::testing
