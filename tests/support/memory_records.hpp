#pragma once

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "storage/record_store.hpp"
#include "storage/validation.hpp"

// An in-memory RecordStore for unit tests of the features built on records (keys, spend, model
// versions, documents): the interface's semantics (versions, preconditions, atomic batches, the
// change log, counters, paging) without a database. The backends themselves are tested by the
// storage conformance suite.
namespace orchestra::testing {

// Runs `awaitable` to its end on an io_context of its own (a test's synchronous call).
template <class T>
T RunSync(boost::asio::awaitable<T> awaitable) {
  boost::asio::io_context io;
  std::optional<T> out;
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(awaitable)); },
      boost::asio::detached);
  io.run();
  return std::move(*out);
}

class MemoryRecords final : public storage::RecordStore {
 public:
  using Tenant = std::string;
  template <class T>
  using Awaitable = boost::asio::awaitable<T>;

  // Makes every call fail with kUnavailable (a backend that is down).
  bool down = false;
  // Counters that Counters returned, over all calls.
  std::size_t counters_listed = 0;
  // The log keeps nothing before this sequence: ChangesSince from further back is kConflict,
  // as from a real log past its retention.
  std::int64_t oldest_kept = 0;

  Awaitable<Result<std::int64_t>> Put(std::string_view tenant, std::string_view collection,
                                      std::string_view id, std::string_view value,
                                      storage::Expect expect) override {
    std::lock_guard lock(mutex_);
    if (down) co_return Down();
    auto& slot = records_[Key(tenant, collection, id)];
    if (auto e = Check(slot, expect, id)) co_return *e;
    slot = storage::Record{std::string(id), std::string(value), slot ? slot->version + 1 : 1};
    Log(tenant, collection, id, false);
    co_return slot->version;
  }

  Awaitable<Result<std::optional<storage::Record>>> Get(std::string_view tenant,
                                                        std::string_view collection,
                                                        std::string_view id) override {
    std::lock_guard lock(mutex_);
    if (down) co_return Down();
    auto it = records_.find(Key(tenant, collection, id));
    if (it == records_.end() || !it->second) co_return std::optional<storage::Record>();
    co_return it->second;
  }

  Awaitable<Result<bool>> Delete(std::string_view tenant, std::string_view collection,
                                 std::string_view id, storage::Expect expect) override {
    std::lock_guard lock(mutex_);
    if (down) co_return Down();
    auto& slot = records_[Key(tenant, collection, id)];
    if (auto e = Check(slot, expect, id)) co_return *e;
    const bool existed = slot.has_value();
    slot.reset();
    if (existed) Log(tenant, collection, id, true);
    co_return existed;
  }

  Awaitable<Result<storage::RecordPage>> List(std::string_view tenant, std::string_view collection,
                                              std::string_view prefix, int limit,
                                              std::string_view cursor) override {
    std::lock_guard lock(mutex_);
    if (down) co_return Down();
    storage::RecordPage page;
    // Cursors as the storage service makes them (storage::CursorAfter works here too).
    auto decoded = storage::DecodeKeysetCursor(cursor);
    if (!decoded) co_return decoded.error();
    const std::string after = std::move(*decoded);
    auto it = records_.lower_bound(Key(tenant, collection, std::max(std::string(prefix), after)));
    for (; it != records_.end(); ++it) {
      const auto& [t, c, id] = it->first;
      if (t != tenant || c != collection || !id.starts_with(prefix)) break;
      if (!it->second || (!after.empty() && id == after)) continue;
      if (static_cast<int>(page.records.size()) == limit) {
        page.next_cursor = storage::EncodeKeysetCursor(page.records.back().id);
        break;
      }
      page.records.push_back(*it->second);
    }
    co_return page;
  }

  Awaitable<Result<void>> Apply(std::string_view tenant,
                                std::vector<storage::RecordWrite> writes) override {
    std::lock_guard lock(mutex_);
    if (down) co_return Down();
    for (const auto& w : writes) {
      auto it = records_.find(Key(tenant, w.collection, w.id));
      const std::optional<storage::Record> none;
      if (auto e = Check(it == records_.end() ? none : it->second, w.expect, w.id)) co_return *e;
    }
    for (auto& w : writes) {
      auto& slot = records_[Key(tenant, w.collection, w.id)];
      if (w.op == storage::RecordWrite::Op::kPut) {
        slot = storage::Record{w.id, std::move(w.value), slot ? slot->version + 1 : 1};
        Log(tenant, w.collection, w.id, false);
      } else if (slot) {
        slot.reset();
        Log(tenant, w.collection, w.id, true);
      }
    }
    co_return Result<void>{};
  }

  Awaitable<Result<std::vector<storage::Change>>> ChangesSince(std::int64_t sequence,
                                                               int limit) override {
    std::lock_guard lock(mutex_);
    if (down) co_return Down();
    if (sequence + 1 < oldest_kept) {
      co_return Error(ErrorCode::kConflict, "the change log no longer reaches back there");
    }
    std::vector<storage::Change> out;
    for (const auto& c : log_) {
      if (c.sequence > sequence && static_cast<int>(out.size()) < limit) out.push_back(c);
    }
    co_return out;
  }

  Awaitable<Result<std::int64_t>> LatestSequence() override {
    std::lock_guard lock(mutex_);
    if (down) co_return Down();
    co_return log_.empty() ? 0 : log_.back().sequence;
  }

  Awaitable<Result<std::vector<double>>> Add(
      std::string_view tenant, std::string_view collection, std::string_view id,
      std::vector<std::pair<std::string, double>> deltas) override {
    std::lock_guard lock(mutex_);
    if (down) co_return Down();
    auto& fields = counters_[Key(tenant, collection, id)];
    std::vector<double> out;
    for (const auto& [name, delta] : deltas) {
      fields[name] += delta;
      out.push_back(fields[name]);
    }
    co_return out;
  }

  Awaitable<Result<storage::CounterPage>> Counters(std::string_view tenant,
                                                   std::string_view collection,
                                                   std::string_view prefix, int limit,
                                                   std::string_view cursor) override {
    std::lock_guard lock(mutex_);
    if (down) co_return Down();
    storage::CounterPage page;
    // Cursors as the storage service makes them (storage::CursorAfter works here too).
    auto decoded = storage::DecodeKeysetCursor(cursor);
    if (!decoded) co_return decoded.error();
    const std::string after = std::move(*decoded);
    auto it = counters_.lower_bound(Key(tenant, collection, std::max(std::string(prefix), after)));
    for (; it != counters_.end(); ++it) {
      const auto& [t, c, id] = it->first;
      if (t != tenant || c != collection || !id.starts_with(prefix)) break;
      if (!after.empty() && id == after) continue;
      if (static_cast<int>(page.counters.size()) == limit) {
        page.next_cursor = storage::EncodeKeysetCursor(page.counters.back().id);
        break;
      }
      storage::Counter counter{id, {}};
      for (const auto& [name, value] : it->second)
        counter.fields.emplace_back(name, value);
      page.counters.push_back(std::move(counter));
      ++counters_listed;
    }
    co_return page;
  }

 private:
  using RecordKey = std::tuple<std::string, std::string, std::string>;
  static RecordKey Key(std::string_view t, std::string_view c, std::string_view id) {
    return {std::string(t), std::string(c), std::string(id)};
  }
  static Error Down() { return Error(ErrorCode::kUnavailable, "memory records: down"); }
  static std::optional<Error> Check(const std::optional<storage::Record>& current,
                                    storage::Expect expect, std::string_view id) {
    using Kind = storage::Expect::Kind;
    const bool ok =
        expect.kind == Kind::kAny || (expect.kind == Kind::kAbsent && !current) ||
        (expect.kind == Kind::kVersion && current && current->version == expect.version);
    if (ok) return std::nullopt;
    return Error(ErrorCode::kConflict, "record '" + std::string(id) + "' changed meanwhile");
  }
  void Log(std::string_view t, std::string_view c, std::string_view id, bool deleted) {
    log_.push_back({++sequence_, std::string(t), std::string(c), std::string(id), deleted});
  }

  std::mutex mutex_;
  std::map<RecordKey, std::optional<storage::Record>> records_;
  std::map<RecordKey, std::map<std::string, double>> counters_;
  std::vector<storage::Change> log_;
  std::int64_t sequence_ = 0;
};

}  // namespace orchestra::testing
