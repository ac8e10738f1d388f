#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "common/thread_buffers.hpp"
#include "config/config.hpp"

// Structured logs on stdout: JSON lines with Cloud Logging's fields, or text for terminals.
//
// Logging never blocks an event-loop thread: a line is formatted into the calling thread's own
// buffer (a mutex only the writer thread ever contends for, for the instant of a swap) and a
// background thread writes the buffers out. When a buffer passes its cap (the writer cannot
// keep up with stdout) new lines are dropped and counted rather than waited for.
namespace orchestra::observability {

enum class Severity : std::uint8_t { kDebug, kInfo, kWarning, kError };

// The request a line belongs to; every line logged while handling a request carries it.
struct LogContext {
  std::string_view request_id;
  std::string_view trace_id;  // 32 hex digits
  std::string_view span_id;   // 16 hex digits
  bool sampled = false;
};

struct LogField {
  using Value = std::variant<std::string_view, std::int64_t, double, bool>;
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, std::int64_t v) : key(k), value(v) {}
  LogField(std::string_view k, int v) : key(k), value(static_cast<std::int64_t>(v)) {}
  LogField(std::string_view k, std::uint64_t v) : key(k), value(static_cast<std::int64_t>(v)) {}
  LogField(std::string_view k, double v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v) {}
  std::string_view key;
  Value value;
};

// Cloud Logging's HttpRequest, for the access line.
struct AccessRecord {
  std::string_view method;
  std::string_view url;
  int status = 0;
  double latency_seconds = 0;
  std::string_view user_agent;
  std::string_view remote_ip;
  std::uint64_t request_size = 0;
  std::uint64_t response_size = 0;
  std::string_view route;  // the route pattern, for filtering
};

struct LoggerOptions {
  config::LogFormat format = config::LogFormat::kJson;
  config::LogLevel level = config::LogLevel::kInfo;
  std::string gcp_project;           // $GOOGLE_CLOUD_PROJECT: enables logging.googleapis.com/trace
  int fd = 1;                        // where lines go (stdout)
  std::size_t buffer_cap = 4 << 20;  // per thread, before lines are dropped
};

class Logger {
 public:
  explicit Logger(LoggerOptions options);
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;
  ~Logger();  // Stop()

  bool Enabled(Severity s) const { return static_cast<int>(s) >= min_severity_; }

  void Log(Severity severity, std::string_view message, const LogContext* ctx = nullptr,
           std::initializer_list<LogField> fields = {});
  void Access(const AccessRecord& record, const LogContext& ctx);

  // Writes everything logged so far and waits for it (shutdown, fatal start-up errors).
  void Flush();
  // Flushes and stops the writer thread; later lines are written synchronously.
  void Stop();

  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Buffer {
    std::mutex mutex;
    std::string text;
  };

  void Write(Severity severity, std::string_view message, const LogContext* ctx,
             std::initializer_list<LogField> fields, std::string_view raw_json_tail);
  void BeginLine(std::string& out, Severity severity, std::string_view message,
                 const LogContext* ctx);
  void WriterLoop();
  void WriteOut(std::string& text);
  std::size_t Drain(std::string& scratch);

  LoggerOptions options_;
  int min_severity_;
  ThreadBuffers<Buffer> buffers_;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::uint64_t flush_requests_ = 0;
  std::uint64_t flush_done_ = 0;
  bool stopping_ = false;
  std::atomic<bool> running_{false};
  std::atomic<std::uint64_t> dropped_{0};
  std::thread writer_;
};

// The process's logger, installed by main (a plain pointer, not a global object). Before
// installation, and after removal, lines go straight to stderr as JSON.
void InstallLogger(Logger* logger);
Logger* InstalledLogger();

void Log(Severity severity, std::string_view message, std::initializer_list<LogField> fields = {});
void Log(Severity severity, std::string_view message, const LogContext& ctx,
         std::initializer_list<LogField> fields = {});

}  // namespace orchestra::observability
