#include <string_view>

#include <gtest/gtest.h>

#include "tokens/encoding.hpp"

namespace orchestra::tokens {
namespace {

TEST(EncodingForModel, ChoosesAsTiktokenDoesForOpenAiModels) {
  struct Case {
    std::string_view model;
    std::string_view encoding;
  };
  const Case cases[] = {
      {"gpt-4o", "o200k_base"},
      {"gpt-4o-mini", "o200k_base"},
      {"gpt-4o-2024-08-06", "o200k_base"},
      {"chatgpt-4o-latest", "o200k_base"},
      {"gpt-4.1", "o200k_base"},
      {"gpt-4.1-nano-2025-04-14", "o200k_base"},
      {"gpt-4.5-preview", "o200k_base"},
      {"gpt-5", "o200k_base"},
      {"gpt-5-mini", "o200k_base"},
      {"gpt-5.1", "o200k_base"},
      {"o1", "o200k_base"},
      {"o1-mini", "o200k_base"},
      {"o3", "o200k_base"},
      {"o3-mini-2025-01-31", "o200k_base"},
      {"o4-mini", "o200k_base"},
      {"o4-mini-2025-04-16", "o200k_base"},
      {"gpt-oss-120b", "o200k_base"},
      {"ft:gpt-4o-mini-2024-07-18:org::abc123", "o200k_base"},
      {"gpt-4", "cl100k_base"},
      {"gpt-4-0613", "cl100k_base"},
      {"gpt-4-turbo", "cl100k_base"},
      {"gpt-4-32k", "cl100k_base"},
      {"gpt-3.5-turbo", "cl100k_base"},
      {"gpt-3.5-turbo-0125", "cl100k_base"},
      {"gpt-35-turbo-16k", "cl100k_base"},
      {"text-embedding-3-small", "cl100k_base"},
      {"text-embedding-3-large", "cl100k_base"},
      {"text-embedding-ada-002", "cl100k_base"},
      {"ft:gpt-3.5-turbo:org::xyz", "cl100k_base"},
  };
  for (const Case& c : cases) {
    const ModelEncoding m = EncodingForModel("openai", c.model);
    EXPECT_EQ(m.encoding, c.encoding) << c.model;
    EXPECT_TRUE(m.exact) << c.model;
  }
}

TEST(EncodingForModel, ApproximatesEverythingElse) {
  // An OpenAI-compatible server's unknown model: the current OpenAI encoding.
  EXPECT_EQ(EncodingForModel("openai", "llama-3.1-70b").encoding, "o200k_base");
  EXPECT_FALSE(EncodingForModel("openai", "llama-3.1-70b").exact);
  EXPECT_FALSE(EncodingForModel("openai", "o4").exact);
  // Other providers: cl100k_base, never exact.
  for (const std::string_view provider : {"anthropic", "gemini", "local", "other"}) {
    for (const std::string_view model :
         {"claude-sonnet-4-5", "gemini-2.5-flash", "local-extractive", ""}) {
      const ModelEncoding m = EncodingForModel(provider, model);
      EXPECT_EQ(m.encoding, "cl100k_base") << provider << " " << model;
      EXPECT_FALSE(m.exact) << provider << " " << model;
    }
  }
  // Every answer names an encoding Get() knows.
  for (const std::string_view name :
       {EncodingForModel("openai", "gpt-4o").encoding, EncodingForModel("gemini", "x").encoding}) {
    EXPECT_NE(std::find(EncodingNames().begin(), EncodingNames().end(), name),
              EncodingNames().end());
  }
}

}  // namespace
}  // namespace orchestra::tokens
