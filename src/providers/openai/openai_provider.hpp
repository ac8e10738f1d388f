#pragma once

#include "providers/http_provider.hpp"

namespace orchestra::providers {

// Any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp, OpenRouter, Groq, Together...).
// The client's request is forwarded as the client wrote it, with only `model` replaced by the
// upstream name (and, for streams, `stream_options.include_usage` set so that tokens can be
// counted); the upstream's response is returned byte for byte. Nothing is re-serialised.
class OpenAIProvider final : public HttpProvider {
 public:
  OpenAIProvider(const config::ProviderConfig& config, net::Upstreams& upstreams,
                 const config::EnvLookup& env);

  bool ForwardsRawBody() const override { return true; }

  boost::asio::awaitable<ProviderResult<wire::ChatResponse>> Chat(
      const wire::ChatRequest& request, const CallOptions& options) override;
  boost::asio::awaitable<ProviderResult<StreamSummary>> ChatStream(const wire::ChatRequest& request,
                                                                   const CallOptions& options,
                                                                   ChunkSink& sink) override;
  boost::asio::awaitable<ProviderResult<wire::EmbeddingResponse>> Embed(
      const wire::EmbeddingRequest& request, const CallOptions& options) override;

 private:
  // Chat and Embed: the client's body to `target` with `model` (bytes [model_begin, model_end))
  // replaced; the upstream's answer returned as it came, with its usage read.
  template <class Response>
  boost::asio::awaitable<ProviderResult<Response>> Forward(std::string_view target,
                                                           std::string_view raw_body,
                                                           std::size_t model_begin,
                                                           std::size_t model_end,
                                                           const CallOptions& options);
  // Forward's answer from what the client returned. A plain function rather than part of
  // Forward: its locals would otherwise sit in Forward's coroutine frame, which must stay under
  // the 1,020 bytes Asio recycles (docs/ARCHITECTURE.md).
  template <class Response>
  ProviderResult<Response> Forwarded(Result<net::IncomingResponse>&& sent,
                                     std::string_view upstream_model) const;

  std::string chat_target_;        // <base path>/chat/completions
  std::string embeddings_target_;  // <base path>/embeddings
};

}  // namespace orchestra::providers
