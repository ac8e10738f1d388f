#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "observability/metrics.hpp"
#include "services/postgres_server.hpp"
#include "storage/storage.hpp"
#include "unit/storage/storage_test_support.hpp"

namespace orchestra::storage::testing {
namespace {

void Exec(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PGresult* r = PQexec(conn, sql.c_str());
  EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
      << sql << ": " << PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(conn);
}

// A database user with only DML rights on tables an administrator created can run Orchestra:
// start-up must not insist on CREATE.
TEST(PostgresBackend, RunsAsALeastPrivilegeUserOnceTheTablesExist) {
  auto& server = orchestra::testing::services::PostgresServer::Shared();
  observability::Registry admin_registry;
  config::StorageConfig admin = ConfigFor(BackendKind::kPostgres, "");
  { auto created = OpenStorage(admin, admin_registry); }  // creates the tables as postgres

  Exec(server.url(),
       "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orchestra_app') THEN "
       "CREATE ROLE orchestra_app LOGIN; END IF; END $$;"
       "REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
       "GRANT SELECT, INSERT, UPDATE, DELETE ON orchestra_kv, orchestra_checkpoints, "
       "orchestra_records, orchestra_record_changes, orchestra_record_log, orchestra_counters "
       "TO orchestra_app;");
  config::StorageConfig app = admin;
  app.url = server.url();
  app.url.replace(app.url.find("postgres@"), 9, "orchestra_app@");
  observability::Registry registry;
  auto storage = OpenStorage(app, registry);
  auto stored = Await(storage->kv().Store("t", "k", "{\"v\":1}", std::nullopt));
  ASSERT_TRUE(stored.has_value()) << stored.error().message;
  auto value = Await(storage->kv().Retrieve("t", "k"));
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(value->value_or(""), "{\"v\":1}");
  // Records, their change log and counters too.
  auto put = Await(storage->records().Put("t", "keys", "k", "{}", Expect::Absent()));
  ASSERT_TRUE(put.has_value()) << put.error().message;
  auto latest = Await(storage->records().LatestSequence());
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  EXPECT_GT(*latest, 0);
  auto added = Await(storage->records().Add("t", "spend", "c", {{"n", 1}}));
  ASSERT_TRUE(added.has_value()) << added.error().message;
}

}  // namespace
}  // namespace orchestra::storage::testing
