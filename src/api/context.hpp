#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "api/errors.hpp"
#include "api/router.hpp"
#include "auth/api_keys.hpp"
#include "common/error.hpp"
#include "net/exchange.hpp"
#include "observability/log.hpp"
#include "observability/trace.hpp"

namespace orchestra::api {

// Everything a route handler needs about its request, built by the Pipeline. Lives on the
// pipeline's coroutine frame for the duration of the handler.
class RequestContext {
 public:
  RequestContext(net::Exchange& exchange, const Route& route, std::vector<PathParam> params,
                 std::string_view request_id, const observability::TraceContext& trace,
                 const auth::Principal& principal)
      : exchange(exchange),
        request(exchange.request()),
        response(exchange.response()),
        route(route),
        params(std::move(params)),
        request_id(request_id),
        trace(trace),
        principal(principal) {}

  net::Exchange& exchange;
  const net::Request& request;
  net::Response& response;
  const Route& route;
  std::vector<PathParam> params;
  std::string_view request_id;
  const observability::TraceContext& trace;
  const auth::Principal& principal;

  // A path parameter by name ("" when the route has none of that name).
  std::string_view Param(std::string_view name) const {
    for (const PathParam& p : params) {
      if (p.name == name) return p.value;
    }
    return {};
  }
  // The namespace stored data belongs to.
  std::string_view tenant() const { return principal.name; }
  observability::LogContext log() const {
    return {request_id, trace.TraceId(), trace.SpanId(), trace.sampled};
  }

  void Json(std::string body, unsigned status = 200) {
    response.status = status;
    response.content_type = "application/json";
    response.body = std::move(body);
  }
  void Fail(const Error& error) { RenderError(error, response); }
};

}  // namespace orchestra::api
