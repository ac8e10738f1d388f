#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/router.hpp"

// GET /openapi.json (issue 11): the OpenAPI 3.1 document of every route Orchestra serves.
//
// The operations are described by hand in src/api/openapi.json (compiled into the binary).
// BuildOpenApi merges that description with the Router at start-up, so the document cannot
// drift from what is served:
// - every registered route appears; one the description lacks gets a stub operation marked
//   `x-orchestra-undescribed: true` and is reported (main logs a warning; the docs tests fail);
// - each operation's `security` and `x-orchestra-scope` follow the route's Access (public
//   routes: no security);
// - an operation marked `x-orchestra-pending` (a route another change is adding) loses the mark
//   once its route is registered; a described operation that is neither registered nor pending
//   is reported too;
// - `info.version` is the build's.
namespace orchestra::api {

struct OpenApiDocument {
  std::string json;                      // the document, serialised once
  std::vector<std::string> undescribed;  // "GET /path" registered but not described
  std::vector<std::string> not_served;   // "GET /path" described, not registered, not pending
};

// Throws std::runtime_error when the compiled-in description is not a JSON object with `paths`
// (a build mistake).
OpenApiDocument BuildOpenApi(const Router& router, std::string_view version);

// The compiled-in description (src/api/openapi.json).
std::string_view OpenApiDescription();

// Registers GET /openapi.json (public: the document holds no secret and API tools fetch it
// without a key). The document is built once, on the first request, from every route the router
// holds by then (so routes added after this call are included too), and stays the same
// afterwards; each route BuildOpenApi reports is logged as a warning then. `router` must outlive
// the server.
void AddOpenApiRoute(Router& router, std::string_view version);

}  // namespace orchestra::api
