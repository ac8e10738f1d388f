#include "documents/multipart.hpp"

#include <string>

#include <gtest/gtest.h>

namespace orchestra::documents {
namespace {

TEST(MultipartBoundary, FromContentType) {
  struct Case {
    std::string content_type;
    std::string boundary;  // empty: an error is expected
    const char* says = "";
  };
  const Case cases[] = {
      {"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
       "----WebKitFormBoundary7MA4YWxkTrZu0gW"},
      {"Multipart/Form-Data;BOUNDARY=abc", "abc"},
      {"multipart/form-data; charset=utf-8; boundary=\"a b:c?\"", "a b:c?"},
      {"multipart/form-data ; boundary = xyz ;", "xyz"},
      {"multipart/form-data; boundary=\"quoted\\\"q\"", "", "does not allow"},
      {"multipart/form-data", "", "needs a boundary"},
      {"multipart/form-data; boundary=", "", "needs a boundary"},
      {"multipart/form-data; boundary=\"\"", "", "needs a boundary"},
      {"multipart/form-data; boundary=" + std::string(71, 'a'), "", "at most 70"},
      {"multipart/form-data; boundary=\"ends with space \"", "", "ends in a space"},
      {"multipart/form-data; boundary=\"unclosed", "", "malformed"},
      {"application/json", "", "must be multipart/form-data"},
      {"multipart/mixed; boundary=x", "", "must be multipart/form-data"},
      {"", "", "must be multipart/form-data"},
  };
  for (const Case& c : cases) {
    auto b = MultipartBoundary(c.content_type);
    if (c.boundary.empty()) {
      ASSERT_FALSE(b) << c.content_type;
      EXPECT_EQ(b.error().param, "Content-Type");
      EXPECT_NE(b.error().message.find(c.says), std::string::npos) << b.error().message;
    } else {
      ASSERT_TRUE(b) << c.content_type << ": " << b.error().message;
      EXPECT_EQ(*b, c.boundary);
    }
  }
}

std::string Body(std::initializer_list<std::string> parts, const std::string& boundary = "XyZ") {
  std::string body;
  for (const std::string& p : parts)
    body += "--" + boundary + "\r\n" + p + "\r\n";
  body += "--" + boundary + "--\r\n";
  return body;
}

TEST(Multipart, ParsesFieldsAndFilesAsViewsIntoTheBody) {
  const std::string binary("\0\r\n--XyZ-not-a-delimiter\xFF\r\n\r\n", 30);
  const std::string body =
      "preamble to ignore\r\n" +
      Body({"Content-Disposition: form-data; name=\"document_id\"\r\n\r\nabc-123",
            "content-disposition: form-data; name=\"file\"; filename=\"notes.md\"\r\n"
            "Content-Type: text/markdown\r\n\r\n# Title\r\nbody",
            "Content-Disposition: form-data; name=\"blob\"; filename=\"b.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" +
                binary,
            "Content-Disposition: form-data; name=empty\r\n\r\n"}) +
      "epilogue to ignore";
  auto parts = ParseMultipart(body, "XyZ");
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 4u);
  const MultipartPart& id = (*parts)[0];
  EXPECT_EQ(id.name, "document_id");
  EXPECT_FALSE(id.filename);
  EXPECT_EQ(id.content_type, "text/plain");
  EXPECT_EQ(id.content, "abc-123");
  const MultipartPart& file = (*parts)[1];
  EXPECT_EQ(file.filename, "notes.md");
  EXPECT_EQ(file.content_type, "text/markdown");
  EXPECT_EQ(file.content, "# Title\r\nbody");
  EXPECT_EQ((*parts)[2].content, binary);
  EXPECT_EQ((*parts)[3].name, "empty");
  EXPECT_EQ((*parts)[3].content, "");
  // Views, not copies.
  for (const MultipartPart& p : *parts) {
    EXPECT_GE(p.content.data(), body.data());
    EXPECT_LE(p.content.data() + p.content.size(), body.data() + body.size());
  }
  EXPECT_EQ(FindPart(*parts, "file"), &(*parts)[1]);
  EXPECT_EQ(FindPart(*parts, "nope"), nullptr);
}

TEST(Multipart, FilenamesQuotedEscapedAndExtended) {
  const std::string body = Body({
      "Content-Disposition: form-data; name=\"a\"; filename=\"C:\\dir\\new.txt\"\r\n\r\nx",
      "Content-Disposition: form-data; name=\"b\"; filename=\"say \\\"hi\\\".txt\"\r\n\r\nx",
      "Content-Disposition: form-data; name=\"c\"; filename=\"fallback.txt\"; "
      "filename*=UTF-8''na%C3%AFve%20file.txt\r\n\r\nx",
      "Content-Disposition: form-data; name=\"d\"; filename=\"\"\r\n\r\n",
      "Content-Disposition: form-data; name=\"e\"; filename*=latin1''x.txt; "
      "filename=plain.txt\r\n\r\nx",
  });
  auto parts = ParseMultipart(body, "XyZ");
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 5u);
  EXPECT_EQ((*parts)[0].filename, "C:\\dir\\new.txt");
  EXPECT_EQ((*parts)[1].filename, "say \"hi\".txt");
  EXPECT_EQ((*parts)[2].filename, "na\xC3\xAFve file.txt");
  EXPECT_EQ((*parts)[3].filename, "");           // a file field with no file chosen
  EXPECT_EQ((*parts)[4].filename, "plain.txt");  // an unsupported charset falls back
}

TEST(Multipart, ErrorsArePrecise) {
  struct Case {
    const char* name;
    std::string body;
    ErrorCode code;
    const char* says;
    const char* param = "";
  };
  MultipartLimits limits;
  limits.max_parts = 3;
  limits.max_part_bytes = 100;
  limits.max_header_bytes = 200;
  const std::string ok_part = "Content-Disposition: form-data; name=\"f\"\r\n\r\nx";
  const Case cases[] = {
      {"boundary absent", "just some bytes", ErrorCode::kInvalidRequest, "never appears",
       "Content-Type"},
      {"boundary of another", Body({ok_part}, "Other"), ErrorCode::kInvalidRequest, "never appears",
       "Content-Type"},
      {"no closing boundary", "--XyZ\r\n" + ok_part + "\r\nand then the body stops",
       ErrorCode::kInvalidRequest, "ends before its closing boundary"},
      {"ends inside headers", "--XyZ\r\nContent-Disposition: form-da", ErrorCode::kInvalidRequest,
       "ends inside the headers"},
      {"part without a name", Body({"Content-Disposition: form-data\r\n\r\nx"}),
       ErrorCode::kInvalidRequest, "part 1 has no name"},
      {"part with an empty name", Body({"Content-Disposition: form-data; name=\"\"\r\n\r\nx"}),
       ErrorCode::kInvalidRequest, "has no name"},
      {"second part without a name",
       Body({ok_part, "Content-Disposition: form-data; filename=\"a\"\r\n\r\nx"}),
       ErrorCode::kInvalidRequest, "part 2 has no name"},
      {"no content disposition", Body({"Content-Type: text/plain\r\n\r\nx"}),
       ErrorCode::kInvalidRequest, "has no Content-Disposition: form-data"},
      {"not form-data", Body({"Content-Disposition: attachment; name=\"f\"\r\n\r\nx"}),
       ErrorCode::kInvalidRequest, "has no Content-Disposition: form-data"},
      {"no headers at all", Body({"\r\nx"}), ErrorCode::kInvalidRequest,
       "has no Content-Disposition"},
      {"header line without colon", Body({"Content-Disposition form-data\r\n\r\nx"}),
       ErrorCode::kInvalidRequest, "no name and colon"},
      {"folded header", Body({"Content-Disposition: form-data;\r\n name=\"f\"\r\n\r\nx"}),
       ErrorCode::kInvalidRequest, "folded"},
      {"malformed disposition", Body({"Content-Disposition: form-data; name=\"f\r\n\r\nx"}),
       ErrorCode::kInvalidRequest, "malformed"},
      {"huge part",
       Body({"Content-Disposition: form-data; name=\"file\"\r\n\r\n" + std::string(101, 'x')}),
       ErrorCode::kPayloadTooLarge, "part 1 (\"file\") is 101 bytes; the limit is 100", "file"},
      {"huge unterminated part",
       "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n" + std::string(500, 'x'),
       ErrorCode::kPayloadTooLarge, "is over 500 bytes", "file"},
      {"huge headers", "--XyZ\r\nX-Pad: " + std::string(300, 'p') + "\r\n\r\nx\r\n--XyZ--",
       ErrorCode::kPayloadTooLarge, "headers of part 1 exceed 200 bytes"},
      {"too many parts", Body({ok_part, ok_part, ok_part, ok_part}), ErrorCode::kPayloadTooLarge,
       "more than 3 parts"},
  };
  for (const Case& c : cases) {
    auto r = ParseMultipart(c.body, "XyZ", limits);
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error().code, c.code) << c.name;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos)
        << c.name << ": " << r.error().message;
    EXPECT_EQ(r.error().param, c.param) << c.name;
  }
  // Exactly at the limits is fine.
  EXPECT_TRUE(ParseMultipart(Body({ok_part, ok_part, ok_part}), "XyZ", limits));
  EXPECT_TRUE(ParseMultipart(
      Body({"Content-Disposition: form-data; name=\"f\"\r\n\r\n" + std::string(100, 'x')}), "XyZ",
      limits));
}

TEST(Multipart, DelimiterRulesAndEdgeShapes) {
  // No preamble, transport padding after the boundary, an empty form, a part whose content
  // looks like a delimiter without being one.
  auto padded = ParseMultipart(
      "--XyZ  \t\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--XyZz\r\n--XyZ--", "XyZ");
  ASSERT_TRUE(padded) << padded.error().message;
  ASSERT_EQ(padded->size(), 1u);
  EXPECT_EQ((*padded)[0].content, "--XyZz");
  auto empty_form = ParseMultipart("--XyZ--\r\n", "XyZ");
  ASSERT_TRUE(empty_form);
  EXPECT_TRUE(empty_form->empty());
  // An empty part whose delimiter follows the blank line directly.
  auto tight =
      ParseMultipart("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--XyZ--", "XyZ");
  ASSERT_TRUE(tight) << tight.error().message;
  EXPECT_EQ((*tight)[0].content, "");
  EXPECT_FALSE(ParseMultipart("--XyZ--", ""));
}

// Hostile bodies: linear time (a quadratic search would not finish in the test's timeout),
// clear errors. The false delimiters are 1 MB, not 8: ASan checks the whole remaining body on
// each memmem call, which makes that case quadratic under the sanitizer only.
TEST(Multipart, HostileBodies) {
  std::string false_delimiters = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n";
  while (false_delimiters.size() < (1 << 20))
    false_delimiters += "\r\n--XyZx";
  auto r = ParseMultipart(false_delimiters, "XyZ", {.max_part_bytes = 16 << 20});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("closing boundary"), std::string::npos);

  std::string crlfs = "--XyZ\r\n" + std::string(8 << 20, '\r');
  EXPECT_FALSE(ParseMultipart(crlfs, "XyZ"));

  std::string many_parts;
  for (int i = 0; i < 100'000; ++i)
    many_parts += "--XyZ\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\n\r\n";
  many_parts += "--XyZ--";
  auto too_many = ParseMultipart(many_parts, "XyZ");
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().code, ErrorCode::kPayloadTooLarge);
}

}  // namespace
}  // namespace orchestra::documents
