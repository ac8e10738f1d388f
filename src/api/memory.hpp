#pragma once

#include <string_view>

#include "api/json_body.hpp"
#include "api/router.hpp"
#include "common/error.hpp"
#include "storage/kv_store.hpp"

// Agent memory over HTTP (issue 4, docs/API.md "Memory"), in Orchestra's shapes with AI
// Orchestra's fields alongside (issue 11):
// - POST /memory/store {key, value, ttl?} → {"stored":true,"key":...,"success":true}
// - POST /memory/retrieve {key} → {"key":...,"value":<as stored>|null,"exists":bool}
// - DELETE /memory/{key} → {"deleted":bool,"key":...,"success":true}
// - GET /memory/keys?pattern=&limit=&cursor= →
//       {"keys":[...],"next_cursor":"..."|null,"pattern":<as given, "*" when absent>}
//
// Every success is 200; a missing entry is an answer (exists/deleted false), never a 404, and
// `success` is true in every 200 (AI Orchestra's meaning: the call completed). Values are stored
// and returned as the exact bytes the client sent. Bad input is a 400 naming the field in `param`
// (413 for a value over storage.max_value_bytes) and reaches no store. Entries belong to the
// caller's tenant (RequestContext::tenant()).
namespace orchestra::api {

// Registers the memory routes (Access::kUser). `kv` must outlive the router.
void AddMemoryRoutes(Router& router, storage::KvStore& kv);

}  // namespace orchestra::api
