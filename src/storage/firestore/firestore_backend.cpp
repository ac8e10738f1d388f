#include "storage/firestore/firestore_backend.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/random.hpp"
#include "common/utf8.hpp"
#include "storage/checkpoint_id.hpp"
#include "storage/firestore/encoding.hpp"
#include "storage/glob.hpp"
#include "storage/validation.hpp"

namespace orchestra::storage {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;
using firestore::KeyToDocumentId;

constexpr std::string_view kDefaultEndpoint = "https://firestore.googleapis.com";
// Firestore's limit is 1 MiB per document including its name and field names; keep room.
constexpr std::size_t kMaxCheckpointPayload = (1U << 20) - 8 * 1024;
// A commit holds at most 500 writes: the agent, the new checkpoint and this many deletions.
constexpr std::size_t kMaxTrimPerCommit = 400;
// A sparse pattern may need several query rounds; stop after this many and hand out a cursor.
constexpr int kMaxListRounds = 16;

Error Unavailable(const std::string& message) {
  return MakeError(ErrorCode::kUnavailable, "firestore: " + message);
}

Error Internal(const std::string& message) {
  return MakeError(ErrorCode::kInternal, "firestore: " + message);
}

// Sleeps a little before another attempt (jittered, growing); false when the deadline would
// pass first.
bool Backoff(int attempt, Deadline deadline) {
  const auto base = std::chrono::milliseconds(5) * (1 << std::min(attempt, 6));
  const auto wait =
      std::chrono::duration_cast<std::chrono::microseconds>(base * (0.5 + RandomUnit()));
  if (Clock::now() + wait >= deadline) return false;
  std::this_thread::sleep_for(wait);
  return true;
}

json::object StringValue(std::string_view text) {
  json::object v;
  if (utf8::IsValid(text)) {
    v["stringValue"] = text;
  } else {
    v["bytesValue"] = firestore::Base64Encode(text);  // stored byte for byte all the same
  }
  return v;
}

json::object Reference(const std::string& name) {
  return json::object{{"referenceValue", name}};
}

// {"values": [reference], "before": before}: a query cursor on __name__.
json::object Cursor(const std::string& name, bool before) {
  return json::object{{"values", json::array{Reference(name)}}, {"before", before}};
}

const json::object* Field(const json::object& fields, std::string_view name) {
  const json::value* v = fields.if_contains(name);
  return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}

std::optional<std::string> ReadString(const json::object& fields, std::string_view name) {
  const json::object* v = Field(fields, name);
  if (v == nullptr) return std::nullopt;
  if (const json::value* s = v->if_contains("stringValue"); s != nullptr && s->is_string()) {
    return std::string(s->as_string());
  }
  if (const json::value* b = v->if_contains("bytesValue"); b != nullptr && b->is_string()) {
    return firestore::Base64Decode(b->as_string());
  }
  return std::nullopt;
}

std::optional<std::int64_t> ReadInteger(const json::object& fields, std::string_view name) {
  const json::object* v = Field(fields, name);
  if (v == nullptr) return std::nullopt;
  const json::value* i = v->if_contains("integerValue");
  if (i == nullptr) return std::nullopt;
  if (i->is_int64()) return i->as_int64();
  if (i->is_string()) {
    try {
      return std::stoll(std::string(i->as_string()));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<SystemClock::time_point> ReadTimestamp(const json::object& fields,
                                                     std::string_view name) {
  const json::object* v = Field(fields, name);
  if (v == nullptr) return std::nullopt;
  const json::value* t = v->if_contains("timestampValue");
  if (t == nullptr || !t->is_string()) return std::nullopt;
  return firestore::ParseTimestamp(t->as_string());
}

std::string_view LastSegment(std::string_view name) {
  const auto slash = name.rfind('/');
  return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

bool IsTransient(const FirestoreBackend::Reply& r) {
  return r.http_status == 429 || r.http_status >= 500 || r.status == "ABORTED";
}

json::object NameOnlyQuery(std::string_view collection) {
  return json::object{
      {"from", json::array{json::object{{"collectionId", collection}}}},
      {"select", json::object{{"fields", json::array{json::object{{"fieldPath", "__name__"}}}}}},
      {"orderBy", json::array{json::object{{"field", json::object{{"fieldPath", "__name__"}}},
                                           {"direction", "ASCENDING"}}}}};
}

}  // namespace

struct FirestoreBackend::Document {
  std::string name;
  json::object fields;
  std::string update_time;  // as Firestore wrote it, for preconditions

  static Document From(const json::object& doc) {
    Document out;
    if (const json::value* n = doc.if_contains("name"); n != nullptr && n->is_string()) {
      out.name = std::string(n->as_string());
    }
    if (const json::value* f = doc.if_contains("fields"); f != nullptr && f->is_object()) {
      out.fields = f->as_object();
    }
    if (const json::value* u = doc.if_contains("updateTime"); u != nullptr && u->is_string()) {
      out.update_time = std::string(u->as_string());
    }
    return out;
  }

  // Expired by the time of the read (the server's clock).
  bool Expired(SystemClock::time_point read_time) const {
    const auto expire_at = ReadTimestamp(fields, "expire_at");
    return expire_at && *expire_at <= read_time;
  }
};

std::unique_ptr<FirestoreBackend> FirestoreBackend::Create(const FirestoreOptions& options) {
  const auto fail = [](const std::string& why) {
    return std::runtime_error("storage: firestore: " + why);
  };
  if (options.project.empty()) throw fail("no project (storage.firestore.project)");
  if (options.database.empty()) throw fail("no database (storage.firestore.database)");
  if (options.root.empty() || options.root.find('/') != std::string::npos) {
    throw fail("the root collection must be one collection id without '/'");
  }
  std::unique_ptr<FirestoreBackend> backend(new FirestoreBackend());
  backend->documents_ =
      "projects/" + options.project + "/databases/" + options.database + "/documents";
  backend->root_ = backend->documents_ + "/" + options.root;
  BlockingHttpOptions http;
  http.name = "firestore";
  http.connections = static_cast<std::size_t>(std::max(1, options.pool_size));
  http.ca_file = options.ca_file;
  if (!options.emulator_host.empty()) {
    // Like Google's client libraries: host:port of the emulator, spoken to in plain HTTP.
    auto origin = HttpOrigin::Parse(options.emulator_host.find("://") == std::string::npos
                                        ? "http://" + options.emulator_host
                                        : options.emulator_host);
    if (!origin) throw fail("FIRESTORE_EMULATOR_HOST: " + origin.error().message);
    http.origin = *origin;
    backend->emulator_ = true;
  } else {
    auto origin = HttpOrigin::Parse(options.endpoint.empty() ? kDefaultEndpoint : options.endpoint);
    if (!origin) throw fail("storage.firestore.endpoint: " + origin.error().message);
    http.origin = *origin;
    auto metadata = HttpOrigin::Parse("http://" + options.metadata_host);
    if (!metadata) throw fail("GCE_METADATA_HOST: " + metadata.error().message);
    BlockingHttpOptions m;
    m.name = "firestore: the metadata server";
    m.origin = *metadata;
    m.connections = 2;
    backend->metadata_ = std::make_unique<BlockingHttpClient>(std::move(m));
  }
  backend->http_ = std::make_unique<BlockingHttpClient>(std::move(http));
  return backend;
}

FirestoreBackend::~FirestoreBackend() = default;

// --- The REST calls --------------------------------------------------------------------------

Result<std::string> FirestoreBackend::AuthorizationHeader(Deadline deadline) {
  // The emulator's administrator token: no security rules apply, as with the server libraries.
  if (emulator_) return std::string("Bearer owner");
  if (auto cached = token_.Get(Clock::now())) return "Bearer " + *cached;
  std::unique_lock lock(token_fetch_, std::defer_lock);
  if (!lock.try_lock_until(deadline)) {
    return Unavailable("timed out waiting for an access token from the metadata server");
  }
  if (auto cached = token_.Get(Clock::now())) return "Bearer " + *cached;  // fetched meanwhile
  HttpRequest request;
  request.method = "GET";
  request.target = gce::kTokenPath;
  request.headers.emplace_back(gce::kFlavorHeaderName, gce::kFlavorHeaderValue);
  auto sent = metadata_->Send(request, deadline, true);
  if (!sent) {
    return Unavailable("cannot get a token from the metadata server: " + sent.error().message);
  }
  auto token = gce::ParseTokenResponse(sent->status, sent->body);
  if (!token) return Unavailable(token.error().message);
  token_.Put(*token, Clock::now());
  return "Bearer " + token->token;
}

Result<FirestoreBackend::Reply> FirestoreBackend::Post(const std::string& target,
                                                       const json::value& body, Deadline deadline,
                                                       bool idempotent) {
  const std::string payload = json::serialize(body);
  bool token_refreshed = false;
  for (int attempt = 0;; ++attempt) {
    auto authorization = AuthorizationHeader(deadline);
    if (!authorization) return authorization.error();
    HttpRequest request;
    request.target = target;
    request.body = payload;
    request.headers.emplace_back("Authorization", *authorization);
    auto response = http_->Send(request, deadline, idempotent);
    if (!response) return response.error();
    Reply reply;
    reply.http_status = response->status;
    boost::system::error_code ec;
    reply.body = json::parse(response->body, ec);
    if (response->status == 200) {
      if (ec) return Internal("unreadable answer to " + target + ": " + ec.message());
      reply.status = "OK";
      return reply;
    }
    // {"error": {"code", "message", "status"}}, or the same inside an array (streamed methods).
    const json::value* error = nullptr;
    if (!ec && reply.body.is_object()) error = reply.body.as_object().if_contains("error");
    if (!ec && reply.body.is_array() && !reply.body.as_array().empty() &&
        reply.body.as_array()[0].is_object()) {
      error = reply.body.as_array()[0].as_object().if_contains("error");
    }
    if (error != nullptr && error->is_object()) {
      const json::object& e = error->as_object();
      if (const json::value* s = e.if_contains("status"); s != nullptr && s->is_string()) {
        reply.status = std::string(s->as_string());
      }
      if (const json::value* m = e.if_contains("message"); m != nullptr && m->is_string()) {
        reply.message = std::string(m->as_string());
      }
    }
    if (reply.status.empty()) reply.status = "HTTP " + std::to_string(response->status);
    if (reply.message.empty()) reply.message = response->body.substr(0, 200);
    if (response->status == 401 && !emulator_ && !token_refreshed) {
      token_.Invalidate();  // revoked or expired early: fetch a new one, once
      token_refreshed = true;
      continue;
    }
    if (idempotent && IsTransient(reply) && Backoff(attempt, deadline)) continue;
    return reply;
  }
}

Error FirestoreBackend::Failure(const Reply& reply, std::string_view what) const {
  std::string message = std::string(what) + ": " + reply.status;
  if (!reply.message.empty()) message += " (" + reply.message + ")";
  // The service is there but will not serve us: wrong identity or role, disabled API, no such
  // database. For Orchestra that is an unusable database like an unreachable one (readiness and
  // failover), not a bug.
  const bool refused = reply.http_status == 401 || reply.http_status == 403;
  // "The database (default) does not exist for project ..."
  const bool no_database = reply.http_status == 404 &&
                           reply.message.find("database") != std::string::npos &&
                           reply.message.find("does not exist") != std::string::npos;
  if (refused || no_database || IsTransient(reply)) return Unavailable(message);
  return Internal(message);
}

Result<FirestoreBackend::Reply> FirestoreBackend::Commit(json::array writes, Deadline deadline,
                                                         bool idempotent) {
  return Post("/v1/" + documents_ + ":commit", json::object{{"writes", std::move(writes)}},
              deadline, idempotent);
}

Result<std::vector<std::optional<FirestoreBackend::Document>>> FirestoreBackend::BatchGet(
    const std::vector<std::string>& names, const std::vector<std::string>& mask, Deadline deadline,
    SystemClock::time_point* read_time) {
  json::object body;
  json::array documents;
  for (const auto& name : names)
    documents.emplace_back(name);
  body["documents"] = std::move(documents);
  if (!mask.empty()) {
    json::array paths;
    for (const auto& field : mask)
      paths.emplace_back(field);
    body["mask"] = json::object{{"fieldPaths", std::move(paths)}};
  }
  auto reply = Post("/v1/" + documents_ + ":batchGet", body, deadline, true);
  if (!reply) return reply.error();
  if (!reply->ok()) return Failure(*reply, "reading");
  if (!reply->body.is_array()) return Internal("batchGet answered something other than a list");
  std::unordered_map<std::string, Document> found;
  for (const json::value& item : reply->body.as_array()) {
    if (!item.is_object()) continue;
    const json::object& o = item.as_object();
    if (const json::value* t = o.if_contains("readTime");
        t != nullptr && t->is_string() && read_time != nullptr) {
      if (auto parsed = firestore::ParseTimestamp(t->as_string())) *read_time = *parsed;
    }
    if (const json::value* doc = o.if_contains("found"); doc != nullptr && doc->is_object()) {
      Document d = Document::From(doc->as_object());
      std::string name = d.name;
      found.emplace(std::move(name), std::move(d));
    }
  }
  std::vector<std::optional<Document>> out;
  out.reserve(names.size());
  for (const auto& name : names) {
    auto it = found.find(name);
    if (it == found.end()) {
      out.emplace_back();
    } else {
      out.emplace_back(std::move(it->second));
    }
  }
  return out;
}

Result<std::vector<FirestoreBackend::Document>> FirestoreBackend::RunQuery(
    const std::string& parent, json::object query, Deadline deadline,
    SystemClock::time_point* read_time) {
  auto reply = Post("/v1/" + parent + ":runQuery",
                    json::object{{"structuredQuery", std::move(query)}}, deadline, true);
  if (!reply) return reply.error();
  if (!reply->ok()) return Failure(*reply, "querying");
  if (!reply->body.is_array()) return Internal("runQuery answered something other than a list");
  std::vector<Document> out;
  for (const json::value& item : reply->body.as_array()) {
    if (!item.is_object()) continue;
    const json::object& o = item.as_object();
    if (const json::value* t = o.if_contains("readTime");
        t != nullptr && t->is_string() && read_time != nullptr) {
      if (auto parsed = firestore::ParseTimestamp(t->as_string())) *read_time = *parsed;
    }
    if (const json::value* doc = o.if_contains("document"); doc != nullptr && doc->is_object()) {
      out.push_back(Document::From(doc->as_object()));
    }
  }
  return out;
}

// --- Names -----------------------------------------------------------------------------------

std::string FirestoreBackend::TenantDocument(std::string_view tenant) const {
  return root_ + "/" + firestore::NameToDocumentId(tenant);
}

std::string FirestoreBackend::KvDocument(std::string_view tenant, std::string_view key) const {
  return TenantDocument(tenant) + "/kv/" + KeyToDocumentId(key);
}

std::string FirestoreBackend::AgentDocument(std::string_view tenant,
                                            std::string_view agent_id) const {
  return TenantDocument(tenant) + "/agents/" + firestore::NameToDocumentId(agent_id);
}

std::string FirestoreBackend::CheckpointDocument(std::string_view tenant, std::string_view agent_id,
                                                 std::string_view id) const {
  return AgentDocument(tenant, agent_id) + "/checkpoints/" + std::string(id);
}

// --- Backend ---------------------------------------------------------------------------------

Result<void> FirestoreBackend::Ping(Deadline deadline) {
  // A read of a document that never exists ("~p" is no escaped tenant name): it needs the
  // service, the database and our identity's permission, and costs one read.
  auto read = BatchGet({root_ + "/~ping"}, {}, deadline, nullptr);
  if (!read) return read.error();
  return {};
}

Result<void> FirestoreBackend::Store(const Call& call, std::string_view key, std::string_view value,
                                     std::optional<std::chrono::milliseconds> ttl) {
  json::object fields;
  fields["value"] = StringValue(value);
  if (ttl) {
    fields["expire_at"] =
        json::object{{"timestampValue", firestore::FormatTimestamp(SystemClock::now() + *ttl)}};
  }
  // A whole-document write: an earlier TTL goes away with the old fields.
  json::array writes{json::object{
      {"update", json::object{{"name", KvDocument(call.tenant, key)}, {"fields", fields}}}}};
  auto reply = Commit(std::move(writes), call.deadline, true);
  if (!reply) return reply.error();
  if (!reply->ok()) return Failure(*reply, "storing a key");
  return {};
}

Result<std::optional<std::string>> FirestoreBackend::Retrieve(const Call& call,
                                                              std::string_view key) {
  SystemClock::time_point read_time = SystemClock::now();
  auto docs = BatchGet({KvDocument(call.tenant, key)}, {}, call.deadline, &read_time);
  if (!docs) return docs.error();
  const auto& doc = docs->front();
  if (!doc || doc->Expired(read_time)) return std::optional<std::string>();
  auto value = ReadString(doc->fields, "value");
  if (!value) return Internal("the document of a key has no value: " + doc->name);
  return std::optional<std::string>(std::move(*value));
}

Result<bool> FirestoreBackend::Exists(const Call& call, std::string_view key) {
  SystemClock::time_point read_time = SystemClock::now();
  auto docs = BatchGet({KvDocument(call.tenant, key)}, {"expire_at"}, call.deadline, &read_time);
  if (!docs) return docs.error();
  const auto& doc = docs->front();
  return doc && !doc->Expired(read_time);
}

Result<bool> FirestoreBackend::Delete(const Call& call, std::string_view key) {
  const std::string name = KvDocument(call.tenant, key);
  for (int attempt = 0;; ++attempt) {
    // Read first: only a live entry counts as deleted (an expired one is removed all the same).
    SystemClock::time_point read_time = SystemClock::now();
    auto docs = BatchGet({name}, {"expire_at"}, call.deadline, &read_time);
    if (!docs) return docs.error();
    const auto& doc = docs->front();
    if (!doc) return false;
    const bool live = !doc->Expired(read_time);
    json::array writes{json::object{
        {"delete", name}, {"currentDocument", json::object{{"updateTime", doc->update_time}}}}};
    auto reply = Commit(std::move(writes), call.deadline, true);
    if (!reply) return reply.error();
    if (reply->ok()) return live;
    // Rewritten or deleted since the read: read again.
    if (reply->status != "FAILED_PRECONDITION" && reply->status != "NOT_FOUND") {
      return Failure(*reply, "deleting a key");
    }
    if (!Backoff(attempt, call.deadline)) {
      return Unavailable("timed out (storage.operation_timeout) deleting a key under contention");
    }
  }
}

Result<KeyPage> FirestoreBackend::ListKeys(const Call& call, const Glob& pattern, int limit,
                                           std::string_view cursor) {
  auto after = DecodeKeysetCursor(cursor);
  if (!after) return after.error();
  const std::string tenant = TenantDocument(call.tenant);
  const std::string kv = tenant + "/kv/";
  const std::string& prefix = pattern.literal_prefix();
  const std::string upper = PrefixUpperBound(prefix);
  // Where the scan starts: after the cursor's key, or at the glob's literal prefix.
  std::string start_id;
  bool start_inclusive = false;
  if (!after->empty() && *after >= prefix) {
    start_id = KeyToDocumentId(*after);
  } else if (!prefix.empty()) {
    start_id = KeyToDocumentId(prefix);
    start_inclusive = true;
  }
  // A sparse pattern can take several rounds; leave time to answer with a partial page.
  const Deadline soft_deadline = Clock::now() + (call.deadline - Clock::now()) / 2;
  // One more document than the page needs tells whether the listing goes on; later rounds of a
  // sparse pattern read more at a time.
  std::size_t batch = static_cast<std::size_t>(limit) + 1;
  KeyPage page;
  std::string last_key;  // the last key scanned: where the next page starts
  for (int round = 0;; ++round) {
    json::object query{
        {"from", json::array{json::object{{"collectionId", "kv"}}}},
        {"select", json::object{{"fields", json::array{json::object{{"fieldPath", "expire_at"}}}}}},
        {"orderBy", json::array{json::object{{"field", json::object{{"fieldPath", "__name__"}}},
                                             {"direction", "ASCENDING"}}}},
        {"limit", batch}};
    if (!start_id.empty()) query["startAt"] = Cursor(kv + start_id, start_inclusive);
    if (!upper.empty()) query["endAt"] = Cursor(kv + KeyToDocumentId(upper), true);
    SystemClock::time_point read_time = SystemClock::now();
    auto docs = RunQuery(tenant, std::move(query), call.deadline, &read_time);
    if (!docs) return docs.error();
    for (std::size_t i = 0; i < docs->size(); ++i) {
      const Document& doc = (*docs)[i];
      const std::string_view id = LastSegment(doc.name);
      start_id = std::string(id);
      start_inclusive = false;
      auto key = firestore::DocumentIdToKey(id);
      if (!key) continue;  // not written by Orchestra
      last_key = *key;
      if (doc.Expired(read_time) || !pattern.Matches(*key)) continue;
      page.keys.push_back(*key);
      if (page.keys.size() == static_cast<std::size_t>(limit)) {
        const bool more = i + 1 < docs->size() || docs->size() == batch;
        if (more) page.next_cursor = EncodeKeysetCursor(*key);
        return page;
      }
    }
    if (docs->size() < batch) return page;  // the end of the range
    if (round + 1 >= kMaxListRounds || Clock::now() >= soft_deadline) {
      if (!last_key.empty()) page.next_cursor = EncodeKeysetCursor(last_key);
      return page;
    }
    batch = std::min<std::size_t>(batch * 4, 1000);
  }
}

Result<std::vector<std::string>> FirestoreBackend::CheckpointIds(const Call& call,
                                                                 std::string_view agent_id) {
  auto docs = RunQuery(AgentDocument(call.tenant, agent_id), NameOnlyQuery("checkpoints"),
                       call.deadline, nullptr);
  if (!docs) return docs.error();
  std::vector<std::string> ids;
  ids.reserve(docs->size());
  for (const Document& doc : *docs) {
    const std::string_view id = LastSegment(doc.name);
    if (IsCheckpointId(id)) ids.emplace_back(id);
  }
  return ids;
}

Result<std::string> FirestoreBackend::CreateCheckpoint(const Call& call, std::string_view agent_id,
                                                       std::string_view proposed_id,
                                                       std::string_view state,
                                                       std::optional<std::string_view> metadata,
                                                       int keep_last) {
  if (state.size() + (metadata ? metadata->size() : 0) > kMaxCheckpointPayload) {
    return MakeError(ErrorCode::kPayloadTooLarge,
                     "state and metadata together are larger than a Firestore document can hold "
                     "(1 MiB)",
                     "state");
  }
  const std::string agent = AgentDocument(call.tenant, agent_id);
  for (int attempt = 0;; ++attempt) {
    auto docs = BatchGet({agent}, {}, call.deadline, nullptr);
    if (!docs) return docs.error();
    const std::optional<Document>& agent_doc = docs->front();
    std::string latest;
    std::int64_t count = 0;
    if (agent_doc) {
      latest = ReadString(agent_doc->fields, "latest").value_or("");
      count = std::max<std::int64_t>(0, ReadInteger(agent_doc->fields, "count").value_or(0));
    }
    std::string id(proposed_id);
    if (IsCheckpointId(latest) && id <= latest) id = NextCheckpointId(latest);

    json::array writes;
    std::int64_t new_count = count + 1;
    std::vector<std::string> trimmed;
    if (new_count > keep_last) {
      // At the limit: list what exists (the count is only a hint) and drop the oldest.
      auto ids = CheckpointIds(call, agent_id);
      if (!ids) return ids.error();
      new_count = static_cast<std::int64_t>(ids->size()) + 1;
      const std::size_t excess = std::min<std::size_t>(
          new_count > keep_last ? static_cast<std::size_t>(new_count - keep_last) : 0,
          kMaxTrimPerCommit);
      for (std::size_t i = 0; i < excess; ++i) {
        writes.emplace_back(
            json::object{{"delete", CheckpointDocument(call.tenant, agent_id, (*ids)[i])}});
      }
      new_count -= static_cast<std::int64_t>(excess);
    }
    json::object agent_fields{{"latest", json::object{{"stringValue", id}}},
                              {"count", json::object{{"integerValue", std::to_string(new_count)}}}};
    // Unchanged since the read, or still absent: else another write got there first.
    json::object precondition = agent_doc ? json::object{{"updateTime", agent_doc->update_time}}
                                          : json::object{{"exists", false}};
    writes.emplace_back(
        json::object{{"update", json::object{{"name", agent}, {"fields", agent_fields}}},
                     {"currentDocument", std::move(precondition)}});
    json::object fields{{"state", StringValue(state)}};
    if (metadata) fields["metadata"] = StringValue(*metadata);
    writes.emplace_back(json::object{
        {"update",
         json::object{{"name", CheckpointDocument(call.tenant, agent_id, id)}, {"fields", fields}}},
        {"currentDocument", json::object{{"exists", false}}}});
    // Not retried by the transport: a commit whose answer was lost may have been applied.
    auto reply = Commit(std::move(writes), call.deadline, false);
    if (!reply) return reply.error();
    if (reply->ok()) return id;
    const bool conflict = reply->status == "FAILED_PRECONDITION" ||
                          reply->status == "ALREADY_EXISTS" || reply->status == "ABORTED";
    if (!conflict) return Failure(*reply, "creating a checkpoint");
    if (!Backoff(attempt, call.deadline)) {
      return Unavailable(
          "timed out (storage.operation_timeout) creating a checkpoint: concurrent writes to "
          "the same agent kept conflicting");
    }
  }
}

Result<std::optional<Checkpoint>> FirestoreBackend::ReadCheckpoint(const std::string& name,
                                                                   Deadline deadline) {
  auto docs = BatchGet({name}, {}, deadline, nullptr);
  if (!docs) return docs.error();
  const auto& doc = docs->front();
  if (!doc) return std::optional<Checkpoint>();
  Checkpoint checkpoint;
  checkpoint.info.id = std::string(LastSegment(doc->name));
  checkpoint.info.created_at = CheckpointIdTime(checkpoint.info.id);
  checkpoint.info.metadata = ReadString(doc->fields, "metadata");
  auto state = ReadString(doc->fields, "state");
  if (!state) return Internal("a checkpoint document has no state: " + doc->name);
  checkpoint.state = std::move(*state);
  return std::optional<Checkpoint>(std::move(checkpoint));
}

Result<std::optional<Checkpoint>> FirestoreBackend::RestoreCheckpoint(
    const Call& call, std::string_view agent_id, std::optional<std::string_view> id) {
  if (id) return ReadCheckpoint(CheckpointDocument(call.tenant, agent_id, *id), call.deadline);
  // The latest: usually the one the agent document names.
  auto docs = BatchGet({AgentDocument(call.tenant, agent_id)}, {"latest"}, call.deadline, nullptr);
  if (!docs) return docs.error();
  if (const auto& agent = docs->front()) {
    const std::string latest = ReadString(agent->fields, "latest").value_or("");
    if (IsCheckpointId(latest)) {
      auto found = ReadCheckpoint(CheckpointDocument(call.tenant, agent_id, latest), call.deadline);
      if (!found || *found) return found;
    }
  }
  // It was deleted: the newest that remains (Firestore scans ids ascending only). Another
  // deletion can race the read; try a few times.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto ids = CheckpointIds(call, agent_id);
    if (!ids) return ids.error();
    if (ids->empty()) return std::optional<Checkpoint>();
    auto found =
        ReadCheckpoint(CheckpointDocument(call.tenant, agent_id, ids->back()), call.deadline);
    if (!found || *found) return found;
  }
  return std::optional<Checkpoint>();
}

Result<std::vector<CheckpointInfo>> FirestoreBackend::ListCheckpoints(const Call& call,
                                                                      std::string_view agent_id) {
  json::object query = NameOnlyQuery("checkpoints");
  query["select"] = json::object{{"fields", json::array{json::object{{"fieldPath", "metadata"}}}}};
  auto docs =
      RunQuery(AgentDocument(call.tenant, agent_id), std::move(query), call.deadline, nullptr);
  if (!docs) return docs.error();
  std::vector<CheckpointInfo> out;
  out.reserve(docs->size());
  for (const Document& doc : *docs) {
    const std::string_view id = LastSegment(doc.name);
    if (!IsCheckpointId(id)) continue;
    CheckpointInfo info;
    info.id = std::string(id);
    info.created_at = CheckpointIdTime(info.id);
    info.metadata = ReadString(doc.fields, "metadata");
    out.push_back(std::move(info));
  }
  return out;
}

Result<bool> FirestoreBackend::DeleteCheckpoint(const Call& call, std::string_view agent_id,
                                                std::string_view id) {
  // One commit: the checkpoint (only if it exists) and the agent's count, which also makes a
  // concurrent creation's precondition fail so that it recounts.
  json::array writes{
      json::object{{"delete", CheckpointDocument(call.tenant, agent_id, id)},
                   {"currentDocument", json::object{{"exists", true}}}},
      json::object{
          {"update", json::object{{"name", AgentDocument(call.tenant, agent_id)}}},
          {"updateMask", json::object{{"fieldPaths", json::array{}}}},
          {"updateTransforms",
           json::array{json::object{{"fieldPath", "count"},
                                    {"increment", json::object{{"integerValue", "-1"}}}}}}}};
  auto reply = Commit(std::move(writes), call.deadline, true);
  if (!reply) return reply.error();
  if (reply->ok()) return true;
  if (reply->status == "NOT_FOUND" || reply->status == "FAILED_PRECONDITION") return false;
  return Failure(*reply, "deleting a checkpoint");
}

Result<std::uint64_t> FirestoreBackend::SweepExpired(Deadline /*deadline*/) {
  // Firestore's TTL policy on kv.expire_at deletes expired entries; scanning for them would need
  // an index on a field the TTL documentation advises not to index.
  return std::uint64_t{0};
}

// --- Records ---------------------------------------------------------------------------------

namespace {

// A commit request is at most 10 MiB; keep room for names and the log.
constexpr std::size_t kMaxCommitPayload = 9 * 1024 * 1024;
// Entries deleted per pruning commit.
constexpr int kPruneBatch = 300;

std::string SequenceId(std::int64_t sequence) {
  char id[24];
  std::snprintf(id, sizeof id, "%019lld", static_cast<long long>(sequence));
  return id;
}

std::optional<std::int64_t> ParseSequenceId(std::string_view id) {
  if (id.size() != 19) return std::nullopt;
  std::int64_t out = 0;
  for (char c : id) {
    if (c < '0' || c > '9') return std::nullopt;
    out = out * 10 + (c - '0');
  }
  return out;
}

// A field path naming `name` inside the counter's `fields` map, quoted so that any name works.
std::string CounterFieldPath(std::string_view name) {
  std::string out = "fields.`";
  for (char c : name) {
    if (c == '`' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('`');
  return out;
}

std::optional<double> ReadNumber(const json::value& v) {
  if (!v.is_object()) return std::nullopt;
  const json::object& o = v.as_object();
  if (const json::value* d = o.if_contains("doubleValue")) {
    if (d->is_double()) return d->as_double();
    if (d->is_int64()) return static_cast<double>(d->as_int64());
    if (d->is_uint64()) return static_cast<double>(d->as_uint64());
    if (d->is_string()) return std::strtod(std::string(d->as_string()).c_str(), nullptr);
  }
  if (const json::value* i = o.if_contains("integerValue")) {
    if (i->is_int64()) return static_cast<double>(i->as_int64());
    if (i->is_string()) return std::strtod(std::string(i->as_string()).c_str(), nullptr);
  }
  return std::nullopt;
}

bool IsCommitConflict(const FirestoreBackend::Reply& reply) {
  return reply.status == "FAILED_PRECONDITION" || reply.status == "ALREADY_EXISTS" ||
         reply.status == "NOT_FOUND" || reply.status == "ABORTED";
}

// A query of `collection_id` under a parent, by name, within [start, end).
json::object RangeQuery(std::string_view collection_id, const std::string& collection_path,
                        std::string_view prefix, std::string_view after, std::size_t limit) {
  json::object query{
      {"from", json::array{json::object{{"collectionId", collection_id}}}},
      {"orderBy", json::array{json::object{{"field", json::object{{"fieldPath", "__name__"}}},
                                           {"direction", "ASCENDING"}}}},
      {"limit", limit}};
  if (!after.empty() && after >= prefix) {
    query["startAt"] = Cursor(collection_path + KeyToDocumentId(after), false);
  } else if (!prefix.empty()) {
    query["startAt"] = Cursor(collection_path + KeyToDocumentId(prefix), true);
  }
  const std::string upper = prefix.empty() ? std::string() : PrefixUpperBound(prefix);
  if (!upper.empty()) query["endAt"] = Cursor(collection_path + KeyToDocumentId(upper), true);
  return query;
}

}  // namespace

std::string FirestoreBackend::RecordDocument(std::string_view tenant, std::string_view collection,
                                             std::string_view id) const {
  return TenantDocument(tenant) + "/r_" + std::string(collection) + "/" + KeyToDocumentId(id);
}

std::string FirestoreBackend::CounterDocument(std::string_view tenant, std::string_view collection,
                                              std::string_view id) const {
  return TenantDocument(tenant) + "/c_" + std::string(collection) + "/" + KeyToDocumentId(id);
}

std::string FirestoreBackend::LogDocument() const {
  return root_ + "/~log";  // "~l" is no escaped tenant name
}

Result<std::vector<std::int64_t>> FirestoreBackend::WriteRecords(
    const Call& call, const std::vector<RecordWrite>& writes) {
  std::size_t payload = 0;
  for (const RecordWrite& w : writes)
    payload += w.value.size() + w.id.size() * 3 + 512;
  if (payload > kMaxCommitPayload) {
    return MakeError(ErrorCode::kPayloadTooLarge,
                     "the batch is larger than one Firestore commit can carry (10 MiB)", "writes");
  }
  const std::string log = LogDocument();
  std::vector<std::string> names{log};
  for (const RecordWrite& w : writes)
    names.push_back(RecordDocument(call.tenant, w.collection, w.id));
  std::unique_lock turn(record_writes_, std::defer_lock);
  if (!turn.try_lock_until(call.deadline)) {
    return Unavailable(
        "timed out (storage.operation_timeout) writing records: this instance's earlier record "
        "writes took the time");
  }
  for (int attempt = 0;; ++attempt) {
    // One read of the log's head and every record, at one read time.
    auto docs = BatchGet(names, {"sequence", "version"}, call.deadline, nullptr);
    if (!docs) return docs.error();
    const std::optional<Document>& head = (*docs)[0];
    const std::int64_t last = head ? ReadInteger(head->fields, "sequence").value_or(0) : 0;
    std::vector<std::optional<std::int64_t>> current;
    for (std::size_t i = 0; i < writes.size(); ++i) {
      const std::optional<Document>& doc = (*docs)[i + 1];
      current.push_back(
          doc ? std::optional<std::int64_t>(ReadInteger(doc->fields, "version").value_or(0))
              : std::nullopt);
      if (!ExpectHolds(writes[i].expect, current.back())) {
        return RecordConflict(writes[i].collection, writes[i].id);
      }
    }
    // Each record unchanged since the read (or still absent), the log's head too: a commit that
    // meets a concurrent one fails as a whole and is tried again from the read.
    json::array commit;
    std::vector<std::int64_t> out;
    std::int64_t sequence = last;
    for (std::size_t i = 0; i < writes.size(); ++i) {
      const RecordWrite& w = writes[i];
      const std::optional<Document>& doc = (*docs)[i + 1];
      json::object precondition =
          doc ? json::object{{"updateTime", doc->update_time}} : json::object{{"exists", false}};
      if (w.op == RecordWrite::Op::kPut) {
        const std::int64_t version = current[i].value_or(0) + 1;
        json::object fields{{"value", StringValue(w.value)},
                            {"version", json::object{{"integerValue", std::to_string(version)}}}};
        commit.emplace_back(json::object{
            {"update", json::object{{"name", names[i + 1]}, {"fields", std::move(fields)}}},
            {"currentDocument", std::move(precondition)}});
        out.push_back(version);
      } else if (doc) {
        commit.emplace_back(
            json::object{{"delete", names[i + 1]}, {"currentDocument", std::move(precondition)}});
        out.push_back(1);
      } else {
        out.push_back(0);
        continue;
      }
      json::object change{
          {"tenant", json::object{{"stringValue", call.tenant}}},
          {"collection", json::object{{"stringValue", w.collection}}},
          {"id", json::object{{"stringValue", w.id}}},
          {"deleted", json::object{{"booleanValue", w.op == RecordWrite::Op::kDelete}}}};
      // `at` is Firestore's commit time, so retention follows one clock whatever the instances'.
      commit.emplace_back(json::object{
          {"update", json::object{{"name", log + "/changes/" + SequenceId(++sequence)},
                                  {"fields", std::move(change)}}},
          {"updateTransforms",
           json::array{json::object{{"fieldPath", "at"}, {"setToServerValue", "REQUEST_TIME"}}}},
          {"currentDocument", json::object{{"exists", false}}}});
    }
    if (sequence == last) return out;  // nothing changes (deletes of absent records)
    json::object head_precondition =
        head ? json::object{{"updateTime", head->update_time}} : json::object{{"exists", false}};
    commit.emplace_back(json::object{
        {"update",
         json::object{
             {"name", log},
             {"fields", json::object{{"sequence",
                                      json::object{{"integerValue", std::to_string(sequence)}}}}}}},
        {"currentDocument", std::move(head_precondition)}});
    // Not retried by the transport: a commit whose answer was lost may have been applied.
    auto reply = Commit(std::move(commit), call.deadline, false);
    if (!reply) return reply.error();
    if (reply->ok()) return out;
    if (!IsCommitConflict(*reply)) return Failure(*reply, "writing records");
    // Another instance's batch landed first: it has moved on, so read again soon (a short,
    // jittered wait, not growing past ~30 ms, which would only leave the head idle).
    if (!Backoff(std::min(attempt, 2), call.deadline)) {
      return Unavailable(
          "timed out (storage.operation_timeout) writing records: concurrent record writes kept "
          "conflicting");
    }
  }
}

Result<std::optional<Record>> FirestoreBackend::GetRecord(const Call& call,
                                                          std::string_view collection,
                                                          std::string_view id) {
  auto docs = BatchGet({RecordDocument(call.tenant, collection, id)}, {}, call.deadline, nullptr);
  if (!docs) return docs.error();
  const auto& doc = docs->front();
  if (!doc) return std::optional<Record>();
  auto value = ReadString(doc->fields, "value");
  auto version = ReadInteger(doc->fields, "version");
  if (!value || !version) return Internal("a record document lacks value or version: " + doc->name);
  return std::optional<Record>(Record{std::string(id), std::move(*value), *version});
}

Result<RecordPage> FirestoreBackend::ListRecords(const Call& call, std::string_view collection,
                                                 std::string_view prefix, std::string_view after,
                                                 int limit) {
  const std::string collection_id = "r_" + std::string(collection);
  const std::string tenant = TenantDocument(call.tenant);
  auto docs = RunQuery(tenant,
                       RangeQuery(collection_id, tenant + "/" + collection_id + "/", prefix, after,
                                  static_cast<std::size_t>(limit) + 1),
                       call.deadline, nullptr);
  if (!docs) return docs.error();
  RecordPage page;
  for (const Document& doc : *docs) {
    auto id = firestore::DocumentIdToKey(LastSegment(doc.name));
    auto value = ReadString(doc.fields, "value");
    auto version = ReadInteger(doc.fields, "version");
    if (!id || !value || !version) continue;  // not written by Orchestra
    if (static_cast<int>(page.records.size()) == limit) {
      page.next_cursor = page.records.back().id;
      break;
    }
    page.records.push_back(Record{std::move(*id), std::move(*value), *version});
  }
  return page;
}

Result<std::vector<Change>> FirestoreBackend::ChangesSince(Deadline deadline, std::int64_t sequence,
                                                           int limit) {
  const std::string log = LogDocument();
  json::object query{
      {"from", json::array{json::object{{"collectionId", "changes"}}}},
      {"orderBy", json::array{json::object{{"field", json::object{{"fieldPath", "__name__"}}},
                                           {"direction", "ASCENDING"}}}},
      {"limit", limit + 1}};
  // From the reader's own entry on (inclusive), to tell whether it is still there.
  if (sequence > 0) query["startAt"] = Cursor(log + "/changes/" + SequenceId(sequence), true);
  auto docs = RunQuery(log, std::move(query), deadline, nullptr);
  if (!docs) return docs.error();
  std::vector<Change> out;
  bool first = true;
  for (const Document& doc : *docs) {
    auto seq = ParseSequenceId(LastSegment(doc.name));
    if (!seq) continue;
    if (first && sequence > 0) {
      first = false;
      if (*seq != sequence) return ChangeLogGap(sequence);
      continue;
    }
    first = false;
    if (static_cast<int>(out.size()) == limit) break;
    Change change;
    change.sequence = *seq;
    change.tenant = ReadString(doc.fields, "tenant").value_or("");
    change.collection = ReadString(doc.fields, "collection").value_or("");
    change.id = ReadString(doc.fields, "id").value_or("");
    if (const json::object* d = Field(doc.fields, "deleted")) {
      const json::value* b = d->if_contains("booleanValue");
      change.deleted = b != nullptr && b->is_bool() && b->as_bool();
    }
    out.push_back(std::move(change));
  }
  if (first && sequence > 0) return ChangeLogGap(sequence);
  return out;
}

Result<std::int64_t> FirestoreBackend::LatestSequence(Deadline deadline) {
  auto docs = BatchGet({LogDocument()}, {"sequence"}, deadline, nullptr);
  if (!docs) return docs.error();
  const auto& head = docs->front();
  return head ? ReadInteger(head->fields, "sequence").value_or(0) : std::int64_t{0};
}

Result<std::uint64_t> FirestoreBackend::PruneChanges(Deadline deadline,
                                                     std::chrono::milliseconds retention) {
  const std::string log = LogDocument();
  std::uint64_t removed = 0;
  for (;;) {
    // The newest entry (the head's sequence) always stays.
    auto newest = LatestSequence(deadline);
    if (!newest) return newest.error();
    json::object query = NameOnlyQuery("changes");
    query["select"] = json::object{{"fields", json::array{json::object{{"fieldPath", "at"}}}}};
    query["limit"] = kPruneBatch;
    // Entries are stamped with Firestore's time: compare with its time of this read.
    SystemClock::time_point read_time = SystemClock::now();
    auto docs = RunQuery(log, std::move(query), deadline, &read_time);
    if (!docs) return docs.error();
    const auto cutoff = read_time - retention;
    json::array deletes;
    bool done = docs->size() < static_cast<std::size_t>(kPruneBatch);
    for (const Document& doc : *docs) {
      auto seq = ParseSequenceId(LastSegment(doc.name));
      const auto at = ReadTimestamp(doc.fields, "at");
      if (!seq || !at) continue;
      if (*seq >= *newest || *at >= cutoff) {
        done = true;
        break;
      }
      deletes.emplace_back(json::object{{"delete", doc.name}});
    }
    if (!deletes.empty()) {
      const std::size_t count = deletes.size();
      auto reply = Commit(std::move(deletes), deadline, true);
      if (!reply) return reply.error();
      if (!reply->ok()) return Failure(*reply, "pruning the change log");
      removed += count;
    }
    if (done || deletes.empty() || Clock::now() >= deadline) return removed;
  }
}

Result<std::vector<double>> FirestoreBackend::AddCounter(
    const Call& call, std::string_view collection, std::string_view id,
    const std::vector<std::pair<std::string, double>>& deltas) {
  json::array transforms;
  for (const auto& [field, delta] : deltas) {
    transforms.emplace_back(json::object{{"fieldPath", CounterFieldPath(field)},
                                         {"increment", json::object{{"doubleValue", delta}}}});
  }
  // One write: the increments are applied by Firestore, atomically, creating the counter.
  json::array writes{
      json::object{{"update", json::object{{"name", CounterDocument(call.tenant, collection, id)}}},
                   {"updateMask", json::object{{"fieldPaths", json::array{}}}},
                   {"updateTransforms", std::move(transforms)}}};
  for (int attempt = 0;; ++attempt) {
    // Not retried by the transport (an addition whose answer was lost may have been applied),
    // but ABORTED says it was not.
    auto reply = Commit(writes, call.deadline, false);
    if (!reply) return reply.error();
    if (reply->status == "ABORTED" && Backoff(attempt, call.deadline)) continue;
    if (!reply->ok()) return Failure(*reply, "adding to a counter");
    const json::value* results = nullptr;
    if (reply->body.is_object()) {
      const json::value* write_results = reply->body.as_object().if_contains("writeResults");
      if (write_results != nullptr && write_results->is_array() &&
          !write_results->as_array().empty() && write_results->as_array()[0].is_object()) {
        results = write_results->as_array()[0].as_object().if_contains("transformResults");
      }
    }
    if (results == nullptr || !results->is_array() || results->as_array().size() != deltas.size()) {
      return Internal("a counter's commit did not return its values");
    }
    std::vector<double> out;
    for (const json::value& v : results->as_array()) {
      auto number = ReadNumber(v);
      if (!number) return Internal("a counter's commit returned a value that is not a number");
      out.push_back(*number);
    }
    return out;
  }
}

Result<CounterPage> FirestoreBackend::ListCounters(const Call& call, std::string_view collection,
                                                   std::string_view prefix, std::string_view after,
                                                   int limit) {
  const std::string collection_id = "c_" + std::string(collection);
  const std::string tenant = TenantDocument(call.tenant);
  auto docs = RunQuery(tenant,
                       RangeQuery(collection_id, tenant + "/" + collection_id + "/", prefix, after,
                                  static_cast<std::size_t>(limit) + 1),
                       call.deadline, nullptr);
  if (!docs) return docs.error();
  CounterPage page;
  for (const Document& doc : *docs) {
    auto id = firestore::DocumentIdToKey(LastSegment(doc.name));
    if (!id) continue;
    if (static_cast<int>(page.counters.size()) == limit) {
      page.next_cursor = page.counters.back().id;
      break;
    }
    Counter counter{std::move(*id), {}};
    if (const json::object* map = Field(doc.fields, "fields")) {
      const json::value* m = map->if_contains("mapValue");
      const json::value* f =
          m != nullptr && m->is_object() ? m->as_object().if_contains("fields") : nullptr;
      if (f != nullptr && f->is_object()) {
        for (const auto& [name, value] : f->as_object()) {
          if (auto number = ReadNumber(value))
            counter.fields.emplace_back(std::string(name), *number);
        }
      }
    }
    std::sort(counter.fields.begin(), counter.fields.end());
    page.counters.push_back(std::move(counter));
  }
  return page;
}

}  // namespace orchestra::storage
