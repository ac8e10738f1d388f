#include "tokens/chat.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace orchestra::tokens {
namespace {

const Encoding& Enc(std::string_view name) {
  auto encoding = Get(name);
  if (!encoding) {
    ADD_FAILURE() << encoding.error().message;
    std::abort();
  }
  return **encoding;
}

// The example of OpenAI's cookbook "How to count tokens with tiktoken", whose counts the API
// confirmed: 129 prompt tokens for gpt-3.5-turbo and gpt-4 (cl100k_base), 124 for gpt-4o and
// gpt-4o-mini (o200k_base).
const std::vector<ChatMessage> kCookbookExample = {
    {"system",
     "You are a helpful, pattern-following assistant that translates corporate jargon into plain "
     "English.",
     ""},
    {"system", "New synergies will help drive top-line growth.", "example_user"},
    {"system", "Things working well together will increase revenue.", "example_assistant"},
    {"system",
     "Let's circle back when we have more bandwidth to touch base on opportunities for increased "
     "leverage.",
     "example_user"},
    {"system", "Let's talk later when we're less busy about how to do better.",
     "example_assistant"},
    {"user",
     "This late pivot means we don't have time to boil the ocean for the client deliverable.", ""},
};

TEST(CountChatMessages, MatchesTheCookbookExampleThatTheApiConfirmed) {
  EXPECT_EQ(CountChatMessages(Enc("cl100k_base"), kCookbookExample), 129u);
  EXPECT_EQ(CountChatMessages(Enc("o200k_base"), kCookbookExample), 124u);
}

TEST(CountChatMessages, AddsThePerMessageNameAndReplyOverheads) {
  const Encoding& enc = Enc("o200k_base");
  EXPECT_EQ(CountChatMessages(enc, {}), 3u);  // the reply priming alone
  const ChatMessage plain[] = {{"user", "hello world", ""}};
  // 3 + "user" (1) + "hello world" (2) + 3
  EXPECT_EQ(CountChatMessages(enc, plain), 3u + 1 + 2 + 3);
  const ChatMessage named[] = {{"user", "hello world", "bob"}};
  EXPECT_EQ(CountChatMessages(enc, named), 3u + 1 + 2 + 3 + 1 + enc.Count("bob"));
  const ChatMessage two[] = {{"system", "", ""}, {"user", "hello world", ""}};
  EXPECT_EQ(CountChatMessages(enc, two), 3u + enc.Count("system") + 3 + 1 + 2 + 3);
}

}  // namespace
}  // namespace orchestra::tokens
