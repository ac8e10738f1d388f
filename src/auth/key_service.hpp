#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "auth/api_keys.hpp"
#include "auth/key_record.hpp"
#include "common/error.hpp"
#include "storage/change_follower.hpp"
#include "storage/follower_thread.hpp"
#include "storage/record_store.hpp"

// Virtual API keys (issue 13, docs/API.md "Admin: API keys"): the admin operations on the
// records of key_record.hpp, and the live table of ApiKeys they feed.
//
// Every write is stored first and then applied to this instance's table at once. Other
// instances sharing the backend apply it when they see it in the change log: Start() runs a
// watcher thread that polls the log every `poll_interval` (250 ms by default) and re-reads every
// key every `reload_interval` (which also covers a trimmed log or a failed-over backend), so a
// revoked, rotated-out or changed key is refused or changed on every instance within
// poll_interval plus one storage round trip — under 1 s (docs/OPERATIONS.md). Expiry needs no
// poll: the table holds each key's expiry time and authentication checks it.
//
// A revoked key is remembered by id for the process's life, so that a slow read of its record
// that completes after the revocation was applied can never bring it back.
//
// Thread-safety: every method may be called from any thread. Lifetime: `records` and `keys`
// must outlive the service; Stop() (or the destructor) must run before the storage is closed.
namespace orchestra::auth {

struct KeyServiceOptions {
  // The configured public model names: what `models` and `limits.per_model` may name.
  std::vector<std::string> models;
  std::chrono::milliseconds poll_interval{250};
  std::chrono::milliseconds reload_interval{30000};
  // How long a rotated-out secret keeps working (auth.rotation_grace), unless the rotate request
  // gives grace_seconds.
  double rotation_grace_s = 3600;
  // Seconds since the Unix epoch; the system clock when empty.
  std::function<double()> now;
};

// A key as created or rotated: the only time its secret exists outside the client.
struct IssuedKey {
  KeyRecord record;
  std::string secret;
};

struct KeyPage {
  std::vector<KeyRecord> keys;
  std::string next_cursor;  // empty: the last page
};

class KeyService {
 public:
  KeyService(storage::RecordStore& records, ApiKeys& keys, KeyServiceOptions options = {});
  ~KeyService();
  KeyService(const KeyService&) = delete;
  KeyService& operator=(const KeyService&) = delete;

  // kInvalidRequest naming the field for a bad body, a name in use (by a stored key or a key of
  // the configuration file); nothing is written then. Storage errors as they come.
  boost::asio::awaitable<Result<IssuedKey>> Create(std::string_view body);
  // `limit` 1..100; `cursor` from the previous page ("" for the first).
  boost::asio::awaitable<Result<KeyPage>> List(int limit, std::string_view cursor);
  // kNotFound for an unknown (or revoked) id.
  boost::asio::awaitable<Result<KeyRecord>> Get(std::string_view id);
  boost::asio::awaitable<Result<KeyRecord>> Patch(std::string_view id, std::string_view body);
  boost::asio::awaitable<Result<void>> Revoke(std::string_view id);
  // A new secret; the old one keeps working for the grace period (body {grace_seconds?}).
  boost::asio::awaitable<Result<IssuedKey>> Rotate(std::string_view id, std::string_view body);

  // Loads every stored key into the table, then follows the change log on a watcher thread;
  // returns once the first load is done, with its error if it failed (the watcher keeps
  // trying). Call once, before taking requests.
  Result<void> Start() { return watcher_.Start(); }
  // Stops the watcher and joins it. Idempotent.
  void Stop() { watcher_.Stop(); }

  // Completed polls of the change log (tests wait on it).
  std::uint64_t polls() const { return watcher_.polls(); }

 private:
  struct Entry {
    std::int64_t version = 0;
    KeyRecord record;
    const Principal* principal = nullptr;
  };
  using Change = std::function<Result<void>(KeyRecord&)>;
  boost::asio::awaitable<Result<KeyRecord>> Update(std::string_view id, const Change& change);
  boost::asio::awaitable<Result<std::optional<std::pair<KeyRecord, std::int64_t>>>> Read(
      std::string_view id);
  // Applies a record read at `version` (nullopt: deleted) unless a newer one is in force.
  // Publishes the table when `publish`.
  void Apply(const std::string& id, std::int64_t version, const std::optional<KeyRecord>& record,
             bool publish = true);
  void PublishLocked();
  // Every stored key read again (the follower's reload).
  boost::asio::awaitable<Result<void>> ReloadAll();
  boost::asio::awaitable<Result<void>> Refresh(const std::string& id);
  double Now() const;

  storage::RecordStore& records_;
  ApiKeys& keys_;
  KeyServiceOptions options_;
  std::vector<std::string> reserved_names_;  // the config keys' names

  mutable std::mutex mutex_;  // guards everything below
  std::map<std::string, Entry, std::less<>> entries_;
  std::set<std::string, std::less<>> revoked_;
  storage::ChangeFollower follower_;  // the keys' records in the change log
  storage::FollowerThread watcher_;
};

}  // namespace orchestra::auth
