// net::SseParser (net/sse.hpp), the event splitter in front of every provider's stream decoder.
//
// Invariants:
// - the events do not depend on how the bytes are cut into reads (whole, or in pieces of 1-64
//   bytes chosen by the input);
// - they are the events of a plain reference reading of the same bytes, line by line, as the
//   header documents it (\n, \r\n and \r line ends; comments; data lines joined with '\n';
//   an event without data dropped; an unfinished last line or event not delivered);
// - with a small event limit, no event passes the limit before Feed() reports the overflow.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "net/sse.hpp"

namespace {

using orchestra::fuzz::Shown;
using Events = std::vector<std::pair<std::string, std::string>>;

Events Reference(std::string_view text) {
  Events events;
  std::string event;
  std::string data;
  bool has_data = false;
  std::size_t i = 0;
  while (true) {
    const std::size_t end = text.find_first_of("\r\n", i);
    if (end == std::string_view::npos) break;  // an unfinished line waits for more
    const std::string_view line = text.substr(i, end - i);
    i = end + 1;
    if (text[end] == '\r' && i < text.size() && text[i] == '\n') ++i;
    if (line.empty()) {
      if (has_data) events.emplace_back(event, data);
      event.clear();
      data.clear();
      has_data = false;
      continue;
    }
    if (line.front() == ':') continue;
    std::string_view field = line;
    std::string_view value;
    if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      field = line.substr(0, colon);
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      if (has_data) data += '\n';
      data.append(value);
      has_data = true;
    } else if (field == "event") {
      event.assign(value);
    }
  }
  return events;
}

// Feeds `text` in pieces whose sizes come from `seed`; stops at the first refused Feed.
Events Parse(std::string_view text, std::uint32_t seed, std::size_t limit, bool& refused) {
  orchestra::net::SseParser parser(limit);
  orchestra::net::SseEvent event;
  Events events;
  refused = false;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t piece = text.size();
    if (seed != 0) {
      seed = seed * 1103515245u + 12345u;
      piece = 1 + (seed >> 16) % 64;
    }
    if (!parser.Feed(text.substr(at, piece))) {
      refused = true;
      return events;
    }
    at += std::min(piece, text.size() - at);
    while (parser.Next(event))
      events.emplace_back(std::string(event.event), std::string(event.data));
  }
  return events;
}

std::string Describe(const Events& events) {
  std::string out = std::to_string(events.size()) + " events:";
  for (const auto& [name, data] : events)
    out += " [" + Shown(name, 40) + "|" + Shown(data, 80) + "]";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint32_t seed = data[0] | 1u;
  const std::string_view text = orchestra::fuzz::AsText(data + 1, size - 1);

  bool refused = false;
  const Events whole = Parse(text, 0, 8 << 20, refused);
  FUZZ_CHECK(!refused, "refused under the default limit");
  const Events pieces = Parse(text, seed, 8 << 20, refused);
  FUZZ_CHECK(!refused, "refused under the default limit");
  FUZZ_CHECK(whole == pieces, "whole: " + Describe(whole) + "\npieces: " + Describe(pieces));
  const Events expected = Reference(text);
  FUZZ_CHECK(whole == expected,
             "parser: " + Describe(whole) + "\nreference: " + Describe(expected));

  const std::size_t small = 1 + data[0] % 32;
  const Events bounded = Parse(text, seed, small, refused);
  for (const auto& [name, value] : bounded) {
    FUZZ_CHECK(value.size() <= small, "event of " + std::to_string(value.size()) +
                                          " bytes under a limit of " + std::to_string(small));
  }
  if (!refused) FUZZ_CHECK(bounded == expected, "bounded: " + Describe(bounded));
  return 0;
}
