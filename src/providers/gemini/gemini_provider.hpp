#pragma once

#include <optional>

#include "common/gce_metadata.hpp"
#include "providers/http_provider.hpp"

namespace orchestra::providers {

// Google's Gemini API (`generateContent`, `streamGenerateContent?alt=sse`, `embedContent`,
// `batchEmbedContents`), translated by gemini/codec.hpp. Two ways in:
// - the Gemini API with a key (`x-goog-api-key`), the default;
// - Vertex AI (`vertex: true`): the same JSON at the Vertex address the config loader derives
//   (https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
//   publishers/google), authorised with the service account's OAuth token from the metadata server
//   (Cloud Run's identity; `$GCE_METADATA_HOST` overrides the server's address, for tests). Tokens
//   are cached until a minute before they expire (common/gce_metadata.hpp, shared with storage).
class GeminiProvider final : public HttpProvider {
 public:
  GeminiProvider(const config::ProviderConfig& config, net::Upstreams& upstreams,
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
  // The bearer line for Vertex AI (from the metadata server); "" for the Gemini API, whose key
  // line is set once.
  boost::asio::awaitable<Result<std::string>> AuthHeader(const CallOptions& options);
  std::string Target(std::string_view model, std::string_view method) const;

  bool vertex_ = false;
  std::optional<net::OriginId> metadata_;
  gce::TokenCache token_;
};

}  // namespace orchestra::providers
