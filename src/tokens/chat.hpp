#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "tokens/encoding.hpp"

// Counting a chat request's prompt tokens the way OpenAI bills them.
namespace orchestra::tokens {

// One chat message, as text. The views must outlive the call. An empty `name` means none.
struct ChatMessage {
  std::string_view role;
  std::string_view content;
  std::string_view name;
};

// OpenAI's cookbook ("How to count tokens with tiktoken", num_tokens_from_messages, for
// gpt-3.5-turbo-0125, gpt-4-0613, gpt-4o-2024-08-06, gpt-4o-mini-2024-07-18 and later): each
// message costs its overhead <|start|>{role/name}\n{content}<|end|>\n, i.e. 3 tokens plus its
// role, content and name encoded, plus 1 more when it has a name; the reply is primed with
// <|start|>assistant<|message|>, 3 tokens. The cookbook's six-message example counts 129 with
// cl100k_base and 124 with o200k_base, as the API reported (tests/unit/tokens/chat_test.cpp).
// Tool definitions, tool calls and images are not counted here.
inline constexpr std::size_t kTokensPerMessage = 3;
inline constexpr std::size_t kTokensPerName = 1;
inline constexpr std::size_t kTokensReplyPriming = 3;

std::size_t CountChatMessages(const Encoding& encoding, std::span<const ChatMessage> messages);

}  // namespace orchestra::tokens
