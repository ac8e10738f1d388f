// Regression: the upstream model spliced into a forwarded body must belong to its own request.
// The splice bytes once lived in a per-thread buffer that a second request on the same worker
// overwrote whenever the first one suspended before its body was written: on a cold connection
// (connect, TLS handshake), on a partial write of a large body, and through TLS, which writes in
// 16 KiB records. Many concurrent requests for two routes whose upstream names differ, on cold
// connections, with bodies of a few hundred KiB, over plain TCP and over TLS: every request must
// reach the upstream with its own model and intact JSON, which the test upstream echoes.

#include <atomic>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "integration/orchestra_process.hpp"

namespace orchestra::testing {
namespace {

namespace json = boost::json;

std::string BigChat(std::string_view model, std::size_t padding, bool stream) {
  std::string body = R"({"model":")" + std::string(model) +
                     R"(","messages":[{"role":"user","content":"which model am I"}],"user":")";
  body.append(padding, 'p');
  body += '"';
  if (stream) body += R"(,"stream":true)";
  body += '}';
  return body;
}

void RunMixedLoad(Orchestra& orchestra, bool stream) {
  // Upstream names of different lengths, so that a swapped or torn splice cannot go unnoticed.
  const std::pair<std::string, std::string> routes[] = {
      {"alpha", "upstream-alpha-model-with-a-rather-long-name-0123456789"}, {"beta", "ub"}};
  constexpr int kThreads = 8;
  constexpr int kPerThread = 6;
  std::atomic<int> ok{0};
  std::vector<std::string> failures;
  std::mutex failures_mutex;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const auto& [route, upstream_model] = routes[(t + i) % 2];
        // A fresh client connection each time; sizes vary so writes end at different places.
        auto client = orchestra.Client();
        const std::string body = BigChat(route, (200 << 10) + 4099 * (t * kPerThread + i), stream);
        std::string seen_model;
        std::string problem;
        if (!stream) {
          auto r = client->Request("POST", "/v1/chat/completions", body);
          if (r.status != 200) {
            problem = "status " + std::to_string(r.status) + ": " + r.body.substr(0, 300);
          } else {
            seen_model = std::string(r.Json().at("model").as_string());
          }
        } else {
          auto r =
              client->Stream("POST", "/v1/chat/completions", body, {}, [&](std::string_view data) {
                if (data != "[DONE]" && seen_model.empty()) {
                  seen_model = std::string(json::parse(data).at("model").as_string());
                }
                return true;
              });
          if (r.status != 200) problem = "status " + std::to_string(r.status) + ": " + r.body;
        }
        if (problem.empty() && seen_model != upstream_model) {
          problem = "route " + route + " reached the upstream as '" + seen_model + "'";
        }
        if (problem.empty()) {
          ok.fetch_add(1);
        } else {
          std::lock_guard lock(failures_mutex);
          failures.push_back(std::move(problem));
        }
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  for (std::size_t i = 0; i < failures.size() && i < 5; ++i)
    ADD_FAILURE() << failures[i];
}

OrchestraOptions TwoRoutes(const TestUpstream& upstream, const std::string& provider_extra) {
  OrchestraOptions o;
  o.config_yaml =
      "server: {threads: 2, max_body_bytes: 16777216}\n"
      "providers:\n"
      "  - {name: up, type: openai, base_url: '" +
      upstream.base_url() + "/v1', max_connections: 64" + provider_extra +
      "}\n"
      "models:\n"
      "  - {name: alpha, targets: [{provider: up, model: "
      "upstream-alpha-model-with-a-rather-long-name-0123456789}], retry: {attempts: 1}}\n"
      "  - {name: beta, targets: [{provider: up, model: ub}], retry: {attempts: 1}}\n";
  return o;
}

TEST(SplicedModel, EachRequestReachesTheUpstreamWithItsOwnModelOverPlainTcp) {
  TestUpstream upstream;
  Orchestra orchestra(TwoRoutes(upstream, ""));
  RunMixedLoad(orchestra, false);
  RunMixedLoad(orchestra, true);
}

TEST(SplicedModel, EachRequestReachesTheUpstreamWithItsOwnModelOverTls) {
  TempDir dir;
  TestCertificates certs = MakeTestCertificates(dir.path());
  TestUpstream upstream({"--tls-cert", certs.server_cert, "--tls-key", certs.server_key});
  Orchestra orchestra(TwoRoutes(upstream, ", ca_file: '" + certs.ca_cert + "'"));
  RunMixedLoad(orchestra, false);
  RunMixedLoad(orchestra, true);
}

}  // namespace
}  // namespace orchestra::testing
