#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "wire/types.hpp"

// Helpers for the codec tests: the recorded wire examples under testdata/, and JSON
// comparisons that ignore what the canonical types do not model.
namespace orchestra::wire::testing {

// The contents of tests/unit/providers/testdata/<relative> (found through
// $ORCHESTRA_SOURCE_DIR). Fails the test and returns "" when the file cannot be read.
std::string ReadTestdata(std::string_view relative);

// Parses JSON text; fails the test and returns null when it is not valid.
boost::json::value Json(std::string_view text);

// One Server-Sent Event of a recorded stream.
struct RecordedEvent {
  std::string event;  // "" when the event has no `event:` line
  std::string data;
};
// The events of a recorded .sse file (data lines joined with '\n'; "[DONE]" included).
std::vector<RecordedEvent> ReadSse(std::string_view relative);

// A ChatRequest as the edge leaves it before ParseChatMessages: only raw_body set.
ChatRequest RequestFromBody(std::string body);

// A copy of `value` without null members and without members named in `drop`, at any depth:
// recorded upstream bodies carry fields the canonical types do not model.
boost::json::value Pruned(const boost::json::value& value,
                          std::initializer_list<std::string_view> drop = {});

}  // namespace orchestra::wire::testing
