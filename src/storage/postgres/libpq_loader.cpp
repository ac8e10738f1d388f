#include "storage/postgres/libpq_loader.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include <libpq-fe.h>

#include <dlfcn.h>

namespace orchestra::storage::postgres {
namespace {

struct Library {
  void* handle = nullptr;
  std::string error;
};

Library& Loaded() {
  static Library library;
  static std::once_flag once;
  std::call_once(once, [] {
    library.handle = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (library.handle == nullptr) {
      const char* why = dlerror();
      library.error = why != nullptr ? why : "unknown error";
    }
  });
  return library;
}

template <class F>
F Resolve(const char* name) {
  Library& lib = Loaded();
  void* symbol = lib.handle != nullptr ? dlsym(lib.handle, name) : nullptr;
  if (symbol == nullptr) {
    // LoadLibpq() at start-up reports a missing library politely; reaching this means a libpq
    // without a function every libpq 10+ has.
    std::fprintf(stderr, "orchestra: libpq is unusable (%s): %s\n", name,
                 lib.handle == nullptr ? lib.error.c_str() : "symbol not found");
    std::abort();
  }
  return reinterpret_cast<F>(symbol);
}

}  // namespace

void LoadLibpq() {
  Library& lib = Loaded();
  if (lib.handle == nullptr) {
    throw std::runtime_error("PostgreSQL storage needs libpq (Debian package libpq5): " +
                             lib.error);
  }
}

}  // namespace orchestra::storage::postgres

// The forwarders: same names and signatures as libpq-fe.h declares.
#define ORCHESTRA_LIBPQ(ret, name, params, args)                                        \
  extern "C" ret name params {                                                          \
    static const auto fn = orchestra::storage::postgres::Resolve<ret(*) params>(#name); \
    return fn args;                                                                     \
  }

ORCHESTRA_LIBPQ(PGconn*, PQconnectStartParams,
                (const char* const* keywords, const char* const* values, int expand_dbname),
                (keywords, values, expand_dbname))
ORCHESTRA_LIBPQ(PostgresPollingStatusType, PQconnectPoll, (PGconn * conn), (conn))
ORCHESTRA_LIBPQ(PGconn*, PQconnectdb, (const char* conninfo), (conninfo))
ORCHESTRA_LIBPQ(void, PQfinish, (PGconn * conn), (conn))
ORCHESTRA_LIBPQ(PQconninfoOption*, PQconninfoParse, (const char* conninfo, char** errmsg),
                (conninfo, errmsg))
ORCHESTRA_LIBPQ(void, PQconninfoFree, (PQconninfoOption * options), (options))
ORCHESTRA_LIBPQ(ConnStatusType, PQstatus, (const PGconn* conn), (conn))
ORCHESTRA_LIBPQ(PGTransactionStatusType, PQtransactionStatus, (const PGconn* conn), (conn))
ORCHESTRA_LIBPQ(char*, PQerrorMessage, (const PGconn* conn), (conn))
ORCHESTRA_LIBPQ(int, PQsocket, (const PGconn* conn), (conn))
ORCHESTRA_LIBPQ(PQnoticeProcessor, PQsetNoticeProcessor,
                (PGconn * conn, PQnoticeProcessor proc, void* arg), (conn, proc, arg))
ORCHESTRA_LIBPQ(PGresult*, PQexec, (PGconn * conn, const char* query), (conn, query))
ORCHESTRA_LIBPQ(int, PQsendQuery, (PGconn * conn, const char* query), (conn, query))
ORCHESTRA_LIBPQ(int, PQsendPrepare,
                (PGconn * conn, const char* name, const char* query, int n, const Oid* types),
                (conn, name, query, n, types))
ORCHESTRA_LIBPQ(int, PQsendQueryPrepared,
                (PGconn * conn, const char* name, int n, const char* const* values,
                 const int* lengths, const int* formats, int result_format),
                (conn, name, n, values, lengths, formats, result_format))
ORCHESTRA_LIBPQ(PGresult*, PQgetResult, (PGconn * conn), (conn))
ORCHESTRA_LIBPQ(int, PQisBusy, (PGconn * conn), (conn))
ORCHESTRA_LIBPQ(int, PQconsumeInput, (PGconn * conn), (conn))
ORCHESTRA_LIBPQ(int, PQsetnonblocking, (PGconn * conn, int arg), (conn, arg))
ORCHESTRA_LIBPQ(int, PQflush, (PGconn * conn), (conn))
ORCHESTRA_LIBPQ(ExecStatusType, PQresultStatus, (const PGresult* res), (res))
ORCHESTRA_LIBPQ(char*, PQresultErrorMessage, (const PGresult* res), (res))
ORCHESTRA_LIBPQ(char*, PQresultErrorField, (const PGresult* res, int code), (res, code))
ORCHESTRA_LIBPQ(int, PQntuples, (const PGresult* res), (res))
ORCHESTRA_LIBPQ(char*, PQcmdTuples, (PGresult * res), (res))
ORCHESTRA_LIBPQ(char*, PQgetvalue, (const PGresult* res, int row, int col), (res, row, col))
ORCHESTRA_LIBPQ(int, PQgetlength, (const PGresult* res, int row, int col), (res, row, col))
ORCHESTRA_LIBPQ(int, PQgetisnull, (const PGresult* res, int row, int col), (res, row, col))
ORCHESTRA_LIBPQ(void, PQclear, (PGresult * res), (res))
ORCHESTRA_LIBPQ(void, PQfreemem, (void* ptr), (ptr))
// The fleet-wide limits' pipelined connection (pg_pipe.cpp).
ORCHESTRA_LIBPQ(int, PQenterPipelineMode, (PGconn * conn), (conn))
ORCHESTRA_LIBPQ(int, PQpipelineSync, (PGconn * conn), (conn))
ORCHESTRA_LIBPQ(int, PQnfields, (const PGresult* res), (res))
ORCHESTRA_LIBPQ(char*, PQresStatus, (ExecStatusType status), (status))
