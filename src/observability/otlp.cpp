#include "observability/otlp.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

#include "common/text.hpp"

namespace orchestra::observability::otlp {
namespace {

// Field numbers, from opentelemetry-proto.
namespace f {
// ExportTraceServiceRequest
constexpr std::uint32_t kResourceSpans = 1;
// ResourceSpans
constexpr std::uint32_t kResource = 1;
constexpr std::uint32_t kScopeSpans = 2;
// Resource
constexpr std::uint32_t kResourceAttributes = 1;
// ScopeSpans
constexpr std::uint32_t kScope = 1;
constexpr std::uint32_t kSpans = 2;
// InstrumentationScope
constexpr std::uint32_t kScopeName = 1;
constexpr std::uint32_t kScopeVersion = 2;
// Span
constexpr std::uint32_t kTraceId = 1;
constexpr std::uint32_t kSpanId = 2;
constexpr std::uint32_t kParentSpanId = 4;
constexpr std::uint32_t kName = 5;
constexpr std::uint32_t kKind = 6;
constexpr std::uint32_t kStartTime = 7;
constexpr std::uint32_t kEndTime = 8;
constexpr std::uint32_t kAttributes = 9;
constexpr std::uint32_t kEvents = 11;
constexpr std::uint32_t kStatus = 15;
constexpr std::uint32_t kFlags = 16;
// Span.Event
constexpr std::uint32_t kEventTime = 1;
constexpr std::uint32_t kEventName = 2;
constexpr std::uint32_t kEventAttributes = 3;
// Status
constexpr std::uint32_t kStatusMessage = 2;
constexpr std::uint32_t kStatusCode = 3;
// KeyValue
constexpr std::uint32_t kKey = 1;
constexpr std::uint32_t kValue = 2;
// AnyValue
constexpr std::uint32_t kStringValue = 1;
constexpr std::uint32_t kBoolValue = 2;
constexpr std::uint32_t kIntValue = 3;
constexpr std::uint32_t kDoubleValue = 4;
constexpr std::uint32_t kArrayValue = 5;
// ArrayValue
constexpr std::uint32_t kArrayValues = 1;
}  // namespace f

// The W3C trace flags' sampled bit, the only one Orchestra sets.
constexpr std::uint32_t kSampledFlag = 0x01;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}

// Up to 16 bytes from hex digits (ids are validated where they are made).
std::size_t HexToBytes(std::string_view hex, char* out) {
  const std::size_t n = std::min<std::size_t>(hex.size() / 2, 16);
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = static_cast<char>((HexDigit(hex[2 * i]) << 4) | HexDigit(hex[2 * i + 1]));
  }
  return n;
}

bool IsRoot(std::string_view parent) {
  return parent.empty() || parent.find_first_not_of('0') == std::string_view::npos;
}

// The length of the valid UTF-8 sequence at text[i], or 0 when it is malformed (overlong forms,
// surrogates and values past U+10FFFF included).
std::size_t Utf8SequenceAt(std::string_view text, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  const auto b1 = static_cast<unsigned char>(text[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// Valid UTF-8 no longer than max_bytes: the same bytes when they already are (the usual case).
std::string_view CleanView(std::string_view text, std::size_t max_bytes, std::string& scratch) {
  std::size_t i = 0;
  // ASCII, the usual case, eight bytes at a time.
  const std::size_t ascii_end = std::min(text.size(), max_bytes);
  while (i + 8 <= ascii_end) {
    std::uint64_t word;
    std::memcpy(&word, text.data() + i, sizeof(word));
    if ((word & 0x8080808080808080ULL) != 0) break;
    i += 8;
  }
  while (i < text.size()) {
    const std::size_t n = Utf8SequenceAt(text, i);
    if (n == 0 || i + n > max_bytes) break;
    i += n;
  }
  if (i == text.size()) return text;
  scratch.clear();
  AppendUtf8(scratch, text, max_bytes);
  return scratch;
}

void AppendJsonString(std::string& out, std::string_view text, std::size_t max_bytes = SIZE_MAX) {
  std::string scratch;
  out += '"';
  AppendJsonEscaped(out, CleanView(text, max_bytes, scratch));
  out += '"';
}

void AppendUnsignedString(std::string& out, std::uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out += '"';
  out.append(buf, end);
  out += '"';
}

void AppendJsonDouble(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
  } else if (std::isinf(value)) {
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    out.append(buf, end);
  }
}

// --- protobuf ---------------------------------------------------------------------------------

void WriteAnyValueProto(ProtoWriter& w, const AttributeValue& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          w.StringField(f::kStringValue, v, kMaxValueBytes);
        } else if constexpr (std::is_same_v<T, bool>) {
          w.BoolField(f::kBoolValue, v);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          w.Int64Field(f::kIntValue, v);
        } else if constexpr (std::is_same_v<T, double>) {
          w.DoubleField(f::kDoubleValue, v);
        } else {
          const std::size_t array = w.BeginMessage(f::kArrayValue);
          for (std::string_view item : v) {
            const std::size_t any = w.BeginMessage(f::kArrayValues);
            w.StringField(f::kStringValue, item, kMaxValueBytes);
            w.EndMessage(any);
          }
          w.EndMessage(array);
        }
      },
      value);
}

void WriteAttributesProto(ProtoWriter& w, std::uint32_t field,
                          std::span<const Attribute> attributes) {
  for (const Attribute& a : attributes) {
    const std::size_t kv = w.BeginMessage(field);
    w.StringField(f::kKey, a.key);
    const std::size_t any = w.BeginMessage(f::kValue);
    WriteAnyValueProto(w, a.value);
    w.EndMessage(any);
    w.EndMessage(kv);
  }
}

// --- JSON -------------------------------------------------------------------------------------

void AppendAnyValueJson(std::string& out, const AttributeValue& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          out += "{\"stringValue\":";
          AppendJsonString(out, v, kMaxValueBytes);
        } else if constexpr (std::is_same_v<T, bool>) {
          out += "{\"boolValue\":";
          out += v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          out += "{\"intValue\":\"";
          char buf[24];
          auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
          out.append(buf, end);
          out += '"';
        } else if constexpr (std::is_same_v<T, double>) {
          out += "{\"doubleValue\":";
          AppendJsonDouble(out, v);
        } else {
          out += "{\"arrayValue\":{\"values\":[";
          bool first = true;
          for (std::string_view item : v) {
            if (!first) out += ',';
            first = false;
            out += "{\"stringValue\":";
            AppendJsonString(out, item, kMaxValueBytes);
            out += '}';
          }
          out += "]}";
        }
      },
      value);
  out += '}';
}

void AppendAttributesJson(std::string& out, std::span<const Attribute> attributes) {
  out += '[';
  bool first = true;
  for (const Attribute& a : attributes) {
    if (!first) out += ',';
    first = false;
    out += "{\"key\":";
    AppendJsonString(out, a.key);
    out += ",\"value\":";
    AppendAnyValueJson(out, a.value);
    out += '}';
  }
  out += ']';
}

std::vector<Attribute> ResourceAttributes(
    const std::vector<std::pair<std::string, std::string>>& resource) {
  std::vector<Attribute> out;
  out.reserve(resource.size());
  for (const auto& [key, value] : resource)
    out.emplace_back(key, std::string_view(value));
  return out;
}

}  // namespace

void AppendUtf8(std::string& out, std::string_view text, std::size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::size_t written = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t n = Utf8SequenceAt(text, i);
    const std::size_t take = n == 0 ? kReplacement.size() : n;
    if (written + take > max_bytes) return;
    if (n == 0) {
      out += kReplacement;
      i += 1;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
    written += take;
  }
}

// --- ProtoWriter ------------------------------------------------------------------------------

std::size_t ProtoWriter::VarintSize(std::uint64_t value) {
  std::size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

void ProtoWriter::LongVarint(std::uint64_t value) {
  char buf[10];
  std::size_t n = 0;
  while (value >= 0x80) {
    buf[n++] = static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  buf[n++] = static_cast<char>(value);
  out_.append(buf, n);
}

void ProtoWriter::Fixed32Field(std::uint32_t field, std::uint32_t value) {
  Tag(field, kFixed32);
  char buf[4];
  for (int i = 0; i < 4; ++i)
    buf[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
  out_.append(buf, sizeof(buf));
}

void ProtoWriter::Fixed64Field(std::uint32_t field, std::uint64_t value) {
  Tag(field, kFixed64);
  char buf[8];
  for (int i = 0; i < 8; ++i)
    buf[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
  out_.append(buf, sizeof(buf));
}

void ProtoWriter::DoubleField(std::uint32_t field, double value) {
  std::uint64_t bits = 0;
  static_assert(sizeof(bits) == sizeof(value));
  std::memcpy(&bits, &value, sizeof(bits));
  Fixed64Field(field, bits);
}

void ProtoWriter::BytesField(std::uint32_t field, std::string_view bytes) {
  Tag(field, kLen);
  Varint(bytes.size());
  out_ += bytes;
}

void ProtoWriter::StringField(std::uint32_t field, std::string_view text, std::size_t max_bytes) {
  std::string scratch;
  BytesField(field, CleanView(text, max_bytes, scratch));
}

std::size_t ProtoWriter::BeginMessage(std::uint32_t field) {
  Tag(field, kLen);
  const std::size_t mark = out_.size();
  out_ += '\0';  // room for a length under 128
  return mark;
}

void ProtoWriter::EndMessage(std::size_t mark) {
  const std::size_t length = out_.size() - mark - 1;
  const std::size_t width = VarintSize(length);
  if (width > 1) out_.insert(mark + 1, width - 1, '\0');
  std::size_t at = mark;
  std::uint64_t value = length;
  while (value >= 0x80) {
    out_[at++] = static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  out_[at] = static_cast<char>(value);
}

// --- spans ------------------------------------------------------------------------------------

void AppendSpanProto(const SpanRecord& s, std::string& out) {
  ProtoWriter w(out);
  char id[16];
  w.BytesField(f::kTraceId, std::string_view(id, HexToBytes(s.trace_id, id)));
  w.BytesField(f::kSpanId, std::string_view(id, HexToBytes(s.span_id, id)));
  if (!IsRoot(s.parent_span_id)) {
    w.BytesField(f::kParentSpanId, std::string_view(id, HexToBytes(s.parent_span_id, id)));
  }
  w.StringField(f::kName, s.name);
  w.VarintField(f::kKind, static_cast<std::uint64_t>(s.kind));
  w.Fixed64Field(f::kStartTime, s.start_unix_nano);
  w.Fixed64Field(f::kEndTime, s.end_unix_nano);
  WriteAttributesProto(w, f::kAttributes, s.attributes);
  for (const SpanEvent& e : s.events) {
    const std::size_t event = w.BeginMessage(f::kEvents);
    w.Fixed64Field(f::kEventTime, e.time_unix_nano);
    w.StringField(f::kEventName, e.name);
    WriteAttributesProto(w, f::kEventAttributes, e.attributes);
    w.EndMessage(event);
  }
  if (s.status != SpanStatus::kUnset) {
    const std::size_t status = w.BeginMessage(f::kStatus);
    if (s.status == SpanStatus::kError && !s.status_message.empty()) {
      w.StringField(f::kStatusMessage, s.status_message, kMaxValueBytes);
    }
    w.VarintField(f::kStatusCode, static_cast<std::uint64_t>(s.status));
    w.EndMessage(status);
  }
  w.Fixed32Field(f::kFlags, s.sampled ? kSampledFlag : 0);
}

void AppendSpanJson(const SpanRecord& s, std::string& out) {
  out += "{\"traceId\":\"";
  out += s.trace_id;
  out += "\",\"spanId\":\"";
  out += s.span_id;
  out += '"';
  if (!IsRoot(s.parent_span_id)) {
    out += ",\"parentSpanId\":\"";
    out += s.parent_span_id;
    out += '"';
  }
  out += ",\"flags\":";
  out += s.sampled ? '1' : '0';
  out += ",\"name\":";
  AppendJsonString(out, s.name);
  out += ",\"kind\":";
  out += static_cast<char>('0' + static_cast<int>(s.kind));
  out += ",\"startTimeUnixNano\":";
  AppendUnsignedString(out, s.start_unix_nano);
  out += ",\"endTimeUnixNano\":";
  AppendUnsignedString(out, s.end_unix_nano);
  out += ",\"attributes\":";
  AppendAttributesJson(out, s.attributes);
  if (!s.events.empty()) {
    out += ",\"events\":[";
    bool first = true;
    for (const SpanEvent& e : s.events) {
      if (!first) out += ',';
      first = false;
      out += "{\"timeUnixNano\":";
      AppendUnsignedString(out, e.time_unix_nano);
      out += ",\"name\":";
      AppendJsonString(out, e.name);
      out += ",\"attributes\":";
      AppendAttributesJson(out, e.attributes);
      out += '}';
    }
    out += ']';
  }
  if (s.status != SpanStatus::kUnset) {
    out += ",\"status\":{\"code\":";
    out += static_cast<char>('0' + static_cast<int>(s.status));
    if (s.status == SpanStatus::kError && !s.status_message.empty()) {
      out += ",\"message\":";
      AppendJsonString(out, s.status_message, kMaxValueBytes);
    }
    out += '}';
  }
  out += '}';
}

void AppendSpan(Protocol protocol, const SpanRecord& span, std::string& out) {
  if (protocol == Protocol::kProtobuf) {
    AppendSpanProto(span, out);
  } else {
    AppendSpanJson(span, out);
  }
}

// --- requests ---------------------------------------------------------------------------------

RequestEncoder::RequestEncoder(Protocol protocol,
                               const std::vector<std::pair<std::string, std::string>>& resource,
                               std::string_view scope_name, std::string_view scope_version)
    : protocol_(protocol) {
  const std::vector<Attribute> attributes = ResourceAttributes(resource);
  if (protocol_ == Protocol::kProtobuf) {
    ProtoWriter r(resource_);
    WriteAttributesProto(r, f::kResourceAttributes, attributes);
    ProtoWriter s(scope_);
    s.StringField(f::kScopeName, scope_name);
    if (!scope_version.empty()) s.StringField(f::kScopeVersion, scope_version);
  } else {
    resource_ = "{\"attributes\":";
    AppendAttributesJson(resource_, attributes);
    resource_ += '}';
    scope_ = "{\"name\":";
    AppendJsonString(scope_, scope_name);
    if (!scope_version.empty()) {
      scope_ += ",\"version\":";
      AppendJsonString(scope_, scope_version);
    }
    scope_ += '}';
  }
}

void RequestEncoder::Encode(std::span<const std::string_view> spans, std::string& body) const {
  body.clear();
  if (protocol_ == Protocol::kJson) {
    std::size_t size = resource_.size() + scope_.size() + 96;
    for (std::string_view s : spans)
      size += s.size() + 1;
    body.reserve(size);
    body += "{\"resourceSpans\":[{\"resource\":";
    body += resource_;
    body += ",\"scopeSpans\":[{\"scope\":";
    body += scope_;
    body += ",\"spans\":[";
    bool first = true;
    for (std::string_view s : spans) {
      if (!first) body += ',';
      first = false;
      body += s;
    }
    body += "]}]}]}";
    return;
  }
  // Sizes first, so that every length is written once, in front of its message.
  const auto field = [](std::size_t length) {
    return 1 + ProtoWriter::VarintSize(length) + length;  // tag (fields < 16) + length + body
  };
  std::size_t scope_spans = field(scope_.size());
  for (std::string_view s : spans)
    scope_spans += field(s.size());
  const std::size_t resource_spans = field(resource_.size()) + field(scope_spans);
  body.reserve(field(resource_spans));
  ProtoWriter w(body);
  w.Tag(f::kResourceSpans, ProtoWriter::kLen);
  w.Varint(resource_spans);
  w.BytesField(f::kResource, resource_);
  w.Tag(f::kScopeSpans, ProtoWriter::kLen);
  w.Varint(scope_spans);
  w.BytesField(f::kScope, scope_);
  for (std::string_view s : spans)
    w.BytesField(f::kSpans, s);
}

}  // namespace orchestra::observability::otlp
