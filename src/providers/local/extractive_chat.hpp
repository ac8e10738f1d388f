#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "providers/local/embedder.hpp"

// `local-extractive` as a chat model: it answers from the context it is given and says plainly
// when it cannot, because it generates no text of its own.
//
// The request is the last user message; the context is every earlier system, developer, user
// and tool message (assistant messages are left out: they are earlier answers, not sources),
// plus the sentences of the last user message that are not part of the request ("Cats purr.
// What do cats do?"). Then, in order:
//   1. a request to produce new text — a sentence that begins (after "please", "can you",
//      "could you" ...) with write, compose, generate, create, draft, translate, rewrite, ... —
//      fails with kUnprocessable: this model cannot generate text;
//   2. a request to summarise (summarize/summarise/summary/sum up/tl;dr/main or key points/
//      gist), or no user message at all, gives the extractive summary of the context
//      (summarizer.hpp) in at most `max_words` words;
//   3. otherwise the request's questions (sentences ending in "?" or starting with a question
//      word; else the whole request, as a query) are answered from the context
//      (answerer.hpp): the answering sentences, or kNotFoundReply when the context does not
//      say — never the request itself;
// and with no context at all, it fails with kUnprocessable: there is nothing to extract from.
// The failure messages name the providers that can generate text (OpenAI, Anthropic, Gemini).
namespace orchestra::providers::local {

struct ChatTurn {
  std::string_view role;  // system | developer | user | assistant | tool
  std::string_view content;
};

enum class ReplyKind : std::uint8_t { kAnswer, kSummary, kNotFound };

struct ChatReply {
  std::string text;
  ReplyKind kind = ReplyKind::kAnswer;
};

inline constexpr std::string_view kNotFoundReply =
    "The context of this conversation does not answer that question.";
inline constexpr std::size_t kDefaultSummaryWords = 120;

// `max_words` (0: no limit for answers, kDefaultSummaryWords for summaries) bounds the reply.
// Errors: ErrorCode::kUnprocessable (param "messages") as described above.
Result<ChatReply> ExtractiveReply(const Embedder& embedder, std::span<const ChatTurn> turns,
                                  std::size_t max_words = 0);

}  // namespace orchestra::providers::local
