#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "observability/span.hpp"

// OTLP trace encoding, by hand (no protobuf library): the ExportTraceServiceRequest of
// opentelemetry-proto (collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
// common/v1/common.proto, resource/v1/resource.proto) in the protobuf binary format
// (`http/protobuf`) and in OTLP/JSON (`http/json`: lowerCamelCase names, trace and span ids as
// hex, enums as integers, 64-bit integers as decimal strings).
//
// Spans are encoded one at a time when they end (AppendSpan), on the thread that made them; the
// exporter wraps a batch of them in a request (RequestEncoder) without looking inside. Strings
// are made valid UTF-8 (malformed bytes become U+FFFD, as both encodings require) and attribute
// values are cut at kMaxValueBytes.
namespace orchestra::observability::otlp {

enum class Protocol : std::uint8_t { kProtobuf, kJson };

// Attribute values longer than this are cut (at a character boundary).
inline constexpr std::size_t kMaxValueBytes = 16 * 1024;

// The protobuf wire format: varints, fixed-width numbers and length-delimited fields, appended
// to a string. A nested message is written in place: BeginMessage leaves room for a one-byte
// length and EndMessage widens it when the message came out longer than 127 bytes.
class ProtoWriter {
 public:
  enum WireType : std::uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

  explicit ProtoWriter(std::string& out) : out_(out) {}

  void Varint(std::uint64_t value) {
    if (value < 0x80) {
      out_.push_back(static_cast<char>(value));  // tags and short lengths: most varints
    } else {
      LongVarint(value);
    }
  }
  void Tag(std::uint32_t field, WireType type) { Varint((std::uint64_t{field} << 3) | type); }
  void VarintField(std::uint32_t field, std::uint64_t value) {
    Tag(field, kVarint);
    Varint(value);
  }
  // int64: two's complement as a varint (negative values take ten bytes).
  void Int64Field(std::uint32_t field, std::int64_t value) {
    VarintField(field, static_cast<std::uint64_t>(value));
  }
  void BoolField(std::uint32_t field, bool value) { VarintField(field, value ? 1 : 0); }
  void Fixed32Field(std::uint32_t field, std::uint32_t value);
  void Fixed64Field(std::uint32_t field, std::uint64_t value);
  void DoubleField(std::uint32_t field, double value);
  void BytesField(std::uint32_t field, std::string_view bytes);
  // A string field, made valid UTF-8 and cut at `max_bytes`.
  void StringField(std::uint32_t field, std::string_view text, std::size_t max_bytes = SIZE_MAX);

  // Returns the mark EndMessage needs.
  std::size_t BeginMessage(std::uint32_t field);
  void EndMessage(std::size_t mark);

  static std::size_t VarintSize(std::uint64_t value);

 private:
  void LongVarint(std::uint64_t value);

  std::string& out_;
};

// Appends one span: an OTLP `Span` message (protobuf) or Span object (JSON).
void AppendSpan(Protocol protocol, const SpanRecord& span, std::string& out);
void AppendSpanProto(const SpanRecord& span, std::string& out);
void AppendSpanJson(const SpanRecord& span, std::string& out);

// The request around a batch of encoded spans: one ResourceSpans with this process's resource
// and one ScopeSpans of Orchestra's instrumentation scope.
class RequestEncoder {
 public:
  RequestEncoder(Protocol protocol,
                 const std::vector<std::pair<std::string, std::string>>& resource,
                 std::string_view scope_name, std::string_view scope_version);

  // `body` = an ExportTraceServiceRequest holding `spans` (each from AppendSpan with this
  // encoder's protocol).
  void Encode(std::span<const std::string_view> spans, std::string& body) const;

  Protocol protocol() const { return protocol_; }
  std::string_view content_type() const {
    return protocol_ == Protocol::kProtobuf ? "application/x-protobuf" : "application/json";
  }

 private:
  Protocol protocol_;
  std::string resource_;  // the Resource message / "resource" object, encoded once
  std::string scope_;     // the InstrumentationScope message / "scope" object
};

// Appends `text` made valid UTF-8 (malformed sequences become U+FFFD), cut to at most
// `max_bytes` at a character boundary.
void AppendUtf8(std::string& out, std::string_view text, std::size_t max_bytes = SIZE_MAX);

}  // namespace orchestra::observability::otlp
