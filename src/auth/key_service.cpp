#include "auth/key_service.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "observability/log.hpp"

namespace orchestra::auth {
namespace {

namespace asio = boost::asio;
using observability::Log;
using observability::Severity;
using storage::kSystemTenant;

constexpr int kWriteAttempts = 4;

Error NoSuchKey(std::string_view id) {
  std::string shown(id.substr(0, 64));
  return Error(ErrorCode::kNotFound, "no API key with id '" + shown + "'", "id");
}

Error NameTaken(std::string_view name) {
  return Error(ErrorCode::kInvalidRequest,
               "the name '" + std::string(name) + "' is already used by another API key", "name");
}

}  // namespace

KeyService::KeyService(storage::RecordStore& records, ApiKeys& keys, KeyServiceOptions options)
    : records_(records),
      keys_(keys),
      options_(std::move(options)),
      follower_(
          records,
          [](const storage::Change& c) {
            return c.tenant == kSystemTenant && c.collection == kKeysCollection;
          },
          [this](std::vector<storage::Change> changes) -> asio::awaitable<Result<void>> {
            for (const storage::Change& c : changes) {
              if (auto refreshed = co_await Refresh(c.id); !refreshed) co_return refreshed.error();
            }
            co_return Result<void>{};
          },
          [this] { return ReloadAll(); }),
      watcher_(follower_, {.poll_interval = options_.poll_interval,
                           .reload_interval = options_.reload_interval,
                           .subject = "api keys",
                           .kept = "keys stay as last read"}) {
  for (const Principal* p : keys_.configured())
    reserved_names_.push_back(p->name);
}

KeyService::~KeyService() {
  Stop();
}

double KeyService::Now() const {
  if (options_.now) return options_.now();
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

asio::awaitable<Result<std::optional<std::pair<KeyRecord, std::int64_t>>>> KeyService::Read(
    std::string_view id) {
  using Found = std::optional<std::pair<KeyRecord, std::int64_t>>;
  auto stored = co_await records_.Get(kSystemTenant, kKeysCollection, id);
  if (!stored) co_return stored.error();
  if (!*stored) co_return Found();
  auto decoded = DecodeStored((*stored)->value);
  if (!decoded) {
    Log(Severity::kError, "api keys: stored record is damaged",
        {{"key_id", id}, {"error", decoded.error().message}});
    co_return decoded.error();
  }
  co_return Found(std::pair{std::move(*decoded), (*stored)->version});
}

asio::awaitable<Result<IssuedKey>> KeyService::Create(std::string_view body) {
  const double now = Now();
  auto parsed = ParseCreate(body, options_.models, now);
  if (!parsed) co_return parsed.error();
  IssuedKey issued{std::move(*parsed), NewSecret()};
  KeyRecord& record = issued.record;
  if (std::find(reserved_names_.begin(), reserved_names_.end(), record.name) !=
      reserved_names_.end()) {
    co_return NameTaken(record.name);
  }
  record.id = NewKeyId();
  record.digest = Sha256(issued.secret);
  record.created_at = std::floor(now);
  std::vector<storage::RecordWrite> writes;
  writes.push_back({storage::RecordWrite::Op::kPut, std::string(kKeysCollection), record.id,
                    EncodeStored(record), storage::Expect::Absent()});
  writes.push_back({storage::RecordWrite::Op::kPut, std::string(kKeyNamesCollection), record.name,
                    "\"" + record.id + "\"", storage::Expect::Absent()});
  auto written = co_await records_.Apply(kSystemTenant, std::move(writes));
  if (!written) {
    // The id is 96 random bits: a conflict is the name's.
    if (written.error().code == ErrorCode::kConflict) co_return NameTaken(record.name);
    co_return written.error();
  }
  // Read back for the version the backend gave it (usually 1).
  if (auto refreshed = co_await Refresh(record.id); !refreshed) co_return refreshed.error();
  Log(Severity::kInfo, "api keys: created", {{"key_id", record.id}, {"name", record.name}});
  co_return issued;
}

asio::awaitable<Result<KeyPage>> KeyService::List(int limit, std::string_view cursor) {
  auto page = co_await records_.List(kSystemTenant, kKeysCollection, "", limit, cursor);
  if (!page) co_return page.error();
  KeyPage out;
  for (const storage::Record& r : page->records) {
    auto decoded = DecodeStored(r.value);
    if (!decoded) {
      Log(Severity::kError, "api keys: stored record is damaged; left out of the listing",
          {{"key_id", r.id}, {"error", decoded.error().message}});
      continue;
    }
    out.keys.push_back(std::move(*decoded));
  }
  out.next_cursor = std::move(page->next_cursor);
  co_return out;
}

asio::awaitable<Result<KeyRecord>> KeyService::Get(std::string_view id) {
  auto found = co_await Read(id);
  if (!found) co_return found.error();
  if (!*found) co_return NoSuchKey(id);
  co_return std::move((*found)->first);
}

asio::awaitable<Result<KeyRecord>> KeyService::Update(std::string_view id, const Change& change) {
  for (int attempt = 1;; ++attempt) {
    auto found = co_await Read(id);
    if (!found) co_return found.error();
    if (!*found) co_return NoSuchKey(id);
    KeyRecord record = std::move((*found)->first);
    if (auto changed = change(record); !changed) co_return changed.error();
    auto written = co_await records_.Put(kSystemTenant, kKeysCollection, id, EncodeStored(record),
                                         storage::Expect::Version((*found)->second));
    if (written) {
      Apply(std::string(id), *written, record);
      co_return record;
    }
    if (written.error().code != ErrorCode::kConflict) co_return written.error();
    if (attempt == kWriteAttempts) {
      co_return Error(ErrorCode::kConflict,
                      "the API key kept changing under this request; try again");
    }
  }
}

asio::awaitable<Result<KeyRecord>> KeyService::Patch(std::string_view id, std::string_view body) {
  const double now = Now();
  // Validated once before any read, so that a bad body is a 400 even for an unknown id's
  // neighbour, and again on the record read (a no-op then).
  KeyRecord probe;
  if (auto ok = ApplyPatch(body, options_.models, now, probe); !ok) co_return ok.error();
  co_return co_await Update(id, [&](KeyRecord& record) -> Result<void> {
    return ApplyPatch(body, options_.models, now, record);
  });
}

asio::awaitable<Result<IssuedKey>> KeyService::Rotate(std::string_view id, std::string_view body) {
  auto grace = ParseRotate(body, options_.rotation_grace_s);
  if (!grace) co_return grace.error();
  const double now = Now();
  std::string secret = NewSecret();
  auto updated = co_await Update(id, [&](KeyRecord& record) -> Result<void> {
    if (*grace > 0) {
      record.previous_digest = record.digest;
      record.previous_valid_until = now + *grace;
    } else {
      record.previous_digest.reset();
      record.previous_valid_until = 0;
    }
    record.digest = Sha256(secret);
    return {};
  });
  if (!updated) co_return updated.error();
  Log(Severity::kInfo, "api keys: rotated",
      {{"key_id", id}, {"name", updated->name}, {"grace_seconds", *grace}});
  co_return IssuedKey{std::move(*updated), std::move(secret)};
}

asio::awaitable<Result<void>> KeyService::Revoke(std::string_view id) {
  for (int attempt = 1;; ++attempt) {
    auto found = co_await Read(id);
    if (!found) co_return found.error();
    if (!*found) co_return NoSuchKey(id);
    const KeyRecord& record = (*found)->first;
    std::vector<storage::RecordWrite> writes;
    writes.push_back({storage::RecordWrite::Op::kDelete, std::string(kKeysCollection),
                      std::string(id), "", storage::Expect::Version((*found)->second)});
    writes.push_back({storage::RecordWrite::Op::kDelete, std::string(kKeyNamesCollection),
                      record.name, "", storage::Expect::Any()});
    auto written = co_await records_.Apply(kSystemTenant, std::move(writes));
    if (written) {
      Apply(std::string(id), 0, std::nullopt);
      Log(Severity::kInfo, "api keys: revoked", {{"key_id", id}, {"name", record.name}});
      co_return Result<void>{};
    }
    if (written.error().code != ErrorCode::kConflict) co_return written.error();
    if (attempt == kWriteAttempts) {
      co_return Error(ErrorCode::kConflict,
                      "the API key kept changing under this request; try again");
    }
  }
}

void KeyService::Apply(const std::string& id, std::int64_t version,
                       const std::optional<KeyRecord>& record, bool publish) {
  std::lock_guard lock(mutex_);
  if (revoked_.contains(id)) return;
  auto it = entries_.find(id);
  if (!record) {
    revoked_.insert(id);
    if (it != entries_.end()) entries_.erase(it);
    if (publish) PublishLocked();
    return;
  }
  if (it != entries_.end() && version <= it->second.version) return;
  Entry entry{version, *record, keys_.Keep(ToPrincipal(*record))};
  entries_.insert_or_assign(id, std::move(entry));
  if (publish) PublishLocked();
}

void KeyService::PublishLocked() {
  std::vector<StoredKey> table;
  table.reserve(entries_.size() + 4);
  for (const auto& [id, e] : entries_) {
    const KeyRecord& r = e.record;
    table.push_back({r.digest, e.principal, r.expires_at});
    if (r.previous_digest && r.previous_valid_until > 0) {
      double until = r.previous_valid_until;
      if (r.expires_at > 0) until = std::min(until, r.expires_at);
      table.push_back({*r.previous_digest, e.principal, until});
    }
  }
  keys_.Publish(std::move(table));
}

asio::awaitable<Result<void>> KeyService::Refresh(const std::string& id) {
  auto found = co_await Read(id);
  if (!found) {
    // A damaged record authenticates nobody: the key's entry stays as last applied.
    co_return found.error().code == ErrorCode::kInternal ? Result<void>{} : found.error();
  }
  if (!*found) {
    Apply(id, 0, std::nullopt);
  } else {
    Apply(id, (*found)->second, (*found)->first);
  }
  co_return Result<void>{};
}

asio::awaitable<Result<void>> KeyService::ReloadAll() {
  std::set<std::string, std::less<>> seen;
  std::string cursor;
  do {
    auto page = co_await records_.List(kSystemTenant, kKeysCollection, "",
                                       storage::kMaxRecordListLimit, cursor);
    if (!page) co_return page.error();
    for (const storage::Record& r : page->records) {
      seen.insert(r.id);
      auto decoded = DecodeStored(r.value);
      if (!decoded) {
        Log(Severity::kError, "api keys: stored record is damaged; the key is not accepted",
            {{"key_id", r.id}, {"error", decoded.error().message}});
        continue;
      }
      Apply(r.id, r.version, *decoded, false);
    }
    cursor = std::move(page->next_cursor);
  } while (!cursor.empty());
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (seen.contains(it->first)) {
      ++it;
    } else {
      revoked_.insert(it->first);
      it = entries_.erase(it);
    }
  }
  PublishLocked();
  co_return Result<void>{};
}

}  // namespace orchestra::auth
