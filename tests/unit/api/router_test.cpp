#include "api/router.hpp"

#include <gtest/gtest.h>

namespace orchestra::api {
namespace {

RouteHandler Noop() {
  return [](RequestContext&) -> boost::asio::awaitable<void> { co_return; };
}

class RouterTest : public testing::Test {
 protected:
  void SetUp() override {
    router.Add(http::verb::get, "/healthz", Noop(), Access::kPublic);
    router.Add(http::verb::post, "/memory/store", Noop());
    router.Add(http::verb::delete_, "/memory/{key}", Noop());
    router.Add(http::verb::get, "/checkpoints/{agent_id}", Noop());
    router.Add(http::verb::delete_, "/checkpoints/{agent_id}/{checkpoint_id}", Noop());
    router.Add(http::verb::post, "/v1/chat/completions", Noop());
  }
  Router router;
};

struct Case {
  http::verb method;
  const char* path;
  RouteMatch::Kind kind;
  const char* pattern_or_allow;
};

TEST_F(RouterTest, MatchesTheTable) {
  const Case cases[] = {
      {http::verb::get, "/healthz", RouteMatch::Kind::kFound, "/healthz"},
      {http::verb::head, "/healthz", RouteMatch::Kind::kFound, "/healthz"},
      {http::verb::post, "/healthz", RouteMatch::Kind::kMethodNotAllowed, "GET, HEAD"},
      {http::verb::get, "/healthz/", RouteMatch::Kind::kNotFound, ""},
      {http::verb::get, "/nope", RouteMatch::Kind::kNotFound, ""},
      {http::verb::delete_, "/memory/abc", RouteMatch::Kind::kFound, "/memory/{key}"},
      {http::verb::get, "/memory/abc", RouteMatch::Kind::kMethodNotAllowed, "DELETE"},
      {http::verb::delete_, "/memory/", RouteMatch::Kind::kNotFound, ""},
      {http::verb::delete_, "/memory/a/b", RouteMatch::Kind::kNotFound, ""},
      // DELETE /memory/store deletes the key "store", so both methods are allowed.
      {http::verb::get, "/memory/store", RouteMatch::Kind::kMethodNotAllowed, "POST, DELETE"},
      {http::verb::get, "/checkpoints/agent-1", RouteMatch::Kind::kFound,
       "/checkpoints/{agent_id}"},
      {http::verb::delete_, "/checkpoints/a/c1", RouteMatch::Kind::kFound,
       "/checkpoints/{agent_id}/{checkpoint_id}"},
      {http::verb::post, "/v1/chat/completions", RouteMatch::Kind::kFound, "/v1/chat/completions"},
  };
  for (const Case& c : cases) {
    RouteMatch m = router.Match(c.method, c.path);
    EXPECT_EQ(m.kind, c.kind) << c.path;
    if (c.kind == RouteMatch::Kind::kFound) {
      ASSERT_NE(m.route, nullptr);
      EXPECT_EQ(m.route->pattern, c.pattern_or_allow) << c.path;
    } else if (c.kind == RouteMatch::Kind::kMethodNotAllowed) {
      EXPECT_EQ(m.allow, c.pattern_or_allow) << c.path;
    }
  }
}

TEST_F(RouterTest, DecodesPathParameters) {
  RouteMatch m = router.Match(http::verb::delete_, "/checkpoints/agent%201/ck%2F2");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  ASSERT_EQ(m.params.size(), 2u);
  EXPECT_EQ(m.params[0].name, "agent_id");
  EXPECT_EQ(m.params[0].value, "agent 1");
  EXPECT_EQ(m.params[1].value, "ck/2");
}

TEST_F(RouterTest, RejectsDuplicateAndMalformedPatterns) {
  EXPECT_THROW(router.Add(http::verb::get, "/healthz", Noop()), std::invalid_argument);
  EXPECT_THROW(router.Add(http::verb::get, "nope", Noop()), std::invalid_argument);
  EXPECT_THROW(router.Add(http::verb::get, "/a{b}", Noop()), std::invalid_argument);
}

TEST_F(RouterTest, AMalformedPathParameterIsABadParameterNotALiteral) {
  RouteMatch m = router.Match(http::verb::delete_, "/memory/%zz");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kBadParameter);
  EXPECT_EQ(m.bad_param, "key");
  EXPECT_EQ(router.Match(http::verb::delete_, "/memory/%").kind, RouteMatch::Kind::kBadParameter);
  m = router.Match(http::verb::delete_, "/memory/a%20b+c");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.params.at(0).value, "a b+c");  // '+' is literal in a path
}

}  // namespace
}  // namespace orchestra::api
