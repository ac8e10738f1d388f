#include "net/sse.hpp"

namespace orchestra::net {

bool SseParser::Feed(std::string_view bytes) {
  if (pos_ > 0 && pos_ == pending_.size()) {
    pending_.clear();
    pos_ = 0;
  } else if (pos_ > (64 << 10)) {
    pending_.erase(0, pos_);
    pos_ = 0;
  }
  pending_.append(bytes);
  return pending_.size() - pos_ + data_.size() <= max_event_bytes_;
}

bool SseParser::TakeLine(std::string_view& line) {
  std::string_view rest(pending_.data() + pos_, pending_.size() - pos_);
  if (skip_lf_ && !rest.empty()) {
    skip_lf_ = false;
    if (rest.front() == '\n') {
      ++pos_;
      rest.remove_prefix(1);
    }
  }
  auto end = rest.find_first_of("\r\n");
  if (end == std::string_view::npos) return false;
  line = rest.substr(0, end);
  pos_ += end + 1;
  if (rest[end] == '\r') {
    if (end + 1 < rest.size()) {
      if (rest[end + 1] == '\n') ++pos_;
    } else {
      skip_lf_ = true;  // the '\n' of a "\r\n" may arrive in the next Feed
    }
  }
  return true;
}

void SseParser::ProcessLine(std::string_view line) {
  if (line.empty() || line.front() == ':') return;
  std::string_view field = line;
  std::string_view value;
  if (auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.assign(value);
  }
}

bool SseParser::Next(SseEvent& out) {
  std::string_view line;
  while (TakeLine(line)) {
    if (!line.empty()) {
      ProcessLine(line);
      continue;
    }
    // A blank line dispatches the event; one without data is dropped (as browsers do).
    if (!has_data_) {
      event_.clear();
      continue;
    }
    ready_event_.swap(event_);
    ready_data_.swap(data_);
    event_.clear();
    data_.clear();
    has_data_ = false;
    out.event = ready_event_;
    out.data = ready_data_;
    return true;
  }
  return false;
}

}  // namespace orchestra::net
