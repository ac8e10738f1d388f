#pragma once

#include <string>
#include <string_view>

// redis://[[user]:password@]host[:port][/db], the one URL shape every Redis client of Orchestra
// takes (the storage backend, the response cache's shared tier).
namespace orchestra {

struct RedisAddress {
  std::string host;
  int port = 6379;
  std::string user;      // empty: AUTH with the password only (or no AUTH)
  std::string password;  // percent-decoded; empty: no AUTH
  int db = 0;
};

// Throws std::runtime_error naming `owner` ("storage", "cache") and what is wrong; the message
// never contains the password.
RedisAddress ParseRedisUrl(std::string_view url, std::string_view owner);

}  // namespace orchestra
