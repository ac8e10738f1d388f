#pragma once

#include "providers/http_provider.hpp"

namespace orchestra::providers {

// Anthropic's Messages API (`POST {base_url}/messages`), translated to and from the canonical
// types by anthropic/codec.hpp, streaming included. Anthropic has no embeddings API.
class AnthropicProvider final : public HttpProvider {
 public:
  AnthropicProvider(const config::ProviderConfig& config, net::Upstreams& upstreams,
                    const config::EnvLookup& env);

  bool ForwardsRawBody() const override { return false; }

  boost::asio::awaitable<ProviderResult<wire::ChatResponse>> Chat(
      const wire::ChatRequest& request, const CallOptions& options) override;
  boost::asio::awaitable<ProviderResult<StreamSummary>> ChatStream(const wire::ChatRequest& request,
                                                                   const CallOptions& options,
                                                                   ChunkSink& sink) override;
  boost::asio::awaitable<ProviderResult<wire::EmbeddingResponse>> Embed(
      const wire::EmbeddingRequest& request, const CallOptions& options) override;

 private:
  std::string target_;        // <base path>/messages
  std::string version_line_;  // anthropic-version: ...
};

}  // namespace orchestra::providers
