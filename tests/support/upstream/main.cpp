// orchestra_test_upstream: a fast, scriptable fake model provider for integration tests and
// benchmarks (OpenAI, Gemini and Anthropic wire formats). See server.hpp, replies.hpp and
// directives.hpp for what it answers and how tests script failures.
//
//   orchestra_test_upstream --listen 127.0.0.1:0 [--threads N] [--tls-cert F --tls-key K]
//                           [--latency 20ms] [--chunk-delay 5ms] [--status 500] ...
//
// Prints exactly one line, `listening <host>:<port>`, once it accepts connections; serves until
// SIGTERM or SIGINT, then exits 0.

#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

#include "upstream/directives.hpp"
#include "upstream/server.hpp"
#include <pthread.h>

namespace {

using orchestra::testing::upstream::ApplyDirective;
using orchestra::testing::upstream::IsDirectiveKey;
using orchestra::testing::upstream::Server;
using orchestra::testing::upstream::ServerOptions;

constexpr std::string_view kUsage =
    "usage: orchestra_test_upstream --listen HOST:PORT [--threads N] [--tls-cert FILE --tls-key "
    "FILE]\n"
    "       [--latency D] [--first-byte-delay D] [--chunk-delay D] [--chunks N] [--cut N]\n"
    "       [--status S] [--retry-after N] [--times N] [--dims N] [--stall] [--reset]\n"
    "       [--metadata-token T]\n"
    "Directive flags are process-wide defaults; `model+key=value` in a request overrides them.\n";

void ParseListen(std::string_view text, ServerOptions& options) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) throw std::runtime_error("--listen needs HOST:PORT");
  std::string host(text.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  int port = std::stoi(std::string(text.substr(colon + 1)));
  if (port < 0 || port > 65535) throw std::runtime_error("--listen: bad port");
  options.host = host.empty() ? "127.0.0.1" : host;
  options.port = static_cast<std::uint16_t>(port);
}

ServerOptions ParseFlags(int argc, char** argv) {
  ServerOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view inline_value;
    bool has_inline = false;
    if (std::size_t eq = arg.find('='); eq != std::string_view::npos) {
      inline_value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline = true;
    }
    auto value = [&]() -> std::string_view {
      if (has_inline) return inline_value;
      if (i + 1 >= argc) throw std::runtime_error(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage.data(), stdout);
      std::exit(0);
    } else if (arg == "--listen") {
      ParseListen(value(), options);
    } else if (arg == "--threads") {
      options.threads = std::stoi(std::string(value()));
      if (options.threads < 1 || options.threads > 256)
        throw std::runtime_error("--threads must be in [1, 256]");
    } else if (arg == "--tls-cert") {
      options.tls_cert_file = value();
    } else if (arg == "--tls-key") {
      options.tls_key_file = value();
    } else if (arg == "--metadata-token") {
      options.metadata_token = value();
    } else if (arg.substr(0, 2) == "--") {
      std::string_view key = arg.substr(2);
      bool takes_value = false;
      if (!IsDirectiveKey(key, takes_value))
        throw std::runtime_error("unknown flag " + std::string(arg));
      std::string_view v = takes_value ? value() : std::string_view();
      auto applied = ApplyDirective(key, v, takes_value, options.defaults);
      if (!applied) throw std::runtime_error(applied.error().message);
    } else {
      throw std::runtime_error("unexpected argument " + std::string(arg));
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  ServerOptions options;
  try {
    options = ParseFlags(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "orchestra_test_upstream: %s\n%s", e.what(), kUsage.data());
    return 2;
  }
  // Block the stop signals before any thread starts so that only sigwait below sees them;
  // a peer that vanishes must fail a write, not kill the process.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  try {
    Server server(std::move(options));
    server.Start();
    std::printf("listening %s\n", server.address().c_str());
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.Stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "orchestra_test_upstream: %s\n", e.what());
    return 1;
  }
  return 0;
}
