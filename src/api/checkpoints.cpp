#include "api/checkpoints.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "api/context.hpp"
#include "api/memory.hpp"
#include "common/text.hpp"
#include "storage/checkpoint_id.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;

// Answers the error and returns true when `r` failed.
template <class T>
bool Failed(RequestContext& ctx, const Result<T>& r) {
  if (r) return false;
  ctx.Fail(r.error());
  return true;
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  AppendJsonEscaped(out, text);
  out += '"';
}

// "2025-01-31T12:34:56.789Z".
void AppendRfc3339(std::string& out, std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const auto seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(ms % 1000));
  out.append(buf, static_cast<std::size_t>(n));
}

// 1738326896.789: seconds since the epoch, to the millisecond.
void AppendEpochSeconds(std::string& out, std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000),
                              static_cast<long long>(ms % 1000));
  out.append(buf, static_cast<std::size_t>(n));
}

void AppendNullable(std::string& out, const std::optional<std::string>& json) {
  out += json ? std::string_view(*json) : std::string_view("null");
}

asio::awaitable<void> Create(storage::CheckpointStore& store, RequestContext& ctx) {
  auto body = JsonBody::Parse(ctx.request.body(), {"agent_id", "state", "metadata"});
  if (Failed(ctx, body)) co_return;
  auto agent_id = body->RequiredString("agent_id");
  if (Failed(ctx, agent_id)) co_return;
  auto state = body->RequiredValue("state");
  if (Failed(ctx, state)) co_return;
  auto metadata = body->OptionalObject("metadata");
  if (Failed(ctx, metadata)) co_return;
  auto id = co_await store.Create(ctx.tenant(), *agent_id, *state, *metadata);
  if (Failed(ctx, id)) co_return;
  std::string out = R"({"checkpoint_id":)";
  AppendJsonString(out, *id);
  out += R"(,"agent_id":)";
  AppendJsonString(out, *agent_id);
  out += R"(,"created_at":")";
  AppendRfc3339(out, storage::CheckpointIdTime(*id));
  out += "\"}";
  ctx.Json(std::move(out));
}

asio::awaitable<void> Restore(storage::CheckpointStore& store, RequestContext& ctx) {
  auto body = JsonBody::Parse(ctx.request.body(), {"agent_id", "checkpoint_id"});
  if (Failed(ctx, body)) co_return;
  auto agent_id = body->RequiredString("agent_id");
  if (Failed(ctx, agent_id)) co_return;
  auto wanted = body->OptionalString("checkpoint_id");
  if (Failed(ctx, wanted)) co_return;
  std::optional<std::string_view> id;
  if (*wanted) id = **wanted;
  auto restored = co_await store.Restore(ctx.tenant(), *agent_id, id);
  if (Failed(ctx, restored)) co_return;
  const std::optional<storage::Checkpoint>& found = *restored;
  std::string out;
  out.reserve(160 + agent_id->size() + (found ? found->state.size() : 0));
  out += R"({"agent_id":)";
  AppendJsonString(out, *agent_id);
  out += R"(,"checkpoint_id":)";
  if (found) {
    AppendJsonString(out, found->info.id);
  } else if (id) {
    AppendJsonString(out, *id);
  } else {
    out += "null";
  }
  if (found) {
    // States and metadata are JSON text validated when they were stored: inlined as they are.
    out += R"(,"state":)";
    out += found->state;
    out += R"(,"found":true,"created_at":")";
    AppendRfc3339(out, found->info.created_at);
    out += R"(","metadata":)";
    AppendNullable(out, found->info.metadata);
    out += '}';
  } else {
    out += R"(,"state":null,"found":false,"created_at":null,"metadata":null})";
  }
  ctx.Json(std::move(out));
}

asio::awaitable<void> List(storage::CheckpointStore& store, RequestContext& ctx) {
  const std::string_view agent_id = ctx.Param("agent_id");
  auto list = co_await store.List(ctx.tenant(), agent_id);
  if (Failed(ctx, list)) co_return;
  std::string out = R"({"agent_id":)";
  AppendJsonString(out, agent_id);
  out += R"(,"checkpoints":[)";
  for (std::size_t i = 0; i < list->size(); ++i) {
    const storage::CheckpointInfo& info = (*list)[i];
    out += i == 0 ? R"({"checkpoint_id":)" : R"(,{"checkpoint_id":)";
    AppendJsonString(out, info.id);
    out += R"(,"created_at":")";
    AppendRfc3339(out, info.created_at);
    out += R"(","metadata":)";
    AppendNullable(out, info.metadata);
    // AI Orchestra's creation time: seconds since the epoch.
    out += R"(,"timestamp":)";
    AppendEpochSeconds(out, info.created_at);
    out += '}';
  }
  out += "]}";
  ctx.Json(std::move(out));
}

asio::awaitable<void> Delete(storage::CheckpointStore& store, RequestContext& ctx) {
  const std::string_view agent_id = ctx.Param("agent_id");
  const std::string_view checkpoint_id = ctx.Param("checkpoint_id");
  auto deleted = co_await store.Delete(ctx.tenant(), agent_id, checkpoint_id);
  if (Failed(ctx, deleted)) co_return;
  std::string out = *deleted ? R"({"deleted":true,"agent_id":)" : R"({"deleted":false,"agent_id":)";
  AppendJsonString(out, agent_id);
  out += R"(,"checkpoint_id":)";
  AppendJsonString(out, checkpoint_id);
  // AI Orchestra's `success`: the delete completed (true whether or not the checkpoint existed).
  out += R"(,"success":true})";
  ctx.Json(std::move(out));
}

}  // namespace

void AddCheckpointRoutes(Router& router, storage::CheckpointStore& checkpoints) {
  router.Add(http::verb::post, "/checkpoints/create",
             [&checkpoints](RequestContext& ctx) { return Create(checkpoints, ctx); });
  router.Add(http::verb::post, "/checkpoints/restore",
             [&checkpoints](RequestContext& ctx) { return Restore(checkpoints, ctx); });
  router.Add(http::verb::get, "/checkpoints/{agent_id}",
             [&checkpoints](RequestContext& ctx) { return List(checkpoints, ctx); });
  router.Add(http::verb::delete_, "/checkpoints/{agent_id}/{checkpoint_id}",
             [&checkpoints](RequestContext& ctx) { return Delete(checkpoints, ctx); });
}

}  // namespace orchestra::api
