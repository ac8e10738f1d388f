// The PostgreSQL test fixture (tests/services/postgres_server.hpp): servers start from a cached
// template, each on its own copy, and concurrent starts build the template once.
#include "services/postgres_server.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "services/child.hpp"
#include "storage/postgres/postgres_backend.hpp"

namespace orchestra::storage {
namespace {

using orchestra::testing::services::PostgresServer;
using orchestra::testing::services::ScratchDir;
using namespace std::chrono_literals;

Call At(std::string_view tenant) {
  return {tenant, std::chrono::steady_clock::now() + 5s};
}

TEST(PostgresServerFixture, EachServerHasItsOwnData) {
  PostgresServer a;
  PostgresServer b;
  EXPECT_NE(a.port(), b.port());
  auto on_a = PostgresBackend::Create({.url = a.url()});
  auto on_b = PostgresBackend::Create({.url = b.url()});
  ASSERT_TRUE(on_a->Store(At("t"), "only-on-a", "1", std::nullopt).has_value());
  auto seen_on_b = on_b->Retrieve(At("t"), "only-on-a");
  ASSERT_TRUE(seen_on_b.has_value()) << seen_on_b.error().message;
  EXPECT_EQ(*seen_on_b, std::nullopt);
  EXPECT_EQ(on_a->Retrieve(At("t"), "only-on-a").value(), "1");
}

TEST(PostgresServerFixture, ConcurrentStartsBuildTheTemplateOnce) {
  ScratchDir build("orchestra-pg-cache-test");
  const char* previous = std::getenv("ORCHESTRA_BUILD_DIR");
  const std::string saved = previous != nullptr ? previous : "";
  ::setenv("ORCHESTRA_BUILD_DIR", build.path().c_str(), 1);
  std::atomic<int> answered{0};
  std::vector<std::thread> starters;
  for (int i = 0; i < 2; ++i) {
    // Each server lives and dies on its thread (its processes die with the thread that started
    // them).
    starters.emplace_back([&] {
      PostgresServer server;
      auto backend = PostgresBackend::Create({.url = server.url()});
      if (backend->Ping(std::chrono::steady_clock::now() + 10s).has_value()) ++answered;
    });
  }
  for (auto& t : starters)
    t.join();
  if (previous != nullptr) {
    ::setenv("ORCHESTRA_BUILD_DIR", saved.c_str(), 1);
  } else {
    ::unsetenv("ORCHESTRA_BUILD_DIR");
  }
  EXPECT_EQ(answered.load(), 2);
  int templates = 0;
  for (const auto& entry : std::filesystem::directory_iterator(build.path() + "/test-cache")) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".building"), std::string::npos) << name;
    if (entry.is_directory()) ++templates;
  }
  EXPECT_EQ(templates, 1);
}

}  // namespace
}  // namespace orchestra::storage
