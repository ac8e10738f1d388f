// storage::ChangeFollower (the change-log loop of the key, model version and document services)
// over the in-memory record store: the cursor taken before a reload, wanted changes refreshed
// once each and in log order, paging, a failed refresh read again, a lost log reloaded.
#include "storage/change_follower.hpp"

#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "support/memory_records.hpp"

namespace orchestra::storage {
namespace {

namespace asio = boost::asio;
using testing::MemoryRecords;
using testing::RunSync;

// A follower of the `keys` collection of tenant "t" that records what it was asked to do.
struct Recorder {
  explicit Recorder(MemoryRecords& records, int page = ChangeFollower::kPage)
      : follower(
            records, [](const Change& c) { return c.tenant == "t" && c.collection == "keys"; },
            [this](std::vector<Change> changes) -> asio::awaitable<Result<void>> {
              std::vector<std::string> ids;
              for (const Change& c : changes)
                ids.push_back(c.id);
              refreshed.push_back(ids);
              if (fail_refresh) co_return Error(ErrorCode::kUnavailable, "refresh failed");
              co_return Result<void>{};
            },
            [this]() -> asio::awaitable<Result<void>> {
              ++reloads;
              co_return Result<void>{};
            },
            page) {}

  std::vector<std::vector<std::string>> refreshed;
  int reloads = 0;
  bool fail_refresh = false;
  ChangeFollower follower;
};

void Put(MemoryRecords& records, std::string_view tenant, std::string_view collection,
         std::string_view id) {
  ASSERT_TRUE(RunSync(records.Put(tenant, collection, id, "{}", Expect::Any())));
}

TEST(ChangeFollower, LoadTakesTheCursorThenReloadsAndPollReadsOnlyWhatCameAfter) {
  MemoryRecords records;
  Put(records, "t", "keys", "old");
  Recorder r(records);
  EXPECT_FALSE(r.follower.loaded());
  ASSERT_TRUE(RunSync(r.follower.Load()));
  EXPECT_TRUE(r.follower.loaded());
  EXPECT_EQ(r.reloads, 1);
  EXPECT_EQ(r.follower.cursor(), RunSync(records.LatestSequence()).value());
  ASSERT_TRUE(RunSync(r.follower.Poll()));
  EXPECT_TRUE(r.refreshed.empty());  // "old" was in the reload

  // Wanted changes once each, in log order; others left out; the cursor past them all.
  Put(records, "t", "keys", "b");
  Put(records, "t", "other", "x");
  Put(records, "u", "keys", "y");
  Put(records, "t", "keys", "a");
  Put(records, "t", "keys", "b");
  ASSERT_TRUE(RunSync(r.follower.Poll()));
  ASSERT_EQ(r.refreshed.size(), 1u);
  EXPECT_EQ(r.refreshed[0], (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(r.follower.cursor(), RunSync(records.LatestSequence()).value());
  ASSERT_TRUE(RunSync(r.follower.Poll()));
  EXPECT_EQ(r.refreshed.size(), 1u);
}

TEST(ChangeFollower, ReadsPageByPageToTheEnd) {
  MemoryRecords records;
  Recorder r(records, 2);
  ASSERT_TRUE(RunSync(r.follower.Load()));
  for (const char* id : {"1", "2", "3", "4", "5"})
    Put(records, "t", "keys", id);
  ASSERT_TRUE(RunSync(r.follower.Poll()));
  EXPECT_EQ(r.refreshed, (std::vector<std::vector<std::string>>{{"1", "2"}, {"3", "4"}, {"5"}}));
}

TEST(ChangeFollower, AFailedRefreshKeepsTheCursorSoTheNextPollReadsItAgain) {
  MemoryRecords records;
  Recorder r(records);
  ASSERT_TRUE(RunSync(r.follower.Load()));
  const std::int64_t before = r.follower.cursor();
  Put(records, "t", "keys", "k");
  r.fail_refresh = true;
  EXPECT_FALSE(RunSync(r.follower.Poll()));
  EXPECT_EQ(r.follower.cursor(), before);
  r.fail_refresh = false;
  ASSERT_TRUE(RunSync(r.follower.Poll()));
  EXPECT_EQ(r.refreshed, (std::vector<std::vector<std::string>>{{"k"}, {"k"}}));
  EXPECT_GT(r.follower.cursor(), before);

  // A store that is down: the error, the cursor kept, still loaded.
  records.down = true;
  EXPECT_EQ(RunSync(r.follower.Poll()).error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(r.follower.loaded());
}

TEST(ChangeFollower, ALogThatNoLongerReachesBackMakesAReload) {
  MemoryRecords records;
  Recorder r(records);
  ASSERT_TRUE(RunSync(r.follower.Load()));
  Put(records, "t", "keys", "a");
  Put(records, "t", "keys", "b");
  records.oldest_kept = RunSync(records.LatestSequence()).value();  // "a" is gone from the log
  ASSERT_TRUE(RunSync(r.follower.Poll()));
  EXPECT_EQ(r.reloads, 2);
  EXPECT_TRUE(r.refreshed.empty());
  EXPECT_EQ(r.follower.cursor(), RunSync(records.LatestSequence()).value());

  // A load with its own reload (start-up's) runs that one instead.
  int own = 0;
  ASSERT_TRUE(RunSync(r.follower.Load([&]() -> asio::awaitable<Result<void>> {
    ++own;
    co_return Result<void>{};
  })));
  EXPECT_EQ(own, 1);
  EXPECT_EQ(r.reloads, 2);
}

}  // namespace
}  // namespace orchestra::storage
