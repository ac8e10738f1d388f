// The server core through the real binary: probes, error shapes, protocol limits, auth,
// request identity, logs, metrics, the command line and graceful shutdown.

#include <fstream>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "integration/orchestra_process.hpp"
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace orchestra::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

// Asserts the one error shape and returns error.code.
std::string ErrorCodeOf(const HttpResponse& r) {
  json::value v = r.Json();
  EXPECT_TRUE(v.is_object()) << r.body;
  const json::object& top = v.as_object();
  EXPECT_EQ(top.size(), 1u) << r.body;
  const json::object& e = top.at("error").as_object();
  EXPECT_TRUE(e.at("message").is_string()) << r.body;
  EXPECT_TRUE(e.at("type").is_string()) << r.body;
  EXPECT_TRUE(e.contains("param")) << r.body;
  return std::string(e.at("code").as_string());
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    OrchestraOptions o;
    o.config_yaml = R"(
server:
  max_body_bytes: 4096
  header_timeout: 1s
  idle_timeout: 2s
observability:
  log_probes: true
)";
    server_ = new Orchestra(o);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static Orchestra* server_;
};
Orchestra* ServerTest::server_ = nullptr;

TEST_F(ServerTest, OperationsEndpointsAnswer) {
  auto c = server_->Client();
  auto root = c->Request("GET", "/");
  EXPECT_EQ(root.status, 200);
  EXPECT_EQ(root.Json().at("name"), "orchestra");
  EXPECT_TRUE(root.Json().at("version").is_string());
  EXPECT_EQ(c->Request("GET", "/healthz").Json().at("status"), "ok");
  EXPECT_EQ(c->Request("GET", "/startupz").status, 200);
  auto ready = c->Request("GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.Json().at("status"), "ready");
  auto warm = c->Request("POST", "/warmup");
  EXPECT_EQ(warm.status, 200);
  EXPECT_TRUE(warm.Json().at("warmed").is_array());
  auto metrics = c->Request("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.Header("content-type").find("text/plain"), std::string::npos);
  EXPECT_NE(metrics.body.find("orchestra_build_info{"), std::string::npos);
}

TEST_F(ServerTest, HeadHasTheLengthButNoBody) {
  auto c = server_->Client();
  auto get = c->Request("GET", "/healthz");
  auto head = c->Request("HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.Header("content-length"), std::to_string(get.body.size()));
  // The connection is still usable afterwards (no stray body bytes).
  EXPECT_EQ(c->Request("GET", "/healthz").status, 200);
}

TEST_F(ServerTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  auto c = server_->Client();
  auto missing = c->Request("GET", "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(ErrorCodeOf(missing), "not_found");
  auto wrong = c->Request("DELETE", "/healthz");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(ErrorCodeOf(wrong), "method_not_allowed");
  EXPECT_EQ(wrong.Header("allow"), "GET, HEAD");
}

TEST_F(ServerTest, OversizedBodyIs413WithoutReadingIt) {
  auto c = server_->Client();
  // Announce 100 MB and send none of it: the answer must come from the headers alone.
  c->SendRaw("POST /warmup HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
  std::string raw = c->ReadRaw(3s);
  EXPECT_EQ(raw.rfind("HTTP/1.1 413 ", 0), 0u) << raw;
  EXPECT_NE(raw.find("\"code\":\"payload_too_large\""), std::string::npos) << raw;
  // A body that turns out too large while chunked is refused too.
  auto chunked = server_->Client();
  std::string big(5000, 'x');
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", big.size());
  chunked->SendRaw(
      std::string("POST /warmup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n") + size +
      "\r\n" + big + "\r\n0\r\n\r\n");
  std::string raw2 = chunked->ReadRaw(3s);
  EXPECT_EQ(raw2.rfind("HTTP/1.1 413 ", 0), 0u) << raw2;
}

TEST_F(ServerTest, OversizedHeadersAre431) {
  auto c = server_->Client();
  auto r = c->Request("GET", "/healthz", "", {{"X-Big", std::string(20000, 'a')}});
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(ErrorCodeOf(r), "headers_too_large");
}

TEST_F(ServerTest, MalformedRequestIs400) {
  auto c = server_->Client();
  c->SendRaw("GARBAGE\r\n\r\n");
  std::string raw = c->ReadRaw(3s);
  EXPECT_EQ(raw.rfind("HTTP/1.1 400 ", 0), 0u) << raw;
  EXPECT_NE(raw.find("\"error\""), std::string::npos);
}

TEST_F(ServerTest, ChunkedBodiesAndExpectContinueAreAccepted) {
  auto c = server_->Client();
  c->SendRaw(
      "POST /warmup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  std::string raw = c->ReadRaw(5s);
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 ", 0), 0u) << raw;

  auto e = server_->Client();
  e->SendRaw(
      "POST /warmup HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
      "Connection: close\r\n\r\n");
  std::string interim = e->ReadRaw(500ms);
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  e->SendRaw("{}");
  std::string final_response = e->ReadRaw(5s);
  EXPECT_EQ(final_response.rfind("HTTP/1.1 200 ", 0), 0u) << final_response;
}

// How many responses a raw read holds (each has one Server header).
int Responses(const std::string& raw) {
  int n = 0;
  for (auto at = raw.find("\r\nServer: orchestra\r\n"); at != std::string::npos;
       at = raw.find("\r\nServer: orchestra\r\n", at + 1))
    ++n;
  return n;
}

// A framing Orchestra cannot read reliably is refused and the connection closed (RFC 9112
// §6.3): a body that is ignored would otherwise run as a second request on the connection,
// which is how requests are smuggled past a proxy in front of it.
TEST_F(ServerTest, AmbiguousRequestFramingIsRefusedAndTheConnectionClosed) {
  const std::string smuggled = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  struct Case {
    std::string name;
    std::string head;  // request line and headers, without the empty line
    std::string body;
    int status;
  };
  const std::vector<Case> cases = {
      {"gzip without chunked", "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip",
       smuggled, 400},
      {"chunked not final",
       "POST /warmup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity",
       "3\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
      {"a coding before chunked",
       "POST /warmup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked",
       "3\r\nabc\r\n0\r\n\r\n" + smuggled, 501},
      {"two fields",
       "POST /warmup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
       "3\r\nabc\r\n0\r\n\r\n" + smuggled, 501},
      {"chunked twice", "POST /warmup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked",
       "3\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
      {"unknown coding", "POST /warmup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: x-custom",
       smuggled, 400},
      {"with Content-Length",
       "POST /warmup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
       "0\r\n\r\n" + smuggled, 400},
      {"Content-Length after it",
       "POST /warmup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5",
       "0\r\n\r\n" + smuggled, 400},
      {"two different lengths",
       "POST /warmup HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 36",
       "{}" + smuggled, 400},
      {"HTTP/1.0 chunked", "POST /warmup HTTP/1.0\r\nTransfer-Encoding: chunked",
       "0\r\n\r\n" + smuggled, 400},
      {"obs-fold", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b", smuggled, 400},
      {"obs-fold with a tab", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded:\r\n\tb", smuggled,
       400},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto client = server_->Client();
    client->SendRaw(c.head + "\r\n\r\n" + c.body);
    std::string raw = client->ReadRaw(3s);
    EXPECT_EQ(raw.rfind("HTTP/1.1 " + std::to_string(c.status) + " ", 0), 0u) << raw;
    EXPECT_NE(raw.find("Connection: close"), std::string::npos) << raw;
    EXPECT_EQ(Responses(raw), 1) << "the body ran as a request:\n" << raw;
    EXPECT_TRUE(client->PeerClosed(1s));
  }
}

// The case of `chunked` does not matter, and a chunked body that is read is not a request.
TEST_F(ServerTest, ChunkedIsCaseInsensitiveAndItsBodyIsNotARequest) {
  auto c = server_->Client();
  const std::string smuggled = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", smuggled.size());
  c->SendRaw("POST /warmup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n" +
             std::string(size) + "\r\n" + smuggled + "\r\n0\r\n\r\n" +
             "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string raw = c->ReadRaw(5s);
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 ", 0), 0u) << raw;
  EXPECT_EQ(Responses(raw), 2) << raw;
  EXPECT_EQ(raw.find("# TYPE"), std::string::npos) << "the chunked body ran as a request";
}

// RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; HTTP/1.0 may have none.
TEST_F(ServerTest, Http11NeedsExactlyOneHost) {
  struct Case {
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"GET /healthz HTTP/1.1\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400},
      {"GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET /healthz HTTP/1.0\r\n\r\n", 200},
      {"GET /healthz HTTP/1.1\r\nhOsT: a\r\nConnection: close\r\n\r\n", 200},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request);
    auto client = server_->Client();
    client->SendRaw(c.request);
    std::string raw = client->ReadRaw(3s);
    EXPECT_NE(raw.find(" " + std::to_string(c.status) + " "), std::string::npos) << raw;
    EXPECT_EQ(raw.find(" " + std::to_string(c.status) + " "), 8u) << raw;
    if (c.status == 400) {
      EXPECT_NE(raw.find("\"code\":\"invalid_request\""), std::string::npos) << raw;
      EXPECT_NE(raw.find("Host"), std::string::npos) << raw;
    }
  }
}

TEST_F(ServerTest, ExpectContinueWithATooLargeBodyGets413Only) {
  auto c = server_->Client();
  c->SendRaw(
      "POST /warmup HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\nExpect: 100-continue\r\n\r\n");
  std::string raw = c->ReadRaw(2s);
  EXPECT_EQ(raw.rfind("HTTP/1.1 413 ", 0), 0u) << raw;
}

TEST_F(ServerTest, SlowLorisIsClosedWhileOthersAreServed) {
  auto slow = server_->Client();
  slow->SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  auto start = std::chrono::steady_clock::now();
  // Dribble a header line now and then, never finishing the head.
  bool closed = false;
  for (int i = 0; i < 12 && !closed; ++i) {
    auto other = server_->Client();
    EXPECT_EQ(other->Request("GET", "/healthz").status, 200);
    try {
      slow->SendRaw("X-Drip: " + std::to_string(i) + "\r\n");
    } catch (const std::exception&) {
      closed = true;
      break;
    }
    closed = slow->PeerClosed(400ms);
  }
  EXPECT_TRUE(closed);
  // header_timeout is 1 s; the sweep adds at most ~250 ms. Generous bound for noisy machines.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(ServerTest, IdleKeepAliveConnectionsAreClosed) {
  auto c = server_->Client();
  EXPECT_EQ(c->Request("GET", "/healthz").status, 200);
  EXPECT_TRUE(c->PeerClosed(6s));  // idle_timeout is 2 s
}

TEST_F(ServerTest, RequestIdIsEchoedOrGeneratedAndLogged) {
  auto c = server_->Client();
  auto given = c->Request("GET", "/healthz", "", {{"X-Request-Id", "test-id-123"}});
  EXPECT_EQ(given.Header("x-request-id"), "test-id-123");
  auto generated = c->Request("GET", "/healthz");
  EXPECT_EQ(generated.Header("x-request-id").size(), 32u);
  auto hostile = c->Request("GET", "/healthz", "", {{"X-Request-Id", "bad id\twith spaces"}});
  EXPECT_EQ(hostile.Header("x-request-id").size(), 32u);
  std::string line = server_->process().WaitForLine("\"requestId\":\"test-id-123\"", 5s);
  json::object log = json::parse(line).as_object();
  EXPECT_EQ(log.at("severity"), "INFO");
  EXPECT_TRUE(log.contains("time"));
  const json::object& http = log.at("httpRequest").as_object();
  EXPECT_EQ(http.at("requestMethod"), "GET");
  EXPECT_EQ(http.at("requestUrl"), "/healthz");
  EXPECT_EQ(http.at("status"), 200);
  EXPECT_TRUE(http.at("latency").as_string().ends_with("s"));
  EXPECT_EQ(http.at("remoteIp"), "127.0.0.1");
  EXPECT_TRUE(http.contains("userAgent"));
  EXPECT_TRUE(http.contains("requestSize"));
  EXPECT_TRUE(http.contains("responseSize"));
}

TEST_F(ServerTest, TraceparentIsContinued) {
  auto c = server_->Client();
  c->Request("GET", "/healthz", "",
             {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
              {"X-Request-Id", "trace-test"}});
  std::string line = server_->process().WaitForLine("\"requestId\":\"trace-test\"", 5s);
  EXPECT_NE(line.find("4bf92f3577b34da6a3ce929d0e0e4736"), std::string::npos) << line;
  EXPECT_NE(line.find("logging.googleapis.com/spanId"), std::string::npos) << line;
}

TEST_F(ServerTest, MetricsPassPromtoolAndLabelRoutesByPattern) {
  auto c = server_->Client();
  c->Request("GET", "/healthz");
  c->Request("GET", "/does/not/exist/12345");
  auto metrics = c->Request("GET", "/metrics");
  TempDir dir;
  std::ofstream(dir.File("metrics.txt")) << metrics.body;
  auto check = RunCommand({"sh", "-c", "promtool check metrics < " + dir.File("metrics.txt")});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  for (const char* name :
       {"orchestra_http_requests_total{", "orchestra_http_request_duration_seconds_bucket{",
        "orchestra_http_inflight_requests ", "orchestra_http_rejected_total{",
        "process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
        "process_start_time_seconds ", "orchestra_build_info{"}) {
    EXPECT_NE(metrics.body.find(name), std::string::npos) << name;
  }
  EXPECT_NE(metrics.body.find("route=\"/healthz\""), std::string::npos);
  EXPECT_EQ(metrics.body.find("12345"), std::string::npos) << "raw paths must not become labels";
}

TEST(ServerAuth, KeysAreRequiredAndNeverLogged) {
  OrchestraOptions o;
  o.config_yaml = R"(
auth:
  keys:
    - {name: app, key_env: TEST_APP_KEY, scopes: [user]}
    - {name: ops, key_env: TEST_OPS_KEY, scopes: [admin]}
)";
  o.env = {{"TEST_APP_KEY", "app-secret-1"}, {"TEST_OPS_KEY", "ops-secret-2"}};
  Orchestra server(o);
  auto c = server.Client();
  // Probes bypass auth.
  EXPECT_EQ(c->Request("GET", "/healthz").status, 200);
  EXPECT_EQ(c->Request("GET", "/readyz").status, 200);
  auto missing = c->Request("GET", "/metrics");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(ErrorCodeOf(missing), "unauthenticated");
  auto wrong = c->Request("GET", "/metrics", "", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong.status, 401);
  auto user = c->Request("GET", "/metrics", "", {{"Authorization", "Bearer app-secret-1"}});
  EXPECT_EQ(user.status, 403);
  EXPECT_EQ(ErrorCodeOf(user), "permission_denied");
  auto admin = c->Request("GET", "/metrics", "", {{"Authorization", "Bearer ops-secret-2"}});
  EXPECT_EQ(admin.status, 200);
  EXPECT_NE(admin.body.find("orchestra_http_rejected_total{reason=\"unauthenticated\"} 2"),
            std::string::npos)
      << admin.body;
  EXPECT_EQ(admin.body.find("secret"), std::string::npos);
  ASSERT_EQ(server.Stop(), 0);
  for (const std::string& line : server.process().StdoutLines()) {
    EXPECT_EQ(line.find("secret"), std::string::npos) << line;
  }
}

TEST(ServerAuth, RefusesToListenBeyondLoopbackWithoutKeys) {
  OrchestraOptions o;
  o.listen = "0.0.0.0:0";
  o.wait_until_listening = false;
  Orchestra server(o);
  EXPECT_EQ(server.process().Wait(10s), 1);
  bool explained = false;
  for (const auto& line : server.process().StderrLines()) {
    explained |= line.find("refusing to listen on 0.0.0.0:0 without API keys") != std::string::npos;
  }
  EXPECT_TRUE(explained) << server.process().CapturedOutput();
}

TEST(ServerAuth, ListensBeyondLoopbackWhenAuthIsExplicitlyDisabled) {
  OrchestraOptions o;
  o.listen = "0.0.0.0:0";
  o.config_yaml = "auth: {disabled: true}\n";
  Orchestra server(o);
  EXPECT_EQ(HttpClient("127.0.0.1", server.port()).Request("GET", "/healthz").status, 200);
}

TEST(ServerMetrics, AMetricsOnlyListenerNeedsNoKey) {
  // A free port for the metrics listener: bind, read it, release.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int metrics_port = ntohs(addr.sin_port);
  close(fd);
  OrchestraOptions o;
  o.config_yaml =
      "auth: {keys: [{name: app, key_env: TEST_APP_KEY, scopes: [admin]}]}\n"
      "observability: {metrics_listen: '127.0.0.1:" +
      std::to_string(metrics_port) + "'}\n";
  o.env = {{"TEST_APP_KEY", "k"}};
  Orchestra server(o);
  EXPECT_EQ(server.Client()->Request("GET", "/metrics").status, 401);
  HttpClient scraper("127.0.0.1", static_cast<std::uint16_t>(metrics_port));
  auto metrics = scraper.Request("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("orchestra_build_info"), std::string::npos);
  EXPECT_EQ(scraper.Request("GET", "/v1/models").status, 404);
}

TEST(ServerShutdown, SigtermExitsZeroAndFlushesLogs) {
  Orchestra server;
  auto c = server.Client();
  EXPECT_EQ(c->Request("GET", "/healthz").status, 200);
  ASSERT_EQ(server.Stop(), 0);
  bool stopped = false;
  for (const auto& line : server.process().StdoutLines()) {
    stopped |= line.find("\"message\":\"stopped\"") != std::string::npos;
  }
  EXPECT_TRUE(stopped) << server.process().CapturedOutput();
}

TEST(ServerConfig, PortEnvironmentReplacesTheListenPort) {
  // Hold a port so that the configured one is busy: the server must not try it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  OrchestraOptions o;
  o.listen = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  o.env = {{"PORT", "0"}};
  Orchestra server(o);
  EXPECT_NE(server.port(), ntohs(addr.sin_port));
  EXPECT_EQ(server.Client()->Request("GET", "/healthz").status, 200);
  close(fd);
}

TEST(ServerConfig, EnvironmentOverridesTheFile) {
  OrchestraOptions o;
  o.config_yaml = "server: {max_body_bytes: 100000}\n";
  o.env = {{"ORCHESTRA_SERVER_MAX_BODY_BYTES", "2048"}};
  Orchestra server(o);
  auto c = server.Client();
  auto r = c->Request("POST", "/warmup", std::string(3000, 'x'));
  EXPECT_EQ(r.status, 413);
}

TEST(CommandLine, CheckConfigPrintsTheEffectiveConfigWithSecretsRedacted) {
  TempDir dir;
  std::ofstream(dir.File("ok.yaml")) << "auth: {keys: [{name: a, sha256: " << std::string(64, 'f')
                                     << "}]}\nstorage: {backend: postgres, url: "
                                        "'postgresql://u:pw123@db/x'}\n";
  auto ok = RunOrchestra({"check-config", "--config", dir.File("ok.yaml")});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("max_inflight:"), std::string::npos) << ok.output;
  EXPECT_EQ(ok.output.find(std::string(64, 'f')), std::string::npos);
  EXPECT_EQ(ok.output.find("pw123"), std::string::npos);

  std::ofstream(dir.File("bad.yaml")) << "server:\n  max_inflihgt: 3\n";
  auto bad = RunOrchestra({"check-config", "--config", dir.File("bad.yaml")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("server.max_inflihgt: unknown key (did you mean 'max_inflight'?)"),
            std::string::npos)
      << bad.output;

  std::ofstream(dir.File("type.yaml")) << "server: {drain_timeout: soon}\n";
  auto type = RunOrchestra({"check-config", "--config", dir.File("type.yaml")});
  EXPECT_EQ(type.exit_code, 1);
  EXPECT_NE(type.output.find("server.drain_timeout"), std::string::npos) << type.output;
}

TEST(CommandLine, VersionAndUsage) {
  auto v = RunOrchestra({"version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.output.rfind("orchestra ", 0), 0u) << v.output;
  auto bad = RunOrchestra({"frobnicate"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("Usage:"), std::string::npos);
}

}  // namespace
}  // namespace orchestra::testing
