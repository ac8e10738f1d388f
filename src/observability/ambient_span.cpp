#include "observability/ambient_span.hpp"

namespace orchestra::observability {
namespace {

struct Ambient {
  boost::asio::cancellation_slot owner;
  AmbientParent parent;
};

Ambient& ThreadAmbient() {
  thread_local Ambient ambient;
  return ambient;
}

}  // namespace

void SetAmbientParent(const boost::asio::cancellation_slot& owner, const AmbientParent& parent) {
  if (!owner.is_connected()) return;
  Ambient& a = ThreadAmbient();
  a.owner = owner;
  a.parent = parent;
}

void SetAmbientParent(const boost::asio::cancellation_slot& owner, const TraceContext& trace) {
  AmbientParent parent;
  parent.trace_id = trace.trace_id;
  parent.span_id = trace.span_id;
  parent.sampled = trace.sampled;
  SetAmbientParent(owner, parent);
}

std::optional<AmbientParent> AmbientParentOf(const boost::asio::cancellation_slot& owner) {
  const Ambient& a = ThreadAmbient();
  if (!owner.is_connected() || !(a.owner == owner)) return std::nullopt;
  return a.parent;
}

void ClearAmbientParent(const boost::asio::cancellation_slot& owner) {
  Ambient& a = ThreadAmbient();
  if (a.owner == owner) a = Ambient{};
}

}  // namespace orchestra::observability
