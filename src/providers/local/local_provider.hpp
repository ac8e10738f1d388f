#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "providers/provider.hpp"

// The built-in offline provider: deterministic models that need no key, no network and no GPU,
// so that a fresh install answers real requests and tests run hermetically.
//
//   local-extractive  chat: answers a question with the sentences of the conversation that share
//                     the most content words with it; without a question, an extractive summary
//                     (the sentences whose words are most frequent in the text).
//   local-embed       embeddings: a hashed bag of word unigrams and bigrams, signed and
//                     L2-normalised (256 dimensions, or `dimensions`). Texts that share words
//                     get a high cosine similarity; nothing is learnt.
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
};

// The algorithms, exposed for tests.
namespace local {
std::vector<std::string> Words(std::string_view text);  // lower-case alphanumeric runs
std::vector<std::string_view> Sentences(std::string_view text);
// The extractive answer for a conversation, at most `max_words` words.
std::string Answer(const std::vector<wire::Message>& messages, std::size_t max_words);
std::vector<float> Embed(std::string_view text, std::size_t dimensions);
}  // namespace local

}  // namespace orchestra::providers
