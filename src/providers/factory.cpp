#include "providers/factory.hpp"

#include "providers/anthropic/anthropic_provider.hpp"
#include "providers/gemini/gemini_provider.hpp"
#include "providers/local/local_provider.hpp"
#include "providers/openai/openai_provider.hpp"

namespace orchestra::providers {

std::unique_ptr<Provider> MakeProvider(const config::ProviderConfig& config,
                                       net::Upstreams& upstreams, const config::EnvLookup& env) {
  switch (config.type) {
    case config::ProviderType::kOpenAI:
      return std::make_unique<OpenAIProvider>(config, upstreams, env);
    case config::ProviderType::kGemini:
      return std::make_unique<GeminiProvider>(config, upstreams, env);
    case config::ProviderType::kAnthropic:
      return std::make_unique<AnthropicProvider>(config, upstreams, env);
    case config::ProviderType::kLocal:
      return std::make_unique<LocalProvider>(config.name);
  }
  throw std::runtime_error("provider " + config.name + ": unknown type");
}

}  // namespace orchestra::providers
