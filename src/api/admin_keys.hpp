#pragma once

#include "api/router.hpp"
#include "auth/key_service.hpp"

// Virtual API keys over HTTP (issue 13, docs/API.md "Admin: API keys"). Every route needs the
// `admin` scope (403 otherwise).
//
//   POST   /admin/keys             {name, tenant?, scopes, models?, limits?, budget?,
//                                   expires_at?, metadata?}          → the key, with "key"
//   GET    /admin/keys?limit=&cursor=   → {"object":"list","data":[...],"has_more","next_cursor"}
//   GET    /admin/keys/{id}                                          → the key, never its secret
//   PATCH  /admin/keys/{id}        {scopes?, models?, limits?, budget?, expires_at?, metadata?}
//   DELETE /admin/keys/{id}        revoke                 →
//   {"id","object":"api_key","deleted":true} POST   /admin/keys/{id}/rotate {grace_seconds?} → the
//   key with its new "key"
//
// The secret ("key": "ok-…") is in the responses of create and rotate only. Bad input is a 400
// naming the field, nothing written; an unknown id 404.
namespace orchestra::api {

// Registers the routes (Access::kAdmin). `service` must outlive the router.
void AddAdminKeyRoutes(Router& router, auth::KeyService& service);

}  // namespace orchestra::api
