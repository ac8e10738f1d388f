#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"

// Versioned snapshots of an agent's state, namespaced by tenant.
namespace orchestra::storage {

struct CheckpointInfo {
  std::string id;  // storage/checkpoint_id.hpp: 26 characters, byte order = creation order
  std::chrono::system_clock::time_point created_at;  // from the id, millisecond precision
  std::optional<std::string> metadata;               // JSON text, as given to Create
};

struct Checkpoint {
  CheckpointInfo info;
  std::string state;  // JSON text, as given to Create
};

// Contract shared by every method (see also KvStore's):
// - `agent_id` is 1..kMaxKeyBytes bytes without NUL, else kInvalidRequest param "agent_id".
// - A checkpoint id that is not of our format is kInvalidRequest param "checkpoint_id".
// - States and metadata larger than storage.max_value_bytes are kPayloadTooLarge (param
//   "state" or "metadata").
// - Per agent, ids increase with creation order even across instances with skewed clocks: a new
//   id is made greater than the agent's latest one when the clock says otherwise.
// - Only the newest storage.checkpoints.keep_last checkpoints of an agent are kept.
class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;

  // Stores a new checkpoint and returns its id.
  virtual boost::asio::awaitable<Result<std::string>> Create(
      std::string_view tenant, std::string_view agent_id, std::string_view state,
      std::optional<std::string_view> metadata) = 0;

  // The checkpoint `checkpoint_id`, or the latest when nullopt; nullopt when there is none.
  virtual boost::asio::awaitable<Result<std::optional<Checkpoint>>> Restore(
      std::string_view tenant, std::string_view agent_id,
      std::optional<std::string_view> checkpoint_id) = 0;

  // The agent's checkpoints, oldest first (empty when it has none).
  virtual boost::asio::awaitable<Result<std::vector<CheckpointInfo>>> List(
      std::string_view tenant, std::string_view agent_id) = 0;

  // True when the checkpoint existed and was removed.
  virtual boost::asio::awaitable<Result<bool>> Delete(std::string_view tenant,
                                                      std::string_view agent_id,
                                                      std::string_view checkpoint_id) = 0;
};

}  // namespace orchestra::storage
