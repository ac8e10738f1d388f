#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/api_keys.hpp"
#include "common/error.hpp"
#include "limits/policy.hpp"

// Virtual API keys as stored (issue 13): one record per key in the record store's system
// tenant, collection kKeysCollection, id = the key's id; plus one record per name in
// kKeyNamesCollection (id = the name, value = the key's id), written in the same atomic batch,
// so that a name is taken once across every instance. The secret itself is never stored: only
// its SHA-256, and during a rotation's grace period the previous secret's SHA-256.
//
// The admin API's bodies are parsed and validated here, into native types, before anything is
// written: a bad field is kInvalidRequest naming it (`limits.per_model.gpt-4o.rpm`), with the
// closest valid name where one is near.
namespace orchestra::auth {

inline constexpr std::string_view kKeysCollection = "api_keys";
inline constexpr std::string_view kKeyNamesCollection = "api_key_names";
inline constexpr std::string_view kSecretPrefix = "ok-";
inline constexpr std::size_t kSecretBytes = 32;
inline constexpr std::int64_t kMaxLimit = 1'000'000'000;  // per minute, or in flight
inline constexpr double kMaxBudgetUsd = 1e9;
inline constexpr std::size_t kMaxNameBytes = 64;
inline constexpr std::size_t kMaxModels = 256;
inline constexpr std::size_t kMaxMetadataBytes = 4096;
inline constexpr double kMaxRotationGraceSeconds = 30 * 86400.0;

struct KeyRecord {
  std::string id;      // "key_" + 24 hex characters
  std::string name;    // unique; the key's name in metrics and logs
  std::string tenant;  // the namespace of its stored data; the name when not given
  bool user = false;
  bool admin = false;
  limits::KeyPolicy policy;
  double expires_at = 0;  // seconds since the Unix epoch; 0 = never
  std::string metadata;   // a JSON object as the client sent it; "" = none
  double created_at = 0;
  Digest digest{};
  // The rotated-out secret, valid until previous_valid_until.
  std::optional<Digest> previous_digest;
  double previous_valid_until = 0;
};

// "ok-" + base62 of kSecretBytes bytes from the OS's CSPRNG (OpenSSL RAND_bytes).
std::string NewSecret();
// "key_" + 24 random hex characters.
std::string NewKeyId();
// Base62 (0-9A-Za-z) of the bytes read as one big-endian number, without leading zero digits
// beyond those that keep the length fixed for the input size.
std::string Base62(std::span<const std::uint8_t> bytes);

// `*` (any run) and `?` (one byte) glob match of a model name.
bool ModelMatches(std::string_view pattern, std::string_view model);
// True when the policy lets the key call `model` (no `models` list: every model).
bool ModelAllowed(const limits::KeyPolicy& policy, std::string_view model);

// A create body: {name, tenant?, scopes, models?, limits?, budget?, expires_at?, metadata?}.
// `models` are the configured public model names, against which `models` and
// `limits.per_model` are checked; `now` in seconds since the epoch (expires_at must be later).
// Fills everything except id, digest and created_at.
Result<KeyRecord> ParseCreate(std::string_view body, std::span<const std::string> models,
                              double now);
// A PATCH body: any of {scopes, models, limits, budget, expires_at, metadata}; null clears
// models, budget, expires_at and metadata. On an error `record` is unchanged.
Result<void> ApplyPatch(std::string_view body, std::span<const std::string> models, double now,
                        KeyRecord& record);
// A rotate body: empty, or {grace_seconds?}; returns the grace period, `default_grace` when not
// given.
Result<double> ParseRotate(std::string_view body, double default_grace);
// A policy's `models`, `limits` and `budget` checked the same way (config-file keys).
Result<void> CheckPolicy(const limits::KeyPolicy& policy, std::span<const std::string> models,
                         std::string_view where);

std::string EncodeStored(const KeyRecord& record);
Result<KeyRecord> DecodeStored(std::string_view text);
// The client's view: every field except the digests; "key" only when `secret` is given (create
// and rotate, the only time it is shown).
std::string RenderKey(const KeyRecord& record, std::string_view secret = {});
// The principal a stored key authenticates as.
Principal ToPrincipal(const KeyRecord& record);

}  // namespace orchestra::auth
