#pragma once

#include <array>
#include <optional>

#include <boost/asio/cancellation_signal.hpp>

#include "observability/trace.hpp"

// The parent of spans made by code that is not handed the request's trace context: the storage
// service (storage::StorageService::Execute) sits behind interfaces that know tenants and keys,
// not requests.
//
// The pipeline sets the request's server span as the ambient parent of its event-loop thread
// just before the handler runs, naming the coroutine chain that runs it by its cancellation
// slot (`co_await asio::this_coro::cancellation_state` → `.slot()`: one per connection's
// session, so one per request in flight). A call takes the parent at its synchronous start only
// when the owner is its own chain, and sets it again when it resumes, so that a handler's next
// call finds it too. A call reached after the handler waited on something else while another
// request set its own parent finds a different owner and gets no parent (its span is not
// recorded) rather than someone else's.
//
// Thread-local and copied by value: nothing here is referenced across a co_await.
namespace orchestra::observability {

struct AmbientParent {
  std::array<char, 32> trace_id{};
  std::array<char, 16> span_id{};
  bool sampled = false;
};

// `owner` not connected: nothing is set.
void SetAmbientParent(const boost::asio::cancellation_slot& owner, const AmbientParent& parent);
void SetAmbientParent(const boost::asio::cancellation_slot& owner, const TraceContext& trace);
// The parent `owner` set last on this thread, if it is still the ambient one.
std::optional<AmbientParent> AmbientParentOf(const boost::asio::cancellation_slot& owner);
// Forgets the ambient parent when `owner` set it.
void ClearAmbientParent(const boost::asio::cancellation_slot& owner);

}  // namespace orchestra::observability
