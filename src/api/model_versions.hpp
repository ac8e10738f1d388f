#pragma once

#include "api/router.hpp"
#include "versions/service.hpp"

// Model versions and blue/green traffic over HTTP, in AI Orchestra's shapes (issue 11,
// docs/API.md "Model versions"). Every route needs the `admin` scope.
//
//   POST /models/versions/register {model_id, version, endpoint, capabilities?}
//        → {"model_id","version","endpoint","capabilities":[...],"created_at":<epoch seconds>}
//   GET  /models/{model_id}/versions
//        → {"model_id","versions":[{model_id,version,endpoint,capabilities,created_at}, ...],
//           "deployment":{"state","blue_version","green_version","green_traffic_percentage"}|null}
//   POST /models/deployments/blue-green {model_id, blue_version, green_version,
//                                        green_traffic_percentage?=0}      → {"success":true}
//   POST /models/{model_id}/traffic-shift?green_traffic_percentage=N     → {"success":true}
//   POST /models/{model_id}/promote-green                                 → {"success":true}
//   POST /models/{model_id}/rollback                                      → {"success":true}
//
// `endpoint` is `provider/upstream-model` of a configured provider; `model_id` a model
// configured under `models:`. Bad input is a 400 naming the field (unknown provider, malformed
// endpoint or version, percentage not an integer from 0 to 100), 404 for an unknown model or
// version, 409 for a traffic shift, promotion or rollback without a deployment; nothing is
// written then. `deployment` in the listing is Orchestra's addition.
namespace orchestra::api {

// Registers the routes (Access::kAdmin). `service` must outlive the router.
void AddModelVersionRoutes(Router& router, versions::Service& service);

}  // namespace orchestra::api
