#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

namespace orchestra {

// What went wrong, in terms a caller can act on. Each code maps to one HTTP status and one
// error type in api/errors.cpp, the only place that knows about HTTP.
enum class ErrorCode : std::uint8_t {
  kInvalidRequest,        // malformed or semantically wrong input (400)
  kUnauthenticated,       // missing or wrong API key (401)
  kPermissionDenied,      // key lacks the scope (403)
  kModelNotAllowed,       // the key may not call the model it names (403, code model_not_allowed)
  kNotFound,              // no such resource or model (404)
  kMethodNotAllowed,      // path exists, method does not (405)
  kNotImplemented,        // a method or protocol feature Orchestra does not implement (501)
  kConflict,              // state does not allow the operation (409)
  kPayloadTooLarge,       // body or value over its limit (413)
  kUnsupportedMediaType,  // a content type Orchestra does not read (415); the message names
                          // the supported ones
  kUnprocessable,         // well-formed, but asks for what this model cannot do (422)
  kHeadersTooLarge,       // request headers over their limit (431)
  kRateLimited,           // a rate limit of ours (429 rate_limit_exceeded)
  kInsufficientQuota,     // a key's budget is spent (429 insufficient_quota, as OpenAI)
  kOverloaded,            // load shedding (503 + Retry-After)
  kUnavailable,           // a dependency is down or we are draining (503)
  kUpstreamError,         // the provider answered with an error (502, or its 4xx passed through)
  kUpstreamTimeout,       // the provider did not answer in time (504)
  kDeadlineExceeded,      // the request's own deadline passed (504)
  kCancelled,             // the client went away; nothing is sent back
  kInternal,              // a bug or an unexpected failure (500)
};

std::string_view ToString(ErrorCode code);

// An expected failure on the request path. Not constructible from a lone string, so that
// boost::system::result<std::string, Error> stays unambiguous.
struct Error {
  Error() = default;
  Error(ErrorCode code_in, std::string message_in, std::string param_in = {},
        int upstream_status_in = 0)
      : code(code_in),
        message(std::move(message_in)),
        param(std::move(param_in)),
        upstream_status(upstream_status_in) {}

  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string param;        // the offending request field, when there is one
  int upstream_status = 0;  // the provider's HTTP status, when the error came from upstream
  int retry_after_s = 0;    // a hint for Retry-After, when known
};

// Result<T> is the return type of every fallible call on the request path (STYLE.md "Errors").
template <class T>
using Result = boost::system::result<T, Error>;

// Called by Result<T>::value() on an error; request-path code checks has_value() instead.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

inline Error MakeError(ErrorCode code, std::string message, std::string param = {}) {
  return Error(code, std::move(message), std::move(param));
}

}  // namespace orchestra
