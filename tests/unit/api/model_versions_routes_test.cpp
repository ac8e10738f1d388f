// The model version routes (AI Orchestra's shapes) over the versions service and an in-memory
// record store: request decoding with AI Orchestra's defaults, response encoding, admin scope,
// and every malformed request refused in the one error shape without writing anything.

#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "api/context.hpp"
#include "api/model_versions.hpp"
#include "support/memory_records.hpp"
#include "unit/orchestration/fake_provider.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

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

struct Reply {
  unsigned status = 0;
  std::string body;

  json::object Json() const {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    EXPECT_FALSE(ec) << body;
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

config::ModelConfig Model(std::string name, std::string upstream) {
  config::ModelConfig m;
  m.name = std::move(name);
  m.targets = {{"up", std::move(upstream), 1}};
  return m;
}

class ModelVersionRoutes : public ::testing::Test {
 protected:
  ModelVersionRoutes() {
    providers_["up"] = &up_;
    config_.models = {Model("chat", "configured-1"), Model("team/chat", "team-1")};
    routes_ = std::make_unique<orchestration::RouteTable>(config_, providers_, metrics_);
    service_ = std::make_unique<versions::Service>(records_, *routes_);
    AddModelVersionRoutes(router_, *service_);
  }

  Reply Call(http::verb method, std::string_view target, std::string body = {}) {
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
    const auth::Principal principal{"ops", false, true};
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
  Reply Post(std::string_view target, std::string body = {}) {
    return Call(http::verb::post, target, std::move(body));
  }
  std::int64_t Sequence() {
    asio::io_context io;
    std::int64_t out = -1;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { out = *co_await records_.LatestSequence(); },
        [](std::exception_ptr) {});
    io.run();
    return out;
  }
  std::vector<std::string> Plan(std::string_view model = "chat") {
    std::vector<std::string> out;
    for (const auto& t : routes_->FindPublic(model)->plan().targets) {
      out.push_back(t.target->label() + "=" + std::to_string(static_cast<int>(t.weight)));
    }
    return out;
  }

  orchestration::testing::FakeProvider up_{"up"};
  orchestration::ProviderMap providers_;
  observability::Registry registry_;
  orchestration::Metrics metrics_{registry_};
  config::Config config_;
  testing::MemoryRecords records_;
  std::unique_ptr<orchestration::RouteTable> routes_;
  std::unique_ptr<versions::Service> service_;
  Router router_;
};

TEST_F(ModelVersionRoutes, EveryRouteNeedsTheAdminScope) {
  ASSERT_EQ(router_.routes().size(), 6u);
  for (const auto& route : router_.routes())
    EXPECT_EQ(route->access, Access::kAdmin) << route->pattern;
}

TEST_F(ModelVersionRoutes, AIOrchestrasRequestsAsItsClientsSendThem) {
  // ModelVersionRegisterRequest: every field is required there.
  Reply registered = Post("/models/versions/register",
                          R"({"model_id":"chat","version":"v1","endpoint":"up/blue-1",)"
                          R"("capabilities":["text-generation"]})");
  ASSERT_EQ(registered.status, 200u) << registered.body;
  json::object r = registered.Json();
  EXPECT_EQ(r.at("model_id"), "chat");
  EXPECT_EQ(r.at("version"), "v1");
  EXPECT_EQ(r.at("endpoint"), "up/blue-1");
  EXPECT_EQ(r.at("capabilities"), json::array{"text-generation"});
  EXPECT_TRUE(r.at("created_at").is_double());
  EXPECT_GT(r.at("created_at").as_double(), 1.7e9);
  ASSERT_EQ(Post("/models/versions/register",
                 R"({"model_id":"chat","version":"v2","endpoint":"up/green-1","capabilities":[]})")
                .status,
            200u);

  // BlueGreenDeploymentRequest with its default left out: green gets 0 %.
  Reply deployed = Post("/models/deployments/blue-green",
                        R"({"model_id":"chat","blue_version":"v1","green_version":"v2"})");
  ASSERT_EQ(deployed.status, 200u) << deployed.body;
  EXPECT_EQ(deployed.body, R"({"success":true})");
  EXPECT_EQ(Plan(), std::vector<std::string>{"up/blue-1=100"});

  Reply shifted = Post("/models/chat/traffic-shift?green_traffic_percentage=25");
  ASSERT_EQ(shifted.status, 200u) << shifted.body;
  EXPECT_EQ(shifted.body, R"({"success":true})");
  EXPECT_EQ(Plan(), (std::vector<std::string>{"up/blue-1=75", "up/green-1=25"}));

  Reply listed = Call(http::verb::get, "/models/chat/versions");
  ASSERT_EQ(listed.status, 200u) << listed.body;
  json::object l = listed.Json();
  EXPECT_EQ(l.at("model_id"), "chat");
  const json::array& versions = l.at("versions").as_array();
  ASSERT_EQ(versions.size(), 2u);
  for (const json::value& v : versions) {
    EXPECT_EQ(v.at("model_id"), "chat");
    for (const char* key : {"version", "endpoint", "capabilities", "created_at"})
      EXPECT_TRUE(v.as_object().contains(key)) << key;
  }
  EXPECT_EQ(versions[1].at("version"), "v2");
  EXPECT_EQ(l.at("deployment").at("state"), "blue_green");
  EXPECT_EQ(l.at("deployment").at("green_traffic_percentage"), 25);

  EXPECT_EQ(Post("/models/chat/promote-green").body, R"({"success":true})");
  EXPECT_EQ(Plan(), std::vector<std::string>{"up/green-1=1"});
  EXPECT_EQ(Post("/models/chat/rollback").body, R"({"success":true})");
  EXPECT_EQ(Plan(), std::vector<std::string>{"up/blue-1=1"});
  // A body sent with a POST that takes none is ignored, as FastAPI does.
  EXPECT_EQ(Post("/models/chat/promote-green", "{}").status, 200u);
}

TEST_F(ModelVersionRoutes, ModelNamesWithSlashesArePercentEncodedInThePath) {
  ASSERT_EQ(Post("/models/versions/register",
                 R"({"model_id":"team/chat","version":"a","endpoint":"up/x","capabilities":[]})")
                .status,
            200u);
  Reply listed = Call(http::verb::get, "/models/team%2Fchat/versions");
  ASSERT_EQ(listed.status, 200u) << listed.body;
  EXPECT_EQ(listed.Json().at("model_id"), "team/chat");
  EXPECT_EQ(listed.Json().at("deployment"), nullptr);
}

struct BadRequest {
  const char* name;
  http::verb method;
  std::string target;
  std::string body;
  unsigned status;
  const char* param;
};

TEST_F(ModelVersionRoutes, MalformedRequestsAreRefusedInTheErrorShapeAndWriteNothing) {
  ASSERT_EQ(Post("/models/versions/register",
                 R"({"model_id":"chat","version":"v1","endpoint":"up/a","capabilities":[]})")
                .status,
            200u);
  ASSERT_EQ(Post("/models/versions/register",
                 R"({"model_id":"chat","version":"v2","endpoint":"up/b","capabilities":[]})")
                .status,
            200u);
  ASSERT_EQ(Post("/models/deployments/blue-green",
                 R"({"model_id":"chat","blue_version":"v1","green_version":"v2",)"
                 R"("green_traffic_percentage":10})")
                .status,
            200u);
  const auto post = http::verb::post;
  const std::string reg = "/models/versions/register";
  const std::string bg = "/models/deployments/blue-green";
  const std::string deploy = R"({"model_id":"chat","blue_version":"v1","green_version":"v2",)";
  const BadRequest cases[] = {
      {"not JSON", post, reg, "{", 400, ""},
      {"not an object", post, reg, "[]", 400, ""},
      {"unknown member", post, reg,
       R"({"model_id":"chat","version":"v","endpoint":"up/a","color":"red"})", 400, "color"},
      {"no model_id", post, reg, R"({"version":"v","endpoint":"up/a"})", 400, "model_id"},
      {"no version", post, reg, R"({"model_id":"chat","endpoint":"up/a"})", 400, "version"},
      {"no endpoint", post, reg, R"({"model_id":"chat","version":"v"})", 400, "endpoint"},
      {"version a number", post, reg, R"({"model_id":"chat","version":2,"endpoint":"up/a"})", 400,
       "version"},
      {"capabilities a string", post, reg,
       R"({"model_id":"chat","version":"v","endpoint":"up/a","capabilities":"chat"})", 400,
       "capabilities"},
      {"capabilities of numbers", post, reg,
       R"({"model_id":"chat","version":"v","endpoint":"up/a","capabilities":[1]})", 400,
       "capabilities"},
      {"unknown model", post, reg, R"({"model_id":"nope","version":"v","endpoint":"up/a"})", 404,
       "model_id"},
      {"unknown provider", post, reg, R"({"model_id":"chat","version":"v","endpoint":"x/a"})", 400,
       "endpoint"},
      {"endpoint a URL", post, reg,
       R"({"model_id":"chat","version":"v","endpoint":"http://169.254.169.254/"})", 400,
       "endpoint"},
      {"percentage a string", post, bg, deploy + R"("green_traffic_percentage":"50"})", 400,
       "green_traffic_percentage"},
      {"percentage a fraction", post, bg, deploy + R"("green_traffic_percentage":50.5})", 400,
       "green_traffic_percentage"},
      {"percentage negative", post, bg, deploy + R"("green_traffic_percentage":-1})", 400,
       "green_traffic_percentage"},
      {"percentage over 100", post, bg, deploy + R"("green_traffic_percentage":101})", 400,
       "green_traffic_percentage"},
      {"percentage huge", post, bg, deploy + R"("green_traffic_percentage":1e300})", 400,
       "green_traffic_percentage"},
      {"no blue", post, bg, R"({"model_id":"chat","green_version":"v2"})", 400, "blue_version"},
      {"unknown blue", post, bg, R"({"model_id":"chat","blue_version":"v9","green_version":"v2"})",
       404, "blue_version"},
      {"unknown green", post, bg, R"({"model_id":"chat","blue_version":"v1","green_version":"v9"})",
       404, "green_version"},
      {"deploy unknown model", post, bg,
       R"({"model_id":"nope","blue_version":"v1","green_version":"v2"})", 404, "model_id"},
      {"shift without query", post, "/models/chat/traffic-shift", "", 400,
       "green_traffic_percentage"},
      {"shift empty value", post, "/models/chat/traffic-shift?green_traffic_percentage=", "", 400,
       "green_traffic_percentage"},
      {"shift not a number", post, "/models/chat/traffic-shift?green_traffic_percentage=half", "",
       400, "green_traffic_percentage"},
      {"shift a fraction", post, "/models/chat/traffic-shift?green_traffic_percentage=50.0", "",
       400, "green_traffic_percentage"},
      {"shift over 100", post, "/models/chat/traffic-shift?green_traffic_percentage=101", "", 400,
       "green_traffic_percentage"},
      {"shift negative", post, "/models/chat/traffic-shift?green_traffic_percentage=-5", "", 400,
       "green_traffic_percentage"},
      {"shift twice", post,
       "/models/chat/traffic-shift?green_traffic_percentage=5&green_traffic_percentage=6", "", 400,
       "green_traffic_percentage"},
      {"shift typo", post, "/models/chat/traffic-shift?green_traffic_percent=5", "", 400,
       "green_traffic_percent"},
      {"shift unknown model", post, "/models/nope/traffic-shift?green_traffic_percentage=5", "",
       404, "model_id"},
      {"shift without deployment", post,
       "/models/team%2Fchat/traffic-shift?green_traffic_percentage=5", "", 409, ""},
      {"promote unknown model", post, "/models/nope/promote-green", "", 404, "model_id"},
      {"promote without deployment", post, "/models/team%2Fchat/promote-green", "", 409, ""},
      {"rollback without deployment", post, "/models/team%2Fchat/rollback", "", 409, ""},
      {"list unknown model", http::verb::get, "/models/nope/versions", "", 404, "model_id"},
  };
  const std::int64_t sequence = Sequence();
  const auto plan = Plan();
  for (const BadRequest& c : cases) {
    Reply r = Call(c.method, c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.body;
    EXPECT_EQ(r.Param(), c.param) << c.name << ": " << r.body;
    EXPECT_EQ(Sequence(), sequence) << c.name << " wrote to the store";
    EXPECT_EQ(Plan(), plan) << c.name;
  }
}

}  // namespace
}  // namespace orchestra::api
