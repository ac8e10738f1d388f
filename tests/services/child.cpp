#include "services/child.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace orchestra::testing::services {

std::optional<RunAs> PostgresUser() {
  if (::geteuid() != 0) return std::nullopt;
  const passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) {
    throw std::runtime_error("running as root and there is no 'postgres' user to run PostgreSQL");
  }
  return RunAs{pw->pw_uid, pw->pw_gid};
}

Child::Child(const std::vector<std::string>& argv, const std::string& log_path,
             std::optional<RunAs> run_as, bool new_session, int death_signal) {
  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) throw std::runtime_error("cannot open " + log_path + ": " + std::strerror(errno));
  if (run_as && ::fchown(log, run_as->uid, run_as->gid) != 0) {
    ::close(log);
    throw std::runtime_error("cannot chown " + log_path);
  }
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(log);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid_ == 0) {
    if (new_session) {
      ::setsid();
    } else {
      ::setpgid(0, 0);
    }
    ::dup2(log, 1);
    ::dup2(log, 2);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    if (run_as) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(run_as->gid) != 0 ||
          ::setuid(run_as->uid) != 0) {
        ::_exit(126);
      }
    }
    // After setuid, which clears it.
    ::prctl(PR_SET_PDEATHSIG, death_signal);
    if (::getppid() != parent) ::_exit(125);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(log);
}

Child::Child(Child&& other) noexcept : pid_(other.pid_), status_(other.status_) {
  other.pid_ = -1;
}

Child::~Child() {
  if (pid_ > 0) Stop(SIGKILL, std::chrono::milliseconds(2000));
}

bool Child::Running() {
  if (pid_ <= 0 || status_) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    return false;
  }
  return r == 0;
}

std::optional<int> Child::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

int Child::Stop(int sig, std::chrono::milliseconds grace) {
  if (pid_ <= 0) return 0;
  if (Running()) {
    ::kill(pid_, sig);
    if (!Wait(grace)) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      status_ = status;
    }
  }
  pid_ = -1;
  return status_.value_or(0);
}

void RunOrThrow(const std::vector<std::string>& argv, const std::string& log_path,
                std::optional<RunAs> run_as, std::chrono::milliseconds timeout) {
  Child child(argv, log_path, run_as);
  const auto status = child.Wait(timeout);
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    throw std::runtime_error(argv[0] + (status ? " failed" : " timed out") + ":\n" +
                             Tail(log_path));
  }
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

ScratchDir::ScratchDir(const std::string& prefix, const std::string& parent) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string base =
      !parent.empty() ? parent : (tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
  std::string pattern = base + "/" + prefix + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string Tail(const std::string& path, std::size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

}  // namespace orchestra::testing::services
