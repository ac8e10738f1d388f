#pragma once

#include "api/router.hpp"
#include "limits/spend.hpp"
#include "storage/record_store.hpp"

// Spend and a key's own view of its limits (issue 13; docs/API.md "Rate limits and budgets").
//
//   GET /admin/spend?key=&model=&from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=key|model|day  (admin)
//       → {"object":"spend","group_by":..,"from":..|null,"to":..|null,
//          "data":[{"key"|"model"|"day":..,"requests","prompt_tokens","completion_tokens",
//                   "cost_usd"}, ...],                       (ordered by the grouping value)
//          "total":{"requests","prompt_tokens","completion_tokens","cost_usd"}}
//       from/to are inclusive UTC days; every filter is optional; group_by defaults to key.
//       Spend settled in the last storage.flush interval (limits.spend_flush_interval) may not
//       be in it yet.
//   GET /v1/me  (any key)
//       → {"name","scopes":[..],"limits":{"rpm","tpm","max_parallel","per_model":{model:{..}}},
//          "budget":{"usd","period","period_start","spent_usd","remaining_usd"}|null}
//
// Bad query parameters (unknown, repeated, a malformed day, from after to, an unknown group_by)
// are a 400 naming the parameter.
namespace orchestra::api {

// `store` (may be null: /admin/spend answers 503) and `ledger` must outlive the router.
void AddSpendRoutes(Router& router, storage::RecordStore* store, limits::SpendLedger& ledger);

}  // namespace orchestra::api
