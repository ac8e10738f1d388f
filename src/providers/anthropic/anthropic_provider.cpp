#include "providers/anthropic/anthropic_provider.hpp"

#include "net/sse.hpp"
#include "providers/anthropic/codec.hpp"
#include "wire/codec_util.hpp"

namespace orchestra::providers {
namespace {
namespace asio = boost::asio;
}  // namespace

AnthropicProvider::AnthropicProvider(const config::ProviderConfig& config,
                                     net::Upstreams& upstreams, const config::EnvLookup& env)
    : HttpProvider(config, upstreams, env),
      target_(origin().base_path + "/messages"),
      version_line_("anthropic-version: " + config.anthropic_version) {
  if (!api_key().empty()) SetAuthLine("x-api-key: " + api_key());
}

asio::awaitable<ProviderResult<wire::ChatResponse>> AnthropicProvider::Chat(
    const wire::ChatRequest& request, const CallOptions& options) {
  if (auto unusable = Unusable()) co_return *unusable;
  auto body = anthropic::BuildMessagesRequest(request, options.upstream_model,
                                              config().default_max_tokens, false);
  if (!body) co_return Invalid(body.error());
  net::OutgoingRequest out;
  out.target = target_;
  out.deadline = options.deadline;
  out.first_byte_deadline = options.first_byte_deadline;
  out.headers.push_back(version_line_);
  HeaderLines lines;
  AddCommonHeaders(out, options, lines);
  out.AddBody(*body);
  auto sent = co_await client(options).Send(origin_id(), out);
  if (!sent) co_return FromNet(sent.error());
  if (sent->head.status < 200 || sent->head.status >= 300) {
    co_return FromStatus(sent->head, wire::ErrorMessageFromBody(sent->body));
  }
  auto parsed = anthropic::ParseMessagesResponse(sent->body);
  if (!parsed) {
    ProviderError e;
    e.kind = FailureKind::kProtocol;
    e.error =
        Error(ErrorCode::kUpstreamError,
              "provider " + name() + " sent an unreadable response: " + parsed.error().message);
    co_return e;
  }
  if (parsed->model.empty()) parsed->model = std::string(options.upstream_model);
  co_return std::move(*parsed);
}

asio::awaitable<ProviderResult<StreamSummary>> AnthropicProvider::ChatStream(
    const wire::ChatRequest& request, const CallOptions& options, ChunkSink& sink) {
  if (auto unusable = Unusable()) co_return *unusable;
  auto body = anthropic::BuildMessagesRequest(request, options.upstream_model,
                                              config().default_max_tokens, true);
  if (!body) co_return Invalid(body.error());
  net::OutgoingRequest out;
  out.target = target_;
  out.deadline = options.deadline;
  out.first_byte_deadline = options.first_byte_deadline;
  out.headers.push_back(version_line_);
  out.headers.push_back("Accept: text/event-stream");
  HeaderLines lines;
  AddCommonHeaders(out, options, lines);
  out.AddBody(*body);
  auto opened = co_await client(options).Open(origin_id(), out);
  if (!opened) co_return FromNet(opened.error());
  net::ResponseStream& stream = **opened;
  if (stream.head().status < 200 || stream.head().status >= 300) {
    std::string error_body = co_await ReadErrorBody(stream);
    co_return FromStatus(stream.head(), wire::ErrorMessageFromBody(error_body));
  }
  anthropic::StreamDecoder decoder;
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
      auto chunks = decoder.Feed(event.event, event.data);
      if (!chunks) co_return MidStream(chunks.error());
      for (wire::ChatChunk& c : *chunks) {
        ++summary.chunks;
        if (!c.finish_reason.empty()) summary.finish_reason = c.finish_reason;
        if (!co_await sink.OnChunk(c)) co_return ClientGone();
      }
    }
    if (decoder.finished()) break;
  }
  if (!decoder.finished()) co_return Truncated();
  if (auto last = decoder.Finish()) {
    if (!co_await sink.OnChunk(*last)) co_return ClientGone();
  }
  summary.usage = decoder.usage();
  co_return summary;
}

asio::awaitable<ProviderResult<wire::EmbeddingResponse>> AnthropicProvider::Embed(
    const wire::EmbeddingRequest& /*request*/, const CallOptions& /*options*/) {
  if (auto unusable = Unusable()) co_return *unusable;
  co_return Invalid(Error(ErrorCode::kInvalidRequest,
                          "provider " + name() + " (Anthropic) has no embeddings API", "model"));
}

}  // namespace orchestra::providers
