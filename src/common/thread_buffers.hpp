#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace orchestra {

// Buffers one owner (a Logger, a Tracer) keeps per writing thread: each thread appends to its
// own Buffer (created on its first write and kept until the owner goes), so writers never wait
// for each other, only for the instant a drain takes their Buffer's contents. Buffer carries its
// own mutex for that.
//
// The thread's slot remembers the owner by a generation number, not its address, so an owner
// built where an earlier one stood is not handed the earlier one's (freed) Buffer.
template <class Buffer>
class ThreadBuffers {
 public:
  ThreadBuffers() : generation_(NextGeneration()) {}
  ThreadBuffers(const ThreadBuffers&) = delete;
  ThreadBuffers& operator=(const ThreadBuffers&) = delete;

  // The calling thread's Buffer.
  Buffer& Local() {
    struct Slot {
      std::uint64_t generation = 0;
      Buffer* buffer = nullptr;
    };
    thread_local Slot slot;
    if (slot.generation != generation_) {
      auto buffer = std::make_unique<Buffer>();
      slot.buffer = buffer.get();
      slot.generation = generation_;
      std::lock_guard lock(mutex_);
      buffers_.push_back(std::move(buffer));
    }
    return *slot.buffer;
  }

  // fn(index, buffer) for every thread's Buffer, in the order they were created (an index keeps
  // naming the same Buffer); no Buffer is added meanwhile.
  template <class Fn>
  void ForEach(Fn&& fn) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < buffers_.size(); ++i)
      fn(i, *buffers_[i]);
  }

 private:
  static std::uint64_t NextGeneration() {
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
  }

  std::uint64_t generation_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
};

}  // namespace orchestra
