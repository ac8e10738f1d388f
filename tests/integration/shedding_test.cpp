// Load shedding by delay, not by count (issue 10): many requests waiting on a slow upstream are
// normal and admitted; a CPU-bound overload is shed with 503 + Retry-After while the probes
// keep answering.

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "integration/orchestra_process.hpp"

namespace orchestra::testing {
namespace {

using namespace std::chrono_literals;

TEST(LoadShedding, ManyRequestsWaitingOnASlowUpstreamAreAllAdmitted) {
  TestUpstream upstream;
  OrchestraOptions o;
  o.config_yaml = "providers:\n  - {name: up, type: openai, base_url: '" + upstream.base_url() +
                  "/v1', max_connections: 512}\n"
                  "models:\n  - {name: slow, targets: [{provider: up, model: 'x+latency=20ms'}]}\n";
  Orchestra orchestra(o);
  constexpr int kConnections = 256;
  std::atomic<int> ok{0};
  std::atomic<int> shed{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kConnections; ++i) {
    threads.emplace_back([&] {
      auto client = orchestra.Client();
      for (int k = 0; k < 4; ++k) {
        auto r = client->Request("POST", "/v1/chat/completions",
                                 R"({"model":"slow","messages":[{"role":"user","content":"hi"}]})");
        (r.status == 200 ? ok : r.status == 503 ? shed : other).fetch_add(1);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(shed.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load(), kConnections * 4);
}

TEST(LoadShedding, ACpuBoundOverloadIsShedWhileProbesAnswer) {
  OrchestraOptions o;
  o.config_yaml = "server: {threads: 1, max_loop_delay: 2ms}\n";
  Orchestra orchestra(o);
  // Work the event loop itself does: local embeddings of long texts.
  std::string text;
  for (int i = 0; i < 400; ++i)
    text += "the quick brown fox jumps over the lazy dog while orchestra routes requests ";
  const std::string body =
      R"({"model":"local-embed","input":[")" + text + R"(",")" + text + R"(",")" + text + R"("]})";
  std::atomic<bool> stop{false};
  std::atomic<int> shed{0};
  std::atomic<int> shed_without_retry_after{0};
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 24; ++i) {
    threads.emplace_back([&] {
      auto client = orchestra.Client();
      while (!stop.load()) {
        auto r = client->Request("POST", "/v1/embeddings", body);
        if (r.status == 503) {
          shed.fetch_add(1);
          if (r.Header("retry-after").empty()) shed_without_retry_after.fetch_add(1);
        } else if (r.status == 200) {
          ok.fetch_add(1);
        }
      }
    });
  }
  int probes_ok = 0;
  auto probe = orchestra.Client();
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(100ms);
    probes_ok += probe->Request("GET", "/healthz").status == 200 ? 1 : 0;
  }
  stop = true;
  for (auto& t : threads)
    t.join();
  EXPECT_GT(shed.load(), 0) << ok.load() << " admitted";
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(shed_without_retry_after.load(), 0);
  EXPECT_EQ(probes_ok, 20);
  // Once the overload stops, the loop catches up and requests are admitted again.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(probe->Request("POST", "/v1/embeddings", body).status, 200);
}

}  // namespace
}  // namespace orchestra::testing
