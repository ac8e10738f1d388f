#pragma once

// libpq is loaded when PostgreSQL is first used, not when the process starts.
//
// Why: libpq pulls in Kerberos, LDAP and GnuTLS, whose library constructors cost ~8 ms at every
// exec — most of Orchestra's start-up budget — even for the default SQLite configuration.
// libpq_loader.cpp defines the libpq functions the backend calls as forwarders to the real ones,
// found with dlopen("libpq.so.5") and dlsym on first call; the binary does not link libpq.
namespace orchestra::storage::postgres {

// Loads libpq now. Throws std::runtime_error saying why when it cannot be loaded.
void LoadLibpq();

}  // namespace orchestra::storage::postgres
