#include "services/postgres_server.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <libpq-fe.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

namespace orchestra::testing::services {
namespace {

namespace fs = std::filesystem;

// Bump when the template's contents change (another database, other initdb options).
constexpr const char* kTemplateLayout = "v1";

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

// Starts a postmaster on `data` (its socket in `socket_dir`) and waits until it answers on
// `port`; nullptr when it exits first or does not answer within 30 s (e.g. the port was taken).
std::unique_ptr<Child> StartPostmaster(const std::string& data, const std::string& socket_dir,
                                       int port) {
  const std::string bin = PostgresBinDir();
  auto child = std::make_unique<Child>(
      std::vector<std::string>{bin + "/postgres", "-D", data, "-p", std::to_string(port), "-k",
                               socket_dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                               "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                               "shared_buffers=16MB"},
      socket_dir + "/postgres.log", PostgresUser());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!child->Running()) break;
    std::string directory;
    // Our cluster, not a stale server that holds the port.
    if (Query(port, "postgres", "SHOW data_directory", &directory) && directory == data) {
      return child;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return nullptr;
}

std::string CopyCommand() {
  for (const char* cp : {"/bin/cp", "/usr/bin/cp"}) {
    if (fs::exists(cp)) return cp;
  }
  throw std::runtime_error("cp not found");
}

// `cp -a`: as root it keeps the postgres user's ownership, and it keeps the 0700 modes.
void CopyTree(const std::string& from, const std::string& to, const std::string& log) {
  RunOrThrow({CopyCommand(), "-a", "--reflink=auto", from, to}, log, std::nullopt,
             std::chrono::seconds(120));
}

// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" → "15.18_Debian_15.18-0_deb12u1".
std::string PostgresVersion() {
  const std::string command = "'" + PostgresBinDir() + "/postgres' -V 2>/dev/null";
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r"); p != nullptr) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p) != nullptr)
      out += buf;
    ::pclose(p);
  }
  if (const auto at = out.find(')'); at != std::string::npos) out = out.substr(at + 1);
  std::string key;
  for (char c : out) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '-';
    if (plain) {
      key += c;
    } else if (!key.empty() && key.back() != '_') {
      key += '_';
    }
  }
  while (!key.empty() && key.back() == '_')
    key.pop_back();
  if (key.empty()) throw std::runtime_error("cannot run " + PostgresBinDir() + "/postgres -V");
  return key;
}

// A directory only we can write to: ours and not writable by others (it may sit in a shared
// $TMPDIR, and whoever controls the template controls what the tests run against).
bool PrivateDirectory(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() &&
         (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

std::string CacheRoot() {
  if (const char* build = std::getenv("ORCHESTRA_BUILD_DIR"); build != nullptr && *build != '\0') {
    const std::string root = std::string(build) + "/test-cache";
    if (PrivateDirectory(root)) return root;
  }
  const char* tmp = std::getenv("TMPDIR");
  const std::string root = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                           "/orchestra-test-cache-" + std::to_string(::geteuid());
  if (PrivateDirectory(root)) return root;
  // Nowhere safe to share it: one template for this process only.
  static ScratchDir private_root("orchestra-test-cache");
  return private_root.path();
}

// An exclusive flock held for the object's lifetime (released by the kernel if we crash).
class FileLock {
 public:
  explicit FileLock(const std::string& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd_);
        throw std::runtime_error("cannot lock " + path + ": " + std::strerror(errno));
      }
    }
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock() { ::close(fd_); }

 private:
  int fd_;
};

// initdb and the test database, in a scratch directory PostgreSQL can reach (a build directory
// may not be open to the postgres user), then copied into `destination`.
void BuildTemplate(const std::string& destination) {
  const auto run_as = PostgresUser();
  ScratchDir work("orchestra-pg-template");
  if (run_as && ::chown(work.path().c_str(), run_as->uid, run_as->gid) != 0) {
    throw std::runtime_error("cannot chown " + work.path() + " to postgres");
  }
  const std::string data = work.path() + "/data";
  const std::string bin = PostgresBinDir();
  // 1 MiB WAL segments instead of 16: every test copies the template.
  RunOrThrow({bin + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
              "--locale=C", "--no-sync", "--no-instructions", "--wal-segsize=1"},
             work.path() + "/initdb.log", run_as, std::chrono::seconds(120));
  std::unique_ptr<Child> server;
  int port = 0;
  for (int attempt = 0; attempt < 5 && !server; ++attempt) {
    port = FreePort();
    server = StartPostmaster(data, work.path(), port);
  }
  if (!server) {
    throw std::runtime_error("postgres did not start:\n" + Tail(work.path() + "/postgres.log"));
  }
  if (!Query(port, "postgres", "CREATE DATABASE orchestra_test ENCODING 'UTF8' TEMPLATE template0",
             nullptr)) {
    throw std::runtime_error("cannot create the test database:\n" +
                             Tail(work.path() + "/postgres.log"));
  }
  // A clean shutdown, so that copies start without crash recovery.
  const int status = server->Stop(SIGINT, std::chrono::seconds(30));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("postgres did not shut down cleanly:\n" +
                             Tail(work.path() + "/postgres.log"));
  }
  fs::create_directories(destination);
  CopyTree(data, destination + "/data", work.path() + "/copy.log");
}

// Where each server's copy of the template goes: memory (/dev/shm) when it has room, since a
// copy on a busy disk costs up to a second; else $TMPDIR.
std::string DataParent() {
  constexpr unsigned long long kMinFree = 1ULL << 30;
  struct statvfs fs {};
  if (::access("/dev/shm", W_OK | X_OK) == 0 && ::statvfs("/dev/shm", &fs) == 0 &&
      static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize >= kMinFree) {
    return "/dev/shm";
  }
  return {};
}

}  // namespace

std::string PostgresBinDir() {
  if (const char* env = std::getenv("ORCHESTRA_PG_BIN"); env != nullptr && *env != '\0') {
    return env;
  }
  return "/usr/lib/postgresql/15/bin";
}

std::string PostgresTemplateDataDir() {
  if (!fs::exists(PostgresBinDir() + "/postgres")) {
    throw std::runtime_error("PostgreSQL 15 not found in " + PostgresBinDir() +
                             " (install postgresql; scripts/setup.sh does)");
  }
  const std::string root = CacheRoot();
  const std::string name = "postgres-" + PostgresVersion() + "-uid" + std::to_string(::geteuid()) +
                           "-" + kTemplateLayout;
  const std::string ready = root + "/" + name;
  // Complete once it exists: it is renamed into place when built.
  if (fs::exists(ready + "/data/PG_VERSION")) return ready + "/data";
  FileLock lock(root + "/" + name + ".lock");
  if (fs::exists(ready + "/data/PG_VERSION")) return ready + "/data";  // built meanwhile
  const std::string building = ready + ".building";
  std::error_code ec;
  fs::remove_all(building, ec);  // left by a process that died while building
  BuildTemplate(building);
  fs::remove_all(ready, ec);
  fs::rename(building, ready);
  return ready + "/data";
}

PostgresServer::PostgresServer() : dir_("orchestra-pg", DataParent()) {
  const auto run_as = PostgresUser();
  if (run_as && ::chown(dir_.path().c_str(), run_as->uid, run_as->gid) != 0) {
    throw std::runtime_error("cannot chown " + dir_.path() + " to postgres");
  }
  data_ = dir_.path() + "/data";
  CopyTree(PostgresTemplateDataDir(), data_, dir_.path() + "/copy.log");
  bool started = false;
  for (int attempt = 0; attempt < 5 && !started; ++attempt) {
    port_ = FreePort();
    started = TryStart();
  }
  if (!started) {
    throw std::runtime_error("postgres did not start (template " + PostgresTemplateDataDir() +
                             "; delete it to rebuild):\n" + Tail(dir_.path() + "/postgres.log"));
  }
}

PostgresServer::~PostgresServer() {
  // Immediate shutdown: no checkpoint, the directory is removed next.
  if (child_) child_->Stop(SIGQUIT, std::chrono::seconds(10));
  child_.reset();
}

PostgresServer& PostgresServer::Shared() {
  static PostgresServer server;
  return server;
}

bool PostgresServer::TryStart() {
  child_ = StartPostmaster(data_, dir_.path(), port_);
  return child_ != nullptr;
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
