#include "common/gce_metadata.hpp"

#include <algorithm>

#include "common/json_scan.hpp"

namespace orchestra::gce {

std::string MetadataHost(const std::optional<std::string>& gce_metadata_host) {
  if (gce_metadata_host && !gce_metadata_host->empty()) return *gce_metadata_host;
  return std::string(kDefaultMetadataHost);
}

Result<AccessToken> ParseTokenResponse(unsigned status, std::string_view body) {
  if (status != 200) {
    return MakeError(ErrorCode::kUnavailable,
                     "the metadata server answered " + std::to_string(status) + " for a token");
  }
  AccessToken out;
  std::int64_t expires_in = 0;
  ScanJson(body, [&](std::string_view key, const JsonSpan& v) {
    if (key == "access_token" && v.kind == JsonKind::kString) {
      out.token = DecodeJsonString(v.In(body)).value_or("");
    } else if (key == "expires_in" && v.kind == JsonKind::kNumber) {
      expires_in = JsonInteger(v.In(body)).value_or(0);
    }
  });
  if (out.token.empty()) {
    return MakeError(ErrorCode::kUnavailable, "the metadata server sent no token");
  }
  out.expires_in = std::chrono::seconds(std::max<std::int64_t>(0, expires_in));
  return out;
}

std::optional<std::string> TokenCache::Get(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (token_.empty() || now >= expiry_) return std::nullopt;
  return token_;
}

void TokenCache::Put(const AccessToken& token, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  token_ = token.token;
  expiry_ = now + std::max(std::chrono::seconds(0), token.expires_in - kMargin);
}

void TokenCache::Invalidate() {
  std::lock_guard lock(mutex_);
  token_.clear();
}

}  // namespace orchestra::gce
