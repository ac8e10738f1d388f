#include "observability/metrics.hpp"

#include <thread>

#include <gtest/gtest.h>

namespace orchestra::observability {
namespace {

TEST(Counter, SumsAcrossThreadShards) {
  Registry registry;
  Counter& c = registry.AddCounter("t_total", "help", {}).With({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, t] {
      SetThreadShard(t);
      for (int i = 0; i < 10000; ++i)
        c.Inc();
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(c.Value(), 40000u);
}

TEST(Histogram, BucketsAreCumulativeAndInclusive) {
  Histogram h({0.1, 1, 10});
  h.Observe(0.05);
  h.Observe(0.1);  // le is inclusive
  h.Observe(5);
  h.Observe(100);
  auto snap = h.Collect();
  EXPECT_EQ(snap.cumulative, (std::vector<std::uint64_t>{2, 2, 3, 4}));
  EXPECT_EQ(snap.count, 4u);
  EXPECT_DOUBLE_EQ(snap.sum, 105.15);
}

TEST(Registry, RendersThePrometheusTextFormat) {
  Registry registry;
  auto& requests = registry.AddCounter("orchestra_http_requests_total", "Requests.",
                                       {"route", "method", "code"});
  requests.With({"/memory/{key}", "GET", "200"}).Inc(3);
  auto& latency = registry.AddHistogram("orchestra_http_request_duration_seconds", "Latency.",
                                        {"route"}, {0.5, 1});
  latency.With({"/healthz"}).Observe(0.25);
  registry.AddCallback("orchestra_up", "Up.", MetricType::kGauge, [] { return 1.0; });
  std::string text = registry.Render();
  EXPECT_NE(
      text.find(
          "# HELP orchestra_http_requests_total Requests.\n"
          "# TYPE orchestra_http_requests_total counter\n"
          "orchestra_http_requests_total{route=\"/memory/{key}\",method=\"GET\",code=\"200\"} 3\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("orchestra_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.5\"} 1\n"
                "orchestra_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"1\"} 1\n"
                "orchestra_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1\n"
                "orchestra_http_request_duration_seconds_sum{route=\"/healthz\"} 0.25\n"
                "orchestra_http_request_duration_seconds_count{route=\"/healthz\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE orchestra_up gauge\norchestra_up 1\n"), std::string::npos);
}

TEST(Registry, EscapesLabelValues) {
  Registry registry;
  registry.AddCounter("x_total", "X.", {"v"}).With({"a\"b\\c\nd"}).Inc();
  EXPECT_NE(registry.Render().find("x_total{v=\"a\\\"b\\\\c\\nd\"} 1"), std::string::npos);
}

TEST(ProcessMetrics, ReportsRealValues) {
  Registry registry;
  RegisterProcessMetrics(registry, "1.2.3", "abc");
  std::string text = registry.Render();
  EXPECT_NE(text.find("orchestra_build_info{version=\"1.2.3\",commit=\"abc\"} 1"),
            std::string::npos);
  auto value_of = [&](std::string_view name) {
    auto pos = text.find("\n" + std::string(name) + " ");
    EXPECT_NE(pos, std::string::npos) << name;
    return std::stod(text.substr(pos + name.size() + 2));
  };
  EXPECT_GT(value_of("process_resident_memory_bytes"), 1e5);
  EXPECT_GT(value_of("process_open_fds"), 2);
  EXPECT_GT(value_of("process_start_time_seconds"), 1.7e9);
}

}  // namespace
}  // namespace orchestra::observability
