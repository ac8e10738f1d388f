// The wiring of storage: the only place that names the concrete backends (STYLE.md "Layout").
#include <stdexcept>

#include "storage/firestore/firestore_backend.hpp"
#include "storage/postgres/libpq_loader.hpp"
#include "storage/postgres/postgres_backend.hpp"
#include "storage/redis/redis_backend.hpp"
#include "storage/sqlite/sqlite_backend.hpp"
#include "storage/storage.hpp"
#include "storage/storage_service.hpp"

namespace orchestra::storage {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::unique_ptr<Backend> MakeBackend(const config::StorageConfig& c) {
  switch (c.backend) {
    case config::StorageBackend::kSqlite:
      return SqliteBackend::Open(
          {.path = c.path,
           .readers = c.pool_size,
           .full_sync = false,
           .busy_timeout = duration_cast<milliseconds>(c.operation_timeout)});
    case config::StorageBackend::kRedis:
      return RedisBackend::Create({.url = c.url, .pool_size = c.pool_size});
    case config::StorageBackend::kPostgres:
      postgres::LoadLibpq();
      return PostgresBackend::Create(
          {.url = c.url,
           .pool_size = c.pool_size,
           .statement_timeout = duration_cast<milliseconds>(c.operation_timeout)});
    case config::StorageBackend::kFirestore:
      return FirestoreBackend::Create({.project = c.firestore.project,
                                       .database = c.firestore.database,
                                       .root = c.firestore.root,
                                       .endpoint = c.firestore.endpoint,
                                       .emulator_host = c.firestore.emulator_host,
                                       .metadata_host = c.firestore.metadata_host,
                                       .pool_size = c.pool_size});
  }
  throw std::runtime_error("storage: unknown backend");
}

std::string Describe(std::string_view role, const Backend& backend, const Error& error) {
  return std::string(role) + " " + std::string(backend.kind()) +
         " is unreachable: " + error.message;
}

}  // namespace

std::unique_ptr<Storage> OpenStorage(const config::StorageConfig& config,
                                     observability::Registry& metrics, StorageOptions options) {
  std::unique_ptr<Backend> primary = MakeBackend(config);
  std::unique_ptr<Backend> secondary = config.secondary ? MakeBackend(*config.secondary) : nullptr;
  const auto timeout = duration_cast<milliseconds>(config.operation_timeout);

  bool start_failed_over = false;
  auto primary_ping = primary->Ping(std::chrono::steady_clock::now() + timeout);
  if (!primary_ping) {
    const std::string primary_problem = Describe("primary", *primary, primary_ping.error());
    if (!secondary) throw std::runtime_error("storage: " + primary_problem);
    auto secondary_ping = secondary->Ping(std::chrono::steady_clock::now() + timeout);
    if (!secondary_ping) {
      throw std::runtime_error("storage: " + primary_problem + "; and the " +
                               Describe("secondary", *secondary, secondary_ping.error()));
    }
    start_failed_over = true;
  }

  StorageServiceSettings settings;
  settings.max_value_bytes = config.max_value_bytes;
  settings.keep_last = config.checkpoints_keep_last;
  settings.operation_timeout = timeout;
  settings.sweep_interval = duration_cast<milliseconds>(config.sweep_interval);
  settings.change_log_retention = duration_cast<milliseconds>(config.change_log_retention);
  settings.threads = static_cast<std::size_t>(config.pool_size) +
                     (config.secondary ? static_cast<std::size_t>(config.secondary->pool_size) : 0);
  settings.options = std::move(options);
  return std::make_unique<StorageService>(std::move(primary), std::move(secondary),
                                          start_failed_over, std::move(settings), metrics);
}

}  // namespace orchestra::storage
