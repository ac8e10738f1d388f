#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "config/config.hpp"
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

enum class BackendKind { kSqlite, kRedis, kPostgres };

inline std::string Name(BackendKind kind) {
  switch (kind) {
    case BackendKind::kSqlite:
      return "sqlite";
    case BackendKind::kRedis:
      return "redis";
    case BackendKind::kPostgres:
      return "postgres";
  }
  return "?";
}

// A storage config for `kind`: SQLite in `sqlite_dir`, Redis and PostgreSQL on the process's
// shared throwaway servers (started on first use).
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
  }
  return c;
}

}  // namespace orchestra::storage::testing
