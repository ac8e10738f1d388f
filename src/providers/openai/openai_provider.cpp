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
  bool Complete(std::vector<wire::ChatChunk>& out) override {
    out.clear();
    return done_;
  }
  wire::Usage usage() const override { return usage_; }

 private:
  bool done_ = false;
  wire::Usage usage_;
};

// A caller that did not say the upstream model as JSON (CallOptions::upstream_model_json).
ProviderError NoModelJson() {
  return ProviderError{
      Error(ErrorCode::kInternal, "openai provider: the call names no upstream model")};
}

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
  // No local but `out` before the co_await: each would take room in the frame.
  if (!UnusableReason().empty()) co_return *Unusable();
  if (options.upstream_model_json.empty()) co_return NoModelJson();
  net::OutgoingRequest out = NewRequest(target, options);
  AddSplicedBody(out, raw_body, model_begin, model_end, options.upstream_model_json);

  // Two statements: the temporaries of one holding a co_await live in the frame.
  Result<net::IncomingResponse> sent = co_await client(options).Send(origin_id(), out);
  co_return Forwarded<Response>(std::move(sent), options.upstream_model);
}

template <class Response>
ProviderResult<Response> OpenAIProvider::Forwarded(Result<net::IncomingResponse>&& sent,
                                                   std::string_view upstream_model) const {
  ProviderResult<std::string> body = Answer(std::move(sent));
  if (!body) return body.error();
  ProviderResult<Response> result;
  result->usage = wire::openai::ScanUsage(*body);
  result->model = std::string(upstream_model);
  result->raw = std::move(*body);
  return result;
}

asio::awaitable<ProviderResult<wire::ChatResponse>> OpenAIProvider::Chat(
    const wire::ChatRequest& request, const CallOptions& options) {
  return Forward<wire::ChatResponse>(chat_target_, request.raw_body, request.model_begin,
                                     request.model_end, options);
}

asio::awaitable<ProviderResult<StreamSummary>> OpenAIProvider::ChatStream(
    const wire::ChatRequest& request, const CallOptions& options, ChunkSink& sink) {
  if (auto unusable = Unusable()) co_return *unusable;
  if (options.upstream_model_json.empty()) co_return NoModelJson();
  net::OutgoingRequest out = NewRequest(chat_target_, options);
  out.headers.push_back("Accept: text/event-stream");
  // Usage is always asked for, to count tokens; the usage chunk reaches the client only if the
  // client asked for it too (the sink decides).
  boost::container::static_vector<Splice, 2> splices{
      {request.model_begin, request.model_end, options.upstream_model_json}, IncludeUsage(request)};
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
