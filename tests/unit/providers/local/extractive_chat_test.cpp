#include "providers/local/extractive_chat.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "providers/local/sentences.hpp"
#include "unit/providers/local/support.hpp"

namespace orchestra::providers::local {
namespace {

using Turns = std::vector<ChatTurn>;

constexpr std::string_view kDocs =
    "Orchestra is an AI gateway written in C++. It routes requests to OpenAI, Anthropic and "
    "Gemini. The server starts in under ten milliseconds. Memory and checkpoints are stored in "
    "SQLite by default. Redis and PostgreSQL can be used when several instances run.";

Result<ChatReply> Reply(const Turns& turns, std::size_t max_words = 0) {
  static const Embedder embedder;
  return ExtractiveReply(embedder, turns, max_words);
}

void ExpectCannotGenerate(const Result<ChatReply>& r) {
  ASSERT_FALSE(r.has_value()) << r->text;
  EXPECT_EQ(r.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(r.error().param, "messages");
  for (std::string_view provider : {"OpenAI", "Anthropic", "Gemini"})
    EXPECT_NE(r.error().message.find(provider), std::string::npos) << r.error().message;
}

TEST(ExtractiveChat, RefusesToGenerateText) {
  ExpectCannotGenerate(Reply({{"user", "Write a haiku about autumn."}}));
  ExpectCannotGenerate(Reply({{"user", "Please write me a poem"}}));
  ExpectCannotGenerate(Reply({{"user", "Can you translate this into French?"}}));
  // Even with context: what it would return is not a haiku.
  ExpectCannotGenerate(
      Reply({{"system", kDocs}, {"user", "Compose a short story about the gateway."}}));
  EXPECT_NE(
      Reply({{"user", "Write a haiku about autumn."}}).error().message.find("cannot generate"),
      std::string::npos);
}

TEST(ExtractiveChat, RefusesWhenThereIsNothingToExtractFrom) {
  for (const Turns& turns :
       {Turns{{"user", "hello brave new world"}}, Turns{{"user", "What is the capital of France?"}},
        Turns{{"system", "   "}, {"user", "Tell me about Paris."}},
        Turns{{"assistant", "Paris is in France."}, {"user", "Where?"}}, Turns{}}) {
    const auto r = Reply(turns);
    ASSERT_FALSE(r.has_value()) << r->text;
    EXPECT_EQ(r.error().code, ErrorCode::kUnprocessable);
    EXPECT_NE(r.error().message.find("nothing to extract"), std::string::npos);
    EXPECT_NE(r.error().message.find("OpenAI"), std::string::npos);
  }
}

TEST(ExtractiveChat, AnswersFromTheContextAndNeverEchoesTheQuestion) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const std::string question = "Where is memory stored by default?";
  const auto r = Reply({{"system", kDocs}, {"user", question}});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->kind, ReplyKind::kAnswer);
  EXPECT_EQ(r->text, "Memory and checkpoints are stored in SQLite by default.");
  // Context in the same message as the question.
  const auto same = Reply({{"user", "Cats purr. What do cats do?"}});
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(same->text, "Cats purr.");
  // Context from earlier user turns; earlier assistant turns are not sources.
  const auto earlier = Reply({{"user", kDocs},
                              {"assistant", "Noted: the server starts in an hour."},
                              {"user", "How fast does the server start?"}});
  ASSERT_TRUE(earlier.has_value());
  EXPECT_EQ(earlier->text, "The server starts in under ten milliseconds.");
}

TEST(ExtractiveChat, SaysSoWhenTheContextDoesNotAnswer) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const std::string question = "Who won the football match in Madrid yesterday?";
  const auto r = Reply({{"system", kDocs}, {"user", question}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->kind, ReplyKind::kNotFound);
  EXPECT_EQ(r->text, kNotFoundReply);
  EXPECT_NE(r->text, question);
}

TEST(ExtractiveChat, SummarisesWhenAskedOrWhenThereIsNoUserMessage) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const auto asked = Reply({{"system", kDocs}, {"user", "Summarize the above in 20 words."}}, 20);
  ASSERT_TRUE(asked.has_value());
  EXPECT_EQ(asked->kind, ReplyKind::kSummary);
  EXPECT_LE(WordCount(asked->text), 20u);
  EXPECT_GT(WordCount(asked->text), 5u);
  const auto inline_text = Reply({{"user", std::string("TL;DR:\n\n") + std::string(kDocs)}}, 12);
  ASSERT_TRUE(inline_text.has_value());
  EXPECT_EQ(inline_text->kind, ReplyKind::kSummary);
  EXPECT_LE(WordCount(inline_text->text), 12u);
  const auto system_only = Reply({{"system", kDocs}}, 15);
  ASSERT_TRUE(system_only.has_value());
  EXPECT_EQ(system_only->kind, ReplyKind::kSummary);
  EXPECT_LE(WordCount(system_only->text), 15u);
  // A larger budget, a longer summary.
  EXPECT_GT(WordCount(Reply({{"system", kDocs}}, 40)->text), WordCount(system_only->text));
}

TEST(ExtractiveChat, AnswersEveryQuestionOfTheRequest) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const auto r =
      Reply({{"system", kDocs},
             {"user", "Which database is the default? What language is Orchestra written in?"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->text.find("SQLite"), std::string::npos) << r->text;
  EXPECT_NE(r->text.find("C++"), std::string::npos) << r->text;
  const auto cut =
      Reply({{"system", kDocs},
             {"user", "Which database is the default? What language is Orchestra written in?"}},
            4);
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(WordCount(cut->text), 4u);
}

}  // namespace
}  // namespace orchestra::providers::local
