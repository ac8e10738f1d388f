#include "storage/follower_thread.hpp"

#include <exception>
#include <future>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "observability/log.hpp"

namespace orchestra::storage {

namespace asio = boost::asio;

FollowerThread::FollowerThread(ChangeFollower& follower, Options options)
    : follower_(follower), options_(std::move(options)) {}

FollowerThread::~FollowerThread() {
  Stop();
}

asio::awaitable<void> FollowerThread::Run(std::function<void(Result<void>)> loaded) {
  using observability::Log;
  using observability::Severity;
  auto first = co_await follower_.Load();
  auto last_load = std::chrono::steady_clock::now();
  bool failing = !first;
  loaded(std::move(first));
  timer_ = std::make_unique<asio::steady_timer>(context_);
  while (!stopping_) {
    timer_->expires_after(options_.poll_interval);
    co_await timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopping_) break;
    const bool reload = !follower_.loaded() ||
                        std::chrono::steady_clock::now() - last_load >= options_.reload_interval;
    // Not `reload ? co_await ….Load() : co_await ….Poll()`: GCC 12 destroys the temporary of the
    // branch not taken too (a free() of garbage when the call ends).
    Result<void> result;
    if (reload) {
      result = co_await follower_.Load();
    } else {
      result = co_await follower_.Poll();
    }
    if (reload && result) last_load = std::chrono::steady_clock::now();
    if (!result && !failing) {
      Log(Severity::kWarning,
          options_.subject + ": cannot read changes from storage; " + options_.kept,
          {{"error", result.error().message}});
    } else if (result && failing) {
      Log(Severity::kInfo, options_.subject + ": reading changes from storage again");
    }
    failing = !result;
    polls_.fetch_add(1, std::memory_order_release);
  }
  timer_.reset();
}

Result<void> FollowerThread::Start() {
  if (thread_.joinable()) return {};
  // Set once: by the first load, or by the thread's coroutine ending in an exception before it.
  auto first = std::make_shared<std::promise<Result<void>>>();
  auto report = [first](Result<void> r) {
    try {
      first->set_value(std::move(r));
    } catch (const std::future_error&) {
    }
  };
  auto loaded = first->get_future();
  asio::co_spawn(context_, Run(report), [this, report](std::exception_ptr e) {
    if (!e) return;
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    }
    observability::Log(observability::Severity::kError,
                       options_.subject + ": stopped following storage; " + options_.kept,
                       {{"error", what}});
    report(Error(ErrorCode::kInternal, options_.subject + ": following storage failed: " + what));
  });
  thread_ = std::thread([this] { context_.run(); });
  return loaded.get();
}

void FollowerThread::Stop() {
  if (!thread_.joinable()) return;
  asio::post(context_, [this] {
    stopping_ = true;
    if (timer_) timer_->cancel();
  });
  thread_.join();
}

}  // namespace orchestra::storage
