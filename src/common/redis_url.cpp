#include "common/redis_url.hpp"

#include <charconv>
#include <stdexcept>

#include "common/text.hpp"

namespace orchestra {
namespace {

bool ParseU64(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

RedisAddress ParseRedisUrl(std::string_view url, std::string_view owner) {
  // A password in the URL stays out of the message.
  std::string shown(url);
  if (const auto at = url.rfind('@'); at != std::string_view::npos) {
    shown = "redis://…@" + std::string(url.substr(at + 1));
  }
  const auto fail = [&](const std::string& why) {
    return std::runtime_error(std::string(owner) + ": bad Redis url '" + shown + "': " + why +
                              " (expected redis://[[user]:password@]host[:port][/db])");
  };
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) throw fail("it must start with redis://");
  url.remove_prefix(kScheme.size());
  RedisAddress address;
  const auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view db = url.substr(slash + 1);
    if (!db.empty()) {
      std::uint64_t n = 0;
      if (!ParseU64(db, n) || n > 1'000'000) throw fail("the database must be a number");
      address.db = static_cast<int>(n);
    }
  }
  const auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    const auto colon = userinfo.find(':');
    auto decode = [&](std::string_view part) {
      auto decoded = PercentDecode(part);
      if (!decoded) throw fail("malformed percent-encoding in the user or password");
      return std::move(*decoded);
    };
    if (colon == std::string_view::npos) {
      address.password = decode(userinfo);  // redis://secret@host
    } else {
      address.user = decode(userinfo.substr(0, colon));
      address.password = decode(userinfo.substr(colon + 1));
    }
    authority.remove_prefix(at + 1);
  }
  std::string_view host = authority;
  std::string_view port;
  if (!host.empty() && host[0] == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) throw fail("unterminated [ in the host");
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!port.empty() && port[0] != ':') throw fail("junk after the host");
    if (!port.empty()) port.remove_prefix(1);
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) throw fail("no host");
  address.host = std::string(host);
  if (!port.empty()) {
    std::uint64_t n = 0;
    if (!ParseU64(port, n) || n == 0 || n > 65535) throw fail("bad port");
    address.port = static_cast<int>(n);
  }
  return address;
}

}  // namespace orchestra
