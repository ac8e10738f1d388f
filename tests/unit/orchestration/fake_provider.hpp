#pragma once

#include <string>
#include <utility>

#include "providers/provider.hpp"

// A Provider that only has a name: the orchestration primitives never call it. Its calls answer
// "not implemented" so that an accidental use fails loudly rather than hangs.
namespace orchestra::orchestration::testing {

class FakeProvider final : public providers::Provider {
 public:
  explicit FakeProvider(std::string name, config::ProviderType type = config::ProviderType::kOpenAI)
      : name_(std::move(name)), type_(type) {}

  const std::string& name() const override { return name_; }
  config::ProviderType type() const override { return type_; }
  bool ForwardsRawBody() const override { return type_ == config::ProviderType::kOpenAI; }

  boost::asio::awaitable<providers::ProviderResult<wire::ChatResponse>> Chat(
      const wire::ChatRequest& /*request*/, const providers::CallOptions& /*options*/) override {
    co_return Unimplemented();
  }
  boost::asio::awaitable<providers::ProviderResult<providers::StreamSummary>> ChatStream(
      const wire::ChatRequest& /*request*/, const providers::CallOptions& /*options*/,
      providers::ChunkSink& /*sink*/) override {
    co_return Unimplemented();
  }
  boost::asio::awaitable<providers::ProviderResult<wire::EmbeddingResponse>> Embed(
      const wire::EmbeddingRequest& /*request*/,
      const providers::CallOptions& /*options*/) override {
    co_return Unimplemented();
  }
  boost::asio::awaitable<Result<std::string>> Warmup(int /*worker*/) override {
    co_return MakeError(ErrorCode::kInternal, "fake provider");
  }

 private:
  static providers::ProviderError Unimplemented() {
    return providers::ProviderError{MakeError(ErrorCode::kInternal, "fake provider"),
                                    providers::FailureKind::kProtocol};
  }

  std::string name_;
  config::ProviderType type_;
};

}  // namespace orchestra::orchestration::testing
