#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "orchestration/route_table.hpp"

// The persisted state of one model's versions and deployment (AI Orchestra's model versions and
// blue/green traffic, docs/API.md "Model versions"): one record per model, so that every change
// is one conditional write and a reader never sees half of one.
//
// Stored as JSON in the `model_versions` collection of storage::kSystemTenant, under the model's
// name:
//   {"model_id":"chat",
//    "versions":[{"version":"v1","endpoint":"openai/gpt-4o","capabilities":["chat"],
//                 "created_at":1715000000.25}, ...],            (registration order)
//    "deployment":{"state":"blue_green","blue_version":"v1","green_version":"v2",
//                  "green_traffic_percentage":30}}               (or null)
//
// A version's `endpoint` is `provider/upstream-model`, naming a configured provider (split at
// the first '/', so upstream names keep their slashes: `openrouter/meta-llama/llama-3-8b`). It
// is never a URL: an admin cannot make the server reach a host the configuration does not name.
namespace orchestra::versions {

inline constexpr std::string_view kCollection = "model_versions";
inline constexpr std::size_t kMaxVersionsPerModel = 64;
inline constexpr std::size_t kMaxVersionBytes = 128;
inline constexpr std::size_t kMaxEndpointBytes = 512;
inline constexpr std::size_t kMaxCapabilities = 32;
inline constexpr std::size_t kMaxCapabilityBytes = 64;

struct Version {
  std::string version;
  std::string endpoint;  // provider/upstream-model
  std::vector<std::string> capabilities;
  double created_at = 0;  // seconds since the Unix epoch (AI Orchestra's float timestamp)
};

// Where a model's traffic goes. kNone: its configured targets. kBlueGreen: blue gets
// 100 - green_percent % of requests, green the rest. kPromoted: green only. kRolledBack: blue only.
// After kPromoted or kRolledBack blue and green are remembered, so the other can still be chosen.
enum class DeploymentState : std::uint8_t { kNone, kBlueGreen, kPromoted, kRolledBack };
std::string_view ToString(DeploymentState state);

struct Deployment {
  DeploymentState state = DeploymentState::kNone;
  std::string blue;
  std::string green;
  int green_percent = 0;
};

struct ModelRecord {
  std::string model_id;
  std::vector<Version> versions;
  Deployment deployment;

  const Version* Find(std::string_view version) const;
};

std::string Encode(const ModelRecord& record);
// kInternal naming what is wrong when `json` is not a record this code wrote (a damaged or
// foreign value: the caller logs it and keeps the model's configured targets).
Result<ModelRecord> Decode(std::string_view json);

struct Endpoint {
  std::string_view provider;
  std::string_view upstream_model;
};
// `provider/upstream-model` split at the first '/'; nullopt when either side is empty.
std::optional<Endpoint> SplitEndpoint(std::string_view endpoint);

// The route plan a record's deployment asks for; empty for kNone (the configured targets).
// Every version it names must be in the record (Decode and the service ensure it).
std::vector<orchestration::RouteTable::PlanTarget> PlanFor(const ModelRecord& record);

// Printable text (no control characters), valid UTF-8, 1..max bytes: version names and
// capabilities. The message names `field`.
Result<void> CheckName(std::string_view text, std::size_t max_bytes, std::string_view field);

}  // namespace orchestra::versions
