#include "providers/anthropic/anthropic_provider.hpp"

#include "providers/anthropic/codec.hpp"
#include "wire/codec_util.hpp"

namespace orchestra::providers {
namespace {

namespace asio = boost::asio;

// Anthropic's stream ends at its message_stop event.
using AnthropicEvents = TranslatedEvents<anthropic::StreamDecoder, true>;

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
  net::OutgoingRequest out = NewRequest(target_, options);
  out.headers.push_back(version_line_);
  out.AddBody(*body);
  auto answer = Answer(co_await client(options).Send(origin_id(), out));
  if (!answer) co_return answer.error();
  auto parsed = anthropic::ParseMessagesResponse(*answer);
  if (!parsed) co_return Unreadable(parsed.error());
  if (parsed->model.empty()) parsed->model = std::string(options.upstream_model);
  co_return std::move(*parsed);
}

asio::awaitable<ProviderResult<StreamSummary>> AnthropicProvider::ChatStream(
    const wire::ChatRequest& request, const CallOptions& options, ChunkSink& sink) {
  if (auto unusable = Unusable()) co_return *unusable;
  auto body = anthropic::BuildMessagesRequest(request, options.upstream_model,
                                              config().default_max_tokens, true);
  if (!body) co_return Invalid(body.error());
  net::OutgoingRequest out = NewRequest(target_, options);
  out.headers.push_back(version_line_);
  out.headers.push_back("Accept: text/event-stream");
  out.AddBody(*body);
  AnthropicEvents decoder;
  co_return co_await Stream(out, options, decoder, sink);
}

asio::awaitable<ProviderResult<wire::EmbeddingResponse>> AnthropicProvider::Embed(
    const wire::EmbeddingRequest& /*request*/, const CallOptions& /*options*/) {
  if (auto unusable = Unusable()) co_return *unusable;
  co_return Invalid(Error(ErrorCode::kInvalidRequest,
                          "provider " + name() + " (Anthropic) has no embeddings API", "model"));
}

}  // namespace orchestra::providers
