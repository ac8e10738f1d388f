#pragma once

#include <array>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "api/errors.hpp"
#include "api/router.hpp"
#include "auth/api_keys.hpp"
#include "common/error.hpp"
#include "limits/admission.hpp"
#include "net/exchange.hpp"
#include "observability/log.hpp"
#include "observability/trace.hpp"
#include "orchestration/orchestrator.hpp"

namespace orchestra::api {

class Pipeline;

// What a model route's handler tells admission once it has decoded the body.
struct RequestFacts {
  std::string_view model;             // as the client (or the task's default) names it
  std::int64_t estimated_tokens = 0;  // prompt estimate plus the completion tokens asked for
  bool stream = false;
};

// Admission's state for one request (pipeline.cpp fills it).
struct AdmissionState {
  static constexpr std::size_t kMaxStages = 6;
  limits::Request request;
  std::string model;  // the storage of request.model: the handler's body is gone by Settle
  limits::RateHeaders rate_headers;  // request.rate_headers points here
  std::array<limits::Ticket, kMaxStages> tickets{};
  std::size_t admitted = 0;  // stages that admitted, in order
  bool decided = false;      // Admit ran (admitted or refused)
  bool pending = false;      // an asynchronous stage is next: CompleteAdmission must run
  bool settled = false;
  std::string_view refused_by;  // the refusing stage's reason (a string literal)
  // When admission began, for its span; set only when the request is traced.
  std::chrono::steady_clock::time_point traced_since{};
};

// Everything a route handler needs about its request, built by the Pipeline. Lives on the
// pipeline's coroutine frame for the duration of the handler.
class RequestContext {
 public:
  // `pipeline` is null only in handler unit tests, where Admit admits every request.
  RequestContext(Pipeline* pipeline, net::Exchange& exchange, const Route& route,
                 std::vector<PathParam> params, std::string_view request_id,
                 const observability::TraceContext& trace, const auth::Principal& principal)
      : exchange(exchange),
        request(exchange.request()),
        response(exchange.response()),
        route(route),
        params(std::move(params)),
        request_id(request_id),
        trace(trace),
        principal(principal),
        pipeline_(pipeline) {}

  net::Exchange& exchange;
  const net::Request& request;
  net::Response& response;
  const Route& route;
  std::vector<PathParam> params;
  std::string_view request_id;
  const observability::TraceContext& trace;
  const auth::Principal& principal;
  // Who served the request and what it used, for settlement: handlers that call the
  // orchestrator store (or add to) what it returned, also when it failed.
  orchestration::Served served;

  // A path parameter by name ("" when the route has none of that name).
  std::string_view Param(std::string_view name) const {
    for (const PathParam& p : params) {
      if (p.name == name) return p.value;
    }
    return {};
  }
  // The namespace stored data belongs to.
  std::string_view tenant() const { return principal.data_tenant(); }
  observability::LogContext log() const {
    return {request_id, trace.TraceId(), trace.SpanId(), trace.sampled};
  }

  void Json(std::string body, unsigned status = 200) {
    response.status = status;
    response.content_type = "application/json";
    response.body = std::move(body);
  }
  void Fail(const Error& error) { RenderError(error, response); }

  // Admission of a model route (Route::admits_in_handler), called by its handler once the body
  // is decoded and before any service is called; other routes are admitted by the pipeline
  // before their handler runs. The stages that decide at once run here, without suspending (the
  // hot path); when a stage needs a round trip (a fleet-wide limit) admission stops at it,
  // `admission_pending()` is true and the handler must co_await CompleteAdmission(). False
  // (from either) when a stage refused: the error response is set and the handler returns:
  //
  //   bool admitted = ctx.Admit(facts);
  //   if (ctx.admission_pending()) admitted = co_await ctx.CompleteAdmission();
  //   if (!admitted) co_return;
  bool Admit(const RequestFacts& facts);
  bool admission_pending() const { return admission_.pending; }
  boost::asio::awaitable<bool> CompleteAdmission();
  // Settles now rather than after the handler: a stream settles before its last event, so a
  // client that has seen the end of its answer also sees its usage and spend counted.
  void Settle();

  AdmissionState& admission() { return admission_; }
  const AdmissionState& admission() const { return admission_; }

 private:
  Pipeline* pipeline_;
  AdmissionState admission_;
};

}  // namespace orchestra::api
