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
  if (const std::string_view cc = ctx.request.Header(boost::beast::http::field::cache_control);
      !cc.empty()) {
    const orchestration::CacheDirectives directives = orchestration::ParseCacheControl(cc);
    info.cache_read = directives.read;
    info.cache_write = directives.write;
  }
  info.worker = ctx.exchange.worker_index();
  info.start = ctx.request.start;
  info.trace = &ctx.trace;
  return info;
}

}  // namespace orchestra::api
