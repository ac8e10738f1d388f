#include "providers/openai/body_splice.hpp"

#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "wire/openai_scan.hpp"

namespace orchestra::providers {
namespace {

// The body an OpenAI-compatible upstream receives for a stream: model replaced, usage asked for.
std::string Spliced(const std::string& body, std::string_view upstream_model) {
  auto req = wire::openai::ScanChatRequest(body);
  EXPECT_TRUE(req) << req.error().message;
  const std::string model = JsonQuoted(upstream_model);
  Splice splices[] = {{req->model_begin, req->model_end, model}, IncludeUsage(*req)};
  net::OutgoingRequest out;
  AddSplicedBody(out, req->raw_body, splices);
  std::string sent;
  for (std::size_t i = 0; i < out.body_parts; ++i)
    sent += out.body[i];
  return sent;
}

TEST(BodySplice, ReplacesTheModelAndAsksForUsage) {
  for (
      const std::string body :
      {R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]} )",
       R"({"model":"m","stream":true,"stream_options":null,"messages":[{}]})",
       R"({"model":"m","stream":true,"stream_options":{},"messages":[{}]})",
       R"({"model":"m","stream":true,"stream_options":{"x":1},"messages":[{}]})",
       R"({"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[{}]})"}) {
    const std::string sent = Spliced(body, "up\"stream");
    boost::system::error_code ec;
    const boost::json::value doc = boost::json::parse(sent, ec);
    ASSERT_FALSE(ec) << sent;
    EXPECT_EQ(doc.at("model"), "up\"stream") << sent;
    EXPECT_EQ(doc.at("stream_options").at("include_usage"), true) << sent;
  }
}

// Found by tests/fuzz/openai_request: the client's include_usage, written with an escape, is
// the member the upstream reads; it must be the one set, not a second one added before it.
TEST(BodySplice, SetsAnEscapedIncludeUsage) {
  const std::string sent = Spliced(
      R"({"model":"m","stream":true,"stream_options":{"include\u005fusage":false},"messages":[{}]})",
      "u");
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(sent, ec);
  ASSERT_FALSE(ec) << sent;
  EXPECT_EQ(doc.at("stream_options").at("include_usage"), true) << sent;
  EXPECT_EQ(doc.at("stream_options").as_object().size(), 1u) << sent;
}

}  // namespace
}  // namespace orchestra::providers
