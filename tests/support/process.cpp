#include "support/process.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace orchestra::testing {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// argv and envp arrays prepared before fork: the child may only make async-signal-safe calls.
struct ExecImage {
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;

  ExecImage(const std::string& program, const std::vector<std::string>& args,
            const std::map<std::string, std::string>& extra_env) {
    argv_storage.push_back(program);
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view entry(*e);
      std::string key(entry.substr(0, entry.find('=')));
      if (extra_env.count(key) == 0) env_storage.emplace_back(entry);
    }
    for (const auto& [key, value] : extra_env)
      env_storage.push_back(key + "=" + value);
    for (auto& s : argv_storage)
      argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env_storage)
      envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

// Forks and execs. `out_fd` and `err_fd` become the child's stdout and stderr. Returns the pid;
// throws when fork or exec fails (exec failures travel back through a close-on-exec pipe).
pid_t Spawn(const std::string& program, const std::vector<std::string>& args,
            const std::map<std::string, std::string>& extra_env, const std::string& cwd, int out_fd,
            int err_fd) {
  ExecImage image(program, args, extra_env);
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(status_pipe[0]);
    ::close(status_pipe[1]);
    ThrowErrno("fork");
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    // The test process may ignore SIGPIPE or block signals; the child starts clean.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int err = 0;
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      err = errno;
    } else {
      ::execvpe(image.argv[0], image.argv.data(), image.envp.data());
      err = errno;
    }
    ssize_t ignored = ::write(status_pipe[1], &err, sizeof err);
    (void)ignored;
    ::_exit(127);
  }
  ::close(status_pipe[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(status_pipe[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(status_pipe[0]);
  if (n == sizeof child_errno) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    throw std::runtime_error("cannot start " + program + (cwd.empty() ? "" : " in " + cwd) + ": " +
                             std::strerror(child_errno));
  }
  return pid;
}

// Splits `chunk` into lines; `partial` carries an unfinished line between reads.
void AppendLines(std::string& partial, std::string_view chunk, std::vector<std::string>& lines,
                 std::vector<std::string>& fresh) {
  partial.append(chunk);
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = partial.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = partial.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    fresh.push_back(line);
    lines.push_back(std::move(line));
    start = nl + 1;
  }
  partial.erase(0, start);
}

std::string Tail(const std::vector<std::string>& lines, std::size_t max_lines) {
  std::string out;
  std::size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  if (first > 0) out += "  ... (" + std::to_string(first) + " earlier lines)\n";
  for (std::size_t i = first; i < lines.size(); ++i)
    out += "  " + lines[i] + "\n";
  return out;
}

}  // namespace

std::unique_ptr<ChildProcess> ChildProcess::Start(
    const std::string& program, const std::vector<std::string>& args,
    const std::map<std::string, std::string>& extra_env, const std::string& cwd) {
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->program_ = program;
  const char* echo = std::getenv("ORCHESTRA_TEST_ECHO");
  child->echo_ = echo != nullptr && *echo != '\0' && std::string_view(echo) != "0";
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    ThrowErrno("pipe2");
  }
  if (::pipe2(child->wake_fds_, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
      ::close(fd);
    ThrowErrno("pipe2");
  }
  child->stdout_fd_ = out_pipe[0];
  child->stderr_fd_ = err_pipe[0];
  try {
    child->pid_ = Spawn(program, args, extra_env, cwd, out_pipe[1], err_pipe[1]);
  } catch (...) {
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    throw;  // the destructor closes the rest; pid_ < 0 means nothing to kill
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  child->reader_ = std::thread([raw = child.get()] { raw->ReadLoop(); });
  return child;
}

void ChildProcess::ReadLoop() {
  std::string partial_out;
  std::string partial_err;
  bool out_open = true;
  bool err_open = true;
  char buf[16384];
  while (out_open || err_open) {
    pollfd fds[3] = {{out_open ? stdout_fd_ : -1, POLLIN, 0},
                     {err_open ? stderr_fd_ : -1, POLLIN, 0},
                     {wake_fds_[0], POLLIN, 0}};
    int ready = ::poll(fds, 3, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents != 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      std::vector<std::string> fresh;
      std::lock_guard lock(mutex_);
      std::string& partial = i == 0 ? partial_out : partial_err;
      std::vector<std::string>& lines = i == 0 ? stdout_lines_ : stderr_lines_;
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        if (!partial.empty()) {
          fresh.push_back(partial);
          lines.push_back(std::move(partial));
          partial.clear();
        }
      } else {
        AppendLines(partial, std::string_view(buf, static_cast<std::size_t>(n)), lines, fresh);
      }
      if (echo_) {
        for (const auto& line : fresh) {
          std::fprintf(stderr, "[%s %d %s] %s\n", program_.c_str(), pid_, i == 0 ? "out" : "err",
                       line.c_str());
        }
      }
      changed_.notify_all();
    }
  }
  std::lock_guard lock(mutex_);
  output_closed_ = true;
  changed_.notify_all();
}

bool ChildProcess::Reap(bool block) {
  std::lock_guard lock(reap_mutex_);
  if (exit_code_) return true;
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_code_ = DecodeStatus(status);
    return true;
  }
  if (r < 0) {
    exit_code_ = -1;  // ECHILD: someone else reaped it; nothing left to wait for
    return true;
  }
  return false;
}

std::string ChildProcess::DescribeLocked() const {
  return "stdout:\n" + Tail(stdout_lines_, 60) + "stderr:\n" + Tail(stderr_lines_, 60);
}

std::string ChildProcess::CapturedOutput() const {
  std::lock_guard lock(mutex_);
  return DescribeLocked();
}

std::string ChildProcess::WaitForLine(std::string_view needle, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::optional<Clock::time_point> exited_at;
  std::unique_lock lock(mutex_);
  std::size_t seen_out = 0;
  std::size_t seen_err = 0;
  for (;;) {
    for (; seen_out < stdout_lines_.size(); ++seen_out) {
      if (stdout_lines_[seen_out].find(needle) != std::string::npos) return stdout_lines_[seen_out];
    }
    for (; seen_err < stderr_lines_.size(); ++seen_err) {
      if (stderr_lines_[seen_err].find(needle) != std::string::npos) return stderr_lines_[seen_err];
    }
    const auto now = Clock::now();
    std::string why;
    if (output_closed_) {
      why = "the process closed its output";
    } else if (exited_at && now - *exited_at > std::chrono::milliseconds(200)) {
      why = "the process exited";  // a grandchild may hold the pipes open; do not wait for EOF
    } else if (now >= deadline) {
      why = "timed out after " + std::to_string(timeout.count()) + " ms";
    }
    if (!why.empty()) {
      std::string message = program_ + " (pid " + std::to_string(pid_) + "): no line containing '" +
                            std::string(needle) + "': " + why;
      lock.unlock();
      if (Reap(false)) message += " (exit code " + std::to_string(*exit_code_) + ")";
      lock.lock();
      throw std::runtime_error(message + "\n" + DescribeLocked());
    }
    changed_.wait_for(lock, std::chrono::milliseconds(20));
    if (!exited_at) {
      lock.unlock();
      if (Reap(false)) exited_at = Clock::now();
      lock.lock();
    }
  }
}

std::vector<std::string> ChildProcess::StdoutLines() const {
  std::lock_guard lock(mutex_);
  return stdout_lines_;
}

std::vector<std::string> ChildProcess::StderrLines() const {
  std::lock_guard lock(mutex_);
  return stderr_lines_;
}

void ChildProcess::Signal(int sig) {
  std::lock_guard lock(reap_mutex_);
  // After reaping, the pid may already belong to someone else.
  if (!exit_code_ && pid_ > 0) ::kill(pid_, sig);
}

bool ChildProcess::Running() {
  return !Reap(false);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (!Reap(false)) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(10));
  }
  // Let the reader take in the last lines, so that StdoutLines() after Wait() is complete.
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, std::chrono::milliseconds(500), [&] { return output_closed_; });
  return exit_code_;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !Reap(false)) {
    ::kill(pid_, SIGKILL);
    Reap(true);
  }
  if (reader_.joinable()) {
    // Bounded wait for EOF, then wake the reader (a grandchild may keep the pipes open).
    {
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, std::chrono::milliseconds(500), [&] { return output_closed_; });
    }
    char byte = 0;
    ssize_t ignored = ::write(wake_fds_[1], &byte, 1);
    (void)ignored;
    reader_.join();
  }
  CloseFd(stdout_fd_);
  CloseFd(stderr_fd_);
  CloseFd(wake_fds_[0]);
  CloseFd(wake_fds_[1]);
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  if (argv.empty()) throw std::invalid_argument("RunCommand: empty argv");
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  pid_t pid = -1;
  try {
    pid = Spawn(argv[0], std::vector<std::string>(argv.begin() + 1, argv.end()), {}, {},
                out_pipe[1], out_pipe[1]);
  } catch (const std::exception& e) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return {127, e.what()};
  }
  ::close(out_pipe[1]);
  CommandResult result{0, {}};
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  char buf[16384];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fd{out_pipe[0], POLLIN, 0};
    int ready = ::poll(&fd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      timed_out = ready == 0;
      break;
    }
    ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out_pipe[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = timed_out ? -1 : DecodeStatus(status);
  if (timed_out) result.output += "\n[killed after " + std::to_string(timeout.count()) + " ms]";
  return result;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/orchestra-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) ThrowErrno("mkdtemp " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::File(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

TestCertificates MakeTestCertificates(const std::string& dir) {
  TestCertificates certs{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key"};
  const std::string ca_key = dir + "/ca.key";
  const std::string csr = dir + "/server.csr";
  const std::string ext = dir + "/server.ext";
  {
    std::ofstream out(ext);
    out << "basicConstraints=CA:FALSE\n"
           "keyUsage=digitalSignature,keyEncipherment\n"
           "extendedKeyUsage=serverAuth\n"
           "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n";
  }
  // EC P-256 keys: quick to generate, unlike RSA.
  const std::vector<std::vector<std::string>> steps = {
      {"openssl",
       "req",
       "-x509",
       "-newkey",
       "ec",
       "-pkeyopt",
       "ec_paramgen_curve:prime256v1",
       "-nodes",
       "-keyout",
       ca_key,
       "-out",
       certs.ca_cert,
       "-days",
       "2",
       "-subj",
       "/CN=Orchestra Test CA",
       "-addext",
       "basicConstraints=critical,CA:TRUE",
       "-addext",
       "keyUsage=critical,keyCertSign,cRLSign"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", certs.server_key, "-out", csr, "-subj", "/CN=localhost"},
      {"openssl", "x509", "-req", "-in", csr, "-CA", certs.ca_cert, "-CAkey", ca_key,
       "-CAcreateserial", "-out", certs.server_cert, "-days", "2", "-extfile", ext},
  };
  for (const auto& step : steps) {
    CommandResult r = RunCommand(step, std::chrono::seconds(30));
    if (r.exit_code != 0) {
      std::string cmd;
      for (const auto& a : step)
        cmd += a + " ";
      throw std::runtime_error("openssl failed (" + std::to_string(r.exit_code) + "): " + cmd +
                               "\n" + r.output);
    }
  }
  return certs;
}

}  // namespace orchestra::testing
