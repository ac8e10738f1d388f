#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "net/exchange.hpp"

// The one error format (DESIGN.md §3, OpenAI's shape), built only here:
//   {"error":{"message":"...","type":"invalid_request_error","code":"invalid_request","param":null}}
namespace orchestra::api {

// The HTTP status an error is answered with.
unsigned HttpStatus(const Error& error);
// The OpenAI-style `type` for an error.
std::string_view ErrorType(const Error& error);
// The error object as JSON text (also used for error events inside a stream).
std::string ErrorJson(const Error& error);
// Status, body, content type and Retry-After (for overload and rate limits) on `response`.
void RenderError(const Error& error, net::Response& response, int default_retry_after_s = 1);

}  // namespace orchestra::api
