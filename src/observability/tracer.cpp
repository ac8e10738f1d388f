#include "observability/tracer.hpp"

#include <cstring>

namespace orchestra::observability {

namespace detail {
std::atomic<Tracer*> installed_tracer{nullptr};
}

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kFrameHeader = 4;

void AppendFrame(std::string& frames, std::string_view span) {
  const auto n = static_cast<std::uint32_t>(span.size());
  char header[kFrameHeader];
  for (std::size_t i = 0; i < kFrameHeader; ++i)
    header[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  frames.append(header, kFrameHeader);
  frames += span;
}

// The next frame's span at `at` (advanced past it), or an empty view at the end.
std::string_view NextFrame(std::string_view frames, std::size_t& at) {
  if (at + kFrameHeader > frames.size()) return {};
  std::uint32_t n = 0;
  for (std::size_t i = 0; i < kFrameHeader; ++i)
    n |= static_cast<std::uint32_t>(static_cast<unsigned char>(frames[at + i])) << (8 * i);
  at += kFrameHeader;
  std::string_view span = frames.substr(at, n);
  at += n;
  return span;
}

}  // namespace

Tracer::Tracer(TracerOptions options, SpanSink& sink, Registry& registry)
    : options_(std::move(options)),
      sink_(sink),
      encoder_(options_.protocol, options_.resource, "orchestra", options_.scope_version) {
  if (options_.batch_size == 0) options_.batch_size = 1;
  auto& exported = registry.AddCounter("orchestra_trace_spans_exported_total",
                                       "Spans the trace collector accepted.", {});
  auto& dropped = registry.AddCounter(
      "orchestra_trace_spans_dropped_total",
      "Spans not exported, by reason: queue_full (a thread's buffer was full: the export "
      "could not keep up), export_failed (the collector refused or could not be reached), "
      "shutdown (recorded after the final export).",
      {"reason"});
  auto& exports =
      registry.AddCounter("orchestra_trace_exports_total",
                          "Export requests sent to the trace collector, by outcome.", {"outcome"});
  exported_ = &exported.With({});
  dropped_queue_full_ = &dropped.With({"queue_full"});
  dropped_export_failed_ = &dropped.With({"export_failed"});
  dropped_shutdown_ = &dropped.With({"shutdown"});
  exports_ok_ = &exports.With({"ok"});
  exports_failed_ = &exports.With({"failed"});
  thread_ = std::thread([this] { ExportLoop(); });
}

Tracer::~Tracer() {
  Shutdown(std::chrono::nanoseconds(0));
  Tracer* self = this;
  detail::installed_tracer.compare_exchange_strong(self, nullptr);
}

std::string_view Tracer::GenAiProviderName(std::string_view provider) const {
  for (const auto& [name, value] : options_.gen_ai_provider_names) {
    if (name == provider) return value;
  }
  return {};
}

void Tracer::Record(const SpanRecord& span) {
  if (!accepting_.load(std::memory_order_relaxed)) {
    dropped_shutdown_->Inc();
    return;
  }
  // Encoded outside the buffer's lock; the scratch is only used within this call.
  thread_local std::string scratch;
  scratch.clear();
  otlp::AppendSpan(options_.protocol, span, scratch);
  Buffer& b = buffers_.Local();
  bool full_batch = false;
  {
    std::lock_guard lock(b.mutex);
    if (b.spans >= options_.queue_size ||
        b.frames.size() + kFrameHeader + scratch.size() > options_.max_queue_bytes) {
      dropped_queue_full_->Inc();
      return;
    }
    AppendFrame(b.frames, scratch);
    full_batch = ++b.spans == options_.batch_size;
  }
  // Without the wake mutex: a wake-up that slips past the export thread's check costs at most
  // one export_interval of delay, never a wait here.
  if (full_batch && !woken_.exchange(true, std::memory_order_relaxed)) wake_.notify_one();
  if (scratch.capacity() > (1 << 20)) std::string().swap(scratch);
}

std::size_t Tracer::Drain(std::vector<std::string>& taken) {
  std::size_t spans = 0;
  buffers_.ForEach([&](std::size_t i, Buffer& b) {
    std::lock_guard buffer_lock(b.mutex);
    if (b.spans == 0) return;
    spans += b.spans;
    b.spans = 0;
    // Swapped, not copied, so the worker's lock is held for an instant; the worker gets back
    // the capacity its previous frames had, cleared.
    if (taken.size() <= i) taken.resize(i + 1);
    taken[i].clear();
    taken[i].swap(b.frames);
  });
  return spans;
}

void Tracer::Export(const std::vector<std::string>& taken,
                    SteadyClock::time_point shutdown_deadline) {
  const bool shutting_down = shutdown_deadline != SteadyClock::time_point{};
  std::vector<std::string_view> batch;
  batch.reserve(options_.batch_size);
  std::string body;
  std::size_t buffer = 0;
  std::size_t at = 0;
  bool give_up = false;  // the collector is unreachable: drop the rest of this round
  while (true) {
    batch.clear();
    while (batch.size() < options_.batch_size && buffer < taken.size()) {
      std::string_view span = NextFrame(taken[buffer], at);
      if (span.empty()) {
        ++buffer;
        at = 0;
      } else {
        batch.push_back(span);
      }
    }
    if (batch.empty()) return;
    const auto now = SteadyClock::now();
    const auto deadline = shutting_down ? shutdown_deadline : now + options_.export_timeout;
    if (now >= deadline) {
      (shutting_down ? dropped_shutdown_ : dropped_export_failed_)->Inc(batch.size());
      continue;
    }
    if (give_up) {
      dropped_export_failed_->Inc(batch.size());
      continue;
    }
    encoder_.Encode(batch, body);
    Result<void> sent = sink_.Export(body, encoder_.content_type(), deadline);
    if (sent) {
      exports_ok_->Inc();
      exported_->Inc(batch.size());
    } else {
      exports_failed_->Inc();
      dropped_export_failed_->Inc(batch.size());
      give_up = sent.error().code == ErrorCode::kUnavailable ||
                sent.error().code == ErrorCode::kDeadlineExceeded;
    }
  }
}

void Tracer::ExportLoop() {
  std::vector<std::string> taken;  // one per thread buffer, swapped with it
  std::unique_lock lock(wake_mutex_);
  while (true) {
    wake_.wait_for(lock, options_.export_interval, [this] {
      return stopping_ || flush_requests_ != flush_done_ || woken_.load(std::memory_order_relaxed);
    });
    const bool stop = stopping_;
    const std::uint64_t requested = flush_requests_;
    const SteadyClock::time_point deadline = stop ? stop_deadline_ : SteadyClock::time_point{};
    lock.unlock();
    woken_.store(false, std::memory_order_relaxed);
    if (Drain(taken) > 0) Export(taken, deadline);
    for (std::string& t : taken) {
      t.clear();
      // Keep the capacity handed back to the workers bounded after a burst.
      if (t.capacity() > options_.max_queue_bytes / 2) std::string().swap(t);
    }
    lock.lock();
    flush_done_ = requested;
    flushed_.notify_all();
    if (stop) return;
  }
}

void Tracer::Flush() {
  std::unique_lock lock(wake_mutex_);
  if (stopping_) return;
  const std::uint64_t ticket = ++flush_requests_;
  wake_.notify_one();
  flushed_.wait(lock, [&] { return flush_done_ >= ticket || stopping_; });
}

void Tracer::Shutdown(std::chrono::nanoseconds timeout) {
  {
    std::lock_guard lock(wake_mutex_);
    if (stopping_) return;
    stopping_ = true;
    // A deadline of "now" still tries nothing: the export loop drops what it cannot send.
    stop_deadline_ = SteadyClock::now() + std::max(timeout, std::chrono::nanoseconds(1));
    accepting_.store(false, std::memory_order_relaxed);
  }
  wake_.notify_one();
  flushed_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Spans whose Record raced with the last drain.
  std::vector<std::string> rest;
  if (const std::size_t late = Drain(rest); late > 0) dropped_shutdown_->Inc(late);
}

void InstallTracer(Tracer* tracer) {
  detail::installed_tracer.store(tracer, std::memory_order_release);
}

}  // namespace orchestra::observability
