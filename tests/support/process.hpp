#pragma once

// Child processes and temporary directories for integration tests. Test code, so failures throw
// (std::runtime_error with the captured output) instead of returning Result.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace orchestra::testing {

// A started program whose stdout and stderr are captured line by line by a reader thread.
// Thread-safe. The child gets SIGKILL when the thread that started it exits (PR_SET_PDEATHSIG),
// so a crashed test never leaves a server behind; start children from the test's own thread.
// Set ORCHESTRA_TEST_ECHO=1 to copy the child's lines to stderr as they arrive.
class ChildProcess {
 public:
  // fork+exec `program` (searched in PATH when it has no '/') with `args`; `extra_env` is added
  // to (and overrides) the inherited environment; `cwd` empty = ours. stdin is /dev/null.
  // Throws std::runtime_error if it cannot start (including a failed exec).
  static std::unique_ptr<ChildProcess> Start(
      const std::string& program, const std::vector<std::string>& args,
      const std::map<std::string, std::string>& extra_env = {}, const std::string& cwd = {});

  // Waits until a captured line (stdout or stderr, including lines captured before the call)
  // contains `needle`; returns that line. Throws std::runtime_error with the captured output
  // when the timeout passes or the process exits first.
  std::string WaitForLine(std::string_view needle,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10));
  std::vector<std::string> StdoutLines() const;  // all captured stdout lines so far
  std::vector<std::string> StderrLines() const;
  // Both streams, for failure messages ("stdout:\n...\nstderr:\n...").
  std::string CapturedOutput() const;
  pid_t pid() const { return pid_; }
  // Sends `sig` unless the process was already reaped.
  void Signal(int sig);
  // Waits for exit: the exit code, or 128+signal when killed by a signal; nullopt on timeout.
  // Once it has returned a value it returns the same value again.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // True while the process has not exited.
  bool Running();

  // SIGKILL + waitpid if still running; joins the reader thread. Never leaves zombies (the
  // container's init does not reap).
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

 private:
  ChildProcess() = default;
  void ReadLoop();
  // waitpid, blocking or not; true once the exit status is known.
  bool Reap(bool block);
  std::string DescribeLocked() const;

  std::string program_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  int wake_fds_[2] = {-1, -1};  // wakes the reader thread at destruction
  std::thread reader_;
  bool echo_ = false;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> stdout_lines_;
  std::vector<std::string> stderr_lines_;
  bool output_closed_ = false;  // both pipes reached EOF

  std::mutex reap_mutex_;
  std::optional<int> exit_code_;
};

// Runs a command to completion (openssl, redis-cli, initdb...) with stdout and stderr merged.
// exit_code is the exit code, 128+signal when killed, 127 when it could not be started, and -1
// when the timeout passed (the command is then killed).
struct CommandResult {
  int exit_code;
  std::string output;
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A fresh temporary directory ($TMPDIR or /tmp), removed recursively in the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(std::string_view name) const;

 private:
  std::string path_;
};

// A self-signed CA and a server certificate it signed (for 127.0.0.1, ::1 and localhost), made
// with the openssl CLI in `dir`. Throws std::runtime_error with openssl's output on failure.
struct TestCertificates {
  std::string ca_cert;      // PEM, for clients to trust
  std::string server_cert;  // PEM
  std::string server_key;   // PEM, unencrypted
};
TestCertificates MakeTestCertificates(const std::string& dir);

}  // namespace orchestra::testing
