#include "observability/otlp_http_sink.hpp"

#include <stdexcept>

#include "observability/log.hpp"
#include "storage/firestore/blocking_http.hpp"

namespace orchestra::observability {
namespace {

using Clock = std::chrono::steady_clock;

bool Retryable(unsigned status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

}  // namespace

OtlpHttpSink::OtlpHttpSink(OtlpHttpSinkOptions options) : options_(std::move(options)) {
  const std::string& url = options_.url;
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  path_ = slash == std::string::npos ? "/" : url.substr(slash);
  auto origin = storage::HttpOrigin::Parse(std::string_view(url).substr(0, slash));
  if (!origin) throw std::invalid_argument("tracing endpoint: " + origin.error().message);
  storage::BlockingHttpOptions http;
  http.name = "trace export";
  http.origin = *origin;
  http.connections = 1;  // one export thread
  http.ca_file = options_.ca_file;
  http.max_response_bytes = 1 << 20;
  http_ = std::make_unique<storage::BlockingHttpClient>(std::move(http));
  if (options_.gcp_token) {
    auto metadata = storage::HttpOrigin::Parse("http://" + options_.metadata_host);
    if (!metadata) throw std::invalid_argument("GCE_METADATA_HOST: " + metadata.error().message);
    storage::BlockingHttpOptions m;
    m.name = "trace export: the metadata server";
    m.origin = *metadata;
    m.connections = 1;
    metadata_ = std::make_unique<storage::BlockingHttpClient>(std::move(m));
  }
}

OtlpHttpSink::~OtlpHttpSink() = default;

Result<std::string> OtlpHttpSink::Authorization(Clock::time_point deadline) {
  if (auto cached = token_.Get(Clock::now())) return "Bearer " + *cached;
  storage::HttpRequest request;
  request.method = "GET";
  request.target = gce::kTokenPath;
  request.headers.emplace_back(gce::kFlavorHeaderName, gce::kFlavorHeaderValue);
  auto sent = metadata_->Send(request, deadline, true);
  if (!sent) {
    return MakeError(ErrorCode::kUnavailable,
                     "cannot get a token from the metadata server: " + sent.error().message);
  }
  auto token = gce::ParseTokenResponse(sent->status, sent->body);
  if (!token) return token.error();
  token_.Put(*token, Clock::now());
  return "Bearer " + token->token;
}

Result<void> OtlpHttpSink::Export(std::string_view body, std::string_view content_type,
                                  Clock::time_point deadline) {
  for (int attempt = 0;; ++attempt) {
    storage::HttpRequest request;
    request.method = "POST";
    request.target = path_;
    request.content_type = content_type;
    request.body = body;
    for (const auto& [name, value] : options_.headers)
      request.headers.emplace_back(name, value);
    std::string authorization;
    if (options_.gcp_token) {
      auto got = Authorization(deadline);
      if (!got) {
        Warn(got.error().message);
        return got.error();
      }
      authorization = std::move(*got);
      request.headers.emplace_back("Authorization", authorization);
    }
    // An export may be sent twice (a kept-alive connection the collector closed): spans carry
    // their ids, and a collector keeps one of each.
    auto sent = http_->Send(request, deadline, /*idempotent=*/true);
    if (!sent) {
      Warn(sent.error().message);
      return MakeError(ErrorCode::kUnavailable, sent.error().message);
    }
    if (sent->status >= 200 && sent->status < 300) return {};
    if (sent->status == 401 && options_.gcp_token && attempt == 0) {
      token_.Invalidate();  // revoked or expired early: fetch a new one, once
      continue;
    }
    const std::string message =
        "the trace collector answered " + std::to_string(sent->status) + " at " + options_.url;
    Warn(message);
    return MakeError(Retryable(sent->status) ? ErrorCode::kUnavailable : ErrorCode::kInternal,
                     message);
  }
}

void OtlpHttpSink::Warn(const std::string& message) {
  const auto now = Clock::now();
  if (now < next_warning_) return;
  next_warning_ = now + std::chrono::minutes(1);
  Log(Severity::kWarning,
      "trace export failed (spans dropped; repeated failures are logged "
      "once a minute)",
      {{"error", message}});
}

}  // namespace orchestra::observability
