#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"
#include "orchestration/route_table.hpp"
#include "storage/change_follower.hpp"
#include "storage/follower_thread.hpp"
#include "storage/record_store.hpp"
#include "versions/record.hpp"

// Model versions and blue/green deployments (AI Orchestra's API, docs/API.md "Model versions"):
// the admin operations, persisted in the record store, and their effect on routing.
//
// A version is a route target (`endpoint` = provider/upstream-model of a configured provider);
// versions belong to a model configured under `models:` (the configuration stays the base: a
// model's fallbacks, retries, timeouts and price are its own, only its targets change). A
// blue/green deployment makes the model's targets blue and green with weights 100 - p and p
// (the weighted strategy), promote makes green the only target, rollback blue. Registering a
// version moves no traffic by itself.
//
// Every change is one conditional write of the model's record (record.hpp), retried on a
// concurrent writer's conflict, and applied to this instance's route table as soon as it is
// stored. Other instances sharing the backend apply it when they see it in the change log:
// Start() runs a watcher thread that polls the log every `poll_interval` (and reloads every
// record every `reload_interval`, which also covers a log that was trimmed or a backend that
// failed over), so a change reaches every instance within poll_interval plus one storage round
// trip (docs/OPERATIONS.md). Records are applied in version order per model: an older state
// read late never replaces a newer one.
//
// Thread-safety: every method may be called from any thread. Lifetime: `records` and `routes`
// must outlive the service; Stop() (or the destructor) must run before the storage is closed.
namespace orchestra::versions {

struct ServiceOptions {
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds reload_interval{30000};
  // Seconds since the Unix epoch, for created_at; the system clock when empty.
  std::function<double()> now;
};

struct RegisterRequest {
  std::string model_id;
  std::string version;
  std::string endpoint;
  std::vector<std::string> capabilities;
};

class Service {
 public:
  Service(storage::RecordStore& records, orchestration::RouteTable& routes,
          ServiceOptions options = {});
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Registers (or replaces) a version. kNotFound: the model is not configured. kInvalidRequest
  // (param names the field): a malformed version, endpoint or capability, or an endpoint whose
  // provider or local model this server does not have. kConflict: the model has
  // kMaxVersionsPerModel versions. Storage errors as they come (kUnavailable).
  boost::asio::awaitable<Result<Version>> Register(RegisterRequest request);

  // The model's record (no versions yet: an empty one). kNotFound when the model is neither
  // configured nor has a record.
  boost::asio::awaitable<Result<ModelRecord>> Versions(std::string_view model_id);

  // kNotFound: unknown model, or a version that is not registered (param names which);
  // kInvalidRequest: a percentage outside 0..100.
  boost::asio::awaitable<Result<void>> DeployBlueGreen(std::string_view model_id,
                                                       std::string_view blue_version,
                                                       std::string_view green_version,
                                                       int green_percent);
  // kConflict when the model has no blue/green deployment in progress (none made, or promoted or
  // rolled back since: make a new one).
  boost::asio::awaitable<Result<void>> ShiftTraffic(std::string_view model_id, int green_percent);
  // kConflict when the model has no deployment.
  boost::asio::awaitable<Result<void>> PromoteGreen(std::string_view model_id);
  boost::asio::awaitable<Result<void>> Rollback(std::string_view model_id);

  // Starts the watcher thread, which first loads and applies every stored record and positions
  // the change-log cursor; returns once that load is done (bounded by storage.operation_timeout),
  // with its error if it failed: then the configured targets stay until a later attempt of the
  // watcher succeeds (main logs the error and serves). Call once, before taking requests.
  Result<void> Start() { return watcher_.Start(); }
  // Stops the watcher and joins it; waits for a storage call in progress (bounded by
  // storage.operation_timeout). Idempotent.
  void Stop() { watcher_.Stop(); }

  // Completed polls of the change log (tests wait on it).
  std::uint64_t polls() const { return watcher_.polls(); }

 private:
  using Change = std::function<Result<void>(ModelRecord&)>;
  boost::asio::awaitable<Result<void>> Update(std::string_view model_id, const Change& change);
  // Applies `record` (at storage version `version`; nullopt: deleted) unless a newer one is
  // applied already.
  void Apply(std::string_view model_id, std::int64_t version,
             const std::optional<ModelRecord>& record);
  // Every stored record read again (the follower's reload).
  boost::asio::awaitable<Result<void>> ReloadAll();
  boost::asio::awaitable<Result<void>> Refresh(std::string_view model_id);
  Error NotConfigured(std::string_view model_id) const;
  double Now() const;

  storage::RecordStore& records_;
  orchestration::RouteTable& routes_;
  ServiceOptions options_;

  mutable std::mutex mutex_;  // guards everything below
  struct Applied {
    std::int64_t version = 0;
    bool warned = false;  // logged that this record cannot be applied here
  };
  std::map<std::string, Applied, std::less<>> applied_;
  storage::ChangeFollower follower_;  // the model versions' records in the change log
  storage::FollowerThread watcher_;
};

}  // namespace orchestra::versions
