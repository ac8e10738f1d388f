#include "auth/api_keys.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/text.hpp"

namespace orchestra::auth {
namespace {

std::string Trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

Digest FromHex(std::string_view hex) {
  Digest d{};
  for (std::size_t i = 0; i < d.size(); ++i) {
    auto nibble = [](char c) -> std::uint8_t {
      if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
      if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
      return static_cast<std::uint8_t>(c - 'A' + 10);
    };
    d[i] = static_cast<std::uint8_t>((nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]));
  }
  return d;
}

}  // namespace

Digest Sha256(std::string_view data) {
  Digest d{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), d.data(), &length, EVP_sha256(), nullptr);
  return d;
}

ApiKeys ApiKeys::FromConfig(const config::AuthConfig& auth, const config::EnvLookup& env) {
  ApiKeys keys;
  for (const config::ApiKeyConfig& k : auth.keys) {
    Key key;
    key.principal.name = k.name;
    key.principal.policy = k.policy;
    for (config::Scope s : k.scopes) {
      if (s == config::Scope::kUser) key.principal.user = true;
      if (s == config::Scope::kAdmin) key.principal.admin = true;
    }
    if (!k.sha256.empty()) {
      key.digest = FromHex(k.sha256);
    } else {
      std::string secret;
      if (!k.key_env.empty()) {
        auto v = env(k.key_env);
        if (!v || Trim(*v).empty()) {
          throw std::runtime_error("auth.keys '" + k.name + "': environment variable " + k.key_env +
                                   " is not set");
        }
        secret = Trim(*v);
      } else {
        std::ifstream in(k.key_file);
        if (!in) {
          throw std::runtime_error("auth.keys '" + k.name + "': cannot read key_file " +
                                   k.key_file);
        }
        std::ostringstream text;
        text << in.rdbuf();
        secret = Trim(text.str());
        if (secret.empty()) {
          throw std::runtime_error("auth.keys '" + k.name + "': key_file " + k.key_file +
                                   " is empty");
        }
      }
      key.digest = Sha256(secret);
      OPENSSL_cleanse(secret.data(), secret.size());
    }
    keys.keys_.push_back(std::move(key));
  }
  return keys;
}

Result<const Principal*> ApiKeys::Authenticate(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) {
    return Error(ErrorCode::kUnauthenticated,
                 "missing API key: send it as 'Authorization: Bearer <key>'");
  }
  if (authorization.size() <= kBearer.size() ||
      !EqualsIgnoreCase(authorization.substr(0, kBearer.size()), kBearer)) {
    return Error(ErrorCode::kUnauthenticated,
                 "malformed Authorization header: expected 'Bearer <key>'");
  }
  std::string_view presented = authorization.substr(kBearer.size());
  while (!presented.empty() && presented.front() == ' ')
    presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ')
    presented.remove_suffix(1);
  const Digest digest = Sha256(presented);
  const Principal* match = nullptr;
  for (const Key& k : keys_) {
    // Every digest is compared; the branch-free select keeps the loop's timing independent of
    // which key (if any) matched.
    bool equal = CRYPTO_memcmp(k.digest.data(), digest.data(), digest.size()) == 0;
    match = equal ? &k.principal : match;
  }
  if (match == nullptr) return Error(ErrorCode::kUnauthenticated, "invalid API key");
  return match;
}

}  // namespace orchestra::auth
