#include "api/errors.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace orchestra::api {
namespace {

TEST(RenderError, UsesTheOneErrorShape) {
  net::Response r;
  RenderError(Error(ErrorCode::kInvalidRequest, "bad \"model\"", "model"), r);
  EXPECT_EQ(r.status, 400u);
  auto v = boost::json::parse(r.body).as_object();
  auto e = v["error"].as_object();
  EXPECT_EQ(e["message"], "bad \"model\"");
  EXPECT_EQ(e["type"], "invalid_request_error");
  EXPECT_EQ(e["code"], "invalid_request");
  EXPECT_EQ(e["param"], "model");
  EXPECT_EQ(v.size(), 1u);
}

TEST(RenderError, NullParamWhenThereIsNone) {
  net::Response r;
  RenderError(Error(ErrorCode::kUnauthenticated, "invalid API key"), r);
  EXPECT_EQ(r.status, 401u);
  auto e = boost::json::parse(r.body).at("error").as_object();
  EXPECT_TRUE(e["param"].is_null());
  EXPECT_EQ(e["type"], "authentication_error");
}

TEST(RenderError, WhatAModelCannotDoIs422) {
  net::Response r;
  RenderError(Error(ErrorCode::kUnprocessable, "cannot generate text", "messages"), r);
  EXPECT_EQ(r.status, 422u);
  auto e = boost::json::parse(r.body).at("error").as_object();
  EXPECT_EQ(e["type"], "invalid_request_error");
  EXPECT_EQ(e["code"], "unprocessable");
  EXPECT_EQ(e["param"], "messages");
}

TEST(RenderError, OverloadCarriesRetryAfter) {
  net::Response r;
  RenderError(Error(ErrorCode::kOverloaded, "busy"), r, 3);
  EXPECT_EQ(r.status, 503u);
  ASSERT_EQ(r.headers().size(), 1u);
  EXPECT_EQ(r.headers()[0].name, "Retry-After");
  EXPECT_EQ(r.headers()[0].value, "3");
}

TEST(HttpStatus, MapsUpstreamFailures) {
  auto upstream = [](int status) {
    Error e(ErrorCode::kUpstreamError, "x");
    e.upstream_status = status;
    return HttpStatus(e);
  };
  EXPECT_EQ(upstream(429), 429u);
  EXPECT_EQ(upstream(400), 400u);
  EXPECT_EQ(upstream(401), 502u);  // our provider key, not the client's fault
  EXPECT_EQ(upstream(500), 502u);
  EXPECT_EQ(HttpStatus(Error(ErrorCode::kUpstreamTimeout, "x")), 504u);
  EXPECT_EQ(HttpStatus(Error(ErrorCode::kHeadersTooLarge, "x")), 431u);
  EXPECT_EQ(HttpStatus(Error(ErrorCode::kPayloadTooLarge, "x")), 413u);
  EXPECT_EQ(HttpStatus(Error(ErrorCode::kUnsupportedMediaType, "x")), 415u);
  EXPECT_EQ(ErrorType(Error(ErrorCode::kUnsupportedMediaType, "x")), "invalid_request_error");
}

}  // namespace
}  // namespace orchestra::api
