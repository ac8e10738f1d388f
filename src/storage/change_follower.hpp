#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/error.hpp"
#include "storage/record_store.hpp"

// Following the record store's change log (record_store.hpp) for a service that keeps records
// in memory: API keys (auth::KeyService), model versions (versions::Service) and documents
// (documents::Service). One loop for all of them:
//
//   Load   takes the log's newest sequence as the cursor, then reloads everything (the
//          service's `reload`): a change made during the reload is read again by the next Poll,
//          and reading a change twice is harmless (the services apply in version order).
//   Poll   reads the log after the cursor, a page at a time, until its end. The changes of a
//          page the service wants (`wanted`) go to `refresh` (each record once, in log order);
//          the cursor then moves past the page. When `refresh` fails the cursor stays before
//          the page and Poll returns the error: the next Poll reads the page again. A cursor
//          older than the oldest entry the log keeps (kConflict) makes a Load.
//
// Thread-safety: Load and Poll one at a time (the service's own poller); cursor() and loaded()
// from any thread. The callbacks run in the caller's coroutine.
namespace orchestra::storage {

class ChangeFollower {
 public:
  using Wanted = std::function<bool(const Change&)>;
  using Refresh = std::function<boost::asio::awaitable<Result<void>>(std::vector<Change>)>;
  using Reload = std::function<boost::asio::awaitable<Result<void>>()>;

  static constexpr int kPage = 500;

  // `records` must outlive the follower.
  ChangeFollower(RecordStore& records, Wanted wanted, Refresh refresh, Reload reload,
                 int page = kPage);

  // The cursor set to the newest sequence, then `reload`, or `reload_now` when given (a load
  // that differs from the one after a lost log, e.g. one reading snapshots at start-up).
  // loaded() once one has succeeded.
  boost::asio::awaitable<Result<void>> Load(Reload reload_now = nullptr);
  boost::asio::awaitable<Result<void>> Poll();

  std::int64_t cursor() const { return cursor_.load(std::memory_order_acquire); }
  bool loaded() const { return loaded_.load(std::memory_order_acquire); }

 private:
  RecordStore& records_;
  Wanted wanted_;
  Refresh refresh_;
  Reload reload_;
  int page_;
  std::atomic<std::int64_t> cursor_{0};
  std::atomic<bool> loaded_{false};
};

}  // namespace orchestra::storage
