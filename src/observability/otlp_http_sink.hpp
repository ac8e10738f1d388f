#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/gce_metadata.hpp"
#include "observability/tracer.hpp"

namespace orchestra::storage {
class BlockingHttpClient;
}

// The OTLP/HTTP exporter's transport: POSTs each batch to the collector's traces URL with the
// configured headers (OTEL_EXPORTER_OTLP_HEADERS) and, for Google's endpoint
// (https://telemetry.googleapis.com, Cloud Trace), `Authorization: Bearer` with the metadata
// server's access token (common/gce_metadata.hpp, the token source Vertex AI and Firestore
// use), fetched when needed and again once after a 401.
//
// Blocking: it runs on the tracer's export thread only, with its own connections (the blocking
// HTTP/1.1 client of storage/firestore/blocking_http.hpp: keep-alive, TLS with SNI and
// certificate verification, every wait bounded by the batch's deadline), never an event loop's.
//
// A 2xx is success (a partial success is not looked at: the collector keeps what it could).
// 429, 502, 503, 504, and a collector that cannot be reached, are kUnavailable (the tracer
// drops the rest of that round); other statuses kInternal. Failures are logged at most once a
// minute, without header values.
namespace orchestra::observability {

struct OtlpHttpSinkOptions {
  std::string url;  // http(s)://host[:port]/path, e.g. http://collector:4318/v1/traces
  std::vector<std::pair<std::string, std::string>> headers;  // values are secrets
  bool gcp_token = false;
  std::string metadata_host = std::string(gce::kDefaultMetadataHost);  // host[:port]
  std::string ca_file;  // PEM trusted besides the system CAs (tests)
};

class OtlpHttpSink final : public SpanSink {
 public:
  // Throws std::invalid_argument for a URL that is not http(s)://host[:port][/path].
  explicit OtlpHttpSink(OtlpHttpSinkOptions options);
  ~OtlpHttpSink() override;

  Result<void> Export(std::string_view body, std::string_view content_type,
                      std::chrono::steady_clock::time_point deadline) override;

 private:
  Result<std::string> Authorization(std::chrono::steady_clock::time_point deadline);
  void Warn(const std::string& message);

  OtlpHttpSinkOptions options_;
  std::string path_;
  std::unique_ptr<storage::BlockingHttpClient> http_;
  std::unique_ptr<storage::BlockingHttpClient> metadata_;
  gce::TokenCache token_;
  std::chrono::steady_clock::time_point next_warning_{};
};

}  // namespace orchestra::observability
