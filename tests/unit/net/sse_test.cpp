#include "net/sse.hpp"

#include <gtest/gtest.h>

namespace orchestra::net {
namespace {

std::vector<std::pair<std::string, std::string>> FeedInPieces(std::string_view text,
                                                              std::size_t piece) {
  SseParser p;
  std::vector<std::pair<std::string, std::string>> events;
  SseEvent e;
  for (std::size_t i = 0; i < text.size(); i += piece) {
    EXPECT_TRUE(p.Feed(text.substr(i, piece)));
    while (p.Next(e))
      events.emplace_back(std::string(e.event), std::string(e.data));
  }
  return events;
}

TEST(SseParser, SplitsEventsWhateverTheReadBoundaries) {
  const std::string stream =
      ": comment\r\n"
      "data: {\"a\":1}\r\n\r\n"
      "event: message_start\n"
      "data: line one\n"
      "data:line two\n"
      "id: 7\n"
      "\n"
      "data: [DONE]\r\r";
  for (std::size_t piece : {1u, 2u, 3u, 7u, 1000u}) {
    auto events = FeedInPieces(stream, piece);
    ASSERT_EQ(events.size(), 3u) << piece;
    EXPECT_EQ(events[0], (std::pair<std::string, std::string>{"", "{\"a\":1}"}));
    EXPECT_EQ(events[1],
              (std::pair<std::string, std::string>{"message_start", "line one\nline two"}));
    EXPECT_EQ(events[2], (std::pair<std::string, std::string>{"", "[DONE]"}));
  }
}

TEST(SseParser, DropsEventsWithoutDataAndRefusesOversizedOnes) {
  auto events = FeedInPieces("event: ping\n\ndata: x\n\n", 4);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].second, "x");
  SseParser small(16);
  EXPECT_FALSE(small.Feed("data: " + std::string(64, 'x')));
}

}  // namespace
}  // namespace orchestra::net
