#include "storage/change_follower.hpp"

#include <algorithm>
#include <utility>

namespace orchestra::storage {

namespace asio = boost::asio;

ChangeFollower::ChangeFollower(RecordStore& records, Wanted wanted, Refresh refresh, Reload reload,
                               int page)
    : records_(records),
      wanted_(std::move(wanted)),
      refresh_(std::move(refresh)),
      reload_(std::move(reload)),
      page_(page) {}

asio::awaitable<Result<void>> ChangeFollower::Load(Reload reload_now) {
  // The cursor is taken before the reload: what changes during it is read again by the next
  // poll.
  auto latest = co_await records_.LatestSequence();
  if (!latest) co_return latest.error();
  // Not `reload_now ? co_await reload_now() : co_await reload_()`: GCC 12 destroys the
  // temporary of the branch not taken too.
  Result<void> reloaded;
  if (reload_now) {
    reloaded = co_await reload_now();
  } else {
    reloaded = co_await reload_();
  }
  if (!reloaded) co_return reloaded.error();
  cursor_.store(*latest, std::memory_order_release);
  loaded_.store(true, std::memory_order_release);
  co_return Result<void>{};
}

asio::awaitable<Result<void>> ChangeFollower::Poll() {
  for (;;) {
    auto changes = co_await records_.ChangesSince(cursor(), page_);
    if (!changes) {
      // The log no longer reaches back to the cursor: start over from the records themselves.
      if (changes.error().code == ErrorCode::kConflict) co_return co_await Load();
      co_return changes.error();
    }
    std::vector<Change> wanted;
    for (Change& c : *changes) {
      if (!wanted_(c)) continue;
      const bool seen = std::any_of(wanted.begin(), wanted.end(), [&](const Change& w) {
        return w.tenant == c.tenant && w.collection == c.collection && w.id == c.id;
      });
      if (!seen) wanted.push_back(std::move(c));
    }
    if (!wanted.empty()) {
      // On an error the cursor stays, and the next poll reads these changes again.
      if (auto refreshed = co_await refresh_(std::move(wanted)); !refreshed) {
        co_return refreshed.error();
      }
    }
    if (!changes->empty()) {
      cursor_.store(std::max(cursor(), changes->back().sequence), std::memory_order_release);
    }
    if (static_cast<int>(changes->size()) < page_) co_return Result<void>{};
  }
}

}  // namespace orchestra::storage
