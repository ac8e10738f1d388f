#include "services/firestore_emulator.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace orchestra::testing::services {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string GcloudBinary() {
  if (const char* env = std::getenv("ORCHESTRA_GCLOUD"); env != nullptr && *env != '\0') {
    return env;
  }
  for (const char* candidate :
       {"/usr/bin/gcloud", "/usr/lib/google-cloud-sdk/bin/gcloud", "/usr/local/bin/gcloud"}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  return {};
}

bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Sends one HTTP/1.1 request (Connection: close) and returns the whole response, or "" when
// nothing answered within `timeout` per read.
std::string Exchange(int port, const std::string& method, const std::string& target,
                     const std::string& body, std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string request = method + " " + target +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                          "Content-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      // Until the body is complete (the emulator may keep the connection open all the same).
      char buf[4096];
      ssize_t n = 0;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
        response.append(buf, static_cast<std::size_t>(n));
        const auto head_end = response.find("\r\n\r\n");
        if (head_end == std::string::npos) continue;
        std::string head = response.substr(0, head_end);
        for (char& c : head)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const auto at = head.find("content-length:");
        if (at == std::string::npos) continue;
        const std::size_t length = std::strtoul(head.c_str() + at + 15, nullptr, 10);
        if (response.size() >= head_end + 4 + length) break;
      }
    }
  }
  ::close(fd);
  return response;
}

// Whether a GET / on the port answers "Ok" (the emulator's health answer) within `timeout`.
bool Answers(int port, std::chrono::milliseconds timeout) {
  const std::string response = Exchange(port, "GET", "/", "", timeout);
  return response.starts_with("HTTP/1.1 200") && response.find("Ok") != std::string::npos;
}

// The JVM answers its first real requests slowly (seconds on a busy machine): a write, a read
// and a query before the tests' first calls, whose deadlines are meant for a warm emulator.
bool Warm(int port, Clock::time_point deadline) {
  const std::string documents = "/v1/projects/demo-warmup/databases/(default)/documents";
  const std::string name = "projects/demo-warmup/databases/(default)/documents/warm/up";
  const std::pair<std::string, std::string> calls[] = {
      {documents + ":commit",
       R"({"writes":[{"update":{"name":")" + name + R"(","fields":{"v":{"stringValue":"1"}}}}]})"},
      {documents + ":batchGet", R"({"documents":[")" + name + R"("]})"},
      {documents + "/warm/up:runQuery", R"({"structuredQuery":{"from":[{"collectionId":"x"}]}})"},
  };
  for (const auto& [target, body] : calls) {
    while (!Exchange(port, "POST", target, body, 10s).starts_with("HTTP/1.1 200")) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(100ms);
    }
  }
  return true;
}

struct ProcStat {
  pid_t pid = 0;
  char state = '?';
  pid_t session = 0;
};

// Every process whose session is `sid`, zombies included.
std::vector<ProcStat> SessionMembers(pid_t sid) {
  std::vector<ProcStat> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    std::ifstream in("/proc/" + std::string(entry->d_name) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    ProcStat s;
    long ppid = 0, pgrp = 0, session = 0;
    if (!(rest >> s.state >> ppid >> pgrp >> session)) continue;
    if (session != sid) continue;
    s.pid = static_cast<pid_t>(pid);
    s.session = static_cast<pid_t>(session);
    out.push_back(s);
  }
  ::closedir(proc);
  return out;
}

}  // namespace

bool FirestoreEmulator::AvailableForTests(std::string& why) {
  static const std::string missing = [] {
    std::string reason;
    if (Available(&reason)) return std::string();
    std::fprintf(stderr,
                 "\n**********************************************************************\n"
                 "*** FIRESTORE EMULATOR MISSING: the Firestore tests are SKIPPED.\n"
                 "*** %s\n"
                 "**********************************************************************\n\n",
                 reason.c_str());
    return reason;
  }();
  why = "Firestore emulator missing: " + missing;
  return missing.empty();
}

bool FirestoreEmulator::Available(std::string* why) {
  const std::string gcloud = GcloudBinary();
  auto missing = [&](const std::string& what) {
    if (why != nullptr) *why = what;
    return false;
  };
  if (gcloud.empty()) {
    return missing(
        "the Google Cloud CLI (gcloud) is not installed: install google-cloud-cli and "
        "google-cloud-cli-firestore-emulator from Google's apt repository (or set "
        "$ORCHESTRA_GCLOUD)");
  }
  // bin/gcloud → <sdk>/platform/cloud-firestore-emulator
  const auto sdk = std::filesystem::canonical(gcloud).parent_path().parent_path();
  if (!std::filesystem::exists(sdk / "platform/cloud-firestore-emulator")) {
    return missing("gcloud at " + gcloud +
                   " has no Firestore emulator: install google-cloud-cli-firestore-emulator "
                   "(or `gcloud components install cloud-firestore-emulator`)");
  }
  if (!OnPath("java")) {
    return missing("the Firestore emulator needs Java: install openjdk-17-jre-headless");
  }
  return true;
}

FirestoreEmulator::FirestoreEmulator() : dir_("orchestra-firestore") {
  // gcloud runs the emulator as its grandchild: when gcloud dies first, the orphans come to
  // this process (not to an init that may not reap), and Stop() waits for them.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::string why;
  if (!Available(&why)) throw std::runtime_error("Firestore emulator unavailable: " + why);
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    if (TryStart()) return;
  }
  throw std::runtime_error("the Firestore emulator did not start:\n" +
                           Tail(dir_.path() + "/emulator.log"));
}

FirestoreEmulator::~FirestoreEmulator() {
  Stop();
}

FirestoreEmulator& FirestoreEmulator::Shared() {
  static FirestoreEmulator emulator;
  return emulator;
}

bool FirestoreEmulator::TryStart() {
  const std::string config = dir_.path() + "/gcloud";
  std::filesystem::create_directories(config);
  // A shell leads the session and waits for gcloud. Should this process die without Stop()
  // (a crashed test), the shell gets SIGTERM and kills gcloud's process group (gcloud makes
  // itself a group leader; the emulator's own shell and the JVM are in it), which would
  // otherwise outlive us, and its own.
  child_ = std::make_unique<Child>(
      std::vector<std::string>{
          "/bin/sh", "-c",
          "\"$@\" & gcloud=$!; trap 'kill -KILL -$gcloud; kill -KILL 0' TERM; wait",
          "firestore-emulator", "/usr/bin/env", "CLOUDSDK_CONFIG=" + config,
          "CLOUDSDK_CORE_DISABLE_PROMPTS=1", "CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
          "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
          "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true", GcloudBinary(), "emulators",
          "firestore", "start", "--host-port=127.0.0.1:" + std::to_string(port_)},
      dir_.path() + "/emulator.log", std::nullopt, /*new_session=*/true, SIGTERM);
  // Java's start-up on a busy 2-core machine can take well over ten seconds.
  const auto deadline = Clock::now() + 90s;
  while (Clock::now() < deadline) {
    if (!child_->Running()) break;  // e.g. the port was taken after all
    if (Answers(port_, 500ms)) {
      if (Warm(port_, deadline)) return true;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  Stop();
  return false;
}

void FirestoreEmulator::SignalSession(int sig) {
  if (!child_) return;
  for (const ProcStat& p : SessionMembers(child_->pid())) {
    if (p.state != 'Z') ::kill(p.pid, sig);
  }
}

void FirestoreEmulator::Stop() {
  if (!child_) return;
  const pid_t sid = child_->pid();
  const auto deadline = Clock::now() + 10s;
  for (;;) {
    bool remaining = false;
    for (const ProcStat& p : SessionMembers(sid)) {
      if (p.pid == sid) continue;  // the leader: Child reaps it below
      if (p.state != 'Z') ::kill(p.pid, SIGKILL);
      // Ours to reap once its parent is gone (this process is a subreaper).
      int status = 0;
      if (::waitpid(p.pid, &status, WNOHANG) == p.pid) continue;
      remaining = true;
    }
    child_->Stop(SIGKILL, 2s);  // once reaped, later calls do nothing
    if (!remaining || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(10ms);
  }
  child_.reset();
}

void FirestoreEmulator::Pause() {
  SignalSession(SIGSTOP);
}

void FirestoreEmulator::Resume() {
  SignalSession(SIGCONT);
}

void FirestoreEmulator::Start() {
  if (child_) return;
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (TryStart()) return;
    std::this_thread::sleep_for(200ms);
  }
  throw std::runtime_error("the Firestore emulator did not restart on port " +
                           std::to_string(port_) + ":\n" + Tail(dir_.path() + "/emulator.log"));
}

}  // namespace orchestra::testing::services
