#include "observability/log.hpp"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <ctime>

#include "common/text.hpp"
#include <unistd.h>

namespace orchestra::observability {
namespace {

std::atomic<Logger*> installed_logger{nullptr};

constexpr std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kDebug:
      return "DEBUG";
    case Severity::kInfo:
      return "INFO";
    case Severity::kWarning:
      return "WARNING";
    case Severity::kError:
      return "ERROR";
  }
  return "DEFAULT";
}

// RFC 3339 UTC with microseconds; the seconds part is formatted once per second per thread.
void AppendTime(std::string& out) {
  thread_local std::int64_t cached_second = -1;
  thread_local char cached[32];
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  std::int64_t second = micros / 1'000'000;
  if (second != cached_second) {
    std::time_t t = second;
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
    cached_second = second;
  }
  out += cached;
  char frac[8];
  auto us = static_cast<unsigned>(micros % 1'000'000);
  frac[0] = '.';
  for (int i = 6; i >= 1; --i) {
    frac[i] = static_cast<char>('0' + us % 10);
    us /= 10;
  }
  out.append(frac, 7);
  out += 'Z';
}

void AppendInt(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void AppendDouble(std::string& out, double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  AppendJsonEscaped(out, s);
  out += '"';
}

void WriteAll(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stdout is gone; nothing sensible remains to be done with the line
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

Logger::Logger(LoggerOptions options)
    : options_(std::move(options)), min_severity_(static_cast<int>(options_.level)) {
  running_ = true;
  writer_ = std::thread([this] { WriterLoop(); });
}

Logger::~Logger() {
  Stop();
  if (installed_logger.load() == this) installed_logger.store(nullptr);
}

void Logger::BeginLine(std::string& out, Severity severity, std::string_view message,
                       const LogContext* ctx) {
  if (options_.format == config::LogFormat::kText) {
    AppendTime(out);
    out += ' ';
    out += SeverityName(severity);
    out += ' ';
    out += message;
    if (ctx != nullptr && !ctx->request_id.empty()) {
      out += " request_id=";
      out += ctx->request_id;
    }
    return;
  }
  out += "{\"severity\":\"";
  out += SeverityName(severity);
  out += "\",\"time\":\"";
  AppendTime(out);
  out += "\",\"message\":";
  AppendJsonString(out, message);
  if (ctx == nullptr) return;
  if (!ctx->request_id.empty()) {
    out += ",\"requestId\":";
    AppendJsonString(out, ctx->request_id);
  }
  if (!ctx->trace_id.empty()) {
    if (!options_.gcp_project.empty()) {
      out += ",\"logging.googleapis.com/trace\":\"projects/";
      AppendJsonEscaped(out, options_.gcp_project);
      out += "/traces/";
      out += ctx->trace_id;
      out += "\",\"logging.googleapis.com/trace_sampled\":";
      out += ctx->sampled ? "true" : "false";
    } else {
      out += ",\"traceId\":\"";
      out += ctx->trace_id;
      out += '"';
    }
  }
  if (!ctx->span_id.empty()) {
    out += ",\"logging.googleapis.com/spanId\":\"";
    out += ctx->span_id;
    out += '"';
  }
}

void Logger::Log(Severity severity, std::string_view message, const LogContext* ctx,
                 std::initializer_list<LogField> fields) {
  if (Enabled(severity)) Write(severity, message, ctx, fields, {});
}

void Logger::Write(Severity severity, std::string_view message, const LogContext* ctx,
                   std::initializer_list<LogField> fields, std::string_view raw_json_tail) {
  std::string line;
  std::string* out = &line;
  Buffer* buffer = nullptr;
  std::unique_lock<std::mutex> lock;
  if (running_.load(std::memory_order_acquire)) {
    buffer = &buffers_.Local();
    lock = std::unique_lock(buffer->mutex);
    out = &buffer->text;
  }
  std::size_t start = out->size();
  BeginLine(*out, severity, message, ctx);
  const bool json = options_.format == config::LogFormat::kJson;
  for (const LogField& f : fields) {
    if (json) {
      *out += ",\"";
      AppendJsonEscaped(*out, f.key);
      *out += "\":";
    } else {
      *out += ' ';
      *out += f.key;
      *out += '=';
    }
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string_view>) {
            if (json) {
              AppendJsonString(*out, v);
            } else {
              *out += v;
            }
          } else if constexpr (std::is_same_v<T, bool>) {
            *out += v ? "true" : "false";
          } else if constexpr (std::is_same_v<T, double>) {
            AppendDouble(*out, v);
          } else {
            AppendInt(*out, v);
          }
        },
        f.value);
  }
  *out += raw_json_tail;
  *out += json ? "}\n" : "\n";
  if (buffer == nullptr) {
    WriteAll(options_.fd, line);
    return;
  }
  if (out->size() > options_.buffer_cap) {
    out->resize(start);
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Wake the writer only when a buffer grows large; otherwise it wakes on its own schedule.
  if (out->size() >= (64 << 10) && start < (64 << 10)) wake_.notify_one();
}

void Logger::Access(const AccessRecord& r, const LogContext& ctx) {
  // At log_level warning, failed requests are still logged; at error, server errors.
  const Severity severity = r.status >= 500   ? Severity::kError
                            : r.status >= 400 ? Severity::kWarning
                                              : Severity::kInfo;
  if (!Enabled(severity)) return;
  thread_local std::string message;
  message.clear();
  message += r.method;
  message += ' ';
  message += r.url;
  message += ' ';
  AppendInt(message, r.status);
  if (options_.format == config::LogFormat::kText) {
    Write(severity, message, &ctx,
          {{"latency_ms", r.latency_seconds * 1e3},
           {"remote_ip", r.remote_ip},
           {"bytes_in", r.request_size},
           {"bytes_out", r.response_size}},
          {});
    return;
  }
  // Cloud Logging's httpRequest object, appended verbatim after the plain fields.
  thread_local std::string http;
  http.clear();
  http += ",\"httpRequest\":{\"requestMethod\":";
  AppendJsonString(http, r.method);
  http += ",\"requestUrl\":";
  AppendJsonString(http, r.url);
  http += ",\"status\":";
  AppendInt(http, r.status);
  http += ",\"latency\":\"";
  char buf[32];
  auto [end, ec] =
      std::to_chars(buf, buf + sizeof(buf), r.latency_seconds, std::chars_format::fixed, 6);
  http.append(buf, end);
  http += "s\",\"userAgent\":";
  AppendJsonString(http, r.user_agent);
  http += ",\"remoteIp\":";
  AppendJsonString(http, r.remote_ip);
  http += ",\"requestSize\":\"";
  AppendInt(http, static_cast<std::int64_t>(r.request_size));
  http += "\",\"responseSize\":\"";
  AppendInt(http, static_cast<std::int64_t>(r.response_size));
  http += "\",\"protocol\":\"HTTP/1.1\"}";
  Write(severity, message, &ctx, {{"route", r.route}}, http);
}

std::size_t Logger::Drain(std::string& scratch) {
  scratch.clear();
  buffers_.ForEach([&scratch](std::size_t, Buffer& b) {
    std::lock_guard buffer_lock(b.mutex);
    if (b.text.empty()) return;
    if (scratch.empty()) {
      scratch.swap(b.text);
    } else {
      scratch += b.text;
      b.text.clear();
    }
  });
  return scratch.size();
}

void Logger::WriteOut(std::string& text) {
  if (!text.empty()) WriteAll(options_.fd, text);
}

void Logger::WriterLoop() {
  std::string scratch;
  std::unique_lock lock(wake_mutex_);
  while (true) {
    wake_.wait_for(lock, std::chrono::milliseconds(20));
    const bool stop = stopping_;
    const std::uint64_t requested = flush_requests_;
    lock.unlock();
    Drain(scratch);
    WriteOut(scratch);
    // Keep the scratch capacity bounded after a burst.
    if (scratch.capacity() > (1 << 20)) std::string().swap(scratch);
    lock.lock();
    flush_done_ = requested;
    flushed_.notify_all();
    if (stop) break;
  }
}

void Logger::Flush() {
  if (!running_.load()) return;
  std::unique_lock lock(wake_mutex_);
  std::uint64_t ticket = ++flush_requests_;
  wake_.notify_one();
  flushed_.wait(lock, [&] { return flush_done_ >= ticket || !running_.load(); });
}

void Logger::Stop() {
  {
    std::lock_guard lock(wake_mutex_);
    if (!running_.load()) return;
    stopping_ = true;
    ++flush_requests_;
  }
  wake_.notify_one();
  writer_.join();
  running_.store(false, std::memory_order_release);
  // Lines that raced with the last drain.
  std::string rest;
  Drain(rest);
  WriteOut(rest);
}

void InstallLogger(Logger* logger) {
  installed_logger.store(logger);
}
Logger* InstalledLogger() {
  return installed_logger.load(std::memory_order_acquire);
}

namespace {
Logger& FallbackLogger() {
  // Only reached before main installs a logger or in tools; writes synchronously to stderr.
  static Logger* fallback = [] {
    LoggerOptions o;
    o.fd = 2;
    auto* l = new Logger(o);  // intentionally leaked: usable until the very end of the process
    l->Stop();
    return l;
  }();
  return *fallback;
}
}  // namespace

void Log(Severity severity, std::string_view message, std::initializer_list<LogField> fields) {
  Logger* l = InstalledLogger();
  (l != nullptr ? *l : FallbackLogger()).Log(severity, message, nullptr, fields);
}

void Log(Severity severity, std::string_view message, const LogContext& ctx,
         std::initializer_list<LogField> fields) {
  Logger* l = InstalledLogger();
  (l != nullptr ? *l : FallbackLogger()).Log(severity, message, &ctx, fields);
}

}  // namespace orchestra::observability
