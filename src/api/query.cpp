#include "api/query.hpp"

#include <algorithm>
#include <charconv>

#include "api/json_body.hpp"
#include "common/text.hpp"

namespace orchestra::api {
namespace {

Error Invalid(std::string message, std::string_view param) {
  return {ErrorCode::kInvalidRequest, std::move(message), std::string(param)};
}

}  // namespace

Result<QueryParams> QueryParams::Parse(std::string_view query,
                                       std::span<const std::string_view> names) {
  QueryParams out;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const std::size_t eq = part.find('=');
    auto name = PercentDecode(part.substr(0, eq), PlusSign::kSpace);
    if (!name) return Invalid("malformed percent-encoding in the query string", "");
    const auto known = std::find(names.begin(), names.end(), *name);
    if (known == names.end()) {
      const std::string shown(ShownName(*name));
      std::string message = "unknown query parameter '" + shown + "' (expected ";
      for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) message += ", ";
        message += names[i];
      }
      message += ')';
      if (auto near = ClosestMatch(*name, names))
        message += "; did you mean '" + std::string(*near) + "'?";
      return Invalid(std::move(message), shown);
    }
    if (out.Get(*known) != nullptr)
      return Invalid(std::string(*known) + " is given more than once", *known);
    auto value =
        PercentDecode(eq == std::string_view::npos ? "" : part.substr(eq + 1), PlusSign::kSpace);
    if (!value) return Invalid("malformed percent-encoding in " + std::string(*known), *known);
    out.values_.emplace_back(*known, std::move(*value));
  }
  return out;
}

const std::string* QueryParams::Get(std::string_view name) const {
  for (const auto& [n, value] : values_) {
    if (n == name) return &value;
  }
  return nullptr;
}

Result<std::int64_t> QueryParams::Integer(std::string_view name, std::int64_t fallback,
                                          std::int64_t min, std::int64_t max) const {
  const std::string* value = Get(name);
  if (value == nullptr) return fallback;
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
  if (value->empty() || ec != std::errc() || end != value->data() + value->size() || n < min ||
      n > max) {
    return Invalid(std::string(name) + " must be an integer from " + std::to_string(min) + " to " +
                       std::to_string(max),
                   name);
  }
  return n;
}

}  // namespace orchestra::api
