#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
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

// Loads the data files that otherwise load on their first use — the tokenizer ranks of the
// encodings `config` can use (PreloadedEncodings) and the word vectors
// (WordVectors::Default().Preload()) — and says how it went, for a log line. Blocking (tens of
// milliseconds: reading, indexing and checking up to 18 MB): main calls it on a thread of its
// own once the server listens, so that no request waits for it. Safe to call concurrently with
// requests that load the same files: each loads once, and a request that needs one meanwhile
// waits only for that load.
struct PreloadReport {
  bool tokenizer_ok = true;
  std::string tokenizer_error;  // the first encoding that could not load, and why
  std::string word_vectors;     // WordVectors::Status()
  double ms = 0;                // wall time of the whole preload
};
PreloadReport PreloadModelFiles(const config::Config& config);

// The encodings `config` can count with (tokens::EncodingForModel): cl100k_base (the local
// models' and the stand-in for Anthropic and Gemini), and o200k_base when a provider of type
// openai is configured (its unknown models, and gpt-4o and later) or a target needs it. Each
// loaded encoding holds a few MiB (tokens/encoding.hpp), so only these are loaded ahead.
std::vector<std::string_view> PreloadedEncodings(const config::Config& config);

// The adapter's request checks, exposed for tests: the first field of `request` the local
// provider cannot honour, as a 400 error naming it; nullopt when there is none.
std::optional<Error> UnsupportedLocalChatField(const wire::ChatRequest& request);

}  // namespace orchestra::providers
