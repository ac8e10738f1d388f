#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "config/config.hpp"
#include "config/loader.hpp"
#include "limits/policy.hpp"

// API-key authentication (`Authorization: Bearer <key>`). Only SHA-256 digests of the keys are
// held. Two kinds of keys:
//   - config keys (auth.keys): a presented key is hashed and compared with every configured
//     digest in constant time, so neither timing nor an early exit tells which key came close;
//   - stored (virtual) keys, created through /admin/keys (auth/key_service.hpp): a live table
//     keyed by digest, replaced whole by the key service when the backend's change log says a
//     key changed. A stored key's secret is 32 random bytes, so a hash lookup by its digest
//     tells an attacker nothing a guess could use; authentication never waits on the backend.
// No key or digest is ever logged or exported.
namespace orchestra::auth {

struct Principal {
  std::string name;  // the key's name (unique among keys)
  bool user = false;
  bool admin = false;
  limits::KeyPolicy policy;  // what the key may spend and call
  // The namespace of the key's stored data (memory, checkpoints, documents); empty = `name`.
  std::string tenant;

  std::string_view data_tenant() const { return tenant.empty() ? name : tenant; }
};

using Digest = std::array<std::uint8_t, 32>;
Digest Sha256(std::string_view data);

// A stored key's entry in the live table.
struct StoredKey {
  Digest digest;
  const Principal* principal = nullptr;  // from ApiKeys::Keep
  // Refused from this time on (seconds since the Unix epoch; 0 = never): the key's expiry, or
  // the end of a rotated-out secret's grace period.
  double not_after = 0;
};

class ApiKeys {
 public:
  // Reads every key from its environment variable or file, or takes its digest. Throws
  // std::runtime_error naming the key and its source when one cannot be read.
  static ApiKeys FromConfig(const config::AuthConfig& auth, const config::EnvLookup& env);

  // False when no key is configured and none is stored (or auth.disabled: true): every request
  // then acts as the `default` principal with both scopes (allowed only on loopback, or with
  // auth.disabled: true; see config).
  bool enabled() const {
    return !disabled_ && (!keys_.empty() || live_->stored.load(std::memory_order_acquire) > 0);
  }

  // The principal for an Authorization header value. kUnauthenticated when the header is
  // missing, not a bearer token, matches no key, or matches an expired or rotated-out key.
  // `now` is seconds since the Unix epoch (the system clock when 0).
  Result<const Principal*> Authenticate(std::string_view authorization, double now = 0) const;

  const Principal& anonymous() const { return anonymous_; }
  std::size_t size() const { return keys_.size(); }
  // The config keys' principals (names reserved for them; their policies).
  std::vector<const Principal*> configured() const;

  // --- The stored keys' live table (the key service). Thread-safe. ---
  // Keeps `principal` for the process's life and returns it: requests hold `const Principal*`
  // (and admission stages use its address as the key's identity), so a principal is never
  // freed, only replaced in the table. A changed key costs one principal (a few hundred bytes).
  const Principal* Keep(Principal principal);
  // Replaces the whole table. Requests already authenticated keep their principal.
  void Publish(std::vector<StoredKey> keys);
  std::size_t stored() const { return live_->stored.load(std::memory_order_acquire); }

 private:
  struct Key {
    Digest digest;
    Principal principal;
  };
  struct DigestHash {
    std::size_t operator()(const Digest& d) const {
      std::size_t h;  // SHA-256 output is uniform: its first bytes are a hash already
      std::memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };
  using Table = std::unordered_map<Digest, StoredKey, DigestHash>;
  struct Live {
    std::atomic<std::shared_ptr<const Table>> table;
    std::atomic<std::size_t> stored{0};
    std::mutex mutex;                                         // guards principals
    std::deque<std::unique_ptr<const Principal>> principals;  // never freed (see Keep)
  };
  std::vector<Key> keys_;
  Principal anonymous_{"default", true, true, {}, {}};
  bool disabled_ = false;
  // On the heap, so that ApiKeys stays movable.
  std::shared_ptr<Live> live_ = std::make_shared<Live>();
};

}  // namespace orchestra::auth
