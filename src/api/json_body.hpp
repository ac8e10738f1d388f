#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/json_scan.hpp"

namespace orchestra::api {

// The JSON object body of a request, read with the allocation-free scanner: each member
// is kept as the exact span the client sent (values are stored verbatim, never re-serialised).
// Shared by the memory, checkpoint and task handlers.
class JsonBody {
 public:
  static constexpr std::size_t kMaxMembers = 12;

  // Reads `body` (which must outlive the JsonBody) as one JSON object whose members are all among
  // `names` (at most kMaxMembers). kInvalidRequest with param null when the body is not valid
  // UTF-8 JSON or not an object; naming the member when one is unknown or repeated.
  static Result<JsonBody> Parse(std::string_view body,
                                std::initializer_list<std::string_view> names);

  // The member as sent; nullopt when absent.
  std::optional<std::string_view> Raw(std::string_view name) const;

  // A required string member, unescaped. "<name> is required" / "<name> must be a string".
  Result<std::string> RequiredString(std::string_view name) const;
  // A string member, or nullopt when absent or null.
  Result<std::optional<std::string>> OptionalString(std::string_view name) const;
  // A required member of any JSON type (null included), as sent.
  Result<std::string_view> RequiredValue(std::string_view name) const;
  // A member that must be a JSON object, as sent; nullopt when absent or null.
  Result<std::optional<std::string_view>> OptionalObject(std::string_view name) const;
  // A member that must be an array of strings (unescaped); nullopt when absent or null.
  Result<std::optional<std::vector<std::string>>> OptionalStringArray(std::string_view name) const;
  // A member that must be a JSON number; nullopt when absent or null.
  Result<std::optional<double>> OptionalNumber(std::string_view name) const;

 private:
  struct Member {
    std::string_view name;
    JsonSpan span;
  };
  const Member* Find(std::string_view name) const;

  std::string_view body_;
  std::array<Member, kMaxMembers> members_{};
  std::size_t count_ = 0;
};

// A client-supplied name (a member, a query parameter) as an error message may echo it: at most
// 64 bytes, cut at a character boundary; "?" when it is not UTF-8.
std::string_view ShownName(std::string_view name);

}  // namespace orchestra::api
