#include "providers/openai/openai_provider.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <span>

#include <boost/container/static_vector.hpp>

#include "providers/openai/body_splice.hpp"
#include "wire/codec_util.hpp"
#include "wire/openai_scan.hpp"

namespace orchestra::providers {
namespace {

namespace asio = boost::asio;

// OpenAI's stream: each `data:` payload is a chunk forwarded as it came, `[DONE]` its end.
class ChunkForwarder final : public EventDecoder {
 public:
  boost::system::result<std::size_t, Failure> Feed(const net::SseEvent& event,
                                                   std::vector<wire::ChatChunk>& out) override {
    if (event.data == "[DONE]") {
      done_ = true;
      return 0;
    }
    const wire::openai::ChunkFacts facts = wire::openai::ScanChunk(event.data);
    if (!facts.valid) return Failure{Error(ErrorCode::kUpstreamError, "not a JSON object"), true};
    if (facts.is_error) {
      return Failure{Error(ErrorCode::kUpstreamError, wire::ErrorMessageFromBody(event.data)),
                     false};
    }
    if (facts.usage.known) usage_ = facts.usage;
    if (out.empty()) out.emplace_back();
    wire::ChatChunk& chunk = out.front();
    chunk.raw.assign(event.data);
    chunk.usage_only = facts.usage_only;
    chunk.usage = facts.usage.known ? std::optional<wire::Usage>(facts.usage) : std::nullopt;
    return 1;
  }
  bool done() const override { return done_; }
  std::string_view end_marker() const override { return "[DONE]"; }
  bool Complete(std::optional<wire::ChatChunk>& /*last*/) override { return done_; }
  wire::Usage usage() const override { return usage_; }

 private:
  bool done_ = false;
  wire::Usage usage_;
};

}  // namespace

OpenAIProvider::OpenAIProvider(const config::ProviderConfig& config, net::Upstreams& upstreams,
                               const config::EnvLookup& env)
    : HttpProvider(config, upstreams, env),
      chat_target_(origin().base_path + "/chat/completions"),
      embeddings_target_(origin().base_path + "/embeddings") {
  if (!api_key().empty()) SetAuthLine("Authorization: Bearer " + api_key());
}

template <class Response>
asio::awaitable<ProviderResult<Response>> OpenAIProvider::Forward(std::string_view target,
                                                                  std::string_view raw_body,
                                                                  std::size_t model_begin,
                                                                  std::size_t model_end,
                                                                  const CallOptions& options) {
  if (auto unusable = Unusable()) co_return *unusable;
  net::OutgoingRequest out = NewRequest(target, options);
  const QuotedJson model(options.upstream_model);
  Splice splice[] = {{model_begin, model_end, model.view()}};
  AddSplicedBody(out, raw_body, splice);

  auto body = Answer(co_await client(options).Send(origin_id(), out));
  if (!body) co_return body.error();
  Response result;
  result.usage = wire::openai::ScanUsage(*body);
  result.model = std::string(options.upstream_model);
  result.raw = std::move(*body);
  co_return result;
}

asio::awaitable<ProviderResult<wire::ChatResponse>> OpenAIProvider::Chat(
    const wire::ChatRequest& request, const CallOptions& options) {
  return Forward<wire::ChatResponse>(chat_target_, request.raw_body, request.model_begin,
                                     request.model_end, options);
}

asio::awaitable<ProviderResult<StreamSummary>> OpenAIProvider::ChatStream(
    const wire::ChatRequest& request, const CallOptions& options, ChunkSink& sink) {
  if (auto unusable = Unusable()) co_return *unusable;
  net::OutgoingRequest out = NewRequest(chat_target_, options);
  out.headers.push_back("Accept: text/event-stream");
  const QuotedJson model(options.upstream_model);
  // Usage is always asked for, to count tokens; the usage chunk reaches the client only if the
  // client asked for it too (the sink decides).
  boost::container::static_vector<Splice, 2> splices{
      {request.model_begin, request.model_end, model.view()}, IncludeUsage(request)};
  AddSplicedBody(out, request.raw_body, splices);
  ChunkForwarder decoder;
  co_return co_await Stream(out, options, decoder, sink);
}

asio::awaitable<ProviderResult<wire::EmbeddingResponse>> OpenAIProvider::Embed(
    const wire::EmbeddingRequest& request, const CallOptions& options) {
  return Forward<wire::EmbeddingResponse>(embeddings_target_, request.raw_body, request.model_begin,
                                          request.model_end, options);
}

}  // namespace orchestra::providers
