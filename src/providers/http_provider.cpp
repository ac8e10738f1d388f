#include "providers/http_provider.hpp"

#include <charconv>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "observability/log.hpp"
#include "wire/codec_util.hpp"

namespace orchestra::providers {
namespace {

namespace asio = boost::asio;

// Bounds what an error answer that arrives as a stream may cost.
constexpr std::size_t kMaxErrorBody = 64 << 10;

bool KeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Well-known shapes of provider keys (OpenAI and Anthropic `sk-…`, Google `AIza…`): an upstream
// that quotes a key it was sent, or another one, must not pass it on to a client.
bool LooksLikeKey(std::string_view text, std::size_t at, std::size_t& length) {
  if (at > 0 && KeyChar(text[at - 1])) return false;
  std::size_t prefix = 0;
  if (text.substr(at, 3) == "sk-") {
    prefix = 3;
  } else if (text.substr(at, 4) == "AIza") {
    prefix = 4;
  } else {
    return false;
  }
  std::size_t end = at + prefix;
  while (end < text.size() && KeyChar(text[end]))
    ++end;
  length = end - at;
  return length - prefix >= 16;
}

std::string TrimRight(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  return s;
}

}  // namespace

std::string ReadSecret(std::string_view what, const std::string& env_name,
                       const std::string& file_path, const config::EnvLookup& env) {
  if (!env_name.empty()) {
    auto v = env(env_name);
    if (!v || TrimRight(*v).empty()) {
      throw std::runtime_error(std::string(what) + ": environment variable " + env_name +
                               " is not set");
    }
    return TrimRight(*v);
  }
  if (!file_path.empty()) {
    std::ifstream in(file_path);
    if (!in) throw std::runtime_error(std::string(what) + ": cannot read " + file_path);
    std::ostringstream text;
    text << in.rdbuf();
    std::string secret = TrimRight(text.str());
    if (secret.empty())
      throw std::runtime_error(std::string(what) + ": " + file_path + " is empty");
    return secret;
  }
  return {};
}

int ParseRetryAfterMs(std::string_view value) {
  while (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  if (value.empty()) return -1;
  double seconds = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && p == value.data() + value.size() && seconds >= 0) {
    return static_cast<int>(seconds * 1000);
  }
  // HTTP-date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  std::string text(value);
  if (strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) return -1;
  const std::time_t at = timegm(&tm);
  const std::time_t now = std::time(nullptr);
  return at > now ? static_cast<int>((at - now) * 1000) : 0;
}

HttpProvider::HttpProvider(const config::ProviderConfig& config, net::Upstreams& upstreams,
                           const config::EnvLookup& env)
    : config_(config), upstreams_(upstreams) {
  auto parsed = net::Origin::Parse(config_.base_url);
  if (!parsed) {
    throw std::runtime_error("provider " + config_.name + ": base_url '" + config_.base_url +
                             "': " + parsed.error().message);
  }
  net::OriginOptions options;
  options.connect_timeout = config_.connect_timeout;
  options.first_byte_timeout = config_.first_byte_timeout;
  options.idle_timeout = config_.idle_timeout;
  options.max_connections = config_.max_connections;
  options.max_response_bytes = config_.max_response_bytes;
  options.tls_verify = config_.tls_verify;
  options.ca_file = config_.ca_file;
  origin_ = upstreams_.Register(*parsed, options);
  // A missing provider key does not stop the server (the shipped Cloud Run config lists every
  // provider; a deployment may hold keys for only some): the provider then refuses each call
  // with the reason, and routes fall back. A key of Orchestra's own (auth.keys) is different:
  // there a missing key is fatal.
  try {
    // Vertex AI authorises with the service account's token; a key would go unused.
    if (!config_.vertex)
      api_key_ =
          ReadSecret("provider " + config_.name, config_.api_key_env, config_.api_key_file, env);
  } catch (const std::runtime_error& e) {
    missing_key_ = e.what();
    observability::Log(observability::Severity::kWarning, "provider disabled until restarted",
                       {{"provider", config_.name}, {"reason", missing_key_}});
  }
  for (const auto& [name, value] : config_.headers)
    header_lines_.push_back(name + ": " + value);
  if (api_key_.size() >= 8) secrets_.push_back(api_key_);
  for (const auto& [name, value] : config_.headers) {
    if (value.size() >= 8) secrets_.push_back(value);
  }
}

asio::awaitable<Result<std::string>> HttpProvider::Warmup(int worker) {
  auto r = co_await upstreams_.ForWorker(worker).Warm(origin_);
  if (!r) co_return r.error();
  co_return origin().Key();
}

ProviderError HttpProvider::FromNet(const Error& error) {
  ProviderError e;
  e.error = error;
  switch (error.code) {
    case ErrorCode::kUnavailable:
      e.kind = FailureKind::kConnect;
      break;
    case ErrorCode::kUpstreamTimeout:
      e.kind = FailureKind::kTimeout;
      break;
    case ErrorCode::kCancelled:
      e.kind = FailureKind::kCancelled;
      break;
    default:
      e.kind = FailureKind::kProtocol;
      break;
  }
  if (e.kind == FailureKind::kConnect) e.error.code = ErrorCode::kUpstreamError;
  return e;
}

ProviderError HttpProvider::FromStatus(const net::ResponseHead& head,
                                       std::string_view message) const {
  ProviderError e;
  e.kind = FailureKind::kStatus;
  e.status = static_cast<int>(head.status);
  e.retry_after_ms = ParseRetryAfterMs(head.Header("retry-after"));
  e.error =
      Error(ErrorCode::kUpstreamError, "provider " + config_.name + " answered " +
                                           std::to_string(head.status) + ": " + Redacted(message));
  e.error.upstream_status = e.status;
  if (e.retry_after_ms >= 0) e.error.retry_after_s = (e.retry_after_ms + 999) / 1000;
  return e;
}

std::optional<ProviderError> HttpProvider::Unusable() const {
  if (missing_key_.empty()) return std::nullopt;
  ProviderError e;
  e.kind = FailureKind::kStatus;
  e.status = 401;
  e.error = Error(ErrorCode::kUpstreamError, missing_key_);
  e.error.upstream_status = 401;
  return e;
}

ProviderError HttpProvider::Invalid(Error error) {
  ProviderError e;
  e.kind = FailureKind::kStatus;
  e.status = 400;
  e.error = std::move(error);
  return e;
}

ProviderError HttpProvider::Unreadable(const Error& error) const {
  ProviderError e;
  e.kind = FailureKind::kProtocol;
  e.error = Error(
      ErrorCode::kUpstreamError,
      "provider " + config_.name + " sent an unreadable response: " + Redacted(error.message));
  return e;
}

std::string HttpProvider::Redacted(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t length = 0;
    bool hidden = LooksLikeKey(text, i, length);
    for (std::size_t k = 0; !hidden && k < secrets_.size(); ++k) {
      if (text.compare(i, secrets_[k].size(), secrets_[k]) == 0) {
        hidden = true;
        length = secrets_[k].size();
      }
    }
    if (hidden) {
      out += "[redacted]";
      i += length;
    } else {
      out += text[i++];
    }
  }
  return out;
}

net::OutgoingRequest HttpProvider::NewRequest(std::string_view target,
                                              const CallOptions& options) const {
  net::OutgoingRequest request;
  request.target = target;
  request.deadline = options.deadline;
  request.first_byte_deadline = options.first_byte_deadline;
  if (!auth_line_.empty()) request.headers.push_back(auth_line_);
  for (const std::string& line : header_lines_)
    request.headers.push_back(line);
  request.traceparent = options.traceparent;
  request.request_id = options.request_id;
  return request;
}

ProviderResult<std::string> HttpProvider::Answer(Result<net::IncomingResponse>&& sent) const {
  if (!sent) return FromNet(sent.error());
  if (sent->head.status < 200 || sent->head.status >= 300) {
    return FromStatus(sent->head, wire::ErrorMessageFromBody(sent->body));
  }
  if (const auto first = sent->body.find_first_not_of(" \t\r\n");
      first == std::string::npos || sent->body[first] != '{') {
    return FromNet(Error(ErrorCode::kUpstreamError,
                         "provider " + config_.name + " answered " +
                             std::to_string(sent->head.status) +
                             " with a body that is not a JSON object (Content-Type: " +
                             Redacted(sent->head.Header("content-type").substr(0, 64)) + ")"));
  }
  return std::move(sent->body);
}

asio::awaitable<ProviderResult<StreamSummary>> HttpProvider::Stream(const net::OutgoingRequest& out,
                                                                    const CallOptions& options,
                                                                    EventDecoder& decoder,
                                                                    ChunkSink& sink) {
  auto opened = co_await client(options).Open(origin_, out);
  if (!opened) co_return FromNet(opened.error());
  net::ResponseStream& stream = **opened;
  if (stream.head().status < 200 || stream.head().status >= 300) {
    co_return co_await StatusFailure(stream);
  }

  StreamSummary summary;
  summary.upstream_model = std::string(options.upstream_model);
  net::SseParser parser;
  net::SseEvent event;
  std::vector<wire::ChatChunk> chunks;
  while (!decoder.done()) {
    auto piece = co_await stream.Read();
    if (!piece) co_return FromNet(piece.error());
    if (piece->empty()) break;
    if (!parser.Feed(*piece)) {
      co_return StreamFailed({Error(ErrorCode::kUpstreamError, "an oversized event"), true});
    }
    while (!decoder.done() && parser.Next(event)) {
      auto fed = decoder.Feed(event, chunks);
      if (!fed) co_return StreamFailed(fed.error());
      for (std::size_t i = 0; i < *fed; ++i) {
        wire::ChatChunk& chunk = chunks[i];
        ++summary.chunks;
        if (!chunk.finish_reason.empty()) summary.finish_reason = chunk.finish_reason;
        if (!co_await sink.OnChunk(chunk)) co_return ClientGone();
      }
    }
  }
  if (!decoder.Complete(chunks)) co_return StreamCut(decoder);
  if (!chunks.empty()) {
    ++summary.chunks;
    if (!co_await sink.OnChunk(chunks.front())) co_return ClientGone();
  }
  summary.usage = decoder.usage();
  co_return summary;
}

asio::awaitable<ProviderError> HttpProvider::StatusFailure(net::ResponseStream& stream) const {
  std::string body;
  while (body.size() < kMaxErrorBody) {
    auto piece = co_await stream.Read();
    if (!piece || piece->empty()) break;
    body.append(*piece);
  }
  co_return FromStatus(stream.head(), wire::ErrorMessageFromBody(body));
}

ProviderError HttpProvider::StreamCut(const EventDecoder& decoder) const {
  ProviderError cut;
  cut.kind = FailureKind::kProtocol;
  cut.error =
      Error(ErrorCode::kUpstreamError, "provider " + config_.name + " ended the stream before " +
                                           std::string(decoder.end_marker()));
  return cut;
}

ProviderError HttpProvider::StreamFailed(const EventDecoder::Failure& f) const {
  ProviderError e;
  e.kind = f.malformed ? FailureKind::kProtocol : FailureKind::kStatus;
  e.status = f.error.upstream_status > 0 ? f.error.upstream_status : 502;
  e.error = Error(ErrorCode::kUpstreamError,
                  "provider " + config_.name +
                      (f.malformed ? " sent a malformed event: " : " failed mid-stream: ") +
                      Redacted(f.error.message));
  e.error.upstream_status = f.malformed ? 0 : e.status;
  return e;
}

ProviderError HttpProvider::ClientGone() {
  ProviderError e;
  e.kind = FailureKind::kCancelled;
  e.error = Error(ErrorCode::kCancelled, "client went away");
  return e;
}

}  // namespace orchestra::providers
