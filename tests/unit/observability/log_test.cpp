#include "observability/log.hpp"

#include <cstdio>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "observability/trace.hpp"
#include <unistd.h>

namespace orchestra::observability {
namespace {

// Captures what a Logger writes, in an anonymous temporary file (a pipe would fill up).
class Captured {
 public:
  Captured() : file_(std::tmpfile()) {}
  ~Captured() { std::fclose(file_); }
  int fd() const { return fileno(file_); }
  std::vector<std::string> Lines() {
    std::string all;
    char buf[4096];
    ssize_t n;
    off_t offset = 0;
    while ((n = pread(fd(), buf, sizeof(buf), offset)) > 0) {
      all.append(buf, static_cast<std::size_t>(n));
      offset += n;
    }
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t nl; (nl = all.find('\n', start)) != std::string::npos; start = nl + 1) {
      lines.push_back(all.substr(start, nl - start));
    }
    return lines;
  }

 private:
  std::FILE* file_;
};

TEST(Logger, WritesCloudLoggingJsonWithTraceFields) {
  Captured out;
  {
    LoggerOptions o;
    o.fd = out.fd();
    o.gcp_project = "proj-1";
    Logger logger(o);
    TraceContext t = ContinueTrace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "");
    LogContext ctx{"req-1", t.TraceId(), t.SpanId(), t.sampled};
    logger.Log(Severity::kWarning, "upstream \"slow\"", &ctx, {{"attempt", 2}, {"ok", false}});
    logger.Stop();
  }
  auto lines = out.Lines();
  ASSERT_EQ(lines.size(), 1u);
  auto v = boost::json::parse(lines[0]).as_object();
  EXPECT_EQ(v["severity"], "WARNING");
  EXPECT_EQ(v["message"], "upstream \"slow\"");
  EXPECT_EQ(v["requestId"], "req-1");
  EXPECT_EQ(v["logging.googleapis.com/trace"],
            "projects/proj-1/traces/0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(v["logging.googleapis.com/spanId"].as_string().size(), 16u);
  EXPECT_EQ(v["logging.googleapis.com/trace_sampled"], true);
  EXPECT_EQ(v["attempt"], 2);
  EXPECT_EQ(v["ok"], false);
  EXPECT_TRUE(v.contains("time"));
}

TEST(Logger, AccessLineCarriesHttpRequest) {
  Captured out;
  {
    LoggerOptions o;
    o.fd = out.fd();
    Logger logger(o);
    AccessRecord r{"GET", "/memory/a?x=1", 404, 0.0012, "curl/8", "127.0.0.1", 80,
                   120,   "/memory/{key}"};
    logger.Access(r, LogContext{"rid", "", "", false});
  }
  auto lines = out.Lines();
  ASSERT_EQ(lines.size(), 1u);
  auto v = boost::json::parse(lines[0]).as_object();
  EXPECT_EQ(v["severity"], "WARNING");
  EXPECT_EQ(v["route"], "/memory/{key}");
  auto http = v["httpRequest"].as_object();
  EXPECT_EQ(http["requestMethod"], "GET");
  EXPECT_EQ(http["requestUrl"], "/memory/a?x=1");
  EXPECT_EQ(http["status"], 404);
  EXPECT_EQ(http["latency"], "0.001200s");
  EXPECT_EQ(http["userAgent"], "curl/8");
  EXPECT_EQ(http["remoteIp"], "127.0.0.1");
  EXPECT_EQ(http["requestSize"], "80");
  EXPECT_EQ(http["responseSize"], "120");
  EXPECT_FALSE(v.contains("logging.googleapis.com/trace"));
}

TEST(Logger, TextFormatIsOneReadableLine) {
  Captured out;
  {
    LoggerOptions o;
    o.fd = out.fd();
    o.format = config::LogFormat::kText;
    Logger logger(o);
    logger.Log(Severity::kInfo, "listening", nullptr, {{"address", "127.0.0.1:8080"}});
  }
  auto lines = out.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" INFO listening address=127.0.0.1:8080"), std::string::npos) << lines[0];
}

TEST(Logger, FiltersBelowTheLevelAndKeepsLinesFromManyThreads) {
  Captured out;
  {
    LoggerOptions o;
    o.fd = out.fd();
    o.level = config::LogLevel::kInfo;
    Logger logger(o);
    logger.Log(Severity::kDebug, "hidden");
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 500; ++i)
          logger.Log(Severity::kInfo, "line");
      });
    }
    for (auto& t : threads)
      t.join();
    logger.Flush();
  }
  auto lines = out.Lines();
  EXPECT_EQ(lines.size(), 2000u);
  for (const auto& l : lines)
    ASSERT_NO_THROW(boost::json::parse(l)) << l;
}

TEST(Trace, ContinuesAValidTraceparent) {
  TraceContext t = ContinueTrace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "");
  EXPECT_EQ(t.TraceId(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_TRUE(t.sampled);
  EXPECT_NE(t.SpanId(), "00f067aa0ba902b7");
  std::string out = t.Traceparent();
  EXPECT_EQ(out.substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_EQ(out.substr(52), "-01");
}

TEST(Trace, StartsANewTraceForMalformedHeaders) {
  for (const char* bad : {"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"}) {
    TraceContext t = ContinueTrace(bad, "");
    EXPECT_NE(t.TraceId(), "4bf92f3577b34da6a3ce929d0e0e4736") << bad;
    TraceContext parsed;
    EXPECT_TRUE(ParseTraceparent(t.Traceparent(), parsed)) << t.Traceparent();
  }
}

TEST(Trace, FallsBackToCloudTraceContext) {
  TraceContext t = ContinueTrace("", "105445aa7843bc8bf206b12000100000/1;o=1");
  EXPECT_EQ(t.TraceId(), "105445aa7843bc8bf206b12000100000");
  EXPECT_TRUE(t.sampled);
}

}  // namespace
}  // namespace orchestra::observability

namespace orchestra::observability {
namespace {

TEST(Logger, AccessLinesOfFailuresPassAHigherLevel) {
  Captured out;
  {
    LoggerOptions o;
    o.fd = out.fd();
    o.level = config::LogLevel::kWarning;
    Logger logger(o);
    AccessRecord ok{"GET", "/", 200, 0.001, "", "127.0.0.1", 1, 1, "/"};
    AccessRecord failed{"GET", "/", 503, 0.001, "", "127.0.0.1", 1, 1, "/"};
    logger.Access(ok, LogContext{});
    logger.Access(failed, LogContext{});
  }
  auto lines = out.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("\"status\":503"), std::string::npos);
}

}  // namespace
}  // namespace orchestra::observability
