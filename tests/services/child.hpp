#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

// A minimal process spawner for the service fixtures. It exists beside the shared helper in
// tests/support because servers need two things a general helper does not offer: running as
// another user (PostgreSQL refuses root) without a runuser/su process in between, so that the
// pid we wait for is the server's own; and dying with the test process (PR_SET_PDEATHSIG) even
// when a test crashes, since the container's init reaps nothing. (The signal follows the thread
// that started the child: start servers from the test's main thread.)
namespace orchestra::testing::services {

struct RunAs {
  uid_t uid;
  gid_t gid;
};

// The postgres user's ids when running as root; nullopt when already unprivileged. Throws when
// running as root and the user does not exist.
std::optional<RunAs> PostgresUser();

class Child {
 public:
  // Starts argv[0] (an absolute path) with stdout and stderr appended to `log_path`, in a
  // process group of its own, or with `new_session` in a session of its own (setsid), for
  // servers that start children of their own which must be found and stopped with them.
  // `death_signal` is what it gets when the thread that started it exits (a crashed test):
  // SIGKILL, or a signal a wrapper script traps to take its own children down too.
  // Throws std::runtime_error when fork or exec fails.
  Child(const std::vector<std::string>& argv, const std::string& log_path,
        std::optional<RunAs> run_as = std::nullopt, bool new_session = false,
        int death_signal = 9 /* SIGKILL */);
  Child(Child&& other) noexcept;
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;
  ~Child();  // Kill(SIGKILL)

  pid_t pid() const { return pid_; }
  // Whether it still runs (reaps it when it has exited).
  bool Running();
  // Sends `sig`, waits up to `grace`, then SIGKILLs; always reaps. Returns the wait status.
  int Stop(int sig, std::chrono::milliseconds grace);
  // Waits for it to exit on its own; nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Runs a command to completion; throws std::runtime_error with the log tail when it fails.
void RunOrThrow(const std::vector<std::string>& argv, const std::string& log_path,
                std::optional<RunAs> run_as, std::chrono::milliseconds timeout);

// A port that was free a moment ago on 127.0.0.1 (callers check that their server bound it).
int FreePort();

// A fresh directory under `parent` (default $TMPDIR, else /tmp), removed by the destructor.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix, const std::string& parent = {});
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The last `bytes` of a file (error messages).
std::string Tail(const std::string& path, std::size_t bytes = 2000);

}  // namespace orchestra::testing::services
