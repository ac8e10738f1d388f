#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "providers/local/embedder.hpp"
#include "providers/provider.hpp"

// The built-in offline provider: deterministic models that need no key, no network and no GPU,
// so that a fresh install answers real requests and tests run hermetically. It generates no
// text, and says so rather than pretend.
//
//   local-extractive  chat: answers questions with sentences of the context it is given, or
//                     summarises it (local/extractive_chat.hpp). A request to write new text,
//                     or one with no context to extract from, fails with 422
//                     (ErrorCode::kUnprocessable) naming the providers that can generate text.
//                     Fields it cannot honour fail with 400 naming the field: tools,
//                     tool_choice (other than none/auto), response_format (other than text),
//                     n > 1, logprobs, top_logprobs, functions, function_call, audio,
//                     modalities other than text, prediction, web_search_options, and messages
//                     with images or audio. `max_tokens` bounds the reply in words; `stop` is
//                     honoured; temperature, top_p and seed change nothing (it is deterministic).
//   local-embed       embeddings: word vectors plus hashed lexical features
//                     (local/embedder.hpp), 256 dimensions or `dimensions` (1 to 4096).
//
// The word vectors (models/word_vectors.bin, installed by scripts/setup.sh) load on first use;
// WordVectors::Default().Preload() on a background thread at start-up spares the first request
// that wait (about 30 ms: a SHA-256 of 13 MB). Without the file the provider logs a warning when
// it is made and embeddings are lexical only; WordVectors::Default().Status() says which.
namespace orchestra::providers {

class LocalProvider final : public Provider {
 public:
  explicit LocalProvider(std::string name = "local");

  const std::string& name() const override { return name_; }
  config::ProviderType type() const override { return config::ProviderType::kLocal; }
  bool ForwardsRawBody() const override { return false; }

  boost::asio::awaitable<ProviderResult<wire::ChatResponse>> Chat(
      const wire::ChatRequest& request, const CallOptions& options) override;
  boost::asio::awaitable<ProviderResult<StreamSummary>> ChatStream(const wire::ChatRequest& request,
                                                                   const CallOptions& options,
                                                                   ChunkSink& sink) override;
  boost::asio::awaitable<ProviderResult<wire::EmbeddingResponse>> Embed(
      const wire::EmbeddingRequest& request, const CallOptions& options) override;
  boost::asio::awaitable<Result<std::string>> Warmup(int worker) override;

  static constexpr std::string_view kChatModel = "local-extractive";
  static constexpr std::string_view kEmbedModel = "local-embed";
  static std::vector<std::string_view> Models() { return {kChatModel, kEmbedModel}; }

 private:
  std::string name_;
  local::Embedder embedder_;
};

// The adapter's request checks, exposed for tests: the first field of `request` the local
// provider cannot honour, as a 400 error naming it; nullopt when there is none.
std::optional<Error> UnsupportedLocalChatField(const wire::ChatRequest& request);

}  // namespace orchestra::providers
