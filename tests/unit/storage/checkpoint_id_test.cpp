#include "storage/checkpoint_id.hpp"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace orchestra::storage {
namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

TEST(CheckpointId, SortsByCreationTime) {
  const system_clock::time_point t0(milliseconds(1'700'000'000'000));
  const std::string a = NewCheckpointId(t0);
  const std::string b = NewCheckpointId(t0 + milliseconds(1));
  const std::string c = NewCheckpointId(t0 + std::chrono::hours(24 * 365));
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(a.size(), kCheckpointIdLength);
  EXPECT_TRUE(IsCheckpointId(a));
  EXPECT_EQ(CheckpointIdTime(c), t0 + std::chrono::hours(24 * 365));
}

TEST(CheckpointId, StrictlyIncreasingWhenTheClockStandsStillOrStepsBack) {
  const system_clock::time_point now = system_clock::now();
  std::string previous = NewCheckpointId(now);
  std::set<std::string> seen{previous};
  for (int i = 0; i < 1000; ++i) {
    const std::string next = NewCheckpointId(i % 2 == 0 ? now : now - std::chrono::seconds(5));
    EXPECT_GT(next, previous);
    previous = next;
    seen.insert(next);
  }
  EXPECT_EQ(seen.size(), 1001U);
}

TEST(CheckpointId, NextIsTheImmediateSuccessor) {
  EXPECT_EQ(NextCheckpointId("01ARZ3NDEKTSV4RRFFQ69G5FAV"), "01ARZ3NDEKTSV4RRFFQ69G5FAW");
  EXPECT_EQ(NextCheckpointId("01ARZ3NDEKTSV4RRFFQ69G5FAZ"), "01ARZ3NDEKTSV4RRFFQ69G5FB0");
  EXPECT_GT(NextCheckpointId("01ARZ3NDEKTSV4RRFFQ69G5FAZ"), "01ARZ3NDEKTSV4RRFFQ69G5FAZ");
}

TEST(CheckpointId, RecognisesOnlyItsOwnShape) {
  EXPECT_TRUE(IsCheckpointId("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
  EXPECT_FALSE(IsCheckpointId(""));
  EXPECT_FALSE(IsCheckpointId("01arz3ndektsv4rrffq69g5fav"));  // lower case
  EXPECT_FALSE(IsCheckpointId("01ARZ3NDEKTSV4RRFFQ69G5FAI"));  // I is not a Crockford digit
  EXPECT_FALSE(IsCheckpointId("81ARZ3NDEKTSV4RRFFQ69G5FAV"));  // over 128 bits
  EXPECT_FALSE(IsCheckpointId("01ARZ3NDEKTSV4RRFFQ69G5FA"));
}

}  // namespace
}  // namespace orchestra::storage
