#pragma once

// The test upstream's server: N worker threads, each with its own io_context and its own
// SO_REUSEPORT listener (the layout Orchestra itself uses), so no lock sits on the request path.
// Connections are coroutines on their worker; delays are timers, never sleeping threads, so
// thousands of slow or streaming connections cost only memory.
//
// Besides the model endpoints (replies.hpp) it answers, for tests:
//   GET  /_stats         counters as JSON (see StatsJson in server.cpp for the field list)
//   GET  /_last_request  method, target, headers and raw body of the last model request
//   POST /_reset         zeroes the counters and the `times` state
//   GET  /computeMetadata/v1/instance/service-accounts/default/token
//                        the GCE metadata server's token (with `Metadata-Flavor: Google`), for
//                        Vertex AI providers and the Firestore storage backend pointed here with
//                        $GCE_METADATA_HOST

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "upstream/directives.hpp"

namespace orchestra::testing::upstream {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = a free port
  int threads = 1;
  std::string tls_cert_file;  // both set = HTTPS only
  std::string tls_key_file;
  Directives defaults;  // process-wide directives (flags); a model's own override them
  // What the metadata token endpoint hands out (--metadata-token): the Firestore emulator
  // accepts only "owner" or a JWT as a bearer token.
  std::string metadata_token = "vertex-test-token";
};

class Server {
 public:
  // Binds the listeners. Throws std::runtime_error when it cannot (start-up only).
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // "host:port" as bound, with the real port.
  std::string address() const;
  // Starts the worker threads; returns at once.
  void Start();
  // Stops every worker and joins its thread; pending connections are dropped. Idempotent.
  void Stop();

  struct Shared;
  struct Worker;

 private:
  std::unique_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
};

}  // namespace orchestra::testing::upstream
