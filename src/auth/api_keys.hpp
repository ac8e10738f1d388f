#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "config/config.hpp"
#include "config/loader.hpp"
#include "limits/policy.hpp"

// API-key authentication (`Authorization: Bearer <key>`). Only SHA-256 digests of the keys are
// held; a presented key is hashed and compared with every configured digest in constant time,
// so neither timing nor an early exit tells which key came close. No key or digest is ever
// logged or exported.
namespace orchestra::auth {

struct Principal {
  std::string name;  // the key's name: the tenant namespace for stored data
  bool user = false;
  bool admin = false;
  limits::KeyPolicy policy;  // what the key may spend and call
};

using Digest = std::array<std::uint8_t, 32>;
Digest Sha256(std::string_view data);

class ApiKeys {
 public:
  // Reads every key from its environment variable or file, or takes its digest. Throws
  // std::runtime_error naming the key and its source when one cannot be read.
  static ApiKeys FromConfig(const config::AuthConfig& auth, const config::EnvLookup& env);

  // False when no key is configured: every request then acts as the `default` principal with
  // both scopes (allowed only on loopback, or with auth.disabled: true; see config).
  bool enabled() const { return !keys_.empty(); }

  // The principal for an Authorization header value. kUnauthenticated when the header is
  // missing, not a bearer token, or matches no key.
  Result<const Principal*> Authenticate(std::string_view authorization) const;

  const Principal& anonymous() const { return anonymous_; }
  std::size_t size() const { return keys_.size(); }

 private:
  struct Key {
    Digest digest;
    Principal principal;
  };
  std::vector<Key> keys_;
  Principal anonymous_{"default", true, true, {}};
};

}  // namespace orchestra::auth
