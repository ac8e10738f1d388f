#include "providers/gemini/gemini_provider.hpp"

#include "common/gce_metadata.hpp"
#include "common/json_scan.hpp"
#include "net/sse.hpp"
#include "providers/codec_util.hpp"
#include "providers/gemini/codec.hpp"

namespace orchestra::providers {
namespace {

namespace asio = boost::asio;

ProviderError Unreadable(const std::string& provider, const Error& e) {
  ProviderError out;
  out.kind = FailureKind::kProtocol;
  out.error = Error(ErrorCode::kUpstreamError,
                    "provider " + provider + " sent an unreadable response: " + e.message);
  return out;
}

}  // namespace

GeminiProvider::GeminiProvider(const config::ProviderConfig& config, net::Upstreams& upstreams,
                               const config::EnvLookup& env)
    : HttpProvider(config, upstreams, env), vertex_(config.vertex) {
  if (!vertex_ && !api_key().empty()) SetAuthLine("x-goog-api-key: " + api_key());
  if (vertex_) {
    auto origin = net::Origin::Parse("http://" + gce::MetadataHost(env("GCE_METADATA_HOST")));
    if (!origin) throw std::runtime_error("GCE_METADATA_HOST: " + origin.error().message);
    net::OriginOptions o;
    o.connect_timeout = std::chrono::seconds(2);
    o.first_byte_timeout = std::chrono::seconds(5);
    o.max_connections = 4;
    metadata_ = upstreams.Register(*origin, o);
  }
}

std::string GeminiProvider::Target(std::string_view model, std::string_view method) const {
  return origin().base_path + "/models/" + std::string(model) + ":" + std::string(method);
}

asio::awaitable<Result<std::string>> GeminiProvider::AuthHeader(const CallOptions& options) {
  if (!vertex_) co_return std::string();  // the key is the provider's auth line
  if (auto cached = token_.Get(std::chrono::steady_clock::now())) {
    co_return "Authorization: Bearer " + *cached;
  }
  net::OutgoingRequest req;
  req.method = net::http::verb::get;
  req.target = gce::kTokenPath;
  const std::string flavor =
      std::string(gce::kFlavorHeaderName) + ": " + std::string(gce::kFlavorHeaderValue);
  req.headers.push_back(flavor);
  req.deadline = options.deadline;
  auto sent = co_await client(options).Send(*metadata_, req);
  if (!sent) {
    co_return Error(ErrorCode::kUnavailable,
                    "cannot get a token from the metadata server: " + sent.error().message);
  }
  auto token = gce::ParseTokenResponse(sent->head.status, sent->body);
  if (!token) co_return token.error();
  token_.Put(*token, std::chrono::steady_clock::now());
  co_return "Authorization: Bearer " + token->token;
}

asio::awaitable<ProviderResult<ChatResponse>> GeminiProvider::Chat(const ChatRequest& request,
                                                                   const CallOptions& options) {
  if (auto unusable = Unusable()) co_return *unusable;
  auto body = gemini::BuildGenerateContentRequest(request);
  if (!body) co_return Invalid(body.error());
  auto auth = co_await AuthHeader(options);
  if (!auth) co_return FromNet(auth.error());
  net::OutgoingRequest out;
  const std::string target = Target(options.upstream_model, "generateContent");
  out.target = target;
  out.deadline = options.deadline;
  out.first_byte_deadline = options.first_byte_deadline;
  if (!auth->empty()) out.headers.push_back(*auth);
  HeaderLines lines;
  AddCommonHeaders(out, options, lines);
  out.AddBody(*body);
  auto sent = co_await client(options).Send(origin_id(), out);
  if (!sent) co_return FromNet(sent.error());
  if (sent->head.status < 200 || sent->head.status >= 300) {
    co_return FromStatus(sent->head, ErrorMessageFromBody(sent->body));
  }
  auto parsed = gemini::ParseGenerateContentResponse(sent->body, options.upstream_model);
  if (!parsed) {
    // A blocked prompt is the request's own verdict, not a broken upstream.
    if (parsed.error().code == ErrorCode::kInvalidRequest) co_return Invalid(parsed.error());
    co_return Unreadable(name(), parsed.error());
  }
  co_return std::move(*parsed);
}

asio::awaitable<ProviderResult<StreamSummary>> GeminiProvider::ChatStream(
    const ChatRequest& request, const CallOptions& options, ChunkSink& sink) {
  if (auto unusable = Unusable()) co_return *unusable;
  auto body = gemini::BuildGenerateContentRequest(request);
  if (!body) co_return Invalid(body.error());
  auto auth = co_await AuthHeader(options);
  if (!auth) co_return FromNet(auth.error());
  net::OutgoingRequest out;
  const std::string target = Target(options.upstream_model, "streamGenerateContent?alt=sse");
  out.target = target;
  out.deadline = options.deadline;
  out.first_byte_deadline = options.first_byte_deadline;
  if (!auth->empty()) out.headers.push_back(*auth);
  out.headers.push_back("Accept: text/event-stream");
  HeaderLines lines;
  AddCommonHeaders(out, options, lines);
  out.AddBody(*body);
  auto opened = co_await client(options).Open(origin_id(), out);
  if (!opened) co_return FromNet(opened.error());
  net::ResponseStream& stream = **opened;
  if (stream.head().status < 200 || stream.head().status >= 300) {
    std::string error_body = co_await ReadErrorBody(stream);
    co_return FromStatus(stream.head(), ErrorMessageFromBody(error_body));
  }
  gemini::StreamDecoder decoder{std::string(options.upstream_model)};
  net::SseParser parser;
  net::SseEvent event;
  StreamSummary summary;
  summary.upstream_model = std::string(options.upstream_model);
  while (true) {
    auto piece = co_await stream.Read();
    if (!piece) co_return FromNet(piece.error());
    if (piece->empty()) break;
    if (!parser.Feed(*piece)) co_return Truncated();
    while (parser.Next(event)) {
      auto chunks = decoder.Feed(event.data);
      if (!chunks) co_return MidStream(chunks.error());
      for (ChatChunk& c : *chunks) {
        ++summary.chunks;
        if (!c.finish_reason.empty()) summary.finish_reason = c.finish_reason;
        if (!co_await sink.OnChunk(c)) co_return ClientGone();
      }
    }
  }
  // Gemini ends its SSE stream by closing the body; it is whole when every candidate finished.
  if (!decoder.finished()) co_return Truncated();
  if (auto last = decoder.Finish()) {
    if (!co_await sink.OnChunk(*last)) co_return ClientGone();
  }
  summary.usage = decoder.usage();
  co_return summary;
}

asio::awaitable<ProviderResult<EmbeddingResponse>> GeminiProvider::Embed(
    const EmbeddingRequest& request, const CallOptions& options) {
  if (auto unusable = Unusable()) co_return *unusable;
  if (request.token_input) {
    co_return Invalid(Error(ErrorCode::kInvalidRequest,
                            "Gemini embeddings take text input, not token ids", "input"));
  }
  auto body = gemini::BuildEmbedRequest(request, options.upstream_model);
  if (!body) co_return Invalid(body.error());
  auto auth = co_await AuthHeader(options);
  if (!auth) co_return FromNet(auth.error());
  const bool batch = gemini::UsesBatchEmbed(request);
  net::OutgoingRequest out;
  const std::string target =
      Target(options.upstream_model, batch ? "batchEmbedContents" : "embedContent");
  out.target = target;
  out.deadline = options.deadline;
  out.first_byte_deadline = options.first_byte_deadline;
  if (!auth->empty()) out.headers.push_back(*auth);
  HeaderLines lines;
  AddCommonHeaders(out, options, lines);
  out.AddBody(*body);
  auto sent = co_await client(options).Send(origin_id(), out);
  if (!sent) co_return FromNet(sent.error());
  if (sent->head.status < 200 || sent->head.status >= 300) {
    co_return FromStatus(sent->head, ErrorMessageFromBody(sent->body));
  }
  auto parsed = gemini::ParseEmbedResponse(sent->body, batch);
  if (!parsed) co_return Unreadable(name(), parsed.error());
  parsed->model = std::string(options.upstream_model);
  co_return std::move(*parsed);
}

}  // namespace orchestra::providers
