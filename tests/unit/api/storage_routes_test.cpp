// The memory and checkpoint handlers against in-memory stores: request decoding, the exact bytes
// that reach the store, response encoding, and that bad input never reaches a store.
#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "api/checkpoints.hpp"
#include "api/context.hpp"
#include "api/memory.hpp"
#include "storage/checkpoint_id.hpp"
#include "storage/glob.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using std::chrono::milliseconds;

// --- Fakes -------------------------------------------------------------------------------------

class FakeExchange final : public net::Exchange {
 public:
  explicit FakeExchange(net::Request request) : request_(request) {}
  const net::Request& request() const override { return request_; }
  net::Response& response() override { return response_; }
  std::string TakeBody() override { return {}; }
  asio::awaitable<bool> BeginStream(std::string_view) override { co_return false; }
  asio::awaitable<bool> WriteChunk(std::string_view) override { co_return false; }
  asio::awaitable<void> EndStream() override { co_return; }
  bool streaming() const override { return false; }
  void WatchClientDisconnect() override {}
  bool client_gone() const override { return false; }
  std::uint64_t bytes_written() const override { return 0; }
  int worker_index() const override { return 0; }

 private:
  net::Request request_;
  net::Response response_;
};

// Holds entries per tenant and records what it was asked.
class FakeKv final : public storage::KvStore {
 public:
  struct StoreCall {
    std::string tenant, key, value;
    std::optional<milliseconds> ttl;
  };
  struct ListCall {
    std::string pattern;
    int limit;
    std::string cursor;
  };

  asio::awaitable<Result<void>> Store(std::string_view tenant, std::string_view key,
                                      std::string_view value,
                                      std::optional<milliseconds> ttl) override {
    ++calls;
    stores.push_back({std::string(tenant), std::string(key), std::string(value), ttl});
    Result<void> out;
    if (fail) {
      out = *fail;
    } else {
      data[std::string(tenant)][std::string(key)] = std::string(value);
    }
    co_return out;
  }
  asio::awaitable<Result<std::optional<std::string>>> Retrieve(std::string_view tenant,
                                                               std::string_view key) override {
    ++calls;
    if (fail) co_return *fail;
    auto& m = data[std::string(tenant)];
    auto it = m.find(std::string(key));
    co_return it == m.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  asio::awaitable<Result<bool>> Delete(std::string_view tenant, std::string_view key) override {
    ++calls;
    deleted_keys.emplace_back(key);
    if (fail) co_return *fail;
    co_return data[std::string(tenant)].erase(std::string(key)) > 0;
  }
  asio::awaitable<Result<bool>> Exists(std::string_view tenant, std::string_view key) override {
    ++calls;
    co_return data[std::string(tenant)].contains(std::string(key));
  }
  asio::awaitable<Result<storage::KeyPage>> ListKeys(std::string_view tenant,
                                                     std::string_view pattern, int limit,
                                                     std::string_view cursor) override {
    ++calls;
    lists.push_back({std::string(pattern), limit, std::string(cursor)});
    if (fail) co_return *fail;
    auto glob = storage::Glob::Parse(pattern);
    if (!glob) co_return glob.error();
    storage::KeyPage page;
    for (const auto& [key, value] : data[std::string(tenant)]) {
      if (key <= std::string(cursor) || !glob->Matches(key)) continue;
      if (page.keys.size() == static_cast<std::size_t>(limit)) {
        page.next_cursor = page.keys.back();
        break;
      }
      page.keys.push_back(key);
    }
    co_return page;
  }

  std::map<std::string, std::map<std::string, std::string>> data;
  std::vector<StoreCall> stores;
  std::vector<ListCall> lists;
  std::vector<std::string> deleted_keys;
  std::optional<Error> fail;
  int calls = 0;
};

class FakeCheckpoints final : public storage::CheckpointStore {
 public:
  struct CreateCall {
    std::string tenant, agent_id, state;
    std::optional<std::string> metadata;
  };

  asio::awaitable<Result<std::string>> Create(std::string_view tenant, std::string_view agent_id,
                                              std::string_view state,
                                              std::optional<std::string_view> metadata) override {
    ++calls;
    creates.push_back({std::string(tenant), std::string(agent_id), std::string(state),
                       metadata ? std::optional<std::string>(*metadata) : std::nullopt});
    const std::string id = storage::NewCheckpointId(now);
    storage::Checkpoint c{{id, storage::CheckpointIdTime(id),
                           metadata ? std::optional<std::string>(*metadata) : std::nullopt},
                          std::string(state)};
    agents[Key(tenant, agent_id)].push_back(std::move(c));
    co_return id;
  }
  asio::awaitable<Result<std::optional<storage::Checkpoint>>> Restore(
      std::string_view tenant, std::string_view agent_id,
      std::optional<std::string_view> checkpoint_id) override {
    ++calls;
    restored_ids.push_back(checkpoint_id ? std::optional<std::string>(*checkpoint_id)
                                         : std::nullopt);
    const auto& list = agents[Key(tenant, agent_id)];
    if (list.empty()) co_return std::nullopt;
    if (!checkpoint_id) co_return list.back();
    for (const auto& c : list) {
      if (c.info.id == *checkpoint_id) co_return c;
    }
    co_return std::nullopt;
  }
  asio::awaitable<Result<std::vector<storage::CheckpointInfo>>> List(
      std::string_view tenant, std::string_view agent_id) override {
    ++calls;
    std::vector<storage::CheckpointInfo> out;
    for (const auto& c : agents[Key(tenant, agent_id)])
      out.push_back(c.info);
    co_return out;
  }
  asio::awaitable<Result<bool>> Delete(std::string_view tenant, std::string_view agent_id,
                                       std::string_view checkpoint_id) override {
    ++calls;
    auto& list = agents[Key(tenant, agent_id)];
    const auto before = list.size();
    std::erase_if(list, [&](const storage::Checkpoint& c) { return c.info.id == checkpoint_id; });
    co_return list.size() != before;
  }

  static std::string Key(std::string_view tenant, std::string_view agent) {
    return std::string(tenant) + '\0' + std::string(agent);
  }

  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  std::map<std::string, std::vector<storage::Checkpoint>> agents;
  std::vector<CreateCall> creates;
  std::vector<std::optional<std::string>> restored_ids;
  int calls = 0;
};

// --- Harness -----------------------------------------------------------------------------------

struct Reply {
  unsigned status = 0;
  std::string body;

  json::object Json() const {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    EXPECT_FALSE(ec) << body;
    EXPECT_TRUE(v.is_object()) << body;
    return v.is_object() ? v.as_object() : json::object();
  }
  // The error's param ("" for null), after checking the one error shape.
  std::string Param() const {
    json::object top = Json();
    EXPECT_EQ(top.size(), 1u) << body;
    if (!top.contains("error")) return "<no error>";
    const json::object& e = top.at("error").as_object();
    EXPECT_TRUE(e.at("message").is_string()) << body;
    EXPECT_TRUE(e.at("type").is_string()) << body;
    EXPECT_TRUE(e.at("code").is_string()) << body;
    return e.at("param").is_null() ? "" : std::string(e.at("param").as_string());
  }
};

class StorageRoutes : public ::testing::Test {
 protected:
  StorageRoutes() {
    AddMemoryRoutes(router_, kv_);
    AddCheckpointRoutes(router_, checkpoints_);
  }

  Reply Call(http::verb method, std::string_view target, std::string body = {},
             const std::string& tenant = "app") {
    http::request<http::string_body> message{method, target, 11};
    message.body() = std::move(body);
    net::Request request;
    request.method = method;
    request.method_name = http::to_string(method);
    request.target = target;
    const auto q = target.find('?');
    request.path = target.substr(0, q);
    request.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    request.message = &message;
    FakeExchange exchange(request);
    RouteMatch match = router_.Match(method, request.path);
    EXPECT_EQ(match.kind, RouteMatch::Kind::kFound) << target;
    if (match.kind != RouteMatch::Kind::kFound) return {};
    const auth::Principal principal{tenant, true, false};
    const observability::TraceContext trace{};
    RequestContext ctx(nullptr, exchange, *match.route, std::move(match.params), "test", trace,
                       principal);
    asio::io_context io;
    std::exception_ptr failure;
    asio::co_spawn(io, match.route->handler(ctx), [&](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) std::rethrow_exception(failure);
    return {exchange.response().status, exchange.response().body};
  }
  Reply Post(std::string_view target, std::string body, const std::string& tenant = "app") {
    return Call(http::verb::post, target, std::move(body), tenant);
  }

  Router router_;
  FakeKv kv_;
  FakeCheckpoints checkpoints_;
};

// --- Memory ------------------------------------------------------------------------------------

TEST_F(StorageRoutes, StoredValuesComeBackByteForByte) {
  const std::string values[] = {
      R"({ "b": [1, 2.50, 1e3],  "a" : {"nested": true} })",
      R"([])",
      R"("text with \"quotes\", \u00e9 and é")",
      "-0.0",
      "null",
      "false",
      R"({"emoji":"😀","escaped":"\ud83d\ude00"})",
  };
  for (const std::string& value : values) {
    auto stored = Post("/memory/store", R"({"key":"k","value":)" + value + "}");
    ASSERT_EQ(stored.status, 200u) << stored.body;
    EXPECT_EQ(stored.body, R"({"stored":true,"key":"k","success":true})");
    EXPECT_EQ(kv_.stores.back().value, value);
    auto got = Post("/memory/retrieve", R"({"key":"k"})");
    EXPECT_EQ(got.status, 200u);
    EXPECT_EQ(got.body, R"({"key":"k","value":)" + value + R"(,"exists":true})");
    got.Json();  // valid JSON
  }
}

TEST_F(StorageRoutes, MissingEntryIsAnAnswerNotAnError) {
  auto got = Post("/memory/retrieve", R"({"key":"absent"})");
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, R"({"key":"absent","value":null,"exists":false})");
  auto deleted = Call(http::verb::delete_, "/memory/absent");
  EXPECT_EQ(deleted.status, 200u);
  EXPECT_EQ(deleted.body, R"({"deleted":false,"key":"absent","success":true})");
}

TEST_F(StorageRoutes, KeysAreUnescapedOnTheWayInAndEscapedOnTheWayOut) {
  ASSERT_EQ(Post("/memory/store", R"({"key":"a\"b\\c\u00e9\n","value":1})").status, 200u);
  EXPECT_EQ(kv_.stores.back().key, "a\"b\\cé\n");
  auto got = Post("/memory/retrieve", R"({"key":"a\"b\\c\u00e9\n"})");
  EXPECT_EQ(got.Json().at("key").as_string(), "a\"b\\cé\n");
  auto list = Call(http::verb::get, "/memory/keys");
  EXPECT_EQ(list.Json().at("keys").as_array().at(0).as_string(), "a\"b\\cé\n");
  // Path keys are percent-decoded.
  auto deleted = Call(http::verb::delete_, "/memory/a%22b%5Cc%C3%A9%0A");
  EXPECT_EQ(deleted.Json().at("deleted"), true);
  EXPECT_EQ(kv_.deleted_keys.back(), "a\"b\\cé\n");
}

TEST_F(StorageRoutes, TtlIsSecondsRoundedUpToTheMillisecond) {
  struct Case {
    std::string ttl;
    std::optional<milliseconds> expected;
  };
  const Case cases[] = {{"1", milliseconds(1000)},         {"2.5", milliseconds(2500)},
                        {"0.0001", milliseconds(1)},       {"1e2", milliseconds(100000)},
                        {"86400", milliseconds(86400000)}, {"null", std::nullopt}};
  for (const Case& c : cases) {
    auto r = Post("/memory/store", R"({"key":"k","value":1,"ttl":)" + c.ttl + "}");
    ASSERT_EQ(r.status, 200u) << c.ttl << ": " << r.body;
    EXPECT_EQ(kv_.stores.back().ttl, c.expected) << c.ttl;
  }
  ASSERT_EQ(Post("/memory/store", R"({"value":1,"key":"k"})").status, 200u);
  EXPECT_EQ(kv_.stores.back().ttl, std::nullopt);
}

TEST_F(StorageRoutes, BadStoreRequestsAre400NamingTheFieldAndReachNoStore) {
  struct Case {
    std::string body;
    std::string param;  // "" = null
  };
  const Case cases[] = {
      {"", ""},
      {"   ", ""},
      {"[]", ""},
      {R"("key")", ""},
      {"{", ""},
      {R"({"key":"a","value":1} x)", ""},
      {R"({"key":"a","value":01})", ""},
      {R"({"key":"a","value":[1,]})", ""},
      {R"({"key":"a","value":"tab	inside"})", ""},
      {"{\"key\":\"a\",\"value\":\"\xff\"}", ""},          // not UTF-8
      {"{\"key\":\"a\",\"value\":\"\xed\xa0\x80\"}", ""},  // an encoded surrogate
      {R"({"value":1})", "key"},
      {R"({"key":null,"value":1})", "key"},
      {R"({"key":1,"value":1})", "key"},
      {R"({"key":["a"],"value":1})", "key"},
      {R"({"key":"a"})", "value"},
      {R"({"key":"a","value":1,"ttl":"60"})", "ttl"},
      {R"({"key":"a","value":1,"ttl":0})", "ttl"},
      {R"({"key":"a","value":1,"ttl":-5})", "ttl"},
      {R"({"key":"a","value":1,"ttl":4e9})", "ttl"},
      {R"({"key":"a","value":1,"ttl":1e400})", "ttl"},
      {R"({"key":"a","value":1,"ttl":true})", "ttl"},
      {R"({"key":"a","value":1,"tll":5})", "tll"},
      {R"({"key":"a","key":"b","value":1})", "key"},
      {R"({"key":"a","value":1,"value":2})", "value"},
  };
  for (const Case& c : cases) {
    auto r = Post("/memory/store", c.body);
    EXPECT_EQ(r.status, 400u) << c.body << " → " << r.body;
    EXPECT_EQ(r.Param(), c.param) << c.body;
  }
  EXPECT_EQ(kv_.calls, 0);
}

TEST_F(StorageRoutes, UnknownFieldNamesAreCutInErrors) {
  auto r = Post("/memory/store", R"({"key":"a","value":1,")" + std::string(1000, 'x') + R"(":1})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.Param(), std::string(64, 'x'));
}

TEST_F(StorageRoutes, StoreErrorsKeepTheirStatusAndParam) {
  kv_.fail = Error(ErrorCode::kPayloadTooLarge, "value is too large", "value");
  auto big = Post("/memory/store", R"({"key":"a","value":"xxxx"})");
  EXPECT_EQ(big.status, 413u);
  EXPECT_EQ(big.Param(), "value");
  kv_.fail = Error(ErrorCode::kUnavailable, "storage down");
  auto down = Post("/memory/retrieve", R"({"key":"a"})");
  EXPECT_EQ(down.status, 503u);
  EXPECT_EQ(down.Param(), "");
}

TEST_F(StorageRoutes, EntriesBelongToTheCallersTenant) {
  ASSERT_EQ(Post("/memory/store", R"({"key":"k","value":"mine"})", "alice").status, 200u);
  EXPECT_EQ(kv_.stores.back().tenant, "alice");
  EXPECT_EQ(Post("/memory/retrieve", R"({"key":"k"})", "bob").Json().at("exists"), false);
  EXPECT_EQ(Post("/memory/retrieve", R"({"key":"k"})", "alice").Json().at("exists"), true);
}

TEST_F(StorageRoutes, KeysQueryIsDecodedAndPassedThrough) {
  for (const char* key : {"user:1", "user:2", "user:3", "other", "with space"}) {
    ASSERT_EQ(Post("/memory/store", std::string(R"({"value":1,"key":")") + key + "\"}").status,
              200u);
  }
  auto all = Call(http::verb::get, "/memory/keys");
  EXPECT_EQ(all.status, 200u);
  EXPECT_EQ(kv_.lists.back().pattern, "");
  EXPECT_EQ(kv_.lists.back().limit, 100);
  EXPECT_EQ(kv_.lists.back().cursor, "");
  EXPECT_EQ(all.Json().at("keys").as_array().size(), 5u);
  EXPECT_TRUE(all.Json().at("next_cursor").is_null());
  EXPECT_EQ(all.Json().at("pattern"), "*");  // AI Orchestra's default, echoed

  auto page = Call(http::verb::get, "/memory/keys?pattern=user%3A%2A&limit=2");
  EXPECT_EQ(kv_.lists.back().pattern, "user:*");
  EXPECT_EQ(page.body, R"({"keys":["user:1","user:2"],"next_cursor":"user:2","pattern":"user:*"})");
  auto next = Call(http::verb::get, "/memory/keys?limit=2&pattern=user:*&cursor=user%3A2");
  EXPECT_EQ(kv_.lists.back().cursor, "user:2");
  EXPECT_EQ(next.body, R"({"keys":["user:3"],"next_cursor":null,"pattern":"user:*"})");

  auto spaced = Call(http::verb::get, "/memory/keys?pattern=with+sp*&&");
  EXPECT_EQ(kv_.lists.back().pattern, "with sp*");
  EXPECT_EQ(spaced.body, R"({"keys":["with space"],"next_cursor":null,"pattern":"with sp*"})");
  Call(http::verb::get, "/memory/keys?pattern=&cursor=&limit=1000");
  EXPECT_EQ(kv_.lists.back().limit, 1000);
}

TEST_F(StorageRoutes, BadKeysQueriesAre400NamingTheParameter) {
  struct Case {
    std::string query;
    std::string param;
  };
  const Case cases[] = {
      {"limit=0", "limit"},
      {"limit=1001", "limit"},
      {"limit=-1", "limit"},
      {"limit=+5", "limit"},
      {"limit=5x", "limit"},
      {"limit=", "limit"},
      {"limit", "limit"},
      {"limit=99999999999", "limit"},
      {"patern=*", "patern"},
      {"pattern=a&pattern=b", "pattern"},
      {"pattern=%zz", "pattern"},
      {"cursor=%4", "cursor"},
      {"%=1", ""},
  };
  for (const Case& c : cases) {
    auto r = Call(http::verb::get, "/memory/keys?" + c.query);
    EXPECT_EQ(r.status, 400u) << c.query << " → " << r.body;
    EXPECT_EQ(r.Param(), c.param) << c.query;
  }
  EXPECT_EQ(kv_.calls, 0);
  // The pattern itself is checked by the store (here the fake parses it as the real one does).
  auto bad = Call(http::verb::get, "/memory/keys?pattern=%5Babc");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(bad.Param(), "pattern");
}

// --- Checkpoints -------------------------------------------------------------------------------

TEST_F(StorageRoutes, CheckpointsAreCreatedListedRestoredAndDeleted) {
  // 2024-02-29T23:59:59.007Z
  checkpoints_.now = std::chrono::system_clock::time_point(milliseconds(1709251199007));
  auto first = Post("/checkpoints/create",
                    R"({"agent_id":"agent-1","state":{"step": 1},"metadata":{"label":"start"}})");
  ASSERT_EQ(first.status, 200u) << first.body;
  const json::object created = first.Json();
  const std::string id1(created.at("checkpoint_id").as_string());
  EXPECT_TRUE(storage::IsCheckpointId(id1));
  EXPECT_EQ(created.at("agent_id"), "agent-1");
  EXPECT_EQ(created.at("created_at"), "2024-02-29T23:59:59.007Z");
  EXPECT_EQ(checkpoints_.creates.back().state, R"({"step": 1})");
  EXPECT_EQ(checkpoints_.creates.back().metadata, R"({"label":"start"})");
  EXPECT_EQ(checkpoints_.creates.back().tenant, "app");

  checkpoints_.now += std::chrono::seconds(1);
  auto second =
      Post("/checkpoints/create", R"({"agent_id":"agent-1","state":[2],"metadata":null})");
  ASSERT_EQ(second.status, 200u);
  const std::string id2(second.Json().at("checkpoint_id").as_string());
  EXPECT_EQ(checkpoints_.creates.back().metadata, std::nullopt);

  auto latest = Post("/checkpoints/restore", R"({"agent_id":"agent-1"})");
  EXPECT_EQ(latest.body,
            R"({"agent_id":"agent-1","checkpoint_id":")" + id2 +
                R"(","state":[2],"found":true,"created_at":"2024-03-01T00:00:00.007Z",)"
                R"("metadata":null})");
  EXPECT_EQ(checkpoints_.restored_ids.back(), std::nullopt);
  auto chosen =
      Post("/checkpoints/restore", R"({"agent_id":"agent-1","checkpoint_id":")" + id1 + "\"}");
  EXPECT_EQ(chosen.body,
            R"({"agent_id":"agent-1","checkpoint_id":")" + id1 +
                R"(","state":{"step": 1},"found":true,)"
                R"("created_at":"2024-02-29T23:59:59.007Z","metadata":{"label":"start"}})");
  EXPECT_EQ(checkpoints_.restored_ids.back(), id1);
  Post("/checkpoints/restore", R"({"agent_id":"agent-1","checkpoint_id":null})");
  EXPECT_EQ(checkpoints_.restored_ids.back(), std::nullopt);

  auto list = Call(http::verb::get, "/checkpoints/agent-1");
  EXPECT_EQ(list.body,
            R"({"agent_id":"agent-1","checkpoints":[{"checkpoint_id":")" + id1 +
                R"(","created_at":"2024-02-29T23:59:59.007Z","metadata":{"label":"start"},)"
                R"("timestamp":1709251199.007},)"
                R"({"checkpoint_id":")" +
                id2 +
                R"(","created_at":"2024-03-01T00:00:00.007Z","metadata":null,)"
                R"("timestamp":1709251200.007}]})");

  auto deleted = Call(http::verb::delete_, "/checkpoints/agent-1/" + id1);
  EXPECT_EQ(deleted.body, R"({"deleted":true,"agent_id":"agent-1","checkpoint_id":")" + id1 +
                              R"(","success":true})");
  auto again = Call(http::verb::delete_, "/checkpoints/agent-1/" + id1);
  EXPECT_EQ(again.Json().at("deleted"), false);
  auto gone =
      Post("/checkpoints/restore", R"({"agent_id":"agent-1","checkpoint_id":")" + id1 + "\"}");
  EXPECT_EQ(gone.body, R"({"agent_id":"agent-1","checkpoint_id":")" + id1 +
                           R"(","state":null,"found":false,"created_at":null,"metadata":null})");
}

TEST_F(StorageRoutes, AnAgentWithoutCheckpointsIsAnAnswer) {
  auto none = Post("/checkpoints/restore", R"({"agent_id":"nobody"})");
  EXPECT_EQ(none.status, 200u);
  EXPECT_EQ(none.body, R"({"agent_id":"nobody","checkpoint_id":null,"state":null,"found":false,)"
                       R"("created_at":null,"metadata":null})");
  auto list = Call(http::verb::get, "/checkpoints/nobody%2Fslash");
  EXPECT_EQ(list.status, 200u);
  EXPECT_EQ(list.body, R"({"agent_id":"nobody/slash","checkpoints":[]})");
}

TEST_F(StorageRoutes, BadCheckpointRequestsAre400NamingTheFieldAndReachNoStore) {
  struct Case {
    std::string target;
    std::string body;
    std::string param;
  };
  const Case cases[] = {
      {"/checkpoints/create", R"({"state":{}})", "agent_id"},
      {"/checkpoints/create", R"({"agent_id":7,"state":{}})", "agent_id"},
      {"/checkpoints/create", R"({"agent_id":"a"})", "state"},
      {"/checkpoints/create", R"({"agent_id":"a","state":{},"metadata":"note"})", "metadata"},
      {"/checkpoints/create", R"({"agent_id":"a","state":{},"metadata":[1]})", "metadata"},
      {"/checkpoints/create", R"({"agent_id":"a","state":{},"meta":{}})", "meta"},
      {"/checkpoints/create", R"({"agent_id":"a","state":{},"state":{}})", "state"},
      {"/checkpoints/create", R"({"agent_id":"a","state":})", ""},
      {"/checkpoints/restore", R"({})", "agent_id"},
      {"/checkpoints/restore", R"({"agent_id":"a","checkpoint_id":5})", "checkpoint_id"},
      {"/checkpoints/restore", R"({"agent_id":"a","state":{}})", "state"},
      {"/checkpoints/restore", R"(nope)", ""},
  };
  for (const Case& c : cases) {
    auto r = Post(c.target, c.body);
    EXPECT_EQ(r.status, 400u) << c.target << " " << c.body << " → " << r.body;
    EXPECT_EQ(r.Param(), c.param) << c.target << " " << c.body;
  }
  EXPECT_EQ(checkpoints_.calls, 0);
}

}  // namespace
}  // namespace orchestra::api
