// Cold start: the time from exec of a server to its first 200 from a probe path, polled every
// millisecond over fresh TCP connections. Prints each run and the median.
//
//   orchestra_bench_startup <runs> <port> <path> -- <server argv...>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

bool ProbeOk(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[64];
      ssize_t n = read(fd, buf, sizeof(buf) - 1);
      if (n > 12) {
        buf[n] = '\0';
        ok = std::strncmp(buf, "HTTP/1.1 200", 12) == 0 ||
             std::strncmp(buf, "HTTP/1.0 200", 12) == 0;
      }
    }
  }
  close(fd);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6 || std::string(argv[4]) != "--") {
    std::fprintf(stderr, "usage: %s <runs> <port> <path> -- <server argv...>\n", argv[0]);
    return 2;
  }
  const int runs = std::atoi(argv[1]);
  const int port = std::atoi(argv[2]);
  const std::string path = argv[3];
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    pid_t pid = fork();
    if (pid == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execv(argv[5], argv + 5);
      _exit(127);
    }
    bool up = false;
    while (Clock::now() - start < std::chrono::seconds(5)) {
      if (ProbeOk(port, path)) {
        up = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const double elapsed = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!up) {
      std::fprintf(stderr, "run %d: no 200 from %s within 5 s\n", i, path.c_str());
      return 1;
    }
    ms.push_back(elapsed);
    std::printf("run %2d: %.2f ms\n", i, elapsed);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("median: %.2f ms  (min %.2f, max %.2f, %d runs)\n", ms[ms.size() / 2], ms.front(),
              ms.back(), runs);
  return 0;
}
