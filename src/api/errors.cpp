#include "api/errors.hpp"

#include "common/text.hpp"

namespace orchestra::api {

unsigned HttpStatus(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidRequest:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kModelNotAllowed:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kMethodNotAllowed:
      return 405;
    case ErrorCode::kNotImplemented:
      return 501;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kPayloadTooLarge:
      return 413;
    case ErrorCode::kUnsupportedMediaType:
      return 415;
    case ErrorCode::kUnprocessable:
      return 422;
    case ErrorCode::kHeadersTooLarge:
      return 431;
    case ErrorCode::kRateLimited:
    case ErrorCode::kInsufficientQuota:
      return 429;
    case ErrorCode::kOverloaded:
      return 503;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kUpstreamError:
      // A provider's verdict on the request itself reaches the client as is; its own
      // failures (5xx, or 401/403 on our provider key) are a bad gateway.
      switch (e.upstream_status) {
        case 400:
        case 404:
        case 409:
        case 413:
        case 422:
        case 429:
          return static_cast<unsigned>(e.upstream_status);
        default:
          return 502;
      }
    case ErrorCode::kUpstreamTimeout:
      return 504;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    case ErrorCode::kCancelled:
      return 499;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

std::string_view ErrorType(const Error& e) {
  // OpenAI's type for a spent quota, which its SDKs raise as their usual error.
  if (e.code == ErrorCode::kInsufficientQuota) return "insufficient_quota";
  switch (HttpStatus(e)) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    case 500:
      return "server_error";
    case 502:
    case 504:
      return "upstream_error";
    case 503:
      return "service_unavailable_error";
    default:
      return "invalid_request_error";
  }
}

std::string ErrorJson(const Error& e) {
  std::string out;
  out.reserve(96 + e.message.size());
  out += R"({"error":{"message":")";
  AppendJsonEscaped(out, e.message);
  out += R"(","type":")";
  out += ErrorType(e);
  out += R"(","code":")";
  out += ToString(e.code);
  out += R"(","param":)";
  if (e.param.empty()) {
    out += "null";
  } else {
    out += '"';
    AppendJsonEscaped(out, e.param);
    out += '"';
  }
  out += "}}";
  return out;
}

void RenderError(const Error& e, net::Response& response, int default_retry_after_s) {
  response.status = HttpStatus(e);
  response.content_type = "application/json";
  response.body = ErrorJson(e);
  if (e.code == ErrorCode::kOverloaded || e.code == ErrorCode::kRateLimited ||
      (e.code == ErrorCode::kUpstreamError && e.upstream_status == 429) ||
      (e.code == ErrorCode::kUnavailable && e.retry_after_s > 0)) {
    int seconds = e.retry_after_s > 0 ? e.retry_after_s : default_retry_after_s;
    response.AddHeader("Retry-After", std::to_string(seconds));
  }
}

}  // namespace orchestra::api
