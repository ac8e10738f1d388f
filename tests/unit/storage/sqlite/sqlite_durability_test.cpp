// An acknowledged write survives kill -9 of the process that made it (DESIGN.md §6), at the
// library level: a child process writes through SqliteBackend and reports each acknowledged
// write on a pipe; the test kills it with SIGKILL at an arbitrary moment and reopens the file.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "services/child.hpp"
#include "storage/sqlite/sqlite_backend.hpp"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace orchestra::storage {
namespace {

using namespace std::chrono_literals;

[[noreturn]] void WriteUntilKilled(const std::string& path, int ack_fd) {
  try {
    auto backend = SqliteBackend::Open({.path = path, .readers = 1});
    for (int i = 0;; ++i) {
      const Call call{"tenant", std::chrono::steady_clock::now() + 10s};
      const std::string key = "key-" + std::to_string(i);
      if (!backend->Store(call, key, "{\"i\":" + std::to_string(i) + "}", std::nullopt)) {
        ::_exit(2);
      }
      std::string ack = "k " + key + "\n";
      if (i % 4 == 0) {
        auto id = backend->CreateCheckpoint(call, "agent", "00000000000000000000000000",
                                            "{\"i\":" + std::to_string(i) + "}", "{}", 1000000);
        if (!id) ::_exit(3);
        ack += "c " + *id + "\n";
      }
      if (::write(ack_fd, ack.data(), ack.size()) != static_cast<ssize_t>(ack.size())) ::_exit(4);
    }
  } catch (...) {
    ::_exit(5);
  }
}

TEST(SqliteDurability, AcknowledgedWritesSurviveKill9) {
  orchestra::testing::services::ScratchDir dir("orchestra-sqlite-crash");
  const std::string path = dir.path() + "/orchestra.db";
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    WriteUntilKilled(path, fds[1]);
  }
  ::close(fds[1]);

  // Read acknowledgements until enough writes are in, then kill the writer mid-stream.
  std::string acks;
  char buffer[4096];
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  bool killed = false;
  for (;;) {
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n <= 0) break;  // the writer is gone and the pipe drained
    acks.append(buffer, static_cast<std::size_t>(n));
    if (!killed && (acks.size() > 20000 || std::chrono::steady_clock::now() > deadline)) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
  }
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the writer stopped by itself with status " << status;

  std::vector<std::string> keys;
  std::vector<std::string> checkpoint_ids;
  std::size_t start = 0;
  for (std::size_t end; (end = acks.find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string line = acks.substr(start, end - start);
    (line[0] == 'k' ? keys : checkpoint_ids).push_back(line.substr(2));
  }
  ASSERT_GT(keys.size(), 100U);

  auto backend = SqliteBackend::Open({.path = path, .readers = 1});
  const Call call{"tenant", std::chrono::steady_clock::now() + 10s};
  for (const std::string& key : keys) {
    auto value = backend->Retrieve(call, key);
    ASSERT_TRUE(value.has_value()) << value.error().message;
    EXPECT_TRUE(value->has_value()) << "acknowledged " << key << " was lost";
  }
  for (const std::string& id : checkpoint_ids) {
    auto checkpoint = backend->RestoreCheckpoint(call, "agent", id);
    ASSERT_TRUE(checkpoint.has_value()) << checkpoint.error().message;
    EXPECT_TRUE(checkpoint->has_value()) << "acknowledged checkpoint " << id << " was lost";
  }
  // The database is usable for writing after the crash.
  EXPECT_TRUE(backend->Store(call, "after", "1", std::nullopt).has_value());
}

}  // namespace
}  // namespace orchestra::storage
