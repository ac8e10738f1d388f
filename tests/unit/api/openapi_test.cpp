#include "api/openapi.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace orchestra::api {
namespace {

namespace json = boost::json;

RouteHandler Noop() {
  return [](RequestContext&) -> boost::asio::awaitable<void> { co_return; };
}

bool Has(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

json::object Operation(const json::value& doc, std::string_view path, std::string_view method) {
  return doc.at("paths").at(path).at(method).as_object();
}

TEST(OpenApi, ARegisteredRouteTheDescriptionLacksAppearsAsAStubAndIsReported) {
  Router router;
  router.Add(http::verb::get, "/v1/models", Noop());
  router.Add(http::verb::put, "/brand-new/{thing_id}/parts", Noop());
  OpenApiDocument doc = BuildOpenApi(router, "9.9.9");
  EXPECT_EQ(doc.undescribed, std::vector<std::string>{"PUT /brand-new/{thing_id}/parts"});
  const json::value v = json::parse(doc.json);
  EXPECT_EQ(v.at("info").at("version"), "9.9.9");
  const json::object stub = Operation(v, "/brand-new/{thing_id}/parts", "put");
  EXPECT_EQ(stub.at("x-orchestra-undescribed"), true);
  EXPECT_EQ(stub.at("parameters").at(0).at("name"), "thing_id");
  EXPECT_EQ(stub.at("parameters").at(0).at("in"), "path");
  EXPECT_FALSE(Operation(v, "/v1/models", "get").contains("x-orchestra-undescribed"));
}

TEST(OpenApi, SecurityFollowsEachRoutesAccess) {
  Router router;
  router.Add(http::verb::get, "/health", Noop(), Access::kPublic);
  router.Add(http::verb::post, "/memory/store", Noop(), Access::kUser);
  router.Add(http::verb::get, "/metrics", Noop(), Access::kAdmin);
  const json::value v = json::parse(BuildOpenApi(router, "1").json);
  EXPECT_TRUE(Operation(v, "/health", "get").at("security").as_array().empty());
  EXPECT_FALSE(Operation(v, "/health", "get").contains("x-orchestra-scope"));
  const json::object store = Operation(v, "/memory/store", "post");
  EXPECT_EQ(store.at("security"), (json::array{json::object{{"bearer", json::array()}}}));
  EXPECT_EQ(store.at("x-orchestra-scope"), "user");
  EXPECT_EQ(Operation(v, "/metrics", "get").at("x-orchestra-scope"), "admin");
}

// Routes being added by other changes are described and marked pending; the mark goes once the
// route is registered, and a described route that is neither served nor pending is reported.
TEST(OpenApi, PendingOperationsLoseTheirMarkWhenServedAndOthersAreReportedWhenNot) {
  Router router;
  router.Add(http::verb::post, "/utils/token_counter", Noop());
  OpenApiDocument doc = BuildOpenApi(router, "1");
  const json::value v = json::parse(doc.json);
  EXPECT_FALSE(Operation(v, "/utils/token_counter", "post").contains("x-orchestra-pending"));
  EXPECT_TRUE(Operation(v, "/admin/spend", "get").contains("x-orchestra-pending"));
  EXPECT_TRUE(doc.undescribed.empty());
  EXPECT_TRUE(Has(doc.not_served, "GET /v1/models"));
  EXPECT_TRUE(Has(doc.not_served, "DELETE /memory/{key}"));
  EXPECT_FALSE(Has(doc.not_served, "POST /utils/token_counter"));
  EXPECT_FALSE(Has(doc.not_served, "GET /admin/spend"));
  EXPECT_FALSE(Has(doc.not_served, "POST /models/versions/register"));
}

TEST(OpenApi, TheDescriptionIsAnOpenApi31DocumentAndCheapToBuild) {
  const json::value description = json::parse(OpenApiDescription());
  EXPECT_EQ(description.at("openapi"), "3.1.0");
  Router router;
  const auto start = std::chrono::steady_clock::now();
  OpenApiDocument doc = BuildOpenApi(router, "1");
  const auto took = std::chrono::steady_clock::now() - start;
  // A figure for start-up's budget, printed, never asserted (timing on shared machines is noise).
  std::cout << "BuildOpenApi: " << std::chrono::duration<double, std::micro>(took).count()
            << " us for " << doc.json.size() << " bytes\n";
  EXPECT_EQ(json::parse(doc.json).at("paths").as_object().size(),
            description.at("paths").as_object().size());
}

}  // namespace
}  // namespace orchestra::api
