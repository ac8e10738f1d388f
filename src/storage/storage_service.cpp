#include "storage/storage_service.hpp"

#include <cmath>
#include <set>
#include <utility>

#include <boost/asio/this_coro.hpp>

#include "observability/ambient_span.hpp"
#include "observability/tracer.hpp"
#include "storage/checkpoint_id.hpp"
#include "storage/glob.hpp"
#include "storage/validation.hpp"

namespace orchestra::storage {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Longer TTLs are refused rather than overflowing expiry arithmetic.
constexpr std::chrono::milliseconds kMaxTtl = std::chrono::hours(24 * 365 * 100);
constexpr std::size_t kMaxCursorBytes = 4096;
constexpr std::string_view kQueueTimeout =
    "storage: timed out waiting for a storage thread (storage.operation_timeout)";

StorageOutcome OutcomeOf(const Error& error) {
  switch (error.code) {
    case ErrorCode::kInvalidRequest:
    case ErrorCode::kPayloadTooLarge:
      return StorageOutcome::kRejected;
    case ErrorCode::kUnavailable:
      return StorageOutcome::kUnavailable;
    case ErrorCode::kConflict:
      return StorageOutcome::kConflict;
    default:
      return StorageOutcome::kError;
  }
}

template <class T>
StorageOutcome OutcomeOf(const Result<T>& result) {
  if (!result) return OutcomeOf(result.error());
  if constexpr (std::is_same_v<T, std::optional<std::string>> ||
                std::is_same_v<T, std::optional<Checkpoint>> ||
                std::is_same_v<T, std::optional<Record>>) {
    if (!result->has_value()) return StorageOutcome::kNotFound;
  }
  return StorageOutcome::kOk;
}

// Bounds of one counter addition.
constexpr std::size_t kMaxCounterFields = 64;
constexpr std::size_t kMaxFieldBytes = 256;

// Delete's bool says whether something was removed; a miss is worth telling apart.
StorageOutcome DeleteOutcome(const Result<bool>& result) {
  if (!result) return OutcomeOf(result.error());
  return *result ? StorageOutcome::kOk : StorageOutcome::kNotFound;
}

// The span of one backend call made for a traced request (docs/OPERATIONS.md#traces): the
// operation, the database, which side of a failover, the outcome. Never keys or values.
void RecordSpan(const observability::AmbientParent& parent, StorageOp op, std::string_view kind,
                bool secondary, StorageOutcome outcome, const Error* error,
                Clock::time_point start) {
  observability::Tracer* tracer = observability::InstalledTracer();
  if (tracer == nullptr) return;
  const observability::UnixTime clock;
  const auto id = observability::NewSpanId();
  const std::string_view system = kind == "postgres"    ? "postgresql"
                                  : kind == "firestore" ? "gcp.firestore"
                                                        : kind;
  const std::string_view operation = ToString(op);
  const std::string_view outcome_name = ToString(outcome);
  const observability::Attribute attributes[] = {
      {"db.system.name", system},
      {"db.operation.name", operation},
      {"orchestra.storage.backend", secondary ? "secondary" : "primary"},
      {"orchestra.storage.outcome", outcome_name},
      {"error.type", error != nullptr ? ToString(error->code) : std::string_view()}};
  observability::SpanRecord span;
  span.trace_id = {parent.trace_id.data(), parent.trace_id.size()};
  span.span_id = observability::View(id);
  span.parent_span_id = {parent.span_id.data(), parent.span_id.size()};
  span.sampled = parent.sampled;
  const std::string name = "storage " + std::string(operation);
  span.name = name;
  // An embedded database is the process's own work; the others are calls to a server.
  span.kind =
      kind == "sqlite" ? observability::SpanKind::kInternal : observability::SpanKind::kClient;
  span.start_unix_nano = clock.Of(start);
  span.end_unix_nano = clock.now();
  span.attributes = {attributes,
                     error != nullptr ? std::size(attributes) : std::size(attributes) - 1};
  if (error != nullptr) {
    span.status = observability::SpanStatus::kError;
    span.status_message = error->message;
  }
  tracer->Record(span);
}

// The tenant and the key or agent id every call names.
Result<void> ValidateTenantAnd(std::string_view tenant, std::string_view name,
                               std::string_view param) {
  if (auto r = ValidateName(tenant, "tenant", kMaxTenantBytes); !r) return r;
  return ValidateName(name, param, kMaxKeyBytes);
}

}  // namespace

StorageService::StorageService(std::unique_ptr<Backend> primary, std::unique_ptr<Backend> secondary,
                               bool start_failed_over, StorageServiceSettings settings,
                               observability::Registry& metrics)
    : backends_{std::move(primary), std::move(secondary)},
      settings_(std::move(settings)),
      metrics_(metrics,
               [&] {
                 std::vector<std::string> labels{std::string(backends_[kPrimary]->kind())};
                 if (backends_[kSecondary]) {
                   std::string label(backends_[kSecondary]->kind());
                   // Same kind on both sides: keep the two apart in dashboards.
                   if (label == labels[0]) label += "_secondary";
                   labels.push_back(std::move(label));
                 }
                 return labels;
               }()),
      pool_(std::max<std::size_t>(1, settings_.threads)) {
  if (start_failed_over && backends_[kSecondary]) {
    EnterFailover("the primary could not be reached at start-up");
  }
  maintenance_ = std::jthread([this](const std::stop_token& stop) { MaintenanceLoop(stop); });
}

StorageService::~StorageService() {
  maintenance_.request_stop();
  maintenance_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  pool_.Stop();
}

std::string StorageService::Label(std::size_t backend) const {
  return std::string(backend == kPrimary ? "primary " : "secondary ") +
         std::string(backends_[backend]->kind());
}

void StorageService::Emit(const std::string& message) const {
  if (settings_.options.on_event) settings_.options.on_event(message);
}

void StorageService::EnterFailover(const std::string& reason) {
  std::lock_guard lock(state_mutex_);
  if (active_.load() == kSecondary) return;
  active_.store(kSecondary);
  metrics_.SetFailoverActive(true);
  Emit("storage: failing over to the " + Label(kSecondary) + ": " + Label(kPrimary) + " " + reason);
  maintenance_cv_.notify_all();  // start probing the primary
}

void StorageService::LeaveFailover() {
  std::lock_guard lock(state_mutex_);
  if (active_.load() == kPrimary) return;
  active_.store(kPrimary);
  metrics_.SetFailoverActive(false);
  Emit("storage: the " + Label(kPrimary) + " answers again; serving from it");
}

template <class T>
Result<T> StorageService::Reject(StorageOp op, Error error) {
  metrics_.Count(active_.load(), op, OutcomeOf(error));
  return error;
}

template <class T, class Fn>
asio::awaitable<Result<T>> StorageService::Execute(StorageOp op, std::string_view tenant, Fn fn) {
  // A traced request's call is a child of its server span, found by the coroutine chain that
  // runs it (observability/ambient_span.hpp).
  std::optional<observability::AmbientParent> traced;
  asio::cancellation_slot owner;
  if (observability::InstalledTracer() != nullptr) {
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    owner = state.slot();
    traced = observability::AmbientParentOf(owner);
  }
  const Clock::time_point issued = Clock::now();
  std::size_t index = active_.load();
  for (;;) {
    const Clock::time_point start = Clock::now();
    // A retry on the secondary gets its own full deadline.
    const Deadline deadline =
        (index == kSecondary && start > issued ? start : issued) + settings_.operation_timeout;
    bool queued_too_long = false;
    Backend& backend = *backends_[index];
    // The lambda's references stay valid: this coroutine waits for it.
    Result<T> result = co_await pool_.Run([&]() -> Result<T> {
      if (Clock::now() >= deadline) {
        queued_too_long = true;
        return MakeError(ErrorCode::kUnavailable, std::string(kQueueTimeout));
      }
      return fn(backend, Call{tenant, deadline});
    });
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    StorageOutcome outcome = OutcomeOf(result);
    if constexpr (std::is_same_v<T, bool>) {
      if (op == StorageOp::kDelete || op == StorageOp::kCheckpointDelete ||
          op == StorageOp::kRecordDelete) {
        outcome = DeleteOutcome(result);
      }
    }
    metrics_.Record(index, op, outcome, seconds);
    if (traced) {
      const std::optional<Error> error = result ? std::nullopt : std::optional(result.error());
      RecordSpan(*traced, op, backend.kind(), index == kSecondary, outcome,
                 error ? &*error : nullptr, start);
      observability::SetAmbientParent(owner, *traced);  // for the handler's next call
    }
    const bool primary_down = !result && result.error().code == ErrorCode::kUnavailable &&
                              !queued_too_long && index == kPrimary;
    if (!primary_down || !backends_[kSecondary]) co_return result;
    EnterFailover("failed: " + result.error().message);
    index = kSecondary;
  }
}

// --- KvStore ---------------------------------------------------------------------------------

asio::awaitable<Result<void>> StorageService::Store(std::string_view tenant, std::string_view key,
                                                    std::string_view value,
                                                    std::optional<std::chrono::milliseconds> ttl) {
  constexpr auto kOp = StorageOp::kStore;
  if (auto r = ValidateTenantAnd(tenant, key, "key"); !r) {
    co_return Reject<void>(kOp, r.error());
  }
  if (auto r = ValidateSize(value, "value", settings_.max_value_bytes); !r) {
    co_return Reject<void>(kOp, r.error());
  }
  if (ttl && (ttl->count() <= 0 || *ttl > kMaxTtl)) {
    co_return Reject<void>(kOp, MakeError(ErrorCode::kInvalidRequest,
                                          "ttl must be positive and at most 100 years", "ttl"));
  }
  co_return co_await Execute<void>(
      kOp, tenant, [&](Backend& b, const Call& call) { return b.Store(call, key, value, ttl); });
}

asio::awaitable<Result<std::optional<std::string>>> StorageService::Retrieve(
    std::string_view tenant, std::string_view key) {
  using T = std::optional<std::string>;
  constexpr auto kOp = StorageOp::kRetrieve;
  if (auto r = ValidateTenantAnd(tenant, key, "key"); !r) {
    co_return Reject<T>(kOp, r.error());
  }
  co_return co_await Execute<T>(
      kOp, tenant, [&](Backend& b, const Call& call) { return b.Retrieve(call, key); });
}

asio::awaitable<Result<bool>> StorageService::Delete(std::string_view tenant,
                                                     std::string_view key) {
  constexpr auto kOp = StorageOp::kDelete;
  if (auto r = ValidateTenantAnd(tenant, key, "key"); !r) {
    co_return Reject<bool>(kOp, r.error());
  }
  co_return co_await Execute<bool>(
      kOp, tenant, [&](Backend& b, const Call& call) { return b.Delete(call, key); });
}

asio::awaitable<Result<bool>> StorageService::Exists(std::string_view tenant,
                                                     std::string_view key) {
  constexpr auto kOp = StorageOp::kExists;
  if (auto r = ValidateTenantAnd(tenant, key, "key"); !r) {
    co_return Reject<bool>(kOp, r.error());
  }
  co_return co_await Execute<bool>(
      kOp, tenant, [&](Backend& b, const Call& call) { return b.Exists(call, key); });
}

asio::awaitable<Result<KeyPage>> StorageService::ListKeys(std::string_view tenant,
                                                          std::string_view pattern, int limit,
                                                          std::string_view cursor) {
  constexpr auto kOp = StorageOp::kListKeys;
  if (auto r = ValidateName(tenant, "tenant", kMaxTenantBytes); !r)
    co_return Reject<KeyPage>(kOp, r.error());
  if (limit < 1 || limit > kMaxListLimit) {
    co_return Reject<KeyPage>(
        kOp, MakeError(ErrorCode::kInvalidRequest,
                       "limit must be between 1 and " + std::to_string(kMaxListLimit), "limit"));
  }
  if (cursor.size() > kMaxCursorBytes) co_return Reject<KeyPage>(kOp, BadCursor());
  auto glob = Glob::Parse(pattern);
  if (!glob) co_return Reject<KeyPage>(kOp, glob.error());
  co_return co_await Execute<KeyPage>(kOp, tenant, [&](Backend& b, const Call& call) {
    return b.ListKeys(call, *glob, limit, cursor);
  });
}

// --- CheckpointStore -------------------------------------------------------------------------

asio::awaitable<Result<std::string>> StorageService::Create(
    std::string_view tenant, std::string_view agent_id, std::string_view state,
    std::optional<std::string_view> metadata) {
  using T = std::string;
  constexpr auto kOp = StorageOp::kCheckpointCreate;
  if (auto r = ValidateTenantAnd(tenant, agent_id, "agent_id"); !r) {
    co_return Reject<T>(kOp, r.error());
  }
  if (auto r = ValidateSize(state, "state", settings_.max_value_bytes); !r) {
    co_return Reject<T>(kOp, r.error());
  }
  if (metadata) {
    if (auto r = ValidateSize(*metadata, "metadata", settings_.max_value_bytes); !r) {
      co_return Reject<T>(kOp, r.error());
    }
  }
  const std::string id = NewCheckpointId(std::chrono::system_clock::now());
  const int keep_last = settings_.keep_last;
  co_return co_await Execute<T>(kOp, tenant, [&](Backend& b, const Call& call) {
    return b.CreateCheckpoint(call, agent_id, id, state, metadata, keep_last);
  });
}

asio::awaitable<Result<std::optional<Checkpoint>>> StorageService::Restore(
    std::string_view tenant, std::string_view agent_id,
    std::optional<std::string_view> checkpoint_id) {
  using T = std::optional<Checkpoint>;
  constexpr auto kOp = StorageOp::kCheckpointRestore;
  if (auto r = ValidateTenantAnd(tenant, agent_id, "agent_id"); !r) {
    co_return Reject<T>(kOp, r.error());
  }
  if (checkpoint_id && !IsCheckpointId(*checkpoint_id)) {
    co_return Reject<T>(kOp, MakeError(ErrorCode::kInvalidRequest,
                                       "checkpoint_id is not a checkpoint id", "checkpoint_id"));
  }
  co_return co_await Execute<T>(kOp, tenant, [&](Backend& b, const Call& call) {
    return b.RestoreCheckpoint(call, agent_id, checkpoint_id);
  });
}

asio::awaitable<Result<std::vector<CheckpointInfo>>> StorageService::List(
    std::string_view tenant, std::string_view agent_id) {
  using T = std::vector<CheckpointInfo>;
  constexpr auto kOp = StorageOp::kCheckpointList;
  if (auto r = ValidateTenantAnd(tenant, agent_id, "agent_id"); !r) {
    co_return Reject<T>(kOp, r.error());
  }
  co_return co_await Execute<T>(
      kOp, tenant, [&](Backend& b, const Call& call) { return b.ListCheckpoints(call, agent_id); });
}

asio::awaitable<Result<bool>> StorageService::Delete(std::string_view tenant,
                                                     std::string_view agent_id,
                                                     std::string_view checkpoint_id) {
  constexpr auto kOp = StorageOp::kCheckpointDelete;
  if (auto r = ValidateTenantAnd(tenant, agent_id, "agent_id"); !r) {
    co_return Reject<bool>(kOp, r.error());
  }
  if (!IsCheckpointId(checkpoint_id)) {
    co_return Reject<bool>(kOp, MakeError(ErrorCode::kInvalidRequest,
                                          "checkpoint_id is not a checkpoint id", "checkpoint_id"));
  }
  co_return co_await Execute<bool>(kOp, tenant, [&](Backend& b, const Call& call) {
    return b.DeleteCheckpoint(call, agent_id, checkpoint_id);
  });
}

// --- RecordStore -----------------------------------------------------------------------------

namespace {

Result<void> ValidateRecordName(std::string_view tenant, std::string_view collection) {
  if (auto r = ValidateName(tenant, "tenant", kMaxTenantBytes); !r) return r;
  return ValidateCollection(collection);
}

Result<void> ValidateRecordId(std::string_view tenant, std::string_view collection,
                              std::string_view id) {
  if (auto r = ValidateRecordName(tenant, collection); !r) return r;
  return ValidateName(id, "id", kMaxRecordIdBytes);
}

// An id prefix may be empty; otherwise it is shaped like an id.
Result<void> ValidatePrefix(std::string_view prefix) {
  if (prefix.empty()) return {};
  return ValidateName(prefix, "prefix", kMaxRecordIdBytes);
}

Result<void> ValidateLimit(int limit) {
  if (limit >= 1 && limit <= kMaxRecordListLimit) return {};
  return MakeError(ErrorCode::kInvalidRequest,
                   "limit must be between 1 and " + std::to_string(kMaxRecordListLimit), "limit");
}

// A page's raw last id becomes an opaque cursor (the SQL backends' keyset format, so that a
// listing can go on across a failover).
template <class Page>
Result<Page> WithCursor(Result<Page> page) {
  if (page && !page->next_cursor.empty()) page->next_cursor = EncodeKeysetCursor(page->next_cursor);
  return page;
}

}  // namespace

asio::awaitable<Result<std::int64_t>> StorageService::Records::Put(std::string_view tenant,
                                                                   std::string_view collection,
                                                                   std::string_view id,
                                                                   std::string_view value,
                                                                   Expect expect) {
  using T = std::int64_t;
  constexpr auto kOp = StorageOp::kRecordPut;
  StorageService& s = service_;
  if (auto r = ValidateRecordId(tenant, collection, id); !r) co_return s.Reject<T>(kOp, r.error());
  if (auto r = ValidateSize(value, "value", s.settings_.max_value_bytes); !r) {
    co_return s.Reject<T>(kOp, r.error());
  }
  const std::vector<RecordWrite> writes{RecordWrite{RecordWrite::Op::kPut, std::string(collection),
                                                    std::string(id), std::string(value), expect}};
  co_return co_await s.Execute<T>(kOp, tenant, [&](Backend& b, const Call& call) -> Result<T> {
    auto versions = b.WriteRecords(call, writes);
    if (!versions) return versions.error();
    return versions->front();
  });
}

asio::awaitable<Result<std::optional<Record>>> StorageService::Records::Get(
    std::string_view tenant, std::string_view collection, std::string_view id) {
  using T = std::optional<Record>;
  constexpr auto kOp = StorageOp::kRecordGet;
  StorageService& s = service_;
  if (auto r = ValidateRecordId(tenant, collection, id); !r) co_return s.Reject<T>(kOp, r.error());
  co_return co_await s.Execute<T>(
      kOp, tenant, [&](Backend& b, const Call& call) { return b.GetRecord(call, collection, id); });
}

asio::awaitable<Result<bool>> StorageService::Records::Delete(std::string_view tenant,
                                                              std::string_view collection,
                                                              std::string_view id, Expect expect) {
  constexpr auto kOp = StorageOp::kRecordDelete;
  StorageService& s = service_;
  if (auto r = ValidateRecordId(tenant, collection, id); !r) {
    co_return s.Reject<bool>(kOp, r.error());
  }
  const std::vector<RecordWrite> writes{RecordWrite{
      RecordWrite::Op::kDelete, std::string(collection), std::string(id), std::string(), expect}};
  co_return co_await s.Execute<bool>(kOp, tenant,
                                     [&](Backend& b, const Call& call) -> Result<bool> {
                                       auto removed = b.WriteRecords(call, writes);
                                       if (!removed) return removed.error();
                                       return removed->front() != 0;
                                     });
}

asio::awaitable<Result<RecordPage>> StorageService::Records::List(std::string_view tenant,
                                                                  std::string_view collection,
                                                                  std::string_view prefix,
                                                                  int limit,
                                                                  std::string_view cursor) {
  constexpr auto kOp = StorageOp::kRecordList;
  StorageService& s = service_;
  if (auto r = ValidateRecordName(tenant, collection); !r) {
    co_return s.Reject<RecordPage>(kOp, r.error());
  }
  if (auto r = ValidatePrefix(prefix); !r) co_return s.Reject<RecordPage>(kOp, r.error());
  if (auto r = ValidateLimit(limit); !r) co_return s.Reject<RecordPage>(kOp, r.error());
  auto after = DecodeKeysetCursor(cursor);
  if (!after) co_return s.Reject<RecordPage>(kOp, after.error());
  co_return WithCursor(
      co_await s.Execute<RecordPage>(kOp, tenant, [&](Backend& b, const Call& call) {
        return b.ListRecords(call, collection, prefix, *after, limit);
      }));
}

asio::awaitable<Result<void>> StorageService::Records::Apply(std::string_view tenant,
                                                             std::vector<RecordWrite> writes) {
  constexpr auto kOp = StorageOp::kRecordApply;
  StorageService& s = service_;
  if (auto r = ValidateName(tenant, "tenant", kMaxTenantBytes); !r) {
    co_return s.Reject<void>(kOp, r.error());
  }
  if (writes.size() > kMaxApplyWrites) {
    co_return s.Reject<void>(
        kOp,
        MakeError(ErrorCode::kInvalidRequest,
                  "at most " + std::to_string(kMaxApplyWrites) + " writes in one batch", "writes"));
  }
  std::set<std::pair<std::string_view, std::string_view>> named;
  for (const RecordWrite& w : writes) {
    if (auto r = ValidateRecordId(tenant, w.collection, w.id); !r) {
      co_return s.Reject<void>(kOp, r.error());
    }
    if (w.op == RecordWrite::Op::kPut) {
      if (auto r = ValidateSize(w.value, "value", s.settings_.max_value_bytes); !r) {
        co_return s.Reject<void>(kOp, r.error());
      }
    }
    // Twice in one batch would make the preconditions' meaning depend on the backend.
    if (!named.emplace(w.collection, w.id).second) {
      co_return s.Reject<void>(kOp, MakeError(ErrorCode::kInvalidRequest,
                                              "record '" + w.id + "' of " + w.collection +
                                                  " is written twice in one batch",
                                              "writes"));
    }
  }
  if (writes.empty()) co_return Result<void>{};
  co_return co_await s.Execute<void>(kOp, tenant,
                                     [&](Backend& b, const Call& call) -> Result<void> {
                                       auto done = b.WriteRecords(call, writes);
                                       if (!done) return done.error();
                                       return {};
                                     });
}

asio::awaitable<Result<std::vector<Change>>> StorageService::Records::ChangesSince(
    std::int64_t sequence, int limit) {
  using T = std::vector<Change>;
  constexpr auto kOp = StorageOp::kChangesSince;
  StorageService& s = service_;
  if (sequence < 0) {
    co_return s.Reject<T>(
        kOp, MakeError(ErrorCode::kInvalidRequest, "sequence must not be negative", "sequence"));
  }
  if (auto r = ValidateLimit(limit); !r) co_return s.Reject<T>(kOp, r.error());
  co_return co_await s.Execute<T>(
      kOp, kSystemTenant, [&](Backend& b, const Call& call) -> Result<T> {
        const bool secondary = s.IndexOf(b) == kSecondary;
        const std::int64_t base = secondary ? kSecondarySequenceBase : 0;
        // A sequence of the other store's log: failed over or back.
        if ((sequence >= kSecondarySequenceBase) != secondary) {
          return ChangeLogGap(sequence);
        }
        auto changes = b.ChangesSince(call.deadline, sequence - base, limit);
        if (!changes) {
          if (changes.error().code == ErrorCode::kConflict) {
            return ChangeLogGap(sequence);
          }
          return changes;
        }
        for (Change& c : *changes)
          c.sequence += base;
        return changes;
      });
}

asio::awaitable<Result<std::int64_t>> StorageService::Records::LatestSequence() {
  using T = std::int64_t;
  StorageService& s = service_;
  co_return co_await s.Execute<T>(StorageOp::kLatestSequence, kSystemTenant,
                                  [&](Backend& b, const Call& call) -> Result<T> {
                                    auto latest = b.LatestSequence(call.deadline);
                                    if (!latest || s.IndexOf(b) == kPrimary) return latest;
                                    return *latest + kSecondarySequenceBase;
                                  });
}

asio::awaitable<Result<std::vector<double>>> StorageService::Records::Add(
    std::string_view tenant, std::string_view collection, std::string_view id,
    std::vector<std::pair<std::string, double>> deltas) {
  using T = std::vector<double>;
  constexpr auto kOp = StorageOp::kCounterAdd;
  StorageService& s = service_;
  if (auto r = ValidateRecordId(tenant, collection, id); !r) co_return s.Reject<T>(kOp, r.error());
  if (deltas.size() > kMaxCounterFields) {
    co_return s.Reject<T>(
        kOp, MakeError(ErrorCode::kInvalidRequest,
                       "at most " + std::to_string(kMaxCounterFields) + " fields in one addition",
                       "deltas"));
  }
  std::set<std::string_view> fields;
  for (const auto& [field, delta] : deltas) {
    if (auto r = ValidateName(field, "field", kMaxFieldBytes); !r) {
      co_return s.Reject<T>(kOp, r.error());
    }
    if (!fields.insert(field).second) {
      co_return s.Reject<T>(kOp, MakeError(ErrorCode::kInvalidRequest,
                                           "field '" + field + "' is named twice", "field"));
    }
    if (!std::isfinite(delta)) {
      co_return s.Reject<T>(
          kOp, MakeError(ErrorCode::kInvalidRequest, "a delta must be a finite number", "deltas"));
    }
  }
  if (deltas.empty()) co_return T{};
  co_return co_await s.Execute<T>(kOp, tenant, [&](Backend& b, const Call& call) {
    return b.AddCounter(call, collection, id, deltas);
  });
}

asio::awaitable<Result<CounterPage>> StorageService::Records::Counters(std::string_view tenant,
                                                                       std::string_view collection,
                                                                       std::string_view prefix,
                                                                       int limit,
                                                                       std::string_view cursor) {
  constexpr auto kOp = StorageOp::kCounterList;
  StorageService& s = service_;
  if (auto r = ValidateRecordName(tenant, collection); !r) {
    co_return s.Reject<CounterPage>(kOp, r.error());
  }
  if (auto r = ValidatePrefix(prefix); !r) co_return s.Reject<CounterPage>(kOp, r.error());
  if (auto r = ValidateLimit(limit); !r) co_return s.Reject<CounterPage>(kOp, r.error());
  auto after = DecodeKeysetCursor(cursor);
  if (!after) co_return s.Reject<CounterPage>(kOp, after.error());
  co_return WithCursor(
      co_await s.Execute<CounterPage>(kOp, tenant, [&](Backend& b, const Call& call) {
        return b.ListCounters(call, collection, prefix, *after, limit);
      }));
}

// --- Health and maintenance ------------------------------------------------------------------

asio::awaitable<StorageHealth> StorageService::CheckHealth() {
  const auto timeout =
      std::min<std::chrono::milliseconds>(settings_.operation_timeout, std::chrono::seconds(2));
  struct Pings {
    Result<void> primary;
    std::optional<Result<void>> secondary;
  };
  Pings pings = co_await pool_.Run([&]() -> Pings {
    Pings p{backends_[kPrimary]->Ping(Clock::now() + timeout), std::nullopt};
    if (backends_[kSecondary]) p.secondary = backends_[kSecondary]->Ping(Clock::now() + timeout);
    return p;
  });
  StorageHealth health;
  health.primary_reachable = pings.primary.has_value();
  if (pings.secondary) health.secondary_reachable = pings.secondary->has_value();
  // A probe that finds the primary down fails over as a request would (readiness stays true
  // when the secondary can serve); failing back is left to the maintenance thread's probes.
  if (!health.primary_reachable && health.secondary_reachable.value_or(false)) {
    EnterFailover("failed a health check: " + pings.primary.error().message);
  }
  health.failover_active = failover_active();
  health.ready = health.failover_active ? health.secondary_reachable.value_or(false)
                                        : health.primary_reachable;

  auto describe = [&](std::size_t index, const Result<void>& ping) {
    return Label(index) + ": " + (ping ? std::string("ok") : "down (" + ping.error().message + ")");
  };
  health.detail = describe(kPrimary, pings.primary);
  if (pings.secondary) health.detail += "; " + describe(kSecondary, *pings.secondary);
  if (health.failover_active) health.detail += "; failover active, serving from the secondary";
  co_return health;
}

void StorageService::SweepOnce() {
  for (std::size_t index : {kPrimary, kSecondary}) {
    if (!backends_[index]) continue;
    if (index == kPrimary && failover_active()) continue;  // it is down; the probe watches it
    Clock::time_point start = Clock::now();
    auto removed = backends_[index]->SweepExpired(start + settings_.operation_timeout);
    metrics_.Record(index, StorageOp::kSweep, OutcomeOf(removed),
                    std::chrono::duration<double>(Clock::now() - start).count());
    if (!removed)
      Emit("storage: sweeping the " + Label(index) + " failed: " + removed.error().message);
    start = Clock::now();
    auto pruned = backends_[index]->PruneChanges(start + settings_.operation_timeout,
                                                 settings_.change_log_retention);
    metrics_.Record(index, StorageOp::kPruneChanges, OutcomeOf(pruned),
                    std::chrono::duration<double>(Clock::now() - start).count());
    if (!pruned) {
      Emit("storage: pruning the change log of the " + Label(index) +
           " failed: " + pruned.error().message);
    }
  }
}

void StorageService::MaintenanceLoop(const std::stop_token& stop) {
  const auto sweep_interval =
      std::max<std::chrono::milliseconds>(settings_.sweep_interval, std::chrono::milliseconds(10));
  const auto probe_interval = std::max<std::chrono::milliseconds>(settings_.options.probe_interval,
                                                                  std::chrono::milliseconds(10));
  Clock::time_point next_sweep = Clock::now() + sweep_interval;
  int good_probes = 0;
  while (!stop.stop_requested()) {
    const Clock::time_point next_probe = Clock::now() + probe_interval;
    {
      std::unique_lock lock(maintenance_mutex_);
      const Clock::time_point wake =
          failover_active() ? std::min(next_sweep, next_probe) : next_sweep;
      // Also wakes when the failover state changes (probing starts at once).
      const bool was_failed_over = failover_active();
      maintenance_cv_.wait_until(lock, stop, wake,
                                 [&] { return failover_active() != was_failed_over; });
    }
    if (stop.stop_requested()) return;
    if (failover_active()) {
      const auto ping = backends_[kPrimary]->Ping(Clock::now() + settings_.operation_timeout);
      good_probes = ping ? good_probes + 1 : 0;
      if (good_probes >= std::max(1, settings_.options.failback_after)) {
        good_probes = 0;
        LeaveFailover();
      }
    } else {
      good_probes = 0;
    }
    if (Clock::now() >= next_sweep) {
      SweepOnce();
      next_sweep = Clock::now() + sweep_interval;
    }
  }
}

}  // namespace orchestra::storage
