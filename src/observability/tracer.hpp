#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/thread_buffers.hpp"
#include "observability/metrics.hpp"
#include "observability/otlp.hpp"
#include "observability/span.hpp"
#include "observability/trace.hpp"

// Span recording and batched export (DESIGN.md §3 "traces"; docs/OPERATIONS.md "Traces").
//
// Code that finishes a span describes it in a SpanRecord and calls Tracer::Record, which encodes
// it (OTLP protobuf or JSON) into the calling thread's own buffer: a mutex that only the export
// thread ever contends for, for the instant of a swap, as the Logger's buffers. Nothing on the
// request path waits for the network: a buffer that holds `queue_size` spans (or
// `max_queue_bytes`) drops further spans and counts them. The export thread wakes every
// `export_interval` (or when a buffer reaches `batch_size`), takes every buffer, and sends
// batches of at most `batch_size` spans through the SpanSink, each within `export_timeout`; a
// batch the sink refuses is dropped and counted (no retry: a collector that is down must not
// make the backlog grow). Shutdown exports what is left within the time it is given.
//
// A request pays for tracing only when it is sampled: TracerFor() is a flag test and, for a
// sampled request, one atomic load. The process's tracer is installed by main (a plain pointer,
// as the Logger's).
namespace orchestra::observability {

// Where encoded batches go: the OTLP/HTTP sink (otlp_http_sink.hpp) in the server, a recording
// fake in tests. Called from the tracer's export thread only.
class SpanSink {
 public:
  virtual ~SpanSink() = default;
  // Sends one ExportTraceServiceRequest by `deadline`; an error drops the batch.
  virtual Result<void> Export(std::string_view body, std::string_view content_type,
                              std::chrono::steady_clock::time_point deadline) = 0;
};

struct TracerOptions {
  otlp::Protocol protocol = otlp::Protocol::kProtobuf;
  Sampler sampler;
  // The Resource: service.name and the rest (OTEL_RESOURCE_ATTRIBUTES).
  std::vector<std::pair<std::string, std::string>> resource;
  std::string scope_version;              // Orchestra's version, in the instrumentation scope
  std::size_t queue_size = 2048;          // spans waiting for export, per thread
  std::size_t max_queue_bytes = 8 << 20;  // encoded bytes waiting for export, per thread
  std::size_t batch_size = 512;           // spans per export request
  std::chrono::nanoseconds export_interval = std::chrono::seconds(1);
  std::chrono::nanoseconds export_timeout = std::chrono::seconds(10);
  bool capture_content = false;  // prompts and completions in spans (tracing.capture_content)
  // gen_ai.provider.name for each configured provider, by provider name.
  std::vector<std::pair<std::string, std::string>> gen_ai_provider_names;
};

class Tracer {
 public:
  // `sink` must outlive the tracer. Registers the orchestra_trace_* metrics in `registry` and
  // starts the export thread.
  Tracer(TracerOptions options, SpanSink& sink, Registry& registry);
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;
  ~Tracer();  // Shutdown(0) when not done yet: spans still buffered are dropped

  const Sampler& sampler() const { return options_.sampler; }
  bool capture_content() const { return options_.capture_content; }
  // gen_ai.provider.name for a configured provider's name ("" when unknown).
  std::string_view GenAiProviderName(std::string_view provider) const;

  // Encodes `span` into this thread's buffer. Never waits for the export; thread-safe.
  void Record(const SpanRecord& span);

  // Exports everything recorded before the call and waits for it (tests).
  void Flush();
  // Stops the export thread after one last export of everything recorded before the call,
  // bounded by `timeout` (batches that do not fit are dropped and counted). Spans recorded
  // afterwards are dropped. Idempotent.
  void Shutdown(std::chrono::nanoseconds timeout);

  std::uint64_t exported() const { return exported_->Value(); }
  std::uint64_t dropped_queue_full() const { return dropped_queue_full_->Value(); }
  std::uint64_t dropped_export_failed() const { return dropped_export_failed_->Value(); }

 private:
  struct Buffer {
    std::mutex mutex;
    std::string frames;  // [4-byte little-endian length][encoded span], repeated
    std::size_t spans = 0;
  };

  void ExportLoop();
  // Swaps every thread's buffer with taken[i]; returns the number of spans taken.
  std::size_t Drain(std::vector<std::string>& taken);
  // Sends what Drain took in batches; `shutdown_deadline` bounds them all at shutdown (else it
  // is the epoch, and each batch has export_timeout).
  void Export(const std::vector<std::string>& taken,
              std::chrono::steady_clock::time_point shutdown_deadline);

  TracerOptions options_;
  SpanSink& sink_;
  otlp::RequestEncoder encoder_;
  Counter* exported_;
  Counter* dropped_queue_full_;
  Counter* dropped_export_failed_;
  Counter* dropped_shutdown_;
  Counter* exports_ok_;
  Counter* exports_failed_;

  ThreadBuffers<Buffer> buffers_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::uint64_t flush_requests_ = 0;                       // guarded by wake_mutex_
  std::uint64_t flush_done_ = 0;                           // guarded by wake_mutex_
  bool stopping_ = false;                                  // guarded by wake_mutex_
  std::chrono::steady_clock::time_point stop_deadline_{};  // guarded by wake_mutex_
  std::atomic<bool> accepting_{true};
  std::atomic<bool> woken_{false};  // a buffer reached batch_size since the last drain
  std::thread thread_;
};

namespace detail {
extern std::atomic<Tracer*> installed_tracer;
}

// The process's tracer, installed by main; null when tracing is off.
void InstallTracer(Tracer* tracer);
inline Tracer* InstalledTracer() {
  return detail::installed_tracer.load(std::memory_order_acquire);
}
// The tracer when `trace`'s spans are to be recorded (the request is sampled and tracing is
// on), else null.
inline Tracer* TracerFor(const TraceContext& trace) {
  return trace.sampled ? InstalledTracer() : nullptr;
}

}  // namespace orchestra::observability
