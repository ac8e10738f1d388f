#include "api/json_body.hpp"

#include <charconv>
#include <cmath>

#include "common/utf8.hpp"

namespace orchestra::api {
namespace {

// Member names echoed in errors are cut to this many bytes.
constexpr std::size_t kMaxEchoedName = 64;

Error Invalid(std::string message, std::string_view param = {}) {
  return {ErrorCode::kInvalidRequest, std::move(message), std::string(param)};
}

}  // namespace

Result<JsonBody> JsonBody::Parse(std::string_view body,
                                 std::initializer_list<std::string_view> names) {
  if (!utf8::IsValid(body)) return Invalid("request body is not valid UTF-8");
  JsonBody out;
  out.body_ = body;
  for (std::string_view name : names) {
    if (out.count_ < kMaxMembers) out.members_[out.count_++].name = name;
  }
  std::optional<Error> member_error;
  JsonScanError scan_error;
  std::string scratch;
  const auto kind = ScanJson(
      body,
      [&](std::string_view raw, const JsonSpan& value) {
        if (member_error) return;
        // Escaped spellings name the same member ("ke\u0079" is "key").
        const std::string_view raw_name = JsonMemberName(raw, scratch);
        for (std::size_t i = 0; i < out.count_; ++i) {
          Member& m = out.members_[i];
          if (m.name != raw_name) continue;
          if (m.span.present) {
            member_error = Invalid(std::string(raw_name) + " is given more than once", raw_name);
          } else {
            m.span = value;
          }
          return;
        }
        std::string expected;
        for (std::size_t i = 0; i < out.count_; ++i) {
          expected += i == 0 ? "" : ", ";
          expected += out.members_[i].name;
        }
        const std::string_view shown = ShownName(raw_name);
        member_error = Invalid(
            "unknown field '" + std::string(shown) + "' (expected " + expected + ")", shown);
      },
      &scan_error);
  if (!kind) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      return Invalid("request body is empty; expected a JSON object");
    }
    return Invalid("request body is not valid JSON: " + std::string(scan_error.what) + " at byte " +
                   std::to_string(scan_error.offset));
  }
  if (*kind != JsonKind::kObject) return Invalid("request body must be a JSON object");
  if (member_error) return *member_error;
  return out;
}

const JsonBody::Member* JsonBody::Find(std::string_view name) const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (members_[i].name == name) return members_[i].span.present ? &members_[i] : nullptr;
  }
  return nullptr;
}

std::optional<std::string_view> JsonBody::Raw(std::string_view name) const {
  const Member* m = Find(name);
  if (m == nullptr) return std::nullopt;
  return m->span.In(body_);
}

Result<std::string> JsonBody::RequiredString(std::string_view name) const {
  auto s = OptionalString(name);
  if (!s) return s.error();
  if (!*s) {
    const Member* m = Find(name);
    const bool null = m != nullptr && m->span.kind == JsonKind::kNull;
    return Invalid(std::string(name) + (null ? " must be a string" : " is required"), name);
  }
  return std::move(**s);
}

Result<std::optional<std::string>> JsonBody::OptionalString(std::string_view name) const {
  const Member* m = Find(name);
  if (m == nullptr || m->span.kind == JsonKind::kNull) return std::optional<std::string>();
  if (m->span.kind != JsonKind::kString) {
    return Invalid(std::string(name) + " must be a string", name);
  }
  auto text = DecodeJsonString(m->span.In(body_));
  if (!text) return Invalid(std::string(name) + " is not a valid JSON string", name);
  return std::optional<std::string>(std::move(*text));
}

Result<std::string_view> JsonBody::RequiredValue(std::string_view name) const {
  const Member* m = Find(name);
  if (m == nullptr) return Invalid(std::string(name) + " is required", name);
  return m->span.In(body_);
}

Result<std::optional<std::string_view>> JsonBody::OptionalObject(std::string_view name) const {
  const Member* m = Find(name);
  if (m == nullptr || m->span.kind == JsonKind::kNull) return std::optional<std::string_view>();
  if (m->span.kind != JsonKind::kObject) {
    return Invalid(std::string(name) + " must be a JSON object", name);
  }
  return std::optional<std::string_view>(m->span.In(body_));
}

Result<std::optional<std::vector<std::string>>> JsonBody::OptionalStringArray(
    std::string_view name) const {
  using Out = std::optional<std::vector<std::string>>;
  const Member* m = Find(name);
  if (m == nullptr || m->span.kind == JsonKind::kNull) return Out();
  const std::string err = std::string(name) + " must be an array of strings";
  if (m->span.kind != JsonKind::kArray) return Invalid(err, name);
  // The array was validated by the scan; walk its elements.
  std::vector<std::string> out;
  const std::string_view raw = m->span.In(body_);
  std::size_t i = 1;
  auto skip = [&] {
    while (i < raw.size() &&
           (raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\r' || raw[i] == '\t')) {
      ++i;
    }
  };
  skip();
  while (i < raw.size() && raw[i] != ']') {
    if (raw[i] != '"') return Invalid(err, name);
    auto end = JsonValueEnd(raw, i);
    if (!end) return Invalid(err, name);
    auto text = DecodeJsonString(raw.substr(i, *end - i));
    if (!text) return Invalid(err, name);
    out.push_back(std::move(*text));
    i = *end;
    skip();
    if (i < raw.size() && raw[i] == ',') ++i;
    skip();
  }
  return Out(std::move(out));
}

Result<std::optional<double>> JsonBody::OptionalNumber(std::string_view name) const {
  const Member* m = Find(name);
  if (m == nullptr || m->span.kind == JsonKind::kNull) return std::optional<double>();
  if (m->span.kind != JsonKind::kNumber) {
    return Invalid(std::string(name) + " must be a number", name);
  }
  const std::string_view raw = m->span.In(body_);
  double v = 0;
  const auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
  // Out of double's range (1e400) is refused rather than taken as infinity.
  if (ec != std::errc() || end != raw.data() + raw.size() || !std::isfinite(v)) {
    return Invalid(std::string(name) + " is out of range", name);
  }
  return std::optional<double>(v);
}

std::string_view ShownName(std::string_view name) {
  if (!utf8::IsValid(name)) return "?";
  if (name.size() <= kMaxEchoedName) return name;
  std::size_t end = kMaxEchoedName;
  while (end > 0 && (static_cast<unsigned char>(name[end]) & 0xC0) == 0x80)
    --end;
  return name.substr(0, end);
}

}  // namespace orchestra::api
