#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/loader.hpp"
#include "net/client.hpp"
#include "providers/provider.hpp"

// What every provider that calls an HTTP upstream shares: its origin in the connection pools,
// its key and extra headers, and the mapping of transport and HTTP failures to ProviderError.
namespace orchestra::providers {

class HttpProvider : public Provider {
 public:
  // Reads the provider key from its environment variable or file and registers the origin.
  // Throws std::runtime_error naming the provider when the key or base_url is unusable.
  HttpProvider(const config::ProviderConfig& config, net::Upstreams& upstreams,
               const config::EnvLookup& env);

  const std::string& name() const override { return config_.name; }
  config::ProviderType type() const override { return config_.type; }
  boost::asio::awaitable<Result<std::string>> Warmup(int worker) override;

 protected:
  // A transport failure (net::Client's Error) as a ProviderError.
  static ProviderError FromNet(const Error& error);
  // An HTTP error status from the upstream; `message` is the upstream's own explanation.
  ProviderError FromStatus(const net::ResponseHead& head, std::string_view message) const;
  // Set when the provider cannot be used at all (its key is missing): every call returns it.
  std::optional<ProviderError> Unusable() const;
  // A request the adapter cannot translate: the client's error, never retried.
  static ProviderError Invalid(Error error);
  // An error the upstream reported inside a stream (after a 200).
  ProviderError MidStream(Error error) const;
  // A stream that ended before its end marker.
  ProviderError Truncated() const;
  static ProviderError ClientGone();
  // The body of an error response that arrived as a stream (bounded).
  static boost::asio::awaitable<std::string> ReadErrorBody(net::ResponseStream& stream);
  // Room for the per-request header lines, on the caller's coroutine frame (no allocation).
  struct HeaderLines {
    std::array<char, 96> trace{};
    std::array<char, 160> request_id{};
  };
  // Header lines common to every request: the authorisation line, extra configured headers,
  // trace context and request id. `lines` must outlive the request.
  void AddCommonHeaders(net::OutgoingRequest& request, const CallOptions& options,
                        HeaderLines& lines) const;
  // "Authorization: Bearer <key>" or another scheme's line; set by the subclass.
  void SetAuthLine(std::string line) { auth_line_ = std::move(line); }
  net::Client& client(const CallOptions& options) const {
    return upstreams_.ForWorker(options.worker);
  }

  const config::ProviderConfig& config() const { return config_; }
  const std::string& api_key() const { return api_key_; }
  net::OriginId origin_id() const { return origin_; }
  const net::Origin& origin() const { return upstreams_.origin(origin_); }

 private:
  config::ProviderConfig config_;
  net::Upstreams& upstreams_;
  net::OriginId origin_ = 0;
  std::string api_key_;
  std::string missing_key_;
  std::string auth_line_;                  // why the key could not be read; empty when it could
  std::vector<std::string> header_lines_;  // "Name: value" for config_.headers
};

// Reads a secret from an environment variable or a file (trailing whitespace trimmed).
// Empty when neither is configured. Throws std::runtime_error when configured but unreadable.
std::string ReadSecret(std::string_view what, const std::string& env_name,
                       const std::string& file_path, const config::EnvLookup& env);

// Retry-After in milliseconds (delta-seconds or an HTTP date), or -1.
int ParseRetryAfterMs(std::string_view value);

}  // namespace orchestra::providers
