#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "common/error.hpp"
#include "common/loop_load.hpp"
#include "net/exchange.hpp"

// The HTTP/1.1 server: one event loop per worker thread, each with its own SO_REUSEPORT
// listener, so a request is accepted, parsed, handled and answered on one thread with no
// hand-off and no lock (DESIGN.md §3).
//
// Protocol limits live here, because only here are bytes counted: request head size (431),
// body size (413, refused from Content-Length before any of the body is read), slow clients
// (head and body deadlines; the connection is closed), idle keep-alive connections, and the
// per-request deadline (504). Timeouts are enforced by a per-worker sweep every 250 ms rather
// than a timer per connection, which keeps the request path free of timer-queue updates.
namespace orchestra::observability {
class Counter;
}

namespace orchestra::net {

using Duration = std::chrono::nanoseconds;

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (Listen() returns it)
  int threads = 1;
  std::uint64_t max_header_bytes = 16 << 10;
  std::uint64_t max_body_bytes = 8 << 20;
  Duration header_timeout = std::chrono::seconds(10);
  Duration body_timeout = std::chrono::seconds(30);
  Duration idle_timeout = std::chrono::seconds(75);
  Duration request_timeout = std::chrono::seconds(600);
  int backlog = 4096;
  // Counted when accepting finds no file descriptor left (then accepting pauses, with a
  // backoff, until one is free). Optional.
  observability::Counter* fd_exhausted = nullptr;
  // Where each worker records its loop's queueing delay (a tick every kLoopTick measures how
  // late it runs) and the sweep of worker 0 the process's resident memory. Optional; must
  // outlive the server and have at least `threads` workers.
  LoopLoad* loop_load = nullptr;
};

// The application: called once per request on the worker thread that read it. It fills
// exchange.response() (or streams) and returns. Exceptions are caught and answered with 500.
using Handler = std::function<boost::asio::awaitable<void>(Exchange&)>;

// Renders a protocol-level failure (400, 413, 431, 500, 504) into `response` in the
// application's error format, so that every error a client sees has one shape.
using ErrorRenderer = std::function<void(const Error& error, Response& response)>;

// Called on a worker thread when it starts, before it accepts (per-thread services).
using WorkerInit = std::function<void(int worker_index, boost::asio::io_context& context)>;

class Server {
 public:
  Server(ServerOptions options, Handler handler, ErrorRenderer render_error,
         WorkerInit worker_init = {});
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Binds every worker's listener; throws std::system_error naming the address on failure.
  // Returns the bound port. The workers' listeners share the port (SO_REUSEPORT), but a port
  // already bound by any other socket, another Orchestra process's included, is refused with
  // EADDRINUSE ("Address already in use").
  std::uint16_t Listen();
  // Starts the worker threads.
  void Start();
  // Graceful shutdown, step 1: closes the listeners and idle keep-alive connections; busy
  // connections close after their current response. Thread-safe.
  void StopAccepting();
  // Step 2: waits until no request is in flight, or the timeout passes (returns false).
  bool WaitIdle(Duration timeout);
  // Step 3: stops the event loops, abandoning whatever is left, and joins the threads.
  void Stop();

  // Liveness: true when every event loop has turned within `max_lag` (each loop stamps a
  // heartbeat on its 250 ms sweep), so a wedged worker is noticed even if others answer.
  bool LoopsResponsive(Duration max_lag) const;

  int active_requests() const { return active_requests_->load(std::memory_order_relaxed); }
  int threads() const { return static_cast<int>(workers_.size()); }
  boost::asio::io_context& context(int worker_index);

  class Worker;

 private:
  ServerOptions options_;
  Handler handler_;
  ErrorRenderer render_error_;
  WorkerInit worker_init_;
  std::shared_ptr<std::atomic<int>> active_requests_;
  std::vector<std::unique_ptr<Worker>> workers_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace orchestra::net
