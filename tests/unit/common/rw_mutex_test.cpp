#include "common/rw_mutex.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include <gtest/gtest.h>

namespace orchestra {
namespace {

TEST(WriterPreferringMutex, SharesBetweenReadersExcludesWriters) {
  WriterPreferringMutex m;
  {
    std::shared_lock a(m);
    std::shared_lock b(m, std::try_to_lock);
    EXPECT_TRUE(b.owns_lock());
    EXPECT_FALSE(m.try_lock());
  }
  {
    std::unique_lock w(m);
    EXPECT_FALSE(m.try_lock_shared());
  }
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

// The point of the class: while a writer waits, a new reader is turned away even though only
// readers hold the lock (std::shared_mutex on glibc would let it in, and a stream of such
// readers starves the writer).
TEST(WriterPreferringMutex, AWaitingWriterKeepsNewReadersOut) {
  WriterPreferringMutex m;
  m.lock_shared();  // a reader in the middle of a search
  std::atomic<bool> written{false};
  std::thread writer([&] {
    std::unique_lock lock(m);
    written = true;
  });
  // Until the writer is queued, new readers still get in; once it is, they must not.
  bool refused = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!refused && std::chrono::steady_clock::now() < give_up) {
    if (m.try_lock_shared()) {
      m.unlock_shared();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } else {
      refused = true;
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_FALSE(written);
  m.unlock_shared();
  writer.join();
  EXPECT_TRUE(written);
}

}  // namespace
}  // namespace orchestra
