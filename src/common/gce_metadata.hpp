#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

// The Google Compute Engine metadata server's access tokens (Cloud Run, GCE, GKE): the part the
// Vertex AI provider and the Firestore storage backend share. Each sends the request with its
// own HTTP client (the provider on the event loop, storage on its blocking pool); this says what
// to ask, how to read the answer and how long a token may be used.
namespace orchestra::gce {

inline constexpr std::string_view kDefaultMetadataHost = "metadata.google.internal";
inline constexpr std::string_view kTokenPath =
    "/computeMetadata/v1/instance/service-accounts/default/token";
// The header the server insists on (it refuses requests without it).
inline constexpr std::string_view kFlavorHeaderName = "Metadata-Flavor";
inline constexpr std::string_view kFlavorHeaderValue = "Google";

// host[:port] of the metadata server: `$GCE_METADATA_HOST` when set and not empty (as Google's
// client libraries honour it; tests point it at a stand-in), else metadata.google.internal.
std::string MetadataHost(const std::optional<std::string>& gce_metadata_host);

struct AccessToken {
  std::string token;
  std::chrono::seconds expires_in{0};
};

// Reads the token endpoint's answer ({"access_token": ..., "expires_in": ...}). A status other
// than 200 or an answer without a token is kUnavailable (the identity cannot be had: callers
// treat it as an unreachable dependency), with a message naming the metadata server.
Result<AccessToken> ParseTokenResponse(unsigned status, std::string_view body);

// One token, used until a minute before it expires. Thread-safe.
class TokenCache {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kMargin{60};

  // The cached token when it is still good at `now`.
  std::optional<std::string> Get(Clock::time_point now) const;
  void Put(const AccessToken& token, Clock::time_point now);
  // Forgets the token (the service refused it: fetch a new one).
  void Invalidate();

 private:
  mutable std::mutex mutex_;
  std::string token_;           // guarded by mutex_
  Clock::time_point expiry_{};  // guarded by mutex_
};

}  // namespace orchestra::gce
