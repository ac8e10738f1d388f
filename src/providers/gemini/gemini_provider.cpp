#include "providers/gemini/gemini_provider.hpp"

#include "common/gce_metadata.hpp"
#include "common/json_scan.hpp"
#include "providers/gemini/codec.hpp"
#include "wire/codec_util.hpp"

namespace orchestra::providers {
namespace {

namespace asio = boost::asio;

// Gemini's stream ends by closing the body; it is whole when every candidate has finished.
using GeminiEvents = TranslatedEvents<gemini::StreamDecoder, false>;

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

asio::awaitable<ProviderResult<wire::ChatResponse>> GeminiProvider::Chat(
    const wire::ChatRequest& request, const CallOptions& options) {
  if (auto unusable = Unusable()) co_return *unusable;
  auto body = gemini::BuildGenerateContentRequest(request);
  if (!body) co_return Invalid(body.error());
  auto auth = co_await AuthHeader(options);
  if (!auth) co_return FromNet(auth.error());
  const std::string target = Target(options.upstream_model, "generateContent");
  net::OutgoingRequest out = NewRequest(target, options);
  if (!auth->empty()) out.headers.push_back(*auth);
  out.AddBody(*body);
  auto answer = Answer(co_await client(options).Send(origin_id(), out));
  if (!answer) co_return answer.error();
  auto parsed = gemini::ParseGenerateContentResponse(*answer, options.upstream_model);
  if (!parsed) {
    // A blocked prompt is the request's own verdict, not a broken upstream.
    if (parsed.error().code == ErrorCode::kInvalidRequest) co_return Invalid(parsed.error());
    co_return Unreadable(parsed.error());
  }
  co_return std::move(*parsed);
}

asio::awaitable<ProviderResult<StreamSummary>> GeminiProvider::ChatStream(
    const wire::ChatRequest& request, const CallOptions& options, ChunkSink& sink) {
  if (auto unusable = Unusable()) co_return *unusable;
  auto body = gemini::BuildGenerateContentRequest(request);
  if (!body) co_return Invalid(body.error());
  auto auth = co_await AuthHeader(options);
  if (!auth) co_return FromNet(auth.error());
  const std::string target = Target(options.upstream_model, "streamGenerateContent?alt=sse");
  net::OutgoingRequest out = NewRequest(target, options);
  if (!auth->empty()) out.headers.push_back(*auth);
  out.headers.push_back("Accept: text/event-stream");
  out.AddBody(*body);
  GeminiEvents decoder{std::string(options.upstream_model)};
  co_return co_await Stream(out, options, decoder, sink);
}

asio::awaitable<ProviderResult<wire::EmbeddingResponse>> GeminiProvider::Embed(
    const wire::EmbeddingRequest& request, const CallOptions& options) {
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
  const std::string target =
      Target(options.upstream_model, batch ? "batchEmbedContents" : "embedContent");
  net::OutgoingRequest out = NewRequest(target, options);
  if (!auth->empty()) out.headers.push_back(*auth);
  out.AddBody(*body);
  auto answer = Answer(co_await client(options).Send(origin_id(), out));
  if (!answer) co_return answer.error();
  auto parsed = gemini::ParseEmbedResponse(*answer, batch);
  if (!parsed) co_return Unreadable(parsed.error());
  parsed->model = std::string(options.upstream_model);
  co_return std::move(*parsed);
}

}  // namespace orchestra::providers
