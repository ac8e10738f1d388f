#include "wire/codec_util.hpp"

#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "unit/wire/codec_test_support.hpp"

namespace orchestra::wire {
namespace {

using testing::ReadTestdata;

struct Base64Case {
  std::string plain;
  std::string encoded;
};

// RFC 4648 section 10.
TEST(Base64, EncodesAndDecodesTheRfcVectors) {
  const std::vector<Base64Case> cases = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Base64Encode(c.plain), c.encoded) << c.plain;
    EXPECT_EQ(Base64Decode(c.encoded), c.plain) << c.encoded;
  }
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::string bytes;
  for (int i = 0; i < 256; ++i)
    bytes += static_cast<char>(i);
  EXPECT_EQ(Base64Decode(Base64Encode(bytes)), bytes);
}

TEST(Base64, DecodesUnpaddedText) {
  EXPECT_EQ(Base64Decode("Zm9vYg"), "foob");
  EXPECT_EQ(Base64Decode("Zm9vYmE"), "fooba");
}

TEST(Base64, RejectsMalformedText) {
  for (const char* bad : {"Zm9v!", "Z", "Zm9vY", "Zm=v", "Zh==", "Zm9vYg=x"}) {
    EXPECT_FALSE(Base64Decode(bad).has_value()) << bad;
  }
}

TEST(FloatsBase64, MatchesTheRecordedOpenAIEncoding) {
  // From testdata/openai/embeddings_response_{float,base64}.json.
  const std::vector<float> values = {0.0023064255F, -0.009327292F, 0.015797347F, -0.0077780345F};
  EXPECT_EQ(EncodeFloatsBase64(values), "ZicXO4DRGLxwaYE84t7+uw==");
  EXPECT_EQ(DecodeFloatsBase64("ZicXO4DRGLxwaYE84t7+uw=="), values);
}

TEST(FloatsBase64, RejectsTextThatIsNotWholeFloats) {
  EXPECT_FALSE(DecodeFloatsBase64("Zm9v").has_value());  // 3 bytes
  EXPECT_FALSE(DecodeFloatsBase64("***").has_value());
  EXPECT_EQ(DecodeFloatsBase64(""), std::vector<float>{});
}

TEST(AppendJsonFloat, WritesTheShortestTextThatReadsBackExactly) {
  struct Case {
    float value;
    std::string text;
  };
  const std::vector<Case> cases = {
      {0.0F, "0"}, {1.0F, "1"}, {-0.5F, "-0.5"}, {0.1F, "0.1"}, {0.0023064255F, "0.0023064255"},
  };
  for (const auto& c : cases) {
    std::string out;
    AppendJsonFloat(out, c.value);
    EXPECT_EQ(out, c.text);
  }
  std::string out;
  AppendJsonFloat(out, std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(out, "0");
}

struct ErrorBodyCase {
  std::string name;
  std::string body;
  std::string message;
};

TEST(ErrorMessageFromBody, ReadsEachProvidersRecordedErrorShape) {
  const std::vector<ErrorBodyCase> cases = {
      {"openai", ReadTestdata("openai/error_response.json"),
       "Incorrect API key provided: sk-proj-****1234. You can find your API key at "
       "https://platform.openai.com/account/api-keys."},
      {"gemini", ReadTestdata("gemini/error_response.json"),
       "API key not valid. Please pass a valid API key."},
      {"gemini array", ReadTestdata("gemini/error_response_array.json"),
       "Resource has been exhausted (e.g. check quota)."},
      {"anthropic", ReadTestdata("anthropic/error_response.json"),
       "The requested resource could not be found."},
      {"error string", R"({"error":"model not loaded"})", "model not loaded"},
      {"top-level message", R"({"object":"error","message":"no such model","code":404})",
       "no such model"},
      {"status only", R"({"error":{"code":503,"status":"UNAVAILABLE"}})", "UNAVAILABLE"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ErrorMessageFromBody(c.body), c.message) << c.name;
  }
}

TEST(ErrorMessageFromBody, FallsBackToATrimmedSingleLineExcerpt) {
  EXPECT_EQ(ErrorMessageFromBody("  <html>\n<body>Bad Gateway</body>\n</html>\n"),
            "<html> <body>Bad Gateway</body> </html>");
  const std::string long_body(1000, 'x');
  EXPECT_EQ(ErrorMessageFromBody(long_body).size(), 200U);
  // A multi-byte character straddling the cut is left out whole.
  std::string utf8(199, 'a');
  utf8 += "\xC3\xA9tail";
  EXPECT_EQ(ErrorMessageFromBody(utf8), std::string(199, 'a'));
  EXPECT_EQ(ErrorMessageFromBody(""), "");
}

TEST(ParseDataUrl, SplitsBase64DataUrls) {
  auto png = ParseDataUrl("data:image/png;base64,iVBORw0KGgo=");
  ASSERT_TRUE(png.has_value());
  EXPECT_EQ(png->mime_type, "image/png");
  EXPECT_EQ(png->base64_data, "iVBORw0KGgo=");
  auto with_params = ParseDataUrl("DATA:image/jpeg;name=a.jpg;BASE64,/9j/4AAQ");
  ASSERT_TRUE(with_params.has_value());
  EXPECT_EQ(with_params->mime_type, "image/jpeg");
  EXPECT_EQ(with_params->base64_data, "/9j/4AAQ");
  for (const char* bad :
       {"https://example.com/a.png", "data:image/png,rawbytes", "data:;base64,AAAA",
        "data:image/png;base64,", "data:image/png;base64", "data:png;base64,AAAA", ""}) {
    EXPECT_FALSE(ParseDataUrl(bad).has_value()) << bad;
  }
}

TEST(Ids, HaveOpenAIShapes) {
  const std::string chat = NewChatCompletionId();
  EXPECT_EQ(chat.rfind("chatcmpl-", 0), 0U);
  EXPECT_EQ(chat.size(), 9U + 24U);
  const std::string call = NewToolCallId();
  EXPECT_EQ(call.rfind("call_", 0), 0U);
  EXPECT_EQ(call.size(), 5U + 24U);
  EXPECT_NE(NewToolCallId(), call);
  EXPECT_GT(UnixNow(), 1'700'000'000);
}

TEST(AppendMember, AddsTheMemberLastAndKeepsTheRestAsItIs) {
  std::string body = R"({"id":"c1","choices":[{"a":{}}]})";
  AppendMember(body, "citations", R"(["x","y"])");
  EXPECT_EQ(body, R"({"id":"c1","choices":[{"a":{}}],"citations":["x","y"]})");
  std::string spaced = "{\"id\": 1 }\n";
  AppendMember(spaced, "citations", "[]");
  EXPECT_EQ(spaced, "{\"id\": 1,\"citations\":[] }\n");
  std::string empty = "{ }";
  AppendMember(empty, "n", "1");
  EXPECT_EQ(empty, R"({"n":1 })");
}

}  // namespace
}  // namespace orchestra::wire
