#pragma once

// A blocking HTTP/1.1 client for integration tests (one keep-alive connection, optional TLS),
// and TestUpstream, which runs orchestra_test_upstream for a test. Test code: connection
// failures throw std::runtime_error; HTTP statuses never throw.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "support/process.hpp"

namespace orchestra::testing {

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // in order received
  std::string body;  // decoded (chunked coding removed); for Stream(): the raw body read so far
  // False when the connection ended (or the caller stopped a Stream) before the whole message
  // arrived: a cut stream, a half-sent body.
  bool complete = true;

  std::string Header(std::string_view name) const;  // case-insensitive, "" when absent
  // The body parsed as JSON; throws std::runtime_error with the body when it is not JSON.
  boost::json::value Json() const;
};

// One server-sent event.
struct SseEvent {
  std::string event;  // the `event:` field, "" when absent
  std::string data;   // the `data:` lines joined with '\n'
};

struct TlsClientOptions {
  std::string ca_file;      // PEM bundle to verify the server with; empty = no verification
  std::string server_name;  // SNI and the name to verify; default: the host
};

// Not thread-safe: one per test thread.
class HttpClient {
 public:
  HttpClient(std::string host, std::uint16_t port);
  HttpClient(std::string host, std::uint16_t port, TlsClientOptions tls);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // The time any single connect, write or read may take (default 30 s). Reads of a stream
  // reset it per read, so it bounds the gap between events rather than the whole stream.
  void set_timeout(std::chrono::milliseconds timeout);

  // One request on the keep-alive connection, connecting when needed (also when the server has
  // closed the kept-alive one: checked before sending, never by resending a request). A body
  // without a Content-Type header gets application/json. Throws when no response head arrives
  // (connection refused or reset, timeout); any HTTP status is returned.
  HttpResponse Request(std::string_view method, std::string_view target, std::string_view body = {},
                       const std::vector<std::pair<std::string, std::string>>& headers = {});

  // Streams a response; `on_data` gets each SSE `data:` payload as it arrives (return false to
  // stop reading and close the connection early — a client disconnect). Returns status +
  // headers (+ the raw body read so far); complete = false when stopped early or cut.
  HttpResponse Stream(std::string_view method, std::string_view target, std::string_view body,
                      const std::vector<std::pair<std::string, std::string>>& headers,
                      const std::function<bool(std::string_view data)>& on_data);
  // The same with whole events (event name and data), for Anthropic's named events.
  HttpResponse StreamEvents(std::string_view method, std::string_view target, std::string_view body,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            const std::function<bool(const SseEvent& event)>& on_event);

  // Raw socket access for protocol-abuse tests: send bytes, read whatever arrives until the
  // peer closes or the timeout passes (bytes left over from earlier responses come first).
  void SendRaw(std::string_view bytes);
  std::string ReadRaw(std::chrono::milliseconds timeout);
  // True when the server closed (FIN or RST) the connection within `timeout`; data that
  // arrives meanwhile is discarded.
  bool PeerClosed(std::chrono::milliseconds timeout);
  // True when the last close the client saw was an RST (ECONNRESET) rather than a FIN.
  bool LastCloseWasReset() const;
  void Close();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Parses "listening <host>:<port>" and also a JSON log line
// {"message":"listening",...,"address":"<host>:<port>"}; returns the port. Throws
// std::runtime_error when the line has neither.
std::uint16_t ParseListeningPort(std::string_view line);

// Starts orchestra_test_upstream (the path baked in at build time, or $ORCHESTRA_TEST_UPSTREAM)
// on a free port and waits until it listens. `extra_args` are passed through (--threads,
// --latency 20ms, --tls-cert/--tls-key: base_url() is then https://). Stops it (SIGTERM, then
// SIGKILL) in the destructor.
class TestUpstream {
 public:
  explicit TestUpstream(std::vector<std::string> extra_args = {});
  ~TestUpstream();
  TestUpstream(const TestUpstream&) = delete;
  TestUpstream& operator=(const TestUpstream&) = delete;

  std::uint16_t port() const { return port_; }
  std::string base_url() const;  // http://127.0.0.1:port (https:// with TLS)
  ChildProcess& process() { return *process_; }

  // GET /_stats, GET /_last_request, POST /_reset (over TLS too, without verification).
  boost::json::value Stats();
  boost::json::value LastRequest();
  void Reset();

  static std::string BinaryPath();

 private:
  HttpClient& Client();

  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
  bool tls_ = false;
  std::unique_ptr<HttpClient> client_;
};

}  // namespace orchestra::testing
