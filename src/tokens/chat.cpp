#include "tokens/chat.hpp"

namespace orchestra::tokens {

std::size_t CountChatMessages(const Encoding& encoding, std::span<const ChatMessage> messages) {
  std::size_t total = kTokensReplyPriming;
  for (const ChatMessage& m : messages) {
    total += kTokensPerMessage + encoding.Count(m.role) + encoding.Count(m.content);
    if (!m.name.empty()) total += kTokensPerName + encoding.Count(m.name);
  }
  return total;
}

}  // namespace orchestra::tokens
