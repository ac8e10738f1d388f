#include "integration/orchestra_process.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace orchestra::testing {

std::string Orchestra::BinaryPath() {
  const char* path = std::getenv("ORCHESTRA_BINARY");
  if (path == nullptr || *path == '\0') throw std::runtime_error("ORCHESTRA_BINARY is not set");
  return path;
}

Orchestra::Orchestra(OrchestraOptions options) {
  const std::string config = dir_.File("orchestra.yaml");
  std::ofstream(config) << options.config_yaml;
  std::vector<std::string> args{"serve", "--config", config, "--listen", options.listen};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  // Tests never inherit a developer's provider keys or Cloud settings.
  std::map<std::string, std::string> env{{"OPENAI_API_KEY", ""},
                                         {"GEMINI_API_KEY", ""},
                                         {"ANTHROPIC_API_KEY", ""},
                                         {"GOOGLE_CLOUD_PROJECT", ""},
                                         {"PORT", ""}};
  for (const auto& [k, v] : options.env)
    env[k] = v;
  std::string program = BinaryPath();
  if (options.max_open_files > 0) {
    // prlimit sets the limit and execs the binary: the pid stays the server's.
    const std::string limit = std::to_string(options.max_open_files);
    args.insert(args.begin(), {"--nofile=" + limit + ":" + limit, program});
    program = "prlimit";
  }
  process_ = ChildProcess::Start(program, args, env, dir_.path());
  if (options.wait_until_listening) {
    port_ = ParseListeningPort(process_->WaitForLine("\"listening\"", std::chrono::seconds(20)));
  }
}

Orchestra::~Orchestra() {
  if (process_ && process_->Running()) {
    process_->Signal(SIGTERM);
    process_->Wait(std::chrono::seconds(10));
  }
}

std::unique_ptr<HttpClient> Orchestra::Client() const {
  return std::make_unique<HttpClient>("127.0.0.1", port_);
}

std::optional<int> Orchestra::Stop(std::chrono::milliseconds timeout) {
  process_->Signal(SIGTERM);
  return process_->Wait(timeout);
}

CommandResult RunOrchestra(const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv{"env"};
  for (const auto& [k, v] : env)
    argv.push_back(k + "=" + v);
  argv.push_back(Orchestra::BinaryPath());
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, std::chrono::seconds(30));
}

}  // namespace orchestra::testing
