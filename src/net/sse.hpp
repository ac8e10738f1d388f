#pragma once

#include <string>
#include <string_view>

// Server-Sent Events (https://html.spec.whatwg.org/multipage/server-sent-events.html), the
// incremental parsing side: feed body bytes as they arrive, get whole events out.
namespace orchestra::net {

struct SseEvent {
  std::string_view event;  // "" when the event had no `event:` field (the default "message")
  std::string_view data;   // `data:` lines joined with '\n'
};

// Splits a byte stream into events. Accepts \n, \r\n and \r line endings, ignores comments
// (": ...") and the id/retry fields. The views in an event stay valid until the next call.
// Not thread-safe; one per stream.
class SseParser {
 public:
  explicit SseParser(std::size_t max_event_bytes = 8 << 20) : max_event_bytes_(max_event_bytes) {}

  // Appends bytes. Returns false when an event grows beyond the limit (a broken upstream).
  bool Feed(std::string_view bytes);
  // The next complete event, if one is ready.
  bool Next(SseEvent& out);

 private:
  bool TakeLine(std::string_view& line);
  void ProcessLine(std::string_view line);

  std::string pending_;  // bytes not yet split into lines
  std::size_t pos_ = 0;  // where unread lines start in pending_
  bool skip_lf_ = false;
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  std::string ready_event_;
  std::string ready_data_;
  std::size_t max_event_bytes_;
};

}  // namespace orchestra::net
