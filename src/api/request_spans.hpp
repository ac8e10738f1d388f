#pragma once

#include <boost/asio/awaitable.hpp>

#include "api/context.hpp"
#include "api/router.hpp"
#include "limits/admission.hpp"
#include "net/exchange.hpp"
#include "observability/tracer.hpp"

// The pipeline's spans (docs/OPERATIONS.md#traces), kept out of pipeline.cpp so that the
// pipeline holds only the calls: the server span of the whole request, its admission and its
// settlement, and the ambient parent of the storage calls its handler makes. Each Record*
// function is called only for a sampled request with tracing on (TracerFor), so an unsampled
// request pays nothing but that test.
namespace orchestra::api {

// The server span: from the complete request head to the recorded response. Its id is the
// trace context's own span id (the one upstream calls and log lines carry); its parent the
// caller's span. `route` is null for an unmatched request; `ctx` is null when the request was
// answered before a context existed (404, 401, ...).
void RecordServerSpan(observability::Tracer& tracer, const Route* route, net::Exchange& exchange,
                      std::string_view request_id, const observability::TraceContext& trace,
                      const RequestContext* ctx);

// The admission span, once admission decided (AdmissionState::traced_since is its start).
void RecordAdmissionSpan(observability::Tracer& tracer, RequestContext& ctx);

// The settlement span: the stages' Settle calls, started at `start`.
void RecordSettlementSpan(observability::Tracer& tracer, const RequestContext& ctx,
                          net::Clock::time_point start, const limits::Outcome& outcome);

// Runs the route's handler with the request's server span as the ambient parent of the spans
// of calls that are not handed the trace context (observability/ambient_span.hpp).
boost::asio::awaitable<void> HandleTraced(const Route& route, RequestContext& ctx);

}  // namespace orchestra::api
