#include "api/request_spans.hpp"

#include <array>
#include <string>

#include <boost/asio/this_coro.hpp>

#include "observability/ambient_span.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
using observability::Attribute;
using observability::SpanKind;
using observability::SpanRecord;
using observability::SpanStatus;

// http.request.method: the method's name for one HTTP defines, "_OTHER" otherwise (semantic
// conventions: a client's made-up methods are not attribute values).
std::string_view MethodName(http::verb method) {
  if (method == http::verb::unknown) return "_OTHER";
  const auto name = http::to_string(method);
  return {name.data(), name.size()};
}

std::string_view View(const std::array<char, 16>& id) {
  return {id.data(), id.size()};
}

// A child span of the request's server span.
SpanRecord ChildOf(const observability::TraceContext& trace, std::string_view span_id) {
  SpanRecord span;
  span.trace_id = trace.TraceId();
  span.span_id = span_id;
  span.parent_span_id = trace.SpanId();
  span.sampled = trace.sampled;
  return span;
}

// Where the attributes of one span are gathered (a fixed array: no allocation).
template <std::size_t N>
struct Attributes {
  std::array<Attribute, N> items;  // filled from the front
  std::size_t size = 0;
  template <class V>
  void Add(std::string_view key, V value) {
    if (size < N) items[size++] = Attribute(key, value);
  }
  std::span<const Attribute> view() const { return {items.data(), size}; }
};

}  // namespace

void RecordServerSpan(observability::Tracer& tracer, const Route* route, net::Exchange& exchange,
                      std::string_view request_id, const observability::TraceContext& trace,
                      const RequestContext* ctx) {
  const net::Request& req = exchange.request();
  const net::Response& res = exchange.response();
  const observability::UnixTime clock;
  const std::string_view method = MethodName(req.method);
  std::string name(method);
  if (route != nullptr) name += " " + route->pattern;  // "{method} {http.route}"
  const std::string status_text = std::to_string(res.status);

  Attributes<24> a;
  a.Add("http.request.method", method);
  if (route != nullptr) a.Add("http.route", std::string_view(route->pattern));
  a.Add("url.path", req.path);
  a.Add("url.scheme", "http");
  a.Add("network.protocol.version", "1.1");
  a.Add("http.response.status_code", res.status);
  if (!req.remote_ip.empty()) a.Add("client.address", req.remote_ip);
  if (auto ua = req.Header(http::field::user_agent); !ua.empty()) a.Add("user_agent.original", ua);
  a.Add("http.request.size", req.wire_size);
  a.Add("http.response.body.size",
        exchange.streaming() ? exchange.bytes_written() : res.body.size());
  if (res.status >= 500) a.Add("error.type", std::string_view(status_text));
  if (ctx != nullptr) {
    a.Add("orchestra.tenant", ctx->tenant());
    const orchestration::Served& s = ctx->served;
    if (!s.model.empty()) {
      a.Add("gen_ai.request.model", std::string_view(ctx->admission().model));
      a.Add("orchestra.model", s.model);
      a.Add("gen_ai.response.model", s.upstream_model);
      a.Add("orchestra.provider", s.provider);
      a.Add("orchestra.cache_hit", s.cache_hit);
      if (s.usage.known) {
        a.Add("gen_ai.usage.input_tokens", s.usage.prompt_tokens);
        a.Add("gen_ai.usage.output_tokens", s.usage.completion_tokens);
        a.Add("orchestra.cost_usd", s.cost_usd);
      }
    }
    if (exchange.client_gone()) a.Add("orchestra.client_gone", true);
  }
  a.Add("orchestra.request_id", request_id);

  SpanRecord span;
  span.trace_id = trace.TraceId();
  span.span_id = trace.SpanId();
  span.parent_span_id = trace.remote ? View(trace.parent_span_id) : std::string_view();
  span.sampled = trace.sampled;
  span.name = name;
  span.kind = SpanKind::kServer;
  span.start_unix_nano = clock.Of(req.start);
  span.end_unix_nano = clock.now();
  span.attributes = a.view();
  // Server spans: a 4xx is the client's error, not the server's (semantic conventions).
  if (res.status >= 500) {
    span.status = SpanStatus::kError;
    span.status_message = status_text;
  }
  tracer.Record(span);
}

void RecordAdmissionSpan(observability::Tracer& tracer, RequestContext& ctx) {
  AdmissionState& adm = ctx.admission();
  if (adm.traced_since == net::Clock::time_point{}) return;
  const observability::UnixTime clock;
  const auto id = observability::NewSpanId();
  Attributes<8> a;
  const bool refused = !adm.refused_by.empty();
  a.Add("orchestra.admission.result", refused ? "refused" : "admitted");
  if (refused) {
    a.Add("orchestra.admission.refusal", adm.refused_by);
    a.Add("error.type", adm.refused_by);
  }
  a.Add("orchestra.admission.stages", adm.admitted);
  if (!adm.model.empty()) a.Add("gen_ai.request.model", std::string_view(adm.model));
  if (adm.request.estimated_tokens > 0) {
    a.Add("orchestra.admission.estimated_tokens", adm.request.estimated_tokens);
  }
  SpanRecord span = ChildOf(ctx.trace, observability::View(id));
  span.name = "admit";
  span.start_unix_nano = clock.Of(adm.traced_since);
  span.end_unix_nano = clock.now();
  span.attributes = a.view();
  if (refused) {
    span.status = SpanStatus::kError;
    span.status_message = adm.refused_by;
  }
  tracer.Record(span);
  adm.traced_since = {};  // recorded once
}

void RecordSettlementSpan(observability::Tracer& tracer, const RequestContext& ctx,
                          net::Clock::time_point start, const limits::Outcome& outcome) {
  const observability::UnixTime clock;
  const auto id = observability::NewSpanId();
  Attributes<10> a;
  a.Add("orchestra.settlement.stages", ctx.admission().admitted);
  a.Add("http.response.status_code", outcome.status);
  if (!outcome.model.empty()) a.Add("orchestra.model", outcome.model);
  if (outcome.usage_known) {
    a.Add("gen_ai.usage.input_tokens", outcome.prompt_tokens);
    a.Add("gen_ai.usage.output_tokens", outcome.completion_tokens);
    a.Add("orchestra.cost_usd", outcome.cost_usd);
  }
  if (outcome.cache_hit) a.Add("orchestra.cache_hit", true);
  if (outcome.client_gone) a.Add("orchestra.client_gone", true);
  SpanRecord span = ChildOf(ctx.trace, observability::View(id));
  span.name = "settle";
  span.start_unix_nano = clock.Of(start);
  span.end_unix_nano = clock.now();
  span.attributes = a.view();
  tracer.Record(span);
}

asio::awaitable<void> HandleTraced(const Route& route, RequestContext& ctx) {
  const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  // Forgets the parent however the handler ends (an exception, the frame torn down).
  struct Scope {
    asio::cancellation_slot owner;
    ~Scope() { observability::ClearAmbientParent(owner); }
  } scope{state.slot()};
  observability::SetAmbientParent(scope.owner, ctx.trace);
  co_await route.handler(ctx);
}

}  // namespace orchestra::api
