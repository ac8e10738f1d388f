#pragma once

#include <string_view>

#include "api/context.hpp"
#include "orchestration/orchestrator.hpp"

namespace orchestra::api {

// What the orchestrator needs to know about the HTTP request it serves. `traceparent` (ours, for
// the upstream) must outlive the call.
inline orchestration::RequestInfo InfoFor(RequestContext& ctx, std::string_view traceparent) {
  orchestration::RequestInfo info;
  info.traceparent = traceparent;
  info.request_id = ctx.request_id;
  info.tenant = ctx.tenant();
  info.worker = ctx.exchange.worker_index();
  info.start = ctx.request.start;
  info.trace = &ctx.trace;
  return info;
}

}  // namespace orchestra::api
