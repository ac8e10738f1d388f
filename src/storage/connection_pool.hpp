#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "storage/backend.hpp"

// The connection pool of the networked blocking backends (Redis, PostgreSQL, Firestore): up to
// `capacity` connections, opened on demand outside the lock, reused most-recently-released
// first, and dropped when they come back unusable.
//
// Run() is the call loop the three backends share: it lends a connection to the call, and when
// the call fails on a *reused* connection that the failure left unusable (the server closed an
// idle connection, a load balancer dropped it), it runs an idempotent call once more on a freshly
// opened one. A failure on a fresh connection is the server's answer and is returned as it is.
//
// Thread-safe. Connections are used by one thread at a time (the one holding the lease).
namespace orchestra::storage {

template <class Connection>
class ConnectionPool {
 public:
  struct Hooks {
    // Opens a connection by the deadline; kUnavailable (or another error) when it cannot.
    std::function<Result<std::unique_ptr<Connection>>(Deadline)> open;
    // Whether a connection coming back from a call may be lent again.
    std::function<bool(const Connection&)> reusable;
  };

  // A connection lent out; goes back to the pool when destroyed.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          connection_(std::move(other.connection_)),
          reused_(other.reused_) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->Release(std::move(connection_));
    }

    Connection& operator*() const { return *connection_; }
    Connection* operator->() const { return connection_.get(); }
    // Whether it served an earlier call (a server may have closed it since).
    bool reused() const { return reused_; }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection, bool reused)
        : pool_(pool), connection_(std::move(connection)), reused_(reused) {}

    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<Connection> connection_;
    bool reused_ = false;
  };

  // `name` prefixes error messages ("redis: timed out waiting for a pooled connection").
  ConnectionPool(std::string name, std::size_t capacity, Hooks hooks)
      : name_(std::move(name)), capacity_(capacity == 0 ? 1 : capacity), hooks_(std::move(hooks)) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;
  // Every lease must have been returned.
  ~ConnectionPool() = default;

  // An idle connection, or (when `fresh`, or none is idle) a newly opened one; waits for one to
  // come back when all `capacity` are lent out. kUnavailable when the deadline passes first.
  Result<Lease> Acquire(Deadline deadline, bool fresh = false) {
    std::unique_ptr<Connection> closing;  // an idle one closed to make room, outside the lock
    {
      std::unique_lock lock(mutex_);
      for (;;) {
        if (!fresh && !idle_.empty()) {
          auto connection = std::move(idle_.back());
          idle_.pop_back();
          return Lease(this, std::move(connection), true);
        }
        if (open_ < capacity_) {
          ++open_;
          break;
        }
        if (fresh && !idle_.empty()) {
          // Full: the fresh connection takes the slot of an idle one.
          closing = std::move(idle_.back());
          idle_.pop_back();
          break;
        }
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
          return MakeError(ErrorCode::kUnavailable,
                           name_ + ": timed out waiting for a pooled connection");
        }
      }
    }
    closing.reset();
    auto opened = hooks_.open(deadline);
    if (!opened || *opened == nullptr) {
      GiveBackSlot();
      if (!opened) return opened.error();
      return MakeError(ErrorCode::kInternal, name_ + ": opening a connection returned nothing");
    }
    return Lease(this, std::move(*opened), false);
  }

  // fn(Connection&) -> Result<T> on a lent connection, retried once on a fresh connection when
  // `idempotent` and it failed on a reused connection that is no longer usable. kUnavailable when
  // the deadline has passed before an attempt.
  template <class Fn>
  auto Run(Deadline deadline, bool idempotent, Fn&& fn) -> std::invoke_result_t<Fn&, Connection&> {
    using R = std::invoke_result_t<Fn&, Connection&>;
    for (int attempt = 0;; ++attempt) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return R(
            MakeError(ErrorCode::kUnavailable, name_ + ": timed out (storage.operation_timeout)"));
      }
      auto lease = Acquire(deadline, attempt > 0);
      if (!lease) return R(lease.error());
      R result = fn(**lease);
      const bool retry =
          !result && idempotent && attempt == 0 && lease->reused() && !hooks_.reusable(**lease);
      if (!retry) return result;
    }
  }

  // For tests and metrics.
  std::size_t open_connections() const {
    std::lock_guard lock(mutex_);
    return open_;
  }
  std::size_t idle_connections() const {
    std::lock_guard lock(mutex_);
    return idle_.size();
  }

 private:
  void Release(std::unique_ptr<Connection> connection) {
    std::unique_ptr<Connection> dropped;  // closed outside the lock
    {
      std::lock_guard lock(mutex_);
      if (connection && hooks_.reusable(*connection)) {
        idle_.push_back(std::move(connection));
      } else {
        dropped = std::move(connection);
        --open_;
      }
    }
    cv_.notify_one();
  }

  void GiveBackSlot() {
    {
      std::lock_guard lock(mutex_);
      --open_;
    }
    cv_.notify_one();
  }

  const std::string name_;
  const std::size_t capacity_;
  const Hooks hooks_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mutex_
  std::size_t open_ = 0;                           // idle + lent out; guarded by mutex_
};

}  // namespace orchestra::storage
