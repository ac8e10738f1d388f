#pragma once

#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "config/config.hpp"
#include "services/firestore_emulator.hpp"
#include "services/postgres_server.hpp"
#include "services/redis_server.hpp"

// Helpers shared by the storage tests.
namespace orchestra::storage::testing {

// Runs one awaitable to completion on a private io_context.
template <class T>
T Await(boost::asio::awaitable<T> awaitable) {
  boost::asio::io_context io;
  std::optional<T> out;
  std::exception_ptr failure;
  boost::asio::co_spawn(io, std::move(awaitable), [&](std::exception_ptr e, T value) {
    failure = e;
    if (!e) out.emplace(std::move(value));
  });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*out);
}

enum class BackendKind { kSqlite, kRedis, kPostgres, kFirestore };

inline std::string Name(BackendKind kind) {
  switch (kind) {
    case BackendKind::kSqlite:
      return "sqlite";
    case BackendKind::kRedis:
      return "redis";
    case BackendKind::kPostgres:
      return "postgres";
    case BackendKind::kFirestore:
      return "firestore";
  }
  return "?";
}

// The project the Firestore tests use: any id works on the emulator ("demo-" is the prefix
// Google's emulators reserve for projects that never reach the cloud).
inline constexpr const char* kFirestoreTestProject = "demo-orchestra";

// Whether the Firestore emulator can run here. When it cannot, says so on stderr, loudly and
// once per process, for the tests to skip (GTEST_SKIP) rather than fail on a machine without
// the Google Cloud CLI.
inline bool FirestoreEmulatorAvailable(std::string* why = nullptr) {
  static const std::string missing = [] {
    std::string reason;
    if (orchestra::testing::services::FirestoreEmulator::Available(&reason)) return std::string();
    std::fprintf(stderr,
                 "\n**********************************************************************\n"
                 "*** FIRESTORE EMULATOR MISSING: the Firestore tests are SKIPPED.\n"
                 "*** %s\n"
                 "**********************************************************************\n\n",
                 reason.c_str());
    return reason;
  }();
  if (why != nullptr) *why = "Firestore emulator missing: " + missing;
  return missing.empty();
}

// A storage config for `kind`: SQLite in `sqlite_dir`, Redis, PostgreSQL and the Firestore
// emulator on the process's shared throwaway servers (started on first use).
inline config::StorageConfig ConfigFor(BackendKind kind, const std::string& sqlite_dir) {
  config::StorageConfig c;
  c.pool_size = 4;
  c.max_value_bytes = 64 * 1024;
  c.operation_timeout = std::chrono::seconds(5);
  switch (kind) {
    case BackendKind::kSqlite:
      c.backend = config::StorageBackend::kSqlite;
      c.path = sqlite_dir + "/nested/dir/orchestra.db";  // the directories are created
      break;
    case BackendKind::kRedis:
      c.backend = config::StorageBackend::kRedis;
      c.url = orchestra::testing::services::RedisServer::Shared().url();
      break;
    case BackendKind::kPostgres:
      c.backend = config::StorageBackend::kPostgres;
      c.url = orchestra::testing::services::PostgresServer::Shared().url();
      break;
    case BackendKind::kFirestore:
      c.backend = config::StorageBackend::kFirestore;
      c.firestore.project = kFirestoreTestProject;
      c.firestore.emulator_host = orchestra::testing::services::FirestoreEmulator::Shared().host();
      break;
  }
  return c;
}

}  // namespace orchestra::storage::testing
