// The HTTP server's request framing (net::Server: Beast's parser behind ReadHttp, and the
// server's own checks of the head: Host, Transfer-Encoding, obs-fold, limits) on whatever bytes
// a client sends. A real server on a loopback port, one worker thread, started once; each
// input is written on a fresh connection whose sending side is then shut, and everything the
// server answers is read until it closes.
//
// Input: the bytes a client sends (any number of requests, pipelined).
//
// Invariants:
// - the server neither crashes nor hangs: it closes the connection within seconds of the
//   client's end of input;
// - what reaches the application has a target that is an absolute path or "*", exactly one
//   Host header when it is HTTP/1.1 (at most one otherwise), a body within max_body_bytes,
//   and, when Transfer-Encoding is present, exactly "chunked";
// - what the client gets back is a sequence of well-formed HTTP/1.1 responses, nothing else:
//   one 200 per request the application handled, in order, then at most one refusal (4xx or
//   501, never 500) after which the connection closes; Connection: close only on the last.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "api/errors.hpp"
#include "fuzz/fuzz_support.hpp"
#include "net/server.hpp"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

namespace http = boost::beast::http;
using orchestra::fuzz::Shown;

constexpr std::uint64_t kMaxBody = 64 << 10;
constexpr std::uint64_t kMaxHeader = 8 << 10;

struct Seen {
  std::mutex mu;
  std::vector<http::verb> methods;  // of the requests the application handled, in order
  std::string violation;            // the first broken invariant seen in the handler
};

Seen& seen() {
  static Seen* s = new Seen();
  return *s;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The application: checks what the server let through, answers 200 with a short body.
boost::asio::awaitable<void> Handle(orchestra::net::Exchange& ex) {
  const orchestra::net::Request& r = ex.request();
  std::string violation;
  const auto& fields = r.message->base();
  int hosts = 0;
  std::string te;
  int te_fields = 0;
  for (const auto& field : fields) {
    if (field.name() == http::field::host) ++hosts;
    if (field.name() == http::field::transfer_encoding) {
      ++te_fields;
      if (!te.empty()) te += ',';
      te += ToLower(Trim(field.value()));
    }
  }
  if (r.target.empty() || (r.target.front() != '/' && r.target != "*")) {
    violation = "target " + Shown(r.target) + " reached the application";
  } else if (hosts > 1 || (r.message->version() == 11 && hosts != 1)) {
    violation = std::to_string(hosts) + " Host headers in an HTTP/1." +
                std::to_string(r.message->version() % 10) + " request reached the application";
  } else if (te_fields > 0 && te != "chunked") {
    violation = "Transfer-Encoding '" + Shown(te) + "' reached the application";
  } else if (r.body().size() > kMaxBody) {
    violation = "a body of " + std::to_string(r.body().size()) + " bytes reached the application";
  }
  {
    std::lock_guard lock(seen().mu);
    seen().methods.push_back(r.method);
    if (!violation.empty() && seen().violation.empty()) seen().violation = violation;
  }
  ex.response().content_type = "text/plain";
  ex.response().body = "handled " + std::to_string(r.body().size());
  co_return;
}

std::uint16_t ServerPort() {
  static const std::uint16_t port = [] {
    orchestra::net::ServerOptions options;
    options.port = 0;
    options.threads = 1;
    options.max_body_bytes = kMaxBody;
    options.max_header_bytes = kMaxHeader;
    auto* server = new orchestra::net::Server(
        options, Handle, [](const orchestra::Error& error, orchestra::net::Response& response) {
          orchestra::api::RenderError(error, response);
        });
    const std::uint16_t p = server->Listen();
    server->Start();
    return p;
  }();
  return port;
}

std::size_t OpenDescriptors() {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++n;
  }
  return n;
}

// Writes `input` on a fresh connection, shuts the sending side, returns everything read until
// the server closes (`closed` false: it did not within the time).
std::string Exchange(std::string_view input, bool& closed) {
  // Each connection from another loopback source address: the client closes first, so its
  // side keeps TIME_WAIT, and thousands of inputs a second would exhaust one address's ports.
  static std::uint32_t next_source = 0;
  int fd = -1;
  int error = 0;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    FUZZ_CHECK(fd >= 0, "socket() failed: " + std::string(std::strerror(errno)));
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = htonl(0x7F000002u + (next_source++ % 250));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(ServerPort());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof(source)) == 0 &&
        ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      break;
    }
    error = errno;
    ::close(fd);
    fd = -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FUZZ_CHECK(fd >= 0,
             "connect() to the server failed 100 times: " + std::string(std::strerror(error)) +
                 "; open descriptors: " + std::to_string(OpenDescriptors()));
  std::string out;
  std::size_t sent = 0;
  bool shut = false;
  closed = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  char buf[16384];
  while (std::chrono::steady_clock::now() < until) {
    if (sent == input.size() && !shut) {
      ::shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed = true;
        break;
      }
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (p.revents & POLLOUT) {
      const ssize_t n = ::send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        sent = input.size();  // the server stopped reading (a refusal): read its answer
      } else {
        sent += static_cast<std::size_t>(n);
      }
    }
  }
  ::close(fd);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = orchestra::fuzz::AsText(data, size);
  {
    std::lock_guard lock(seen().mu);
    seen().methods.clear();
    seen().violation.clear();
  }
  bool closed = false;
  const std::string answer = Exchange(input, closed);
  std::vector<http::verb> methods;
  {
    std::lock_guard lock(seen().mu);
    FUZZ_CHECK(seen().violation.empty(), seen().violation + "\ninput: " + Shown(input, 600));
    methods = seen().methods;
  }
  FUZZ_CHECK(closed, "the server kept the connection open 5 s after the client's end of input: " +
                         Shown(input, 600));

  // The answers, one after the other.
  std::string_view rest = answer;
  std::size_t index = 0;
  bool refused = false;
  while (!rest.empty()) {
    FUZZ_CHECK(!refused, "bytes after a refusal: " + Shown(rest));
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    const bool head = index < methods.size() && methods[index] == http::verb::head;
    if (head) parser.skip(true);
    boost::beast::error_code ec;
    std::size_t used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    if (!ec && !parser.is_done() && parser.is_header_done() && used < rest.size()) {
      used += parser.put(boost::asio::buffer(rest.data() + used, rest.size() - used), ec);
    }
    if ((!ec || ec == http::error::need_more) && !parser.is_done() && parser.is_header_done() &&
        used == rest.size() && index >= methods.size() && input.find("HEAD") != input.npos) {
      // A refusal of a HEAD request (a bad target) has no body.
      ec = {};
      used = rest.size();
    } else {
      FUZZ_CHECK(!ec && parser.is_done(), "answer " + std::to_string(index) + " is malformed (" +
                                              ec.message() + "): " + Shown(rest, 400) +
                                              "\ninput: " + Shown(input, 600));
    }
    const auto& response = parser.get();
    const unsigned status = response.result_int();
    FUZZ_CHECK(response.version() == 11, "an answer that is not HTTP/1.1");
    if (status == 100) {  // Expect: 100-continue
      rest.remove_prefix(used);
      continue;
    }
    if (index < methods.size()) {
      FUZZ_CHECK(status == 200, "the answer to handled request " + std::to_string(index) + " is " +
                                    std::to_string(status));
      const bool last = index + 1 == methods.size() && used == rest.size();
      FUZZ_CHECK(response.keep_alive() || last,
                 "Connection: close on an answer that is not the last");
    } else {
      FUZZ_CHECK(
          status >= 400 && status < 600 && status != 500,
          "a refusal with status " + std::to_string(status) + "\ninput: " + Shown(input, 600));
      FUZZ_CHECK(!response.keep_alive(), "a refusal that keeps the connection open");
      refused = true;
    }
    rest.remove_prefix(used);
    ++index;
  }
  FUZZ_CHECK(index >= methods.size(), std::to_string(methods.size()) + " requests handled, " +
                                          std::to_string(index) + " answers");
  return 0;
}
