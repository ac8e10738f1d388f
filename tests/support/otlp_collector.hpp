#pragma once

// A trace collector for tests: an OTLP/HTTP receiver on a free loopback port that decodes every
// ExportTraceServiceRequest it is sent (protobuf or JSON, by Content-Type) into plain spans,
// with a decoder written here from opentelemetry-proto's field numbers, apart from the
// server's encoder. It can be told to refuse exports (a collector that is down or overloaded).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace orchestra::testing {

struct CollectedEvent {
  std::string name;
  std::uint64_t time_unix_nano = 0;
  std::map<std::string, std::string> attributes;
};

struct CollectedSpan {
  std::string trace_id;        // lower-case hex
  std::string span_id;         // lower-case hex
  std::string parent_span_id;  // "" for a root span
  std::string name;
  int kind = 0;  // 1 internal, 2 server, 3 client
  std::uint32_t flags = 0;
  std::uint64_t start_unix_nano = 0;
  std::uint64_t end_unix_nano = 0;
  // Values as text: strings as they are, integers in decimal, booleans "true"/"false", doubles
  // as printed by std::to_string, string arrays joined with ','.
  std::map<std::string, std::string> attributes;
  std::vector<CollectedEvent> events;
  int status_code = 0;  // 0 unset, 1 ok, 2 error
  std::string status_message;
  std::map<std::string, std::string> resource;  // its ResourceSpans' resource attributes
  std::string scope_name;

  std::string Attribute(const std::string& key) const {
    auto it = attributes.find(key);
    return it == attributes.end() ? "" : it->second;
  }
};

// Throw std::runtime_error on a malformed request.
std::vector<CollectedSpan> DecodeOtlpProtobuf(std::string_view body);
std::vector<CollectedSpan> DecodeOtlpJson(std::string_view body);

class OtlpCollector {
 public:
  OtlpCollector();  // listening on 127.0.0.1, a free port
  ~OtlpCollector();
  OtlpCollector(const OtlpCollector&) = delete;
  OtlpCollector& operator=(const OtlpCollector&) = delete;

  std::uint16_t port() const { return port_; }
  // The base URL (OTEL_EXPORTER_OTLP_ENDPOINT): exports go to <base>/v1/traces.
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Answer every export with `status` from now on (200: accept).
  void set_status(int status) { status_.store(status); }
  // Also play the GCE metadata server's token endpoint (GCE_METADATA_HOST=127.0.0.1:<port>):
  // `GET /computeMetadata/v1/instance/service-accounts/default/token` with `Metadata-Flavor:
  // Google` answers this access token. Exports then demand `Authorization: Bearer <token>` and
  // answer 401 without it.
  void set_access_token(const std::string& token);
  int token_requests() const { return token_requests_.load(); }

  std::vector<CollectedSpan> Spans() const;
  // Waits until at least `count` spans arrived (or `timeout_ms` passed); returns them.
  std::vector<CollectedSpan> WaitForSpans(std::size_t count, int timeout_ms = 10000) const;
  int requests() const { return requests_.load(); }
  std::string last_content_type() const;
  // A header of the last request ("" when absent); names are lower-case.
  std::string last_header(const std::string& name) const;

 private:
  void Accept();
  void Serve(int fd);

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> status_{200};
  std::atomic<int> requests_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> token_requests_{0};
  std::string access_token_;  // guarded by mutex_
  mutable std::mutex mutex_;
  mutable std::condition_variable arrived_;
  std::vector<CollectedSpan> spans_;                 // guarded by mutex_
  std::map<std::string, std::string> last_headers_;  // guarded by mutex_
  std::vector<int> connections_;                     // guarded by mutex_
  std::vector<std::thread> threads_;                 // guarded by mutex_
  std::thread acceptor_;
};

}  // namespace orchestra::testing
