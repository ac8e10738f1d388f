#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "providers/anthropic/codec.hpp"
#include "unit/wire/codec_test_support.hpp"
#include "wire/openai_codec.hpp"

namespace orchestra::providers::anthropic {
namespace {

using wire::testing::Json;
using wire::testing::ReadSse;
using wire::testing::ReadTestdata;
using wire::testing::RequestFromBody;

wire::ChatRequest OpenAIRequest(std::string body) {
  wire::ChatRequest request = RequestFromBody(std::move(body));
  auto parsed = wire::openai::ParseChatMessages(request);
  EXPECT_TRUE(parsed.has_value()) << (parsed ? "" : parsed.error().message);
  return request;
}

boost::json::value Built(const std::string& openai_body, std::string_view model = "claude",
                         int default_max_tokens = 4096, bool stream = false) {
  auto body = BuildMessagesRequest(OpenAIRequest(openai_body), model, default_max_tokens, stream);
  EXPECT_TRUE(body.has_value()) << (body ? "" : body.error().message);
  return body ? Json(*body) : boost::json::value();
}

// ---------------------------------------------------------------------------------------------
// Requests

TEST(AnthropicBuildRequest, TranslatesRecordedOpenAIRequests) {
  EXPECT_EQ(Built(ReadTestdata("openai/chat_request_tools.json"), "claude-sonnet-4-5"),
            Json(ReadTestdata("anthropic/messages_request_tools.json")));
  // seed, n=1, logprobs and frequency_penalty have no Anthropic counterpart and are left out.
  EXPECT_EQ(Built(ReadTestdata("openai/chat_request_basic.json"), "claude-haiku-4-5", 4096, true),
            Json(ReadTestdata("anthropic/messages_request_basic.json")));
}

TEST(AnthropicBuildRequest, CarriesImagesAsBase64OrUrlSources) {
  EXPECT_EQ(Built(ReadTestdata("openai/chat_request_image_data_url.json"), "claude-sonnet-4-5"),
            Json(ReadTestdata("anthropic/messages_request_image.json")));
  const auto body = Built(ReadTestdata("openai/chat_request_vision.json"));
  const auto& content = body.at("messages").at(0).at("content");
  ASSERT_EQ(content.as_array().size(), 3U);
  EXPECT_EQ(content.at(1).at("type"), "image");
  EXPECT_EQ(content.at(1).at("source").at("type"), "url");
  EXPECT_EQ(content.at(2), Json(R"({"type":"text","text":"Answer in one sentence."})"));
}

TEST(AnthropicBuildRequest, UsesTheDefaultMaxTokensWhenTheClientSetNone) {
  const auto body =
      Built(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", "claude-x", 8192);
  EXPECT_EQ(body.at("max_tokens"), 8192);
  EXPECT_EQ(body.at("model"), "claude-x");
  EXPECT_FALSE(body.as_object().contains("stream"));
  EXPECT_FALSE(body.as_object().contains("system"));
}

TEST(AnthropicBuildRequest, MergesConsecutiveRolesAndJoinsSystemMessages) {
  const auto body =
      Built(R"({"model":"m","messages":[{"role":"system","content":"Be brief."},)"
            R"({"role":"user","content":"a"},{"role":"developer","content":"Use English."},)"
            R"({"role":"user","content":"b"},{"role":"assistant","content":""},)"
            R"({"role":"assistant","content":"c"}]})");
  EXPECT_EQ(body.at("system"), "Be brief.\n\nUse English.");
  EXPECT_EQ(body.at("messages"), Json(R"([
    {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
    {"role":"assistant","content":[{"type":"text","text":"c"}]}
  ])"));
}

TEST(AnthropicBuildRequest, PutsParallelToolResultsInOneUserMessage) {
  const auto body = Built(
      R"({"model":"m","messages":[{"role":"user","content":"weather in A and B?"},)"
      R"({"role":"assistant","content":"Checking both.","tool_calls":[)"
      R"({"id":"toolu_a","type":"function","function":{"name":"w","arguments":"{\"c\":\"A\"}"}},)"
      R"({"id":"toolu_b","type":"function","function":{"name":"w","arguments":"{\"c\":\"B\"}"}}]},)"
      R"({"role":"tool","tool_call_id":"toolu_a","content":"sun"},)"
      R"({"role":"tool","tool_call_id":"toolu_b","content":""}]})");
  EXPECT_EQ(body.at("messages"), Json(R"([
    {"role":"user","content":[{"type":"text","text":"weather in A and B?"}]},
    {"role":"assistant","content":[
      {"type":"text","text":"Checking both."},
      {"type":"tool_use","id":"toolu_a","name":"w","input":{"c":"A"}},
      {"type":"tool_use","id":"toolu_b","name":"w","input":{"c":"B"}}]},
    {"role":"user","content":[
      {"type":"tool_result","tool_use_id":"toolu_a","content":"sun"},
      {"type":"tool_result","tool_use_id":"toolu_b"}]}
  ])"));
}

TEST(AnthropicBuildRequest, ReplacesForeignToolIdsConsistently) {
  // An id as the Gemini codec writes it, with a thought signature.
  const std::string id = "call_0123456789abcdef01234567.gts.CiQB0e2Kb_7SauRKmrP-fUVFm2Q0XGyb";
  const auto body = Built(R"({"model":"m","messages":[{"role":"user","content":"x"},)"
                          R"({"role":"assistant","tool_calls":[{"id":")" +
                          id +
                          R"(","type":"function","function":{"name":"f","arguments":"{}"}}]},)"
                          R"({"role":"tool","tool_call_id":")" +
                          id + R"(","content":"ok"}]})");
  const std::string use_id(body.at("messages").at(1).at("content").at(0).at("id").as_string());
  const std::string result_id(
      body.at("messages").at(2).at("content").at(0).at("tool_use_id").as_string());
  EXPECT_EQ(use_id, result_id);
  EXPECT_EQ(use_id.rfind("toolu_", 0), 0U);
  EXPECT_EQ(use_id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string::npos);
}

TEST(AnthropicBuildRequest, MapsToolChoice) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("auto")", R"({"type":"auto"})"},
      {R"("none")", R"({"type":"none"})"},
      {R"("required")", R"({"type":"any"})"},
      {R"({"type":"function","function":{"name":"f"}})", R"({"type":"tool","name":"f"})"},
  };
  for (const auto& [openai, anthropic] : cases) {
    const auto body = Built(
        R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function",)"
        R"("function":{"name":"f"}}],"tool_choice":)" +
        openai + "}");
    EXPECT_EQ(body.at("tool_choice"), Json(anthropic)) << openai;
    EXPECT_EQ(body.at("tools"),
              Json(R"([{"name":"f","input_schema":{"type":"object","properties":{}}}])"));
  }
}

struct RejectCase {
  std::string name;
  std::string request;
  std::string param;
};

TEST(AnthropicBuildRequest, RejectsWhatAnthropicCannotTake) {
  auto with = [](std::string rest) {
    return R"({"model":"m","messages":[{"role":"user","content":"x"}],)" + rest + "}";
  };
  const std::vector<RejectCase> cases = {
      {"audio part",
       R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio",)"
       R"("input_audio":{"data":"AAAA","format":"wav"}}]}]})",
       "messages[0].content"},
      {"image by ftp URL",
       R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url",)"
       R"("image_url":{"url":"ftp://x/y.png"}}]}]})",
       "messages[0].content[0].image_url.url"},
      {"several choices", with(R"("n":2)"), "n"},
      {"temperature above one", with(R"("temperature":1.5)"), "temperature"},
      {"json mode", with(R"("response_format":{"type":"json_object"})"), "response_format"},
      {"custom tool", with(R"("tools":[{"type":"custom","custom":{"name":"x"}}])"), "tools[0]"},
      {"arguments not an object",
       R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":)"
       R"([{"id":"c","type":"function","function":{"name":"f","arguments":"\"s\""}}]}]})",
       "messages[1].tool_calls[0].function.arguments"},
      {"empty conversation", R"({"model":"m","messages":[{"role":"user","content":""}]})",
       "messages"},
  };
  for (const auto& c : cases) {
    auto body = BuildMessagesRequest(OpenAIRequest(c.request), "claude", 1024, false);
    ASSERT_FALSE(body.has_value()) << c.name;
    EXPECT_EQ(body.error().code, ErrorCode::kInvalidRequest) << c.name;
    EXPECT_EQ(body.error().param, c.param) << c.name << ": " << body.error().message;
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

TEST(AnthropicParseResponse, TranslatesARecordedTextAnswer) {
  auto r = ParseMessagesResponse(ReadTestdata("anthropic/messages_response.json"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->id, "msg_013Zva2CMHLNnXjNJJKqJ2EF");
  EXPECT_EQ(r->model, "claude-sonnet-4-5-20250929");
  EXPECT_GT(r->created, 0);
  ASSERT_EQ(r->choices.size(), 1U);
  EXPECT_EQ(r->choices[0].content, "Hi! My name is Claude.");
  EXPECT_EQ(r->choices[0].finish_reason, "stop");
  EXPECT_TRUE(r->usage.known);
  EXPECT_EQ(r->usage.prompt_tokens, 2095);
  EXPECT_EQ(r->usage.completion_tokens, 503);
  EXPECT_EQ(r->usage.total_tokens, 2598);
  const auto encoded = Json(wire::openai::EncodeChatResponse(*r));
  EXPECT_EQ(encoded.at("choices").at(0).at("message").at("content"), "Hi! My name is Claude.");
}

TEST(AnthropicParseResponse, TurnsToolUseIntoToolCallsAndCountsCachedTokens) {
  auto r = ParseMessagesResponse(ReadTestdata("anthropic/messages_response_tool_use.json"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const wire::ChatChoice& choice = r->choices.at(0);
  EXPECT_EQ(choice.content, "I'll check the current weather in Boston for you.");
  EXPECT_EQ(choice.finish_reason, "tool_calls");
  ASSERT_EQ(choice.tool_calls.size(), 1U);
  EXPECT_EQ(choice.tool_calls[0].id, "toolu_01A09q90qw90lq917835lq9");
  EXPECT_EQ(choice.tool_calls[0].name, "get_current_weather");
  EXPECT_EQ(Json(choice.tool_calls[0].arguments),
            Json(R"({"location":"Boston, MA","unit":"fahrenheit"})"));
  EXPECT_EQ(r->usage.prompt_tokens, 384 + 1200 + 2048);
  EXPECT_EQ(r->usage.completion_tokens, 76);
}

TEST(AnthropicParseResponse, MapsEveryStopReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"end_turn", "stop"},
      {"stop_sequence", "stop"},
      {"pause_turn", "stop"},
      {"max_tokens", "length"},
      {"tool_use", "tool_calls"},
      {"refusal", "content_filter"},
      {"model_context_window_exceeded", "length"},
  };
  for (const auto& [anthropic, openai] : cases) {
    auto r = ParseMessagesResponse(
        R"({"id":"msg_1","type":"message","role":"assistant","model":"c","content":[],)"
        R"("stop_reason":")" +
        anthropic + R"(","usage":{"input_tokens":1,"output_tokens":2}})");
    ASSERT_TRUE(r.has_value()) << anthropic;
    EXPECT_EQ(r->choices.at(0).finish_reason, openai) << anthropic;
  }
}

TEST(AnthropicParseResponse, MapsErrorTypesToCodesAndStatuses) {
  struct Case {
    std::string type;
    ErrorCode code;
    int status;
  };
  const std::vector<Case> cases = {
      {"invalid_request_error", ErrorCode::kUpstreamError, 400},
      {"authentication_error", ErrorCode::kUpstreamError, 401},
      {"permission_error", ErrorCode::kUpstreamError, 403},
      {"not_found_error", ErrorCode::kUpstreamError, 404},
      {"request_too_large", ErrorCode::kUpstreamError, 413},
      {"rate_limit_error", ErrorCode::kRateLimited, 429},
      {"api_error", ErrorCode::kUpstreamError, 500},
      {"overloaded_error", ErrorCode::kUnavailable, 529},
  };
  for (const auto& c : cases) {
    auto r = ParseMessagesResponse(R"({"type":"error","error":{"type":")" + c.type +
                                   R"(","message":"m"}})");
    ASSERT_FALSE(r.has_value()) << c.type;
    EXPECT_EQ(r.error().code, c.code) << c.type;
    EXPECT_EQ(r.error().upstream_status, c.status) << c.type;
  }
  auto recorded = ParseMessagesResponse(ReadTestdata("anthropic/error_response.json"));
  ASSERT_FALSE(recorded.has_value());
  EXPECT_NE(recorded.error().message.find("could not be found"), std::string::npos);
  for (const char* bad : {"", "[]", R"({"id":"msg"})"}) {
    EXPECT_FALSE(ParseMessagesResponse(bad).has_value()) << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// Streams

std::vector<wire::ChatChunk> DecodeAll(StreamDecoder& decoder, std::string_view file) {
  std::vector<wire::ChatChunk> chunks;
  for (const auto& event : ReadSse(file)) {
    auto out = decoder.Feed(event.event, event.data);
    EXPECT_TRUE(out.has_value()) << (out ? "" : out.error().message);
    if (!out) break;
    for (auto& c : *out)
      chunks.push_back(std::move(c));
  }
  return chunks;
}

TEST(AnthropicStreamDecoder, TranslatesARecordedTextStream) {
  StreamDecoder decoder;
  const std::vector<wire::ChatChunk> chunks = DecodeAll(decoder, "anthropic/messages_stream.sse");
  ASSERT_EQ(chunks.size(), 4U);
  EXPECT_EQ(chunks[0].role, "assistant");
  EXPECT_EQ(chunks[1].content, "Hello");
  EXPECT_EQ(chunks[2].content, "!");
  EXPECT_EQ(chunks[3].finish_reason, "stop");
  for (const wire::ChatChunk& c : chunks) {
    EXPECT_EQ(c.id, "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
    EXPECT_EQ(c.model, "claude-sonnet-4-5-20250929");
    EXPECT_EQ(c.created, chunks[0].created);
  }
  EXPECT_TRUE(decoder.finished());
  auto usage = decoder.Finish();
  ASSERT_TRUE(usage.has_value());
  EXPECT_TRUE(usage->usage_only);
  EXPECT_EQ(usage->usage->prompt_tokens, 25);
  EXPECT_EQ(usage->usage->completion_tokens, 15);
  EXPECT_EQ(usage->usage->total_tokens, 40);

  const auto first = Json(wire::openai::EncodeChatChunk(chunks[0]));
  EXPECT_EQ(first.at("choices").at(0).at("delta"), Json(R"({"role":"assistant","content":""})"));
}

TEST(AnthropicStreamDecoder, TranslatesARecordedToolUseStream) {
  StreamDecoder decoder;
  const std::vector<wire::ChatChunk> chunks =
      DecodeAll(decoder, "anthropic/messages_stream_tool_use.sse");
  std::string text;
  std::vector<wire::ToolCall> calls;
  std::string finish_reason;
  for (const wire::ChatChunk& c : chunks) {
    text += c.content;
    for (const wire::ToolCall& delta : c.tool_calls) {
      if (static_cast<std::size_t>(delta.index) >= calls.size()) calls.resize(delta.index + 1);
      if (!delta.id.empty()) calls[delta.index].id = delta.id;
      if (!delta.name.empty()) calls[delta.index].name = delta.name;
      calls[delta.index].arguments += delta.arguments;
    }
    if (!c.finish_reason.empty()) finish_reason = c.finish_reason;
  }
  EXPECT_EQ(text, "Okay, let's check the weather for San Francisco, CA:");
  ASSERT_EQ(calls.size(), 1U);
  EXPECT_EQ(calls[0].id, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(Json(calls[0].arguments),
            Json(R"({"location":"San Francisco, CA","unit":"fahrenheit"})"));
  EXPECT_EQ(finish_reason, "tool_calls");
  auto usage = decoder.Finish();
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->usage->prompt_tokens, 472 + 128);
  EXPECT_EQ(usage->usage->completion_tokens, 89);

  // The tool call's first delta is an OpenAI first tool-call delta.
  for (const wire::ChatChunk& c : chunks) {
    if (c.tool_calls.empty() || c.tool_calls[0].id.empty()) continue;
    const auto encoded = Json(wire::openai::EncodeChatChunk(c));
    EXPECT_EQ(encoded.at("choices").at(0).at("delta").at("tool_calls").at(0),
              Json(R"({"index":0,"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","type":"function",)"
                   R"("function":{"name":"get_weather","arguments":""}})"));
  }
}

TEST(AnthropicStreamDecoder, IgnoresANegativeTokenCount) {
  StreamDecoder decoder;
  ASSERT_TRUE(decoder
                  .Feed("message_delta",
                        R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},)"
                        R"("usage":{"output_tokens":-5}})")
                  .has_value());
  EXPECT_GE(decoder.usage().completion_tokens, 0);
  EXPECT_GE(decoder.usage().total_tokens, 0);
}

TEST(AnthropicStreamDecoder, ReturnsAnErrorEventAsAnError) {
  StreamDecoder decoder;
  const auto events = ReadSse("anthropic/messages_stream_error.sse");
  ASSERT_EQ(events.size(), 4U);
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_TRUE(decoder.Feed(events[i].event, events[i].data).has_value());
  }
  auto error = decoder.Feed(events.back().event, events.back().data);
  ASSERT_FALSE(error.has_value());
  EXPECT_EQ(error.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(error.error().upstream_status, 529);
  EXPECT_NE(error.error().message.find("Overloaded"), std::string::npos);
  EXPECT_FALSE(decoder.finished());
}

TEST(AnthropicStreamDecoder, UsesTheDataTypeWhenTheEventHasNoName) {
  StreamDecoder decoder;
  auto start = decoder.Feed("", R"({"type":"message_start","message":{"id":"msg_x","model":"c",)"
                                R"("usage":{"input_tokens":3,"output_tokens":1}}})");
  ASSERT_TRUE(start.has_value());
  ASSERT_EQ(start->size(), 1U);
  EXPECT_EQ(start->at(0).id, "msg_x");
  auto error = decoder.Feed("", R"({"type":"error","error":{"type":"api_error","message":"x"}})");
  ASSERT_FALSE(error.has_value());
  EXPECT_EQ(error.error().upstream_status, 500);
}

TEST(AnthropicStreamDecoder, IgnoresPingsThinkingAndUnknownEvents) {
  StreamDecoder decoder;
  for (
      const auto& [event, data] : std::vector<std::pair<std::string, std::string>>{
          {"ping", R"({"type":"ping"})"},
          {"content_block_start",
           R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})"},
          {"content_block_delta",
           R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}})"},
          {"content_block_delta",
           R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}})"},
          {"content_block_stop", R"({"type":"content_block_stop","index":0})"},
          {"brand_new_event", R"({"type":"brand_new_event","x":1})"},
      }) {
    auto out = decoder.Feed(event, data);
    ASSERT_TRUE(out.has_value()) << event;
    EXPECT_TRUE(out->empty()) << event;
  }
  EXPECT_FALSE(decoder.Finish().has_value());
}

TEST(AnthropicStreamDecoder, RejectsMalformedEvents) {
  for (
      const auto& [event, data] : std::vector<std::pair<std::string, std::string>>{
          {"message_start", "{"},
          {"content_block_start", R"({"type":"content_block_start"})"},
          {"content_block_delta",
           R"({"type":"content_block_delta","index":7,"delta":{"type":"input_json_delta","partial_json":"{"}})"},
          {"content_block_delta", R"({"type":"content_block_delta","index":0})"},
      }) {
    StreamDecoder decoder;
    auto out = decoder.Feed(event, data);
    ASSERT_FALSE(out.has_value()) << data;
    EXPECT_EQ(out.error().code, ErrorCode::kUpstreamError) << data;
  }
}

}  // namespace
}  // namespace orchestra::providers::anthropic
