#include "services/redis_server.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <hiredis/hiredis.h>

#include <signal.h>
#include <sys/time.h>

namespace orchestra::testing::services {
namespace {

std::string RedisServerBinary() {
  if (const char* env = std::getenv("ORCHESTRA_REDIS_SERVER"); env != nullptr && *env != '\0') {
    return env;
  }
  for (const char* candidate : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  throw std::runtime_error("redis-server not found (install redis-server; scripts/setup.sh does)");
}

// The pid the server at `port` reports, or -1 when nothing answers there.
long ServerPid(int port) {
  timeval tv{0, 200'000};
  redisContext* ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (ctx == nullptr) return -1;
  long pid = -1;
  if (ctx->err == 0) {
    redisSetTimeout(ctx, tv);
    auto* reply = static_cast<redisReply*>(redisCommand(ctx, "INFO server"));
    if (reply != nullptr && reply->type == REDIS_REPLY_STRING) {
      const std::string info(reply->str, reply->len);
      const auto at = info.find("process_id:");
      if (at != std::string::npos) pid = std::strtol(info.c_str() + at + 11, nullptr, 10);
    }
    if (reply != nullptr) freeReplyObject(reply);
  }
  redisFree(ctx);
  return pid;
}

}  // namespace

RedisServer::RedisServer() : dir_("orchestra-redis") {
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = FreePort();
    if (TryStart()) return;
  }
  throw std::runtime_error("redis-server did not start:\n" + Tail(dir_.path() + "/redis.log"));
}

RedisServer::~RedisServer() {
  Stop();
}

RedisServer& RedisServer::Shared() {
  static RedisServer server;
  return server;
}

bool RedisServer::TryStart() {
  child_ = std::make_unique<Child>(
      std::vector<std::string>{RedisServerBinary(), "--port", std::to_string(port_), "--bind",
                               "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                               dir_.path(), "--daemonize", "no", "--logfile", ""},
      dir_.path() + "/redis.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!child_->Running()) break;  // e.g. the port was taken after all
    // Our server, not a stale one that holds the port.
    if (ServerPid(port_) == child_->pid()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  child_.reset();
  return false;
}

void RedisServer::Stop() {
  if (child_) child_->Stop(SIGKILL, std::chrono::milliseconds(2000));
  child_.reset();
}

void RedisServer::Pause() {
  if (child_) ::kill(child_->pid(), SIGSTOP);
}

void RedisServer::Resume() {
  if (child_) ::kill(child_->pid(), SIGCONT);
}

void RedisServer::Start() {
  if (child_) return;
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (TryStart()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_) + ":\n" +
                           Tail(dir_.path() + "/redis.log"));
}

}  // namespace orchestra::testing::services
