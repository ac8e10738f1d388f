#pragma once

#include "api/router.hpp"
#include "storage/checkpoint_store.hpp"

// Agent checkpoints over HTTP (issue 4, docs/API.md "Checkpoints"), with AI Orchestra's fields
// alongside Orchestra's (issue 11: `success`, `timestamp`):
//
//   POST   /checkpoints/create   {agent_id, state, metadata?}
//          → {"checkpoint_id":...,"agent_id":...,"created_at":...}
//   POST   /checkpoints/restore  {agent_id, checkpoint_id?}  (the latest when absent or null)
//          → {"agent_id":...,"checkpoint_id":...|null,"state":<as stored>|null,"found":bool,
//             "created_at":...|null,"metadata":<as stored>|null}
//   GET    /checkpoints/{agent_id}
//          → {"agent_id":...,"checkpoints":[{"checkpoint_id","created_at","metadata",
//             "timestamp"}, ...]}
//             oldest first (at most storage.checkpoints.keep_last)
//   DELETE /checkpoints/{agent_id}/{checkpoint_id}
//          → {"deleted":bool,"agent_id":...,"checkpoint_id":...,"success":true}
//
// Same conventions as the memory routes (api/memory.hpp): every success is 200, absence is an
// answer (found/deleted false, an empty list), states and metadata are kept as the exact bytes
// the client sent, bad input is a 400/413 naming the field and changes nothing, and everything
// belongs to the caller's tenant. created_at is RFC 3339 UTC with milliseconds.
namespace orchestra::api {

// Registers the checkpoint routes (Access::kUser). `checkpoints` must outlive the router.
void AddCheckpointRoutes(Router& router, storage::CheckpointStore& checkpoints);

}  // namespace orchestra::api
