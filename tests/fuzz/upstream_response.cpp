// The upstream client's response framing (net::Client: status line, headers, 1xx, chunked,
// Content-Length, Content-Encoding, connection reuse) on whatever bytes an upstream sends.
// A fake upstream on a loopback port answers the request "/first" with the input's bytes and
// any other request with a good answer naming this run; the client (one worker's, on this
// thread) sends "/first", then "/second" to the same origin.
//
// Input: the first byte holds options (bit 0: read "/first" as a stream, Open/Read, instead of
// Send; bit 1: the upstream shuts its sending side after the bytes instead of keeping the
// connection open for another request), the rest is what the upstream sends.
//
// Invariants:
// - nothing crashes or hangs;
// - an answer to "/first" has a final status (200-599, never 1xx) and a body within the
//   origin's max_response_bytes;
// - "/second" always gets its own answer, exactly: no byte of the first response answers it,
//   whether the connection was reused or not (issue 10, findings 1 and 2).
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "fuzz/fuzz_support.hpp"
#include "net/client.hpp"
#include <netinet/in.h>
#include <poll.h>
#include <sanitizer/lsan_interface.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
using orchestra::fuzz::Shown;
using namespace std::chrono_literals;

constexpr std::uint64_t kMaxResponse = 64 << 10;

// What the fake upstream sends for "/first" in this run, and the run's number.
struct Script {
  std::mutex mu;
  std::string first;
  bool shut = false;
  std::uint64_t run = 0;
};

Script& script() {
  static Script* s = new Script();
  return *s;
}

std::string SecondAnswer(std::uint64_t run) {
  const std::string body = "second answer of run " + std::to_string(run);
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

void SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads one request (head, then a Content-Length body) into `buffer`; returns its target, or
// nothing when the client closed or sent nothing within `wait`.
std::optional<std::string> ReadRequest(int fd, std::string& buffer,
                                       std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  char chunk[8192];
  while (true) {
    const auto end = buffer.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::size_t length = 0;
      const std::string head = buffer.substr(0, end);
      for (const char* name : {"Content-Length: ", "content-length: "}) {
        const auto at = head.find(name);
        if (at != std::string::npos) length = std::stoul(head.substr(at + 16));
      }
      if (buffer.size() >= end + 4 + length) {
        const auto sp1 = head.find(' ');
        const auto sp2 = head.find(' ', sp1 + 1);
        std::string target = head.substr(sp1 + 1, sp2 - sp1 - 1);
        buffer.erase(0, end + 4 + length);
        return target;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return std::nullopt;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

// One connection of the fake upstream. The first request waits up to 5 s (the client
// sends it right after connecting); after the input's bytes the connection waits a few
// milliseconds for a reused request, then closes, so that a response the input left unfinished
// ends with the connection instead of a client timeout.
void Serve(int fd) {
  // The fake upstream is the harness, not the code under test: its allocations are kept out of
  // libFuzzer's leak check, which otherwise catches a detached connection thread mid-exit with
  // its buffer still allocated (a false leak report). The client's stay checked.
  __lsan::ScopedDisabler not_the_code_under_test;
  std::string buffer;
  auto wait = std::chrono::milliseconds(5000);
  while (auto target = ReadRequest(fd, buffer, wait)) {
    std::string first;
    bool shut = false;
    std::uint64_t run = 0;
    {
      std::lock_guard lock(script().mu);
      first = script().first;
      shut = script().shut;
      run = script().run;
    }
    if (*target == "/first") {
      SendAll(fd, first);
      if (shut) ::shutdown(fd, SHUT_WR);
      wait = 5ms;
    } else {
      SendAll(fd, SecondAnswer(run));
      wait = 5000ms;
    }
  }
  ::close(fd);
}

std::uint16_t UpstreamPort() {
  static const std::uint16_t port = [] {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    FUZZ_CHECK(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0, "bind");
    FUZZ_CHECK(::listen(listener, 128) == 0, "listen");
    socklen_t len = sizeof(addr);
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    std::thread([listener] {
      while (true) {
        const int fd = ::accept(listener, nullptr, nullptr);
        if (fd >= 0) std::thread(Serve, fd).detach();
      }
    }).detach();
    return ntohs(addr.sin_port);
  }();
  return port;
}

struct ClientSide {
  asio::io_context io;
  orchestra::net::Upstreams upstreams{1};
  orchestra::net::OriginId origin = 0;

  ClientSide() {
    orchestra::net::OriginOptions options;
    // Generous: on a loaded machine the fake upstream's threads may wait long for a CPU, and a
    // timeout must mean a client waiting for bytes that never come, not a slow scheduler.
    options.connect_timeout = 5s;
    options.first_byte_timeout = 5s;
    options.idle_timeout = 1s;
    options.max_response_bytes = kMaxResponse;
    origin = upstreams.Register(
        *orchestra::net::Origin::Parse("http://127.0.0.1:" + std::to_string(UpstreamPort())),
        options);
    upstreams.CreateClient(0, io);
  }
};

ClientSide& client() {
  static ClientSide* c = new ClientSide();
  return *c;
}

struct Outcome {
  bool done = false;
  bool ok = false;
  unsigned status = 0;
  std::string body;
  std::string error;
};

asio::awaitable<void> Request(std::string_view target, bool stream, Outcome& out) {
  orchestra::net::OutgoingRequest request;
  request.target = target;
  request.AddBody("{}");
  request.deadline = orchestra::net::Clock::now() + 20s;
  auto& c = client();
  if (!stream) {
    auto r = co_await c.upstreams.ForWorker(0).Send(c.origin, request);
    if (r) {
      out.ok = true;
      out.status = r->head.status;
      out.body = std::move(r->body);
    } else {
      out.error = r.error().message;
    }
  } else {
    auto s = co_await c.upstreams.ForWorker(0).Open(c.origin, request);
    if (s) {
      out.status = (*s)->head().status;
      out.ok = true;
      while (true) {
        auto piece = co_await (*s)->Read();
        if (!piece) {
          out.ok = false;
          out.error = piece.error().message;
          break;
        }
        if (piece->empty()) break;
        out.body.append(*piece);
      }
    } else {
      out.error = s.error().message;
    }
  }
  out.done = true;
}

Outcome Run(std::string_view target, bool stream) {
  Outcome out;
  auto& io = client().io;
  asio::co_spawn(io, Request(target, stream, out), asio::detached);
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (!out.done && std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_one_for(5ms);
  }
  FUZZ_CHECK(out.done, "no answer to " + std::string(target) + " within 30 s");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool stream = data[0] & 1;
  std::uint64_t run = 0;
  {
    std::lock_guard lock(script().mu);
    script().first.assign(orchestra::fuzz::AsText(data + 1, size - 1));
    script().shut = (data[0] & 2) != 0;
    run = ++script().run;
  }
  const Outcome first = Run("/first", stream);
  if (first.ok) {
    FUZZ_CHECK(first.status >= 200 && first.status <= 599,
               "a final status of " + std::to_string(first.status) + " from " +
                   Shown(orchestra::fuzz::AsText(data + 1, size - 1), 400));
    FUZZ_CHECK(first.body.size() <= kMaxResponse,
               "a body of " + std::to_string(first.body.size()) + " bytes passed the cap");
  }
  const Outcome second = Run("/second", false);
  FUZZ_CHECK(second.ok && second.status == 200 &&
                 second.body == "second answer of run " + std::to_string(run),
             "the second request got " +
                 (second.ok ? std::to_string(second.status) + " " + Shown(second.body)
                            : "an error: " + second.error) +
                 "\nafter the first response " +
                 Shown(orchestra::fuzz::AsText(data + 1, size - 1), 600));
  return 0;
}
