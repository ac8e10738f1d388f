#include "observability/span.hpp"

#include "common/random.hpp"

namespace orchestra::observability {

SpanIdText NewSpanId() {
  SpanIdText id;
  do {
    FillRandomHex(id.data(), 8);
  } while (View(id).find_first_not_of('0') == std::string_view::npos);
  return id;
}

UnixTime::UnixTime()
    : steady_now_(std::chrono::steady_clock::now()),
      unix_now_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count()) {}

std::uint64_t UnixTime::Of(std::chrono::steady_clock::time_point t) const {
  const std::int64_t ns = unix_now_ns_ + (t - steady_now_).count();
  return ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
}

}  // namespace orchestra::observability
