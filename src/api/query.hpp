#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

// A request's query string read against the parameters its route takes, the same way on every
// route: each name and value percent-decoded (form encoding: '+' is a space), an unknown name
// refused with the names expected (and the closest one, when it looks like a typo), a repeated
// one refused, so that a typo can never widen a listing or pass for a default. Errors are 400s
// in the one error shape, naming the parameter.
namespace orchestra::api {

class QueryParams {
 public:
  // `names` must outlive the result (route tables of string literals do).
  static Result<QueryParams> Parse(std::string_view query, std::span<const std::string_view> names);

  // The decoded value; null when the parameter is absent.
  const std::string* Get(std::string_view name) const;
  // A whole number from `min` to `max`; `fallback` when absent.
  Result<std::int64_t> Integer(std::string_view name, std::int64_t fallback, std::int64_t min,
                               std::int64_t max) const;

 private:
  std::vector<std::pair<std::string_view, std::string>> values_;
};

}  // namespace orchestra::api
