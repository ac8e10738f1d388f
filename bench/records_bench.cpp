// Record writes on each storage backend: how many batches a second one database takes, since
// every backend hands out change-log sequences in commit order and so serialises record writes
// (docs/OPERATIONS.md, "Records and the change log").
//
//   orchestra_bench_records [seconds] [threads] [instances] [backend...]
//
// Defaults: 5 s per scenario, 8 threads, 2 instances, every backend (sqlite redis postgres
// firestore). `instances` backends are opened on the same database, as that many Orchestra
// instances would, and the threads are dealt out among them. Each thread calls its backend
// directly (Backend::WriteRecords, the call StorageService runs on its
// blocking pool), so the figures are the database's and the backend's, without HTTP. Scenarios:
//   put1    batches of one put, each thread on its own ids (keys revoked, model versions);
//   put10   batches of ten puts (a document and its chunks);
//   counter AddCounter on one counter shared by every thread (spend), not logged.
// Prints batches/s, records/s, p50 and p99 per batch, and failed calls (a call that could not
// land within the 5 s operation timeout, e.g. contention on Firestore).
//
// The servers are the tests' throwaway ones (tests/services), on free ports in temp directories:
// SQLite in WAL with synchronous=NORMAL, Redis without persistence, PostgreSQL with fsync=off and
// synchronous_commit=off, and the Firestore emulator (`gcloud emulators firestore start` in a
// session of its own, killed whole at exit) — which is NOT the service: one in-memory JVM on this
// machine. Firestore's own limit on writes to one document (the log's head) decides its rate in
// production, not this figure. Figures only; nothing is asserted.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "services/firestore_emulator.hpp"
#include "services/postgres_server.hpp"
#include "services/redis_server.hpp"
#include "storage/backend.hpp"
#include "storage/firestore/firestore_backend.hpp"
#include "storage/postgres/postgres_backend.hpp"
#include "storage/redis/redis_backend.hpp"
#include "storage/sqlite/sqlite_backend.hpp"
#include <unistd.h>

namespace {

using namespace orchestra;
using Clock = std::chrono::steady_clock;

constexpr auto kOperationTimeout = std::chrono::seconds(5);

struct Outcome {
  std::uint64_t batches = 0;
  std::uint64_t failed = 0;
  std::vector<double> latencies_us;
};

// Runs `one(thread, n)` on `threads` threads for `seconds`; n counts each thread's calls.
template <class Fn>
Outcome Run(int threads, int seconds, Fn one) {
  std::vector<Outcome> per_thread(static_cast<std::size_t>(threads));
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Outcome& out = per_thread[static_cast<std::size_t>(t)];
      for (std::uint64_t n = 0; !stop.load(std::memory_order_relaxed); ++n) {
        const auto start = Clock::now();
        const bool ok = one(t, n, start + kOperationTimeout);
        const auto us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
        if (ok) {
          ++out.batches;
          out.latencies_us.push_back(us);
        } else {
          ++out.failed;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& w : workers)
    w.join();
  Outcome total;
  for (auto& o : per_thread) {
    total.batches += o.batches;
    total.failed += o.failed;
    total.latencies_us.insert(total.latencies_us.end(), o.latencies_us.begin(),
                              o.latencies_us.end());
  }
  std::sort(total.latencies_us.begin(), total.latencies_us.end());
  return total;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

void Print(const std::string& backend, const char* scenario, int per_batch, int seconds,
           const Outcome& o) {
  const double rate = static_cast<double>(o.batches) / seconds;
  std::printf("%-10s %-8s %10.0f %10.0f %10.0f %10.0f %8llu\n", backend.c_str(), scenario, rate,
              rate * per_batch, Percentile(o.latencies_us, 0.5), Percentile(o.latencies_us, 0.99),
              static_cast<unsigned long long>(o.failed));
  std::fflush(stdout);
}

template <class B>
void Bench(const std::vector<std::unique_ptr<B>>& instances, int seconds, int threads) {
  const std::string name(instances.front()->kind());
  for (const auto& instance : instances) {
    if (auto ping = instance->Ping(Clock::now() + std::chrono::seconds(30)); !ping) {
      std::printf("%-10s unavailable: %s\n", name.c_str(), ping.error().message.c_str());
      return;
    }
  }
  const auto backend_of = [&](int thread) -> storage::Backend& {
    return *instances[static_cast<std::size_t>(thread) % instances.size()];
  };
  const std::string tenant = "bench";
  const std::string value = R"({"name":"bench","scopes":["user"],"limit":1000})";
  // A 2 s warm-up of the first scenario, not counted (the emulator's JVM is slow when cold).
  bool warm = false;
  for (const int per_batch : {1, 1, 10}) {
    const std::string prefix = "put" + std::to_string(per_batch) + "-";
    auto outcome =
        Run(threads, warm ? seconds : 2, [&](int t, std::uint64_t n, storage::Deadline deadline) {
          std::vector<storage::RecordWrite> writes;
          for (int i = 0; i < per_batch; ++i) {
            writes.push_back({storage::RecordWrite::Op::kPut, "bench",
                              prefix + std::to_string(t) + "-" + std::to_string(n % 1000) + "-" +
                                  std::to_string(i),
                              value, storage::Expect::Any()});
          }
          return backend_of(t).WriteRecords({tenant, deadline}, writes).has_value();
        });
    if (!warm) {
      warm = true;
      continue;
    }
    Print(name, per_batch == 1 ? "put1" : "put10", per_batch, seconds, outcome);
  }
  auto counter = Run(threads, seconds, [&](int t, std::uint64_t, storage::Deadline deadline) {
    return backend_of(t)
        .AddCounter({tenant, deadline}, "spend", "key:day", {{"usd", 0.001}, {"tokens", 10}})
        .has_value();
  });
  Print(name, "counter", 1, seconds, counter);
}

bool Wanted(const std::vector<std::string>& chosen, const char* name) {
  return chosen.empty() || std::find(chosen.begin(), chosen.end(), name) != chosen.end();
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const int threads = argc > 2 ? std::max(1, std::atoi(argv[2])) : 8;
  const int count = argc > 3 ? std::clamp(std::atoi(argv[3]), 1, threads) : std::min(2, threads);
  std::vector<std::string> chosen(argv + std::min(argc, 4), argv + argc);
  std::printf("record writes, %d threads over %d instances, %d s per scenario\n", threads, count,
              seconds);
  std::printf("%-10s %-8s %10s %10s %10s %10s %8s\n", "backend", "scenario", "batches/s",
              "records/s", "p50 us", "p99 us", "failed");
  // Each instance's pool as large as its share of the threads, so none waits for a connection.
  const int pool = (threads + count - 1) / count;
  // `open()` opens one instance.
  const auto instances = [&](auto open) {
    std::vector<decltype(open())> out;
    for (int i = 0; i < count; ++i)
      out.push_back(open());
    return out;
  };
  if (Wanted(chosen, "sqlite")) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("orchestra-records-bench-" + std::to_string(::getpid()));
    Bench(instances([&] {
            return storage::SqliteBackend::Open(
                {.path = (dir / "bench.db").string(), .readers = pool});
          }),
          seconds, threads);
    std::filesystem::remove_all(dir);
  }
  if (Wanted(chosen, "redis")) {
    testing::services::RedisServer redis;
    Bench(instances([&] {
            return storage::RedisBackend::Create({.url = redis.url(), .pool_size = pool});
          }),
          seconds, threads);
  }
  if (Wanted(chosen, "postgres")) {
    testing::services::PostgresServer postgres;
    Bench(instances([&] {
            return storage::PostgresBackend::Create({.url = postgres.url(), .pool_size = pool});
          }),
          seconds, threads);
  }
  if (Wanted(chosen, "firestore")) {
    std::string why;
    if (!testing::services::FirestoreEmulator::Available(&why)) {
      std::printf("%-10s skipped: %s\n", "firestore", why.c_str());
    } else {
      testing::services::FirestoreEmulator emulator;
      Bench(
          instances([&] {
            return storage::FirestoreBackend::Create(
                {.project = "demo-orchestra", .emulator_host = emulator.host(), .pool_size = pool});
          }),
          seconds, threads);
    }
  }
  return 0;
}
