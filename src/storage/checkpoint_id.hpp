#pragma once

#include <chrono>
#include <string>
#include <string_view>

// Checkpoint ids: 128 bits written as 26 Crockford base-32 characters (the ULID layout): 48 bits
// of Unix milliseconds, then 80 random bits. Byte order of ids = order of their timestamps, so
// ids sort by creation time across restarts and instances as far as their clocks agree; within
// one process ids are strictly increasing even when the clock steps back.
namespace orchestra::storage {

inline constexpr std::size_t kCheckpointIdLength = 26;

std::string NewCheckpointId(std::chrono::system_clock::time_point now);

// Whether `id` has the shape NewCheckpointId produces (upper-case Crockford digits).
bool IsCheckpointId(std::string_view id);

// The smallest id greater than `id` (which must satisfy IsCheckpointId): backends use it when a
// new id would not sort after the agent's latest (clocks of two instances disagree).
std::string NextCheckpointId(std::string_view id);

// The creation time an id carries.
std::chrono::system_clock::time_point CheckpointIdTime(std::string_view id);

}  // namespace orchestra::storage
