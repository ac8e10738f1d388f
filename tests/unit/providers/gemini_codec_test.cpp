#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "providers/gemini/codec.hpp"
#include "unit/wire/codec_test_support.hpp"
#include "wire/openai_codec.hpp"

namespace orchestra::providers::gemini {
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

wire::ChatRequest OpenAIRequestFromFile(std::string_view file) {
  return OpenAIRequest(ReadTestdata(file));
}

// ---------------------------------------------------------------------------------------------
// generateContent requests

struct TranslationCase {
  std::string openai_request;
  std::string gemini_request;
};

TEST(GeminiBuildRequest, TranslatesRecordedOpenAIRequests) {
  const std::vector<TranslationCase> cases = {
      {"openai/chat_request_basic.json", "gemini/generate_content_request_basic.json"},
      {"openai/chat_request_tools.json", "gemini/generate_content_request_tools.json"},
      {"openai/chat_request_json_schema.json", "gemini/generate_content_request_json_schema.json"},
      {"openai/chat_request_image_data_url.json", "gemini/generate_content_request_image.json"},
  };
  for (const auto& c : cases) {
    auto body = BuildGenerateContentRequest(OpenAIRequestFromFile(c.openai_request));
    ASSERT_TRUE(body.has_value()) << c.openai_request << ": " << body.error().message;
    EXPECT_EQ(Json(*body), Json(ReadTestdata(c.gemini_request))) << c.openai_request << "\n"
                                                                 << *body;
  }
}

TEST(GeminiBuildRequest, MergesConsecutiveMessagesOfOneRole) {
  auto body = BuildGenerateContentRequest(OpenAIRequest(
      R"({"model":"m","messages":[{"role":"system","content":"a"},{"role":"user","content":"b"},)"
      R"({"role":"developer","content":"c"},{"role":"user","content":"d"},)"
      R"({"role":"assistant","content":"e"},{"role":"assistant","content":"f"}]})"));
  ASSERT_TRUE(body.has_value()) << body.error().message;
  EXPECT_EQ(Json(*body), Json(R"({
    "contents": [
      {"role": "user", "parts": [{"text": "b"}, {"text": "d"}]},
      {"role": "model", "parts": [{"text": "e"}, {"text": "f"}]}
    ],
    "systemInstruction": {"parts": [{"text": "a"}, {"text": "c"}]}
  })"));
}

TEST(GeminiBuildRequest, LeavesOutEmptyText) {
  auto body = BuildGenerateContentRequest(OpenAIRequest(
      R"({"model":"m","messages":[{"role":"system","content":""},{"role":"user","content":"a"},)"
      R"({"role":"assistant","content":""},{"role":"user","content":""},)"
      R"({"role":"user","content":"b"}]})"));
  ASSERT_TRUE(body.has_value()) << body.error().message;
  EXPECT_EQ(Json(*body),
            Json(R"({"contents":[{"role":"user","parts":[{"text":"a"},{"text":"b"}]}]})"));
}

TEST(GeminiBuildRequest, WrapsToolOutputThatIsNotAJsonObject) {
  auto body = BuildGenerateContentRequest(OpenAIRequest(
      R"({"model":"m","messages":[{"role":"user","content":"time?"},)"
      R"({"role":"assistant","content":"Checking.","tool_calls":[{"id":"c1","type":"function",)"
      R"("function":{"name":"now","arguments":""}}]},)"
      R"({"role":"tool","tool_call_id":"c1","content":"12:00"}]})"));
  ASSERT_TRUE(body.has_value()) << body.error().message;
  const auto doc = Json(*body);
  const auto& model_parts = doc.at("contents").at(1).at("parts");
  EXPECT_EQ(model_parts.at(0), Json(R"({"text":"Checking."})"));
  EXPECT_EQ(model_parts.at(1).at("functionCall"), Json(R"({"name":"now","args":{}})"));
  EXPECT_EQ(doc.at("contents").at(2).at("parts").at(0),
            Json(R"({"functionResponse":{"name":"now","response":{"output":"12:00"}}})"));
}

TEST(GeminiBuildRequest, MapsToolChoice) {
  struct Case {
    std::string tool_choice;
    std::string config;
  };
  const std::vector<Case> cases = {
      {R"("auto")", R"({"functionCallingConfig":{"mode":"AUTO"}})"},
      {R"("none")", R"({"functionCallingConfig":{"mode":"NONE"}})"},
      {R"("required")", R"({"functionCallingConfig":{"mode":"ANY"}})"},
      {R"({"type":"function","function":{"name":"f"}})",
       R"({"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["f"]}})"},
  };
  for (const auto& c : cases) {
    auto body = BuildGenerateContentRequest(OpenAIRequest(
        R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function",)"
        R"("function":{"name":"f"}}],"tool_choice":)" +
        c.tool_choice + "}"));
    ASSERT_TRUE(body.has_value()) << c.tool_choice;
    EXPECT_EQ(Json(*body).at("toolConfig"), Json(c.config)) << c.tool_choice;
    EXPECT_EQ(Json(*body).at("tools"), Json(R"([{"functionDeclarations":[{"name":"f"}]}])"));
  }
}

TEST(GeminiBuildRequest, AsksForJsonForTheJsonObjectFormat) {
  auto body = BuildGenerateContentRequest(
      OpenAIRequest(R"({"model":"m","messages":[{"role":"user","content":"x"}],)"
                    R"("response_format":{"type":"json_object"}})"));
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(Json(*body).at("generationConfig"), Json(R"({"responseMimeType":"application/json"})"));
}

struct RejectCase {
  std::string name;
  std::string request;
  std::string param;
};

TEST(GeminiBuildRequest, RejectsWhatGeminiCannotTake) {
  auto with = [](std::string rest) {
    return R"({"model":"m","messages":[{"role":"user","content":"x"}],)" + rest + "}";
  };
  const std::vector<RejectCase> cases = {
      {"image by URL", ReadTestdata("openai/chat_request_vision.json"),
       "messages[0].content[1].image_url.url"},
      {"audio part",
       R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio",)"
       R"("input_audio":{"data":"AAAA","format":"wav"}}]}]})",
       "messages[0].content"},
      {"seed beyond 32 bits", with(R"("seed":4294967296)"), "seed"},
      {"legacy function role",
       R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"function","name":"f","content":"1"}]})",
       "messages[1].content"},
      {"unknown tool call id",
       R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"1"}]})",
       "messages[1].tool_call_id"},
      {"arguments not an object",
       R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":)"
       R"([{"id":"c","type":"function","function":{"name":"f","arguments":"[1,2]"}}]}]})",
       "messages[1].tool_calls[0].function.arguments"},
      {"arguments not JSON",
       R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":)"
       R"([{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]}]})",
       "messages[1].tool_calls[0].function.arguments"},
      {"custom tool", with(R"("tools":[{"type":"custom","custom":{"name":"x"}}])"), "tools[0]"},
      {"allowed_tools choice",
       with(R"("tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":)"
            R"({"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[]}})"),
       "tool_choice"},
      {"unknown response format", with(R"("response_format":{"type":"grammar"})"),
       "response_format.type"},
      {"only system", R"({"model":"m","messages":[{"role":"system","content":"x"}]})", "messages"},
  };
  for (const auto& c : cases) {
    auto body = BuildGenerateContentRequest(OpenAIRequest(c.request));
    ASSERT_FALSE(body.has_value()) << c.name;
    EXPECT_EQ(body.error().code, ErrorCode::kInvalidRequest) << c.name;
    EXPECT_EQ(body.error().param, c.param) << c.name << ": " << body.error().message;
  }
}

// ---------------------------------------------------------------------------------------------
// generateContent responses

TEST(GeminiParseResponse, TranslatesARecordedTextAnswer) {
  auto r = ParseGenerateContentResponse(ReadTestdata("gemini/generate_content_response.json"),
                                        "gemini-flash-latest");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->id, "mAitaLmkHPPlz7IPvtfUqQ4");
  EXPECT_EQ(r->model, "gemini-2.5-flash");
  EXPECT_GT(r->created, 0);
  ASSERT_EQ(r->choices.size(), 1U);
  EXPECT_EQ(r->choices[0].content,
            "It is sunny and 72\xC2\xB0"
            "F in Boston, so you will not need an umbrella.");
  EXPECT_EQ(r->choices[0].finish_reason, "stop");
  EXPECT_TRUE(r->usage.known);
  EXPECT_EQ(r->usage.prompt_tokens, 52);
  EXPECT_EQ(r->usage.completion_tokens, 18 + 54);  // thinking tokens are output tokens
  EXPECT_EQ(r->usage.total_tokens, 124);

  const auto encoded = Json(wire::openai::EncodeChatResponse(*r));
  EXPECT_EQ(encoded.at("choices").at(0).at("message").at("role"), "assistant");
  EXPECT_EQ(encoded.at("usage").at("total_tokens"), 124);
}

TEST(GeminiParseResponse, TurnsFunctionCallsIntoToolCalls) {
  auto r = ParseGenerateContentResponse(
      ReadTestdata("gemini/generate_content_response_function_call.json"), "gemini-2.5-pro");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const wire::ChatChoice& choice = r->choices.at(0);
  EXPECT_EQ(choice.finish_reason, "tool_calls");
  EXPECT_EQ(choice.content, "");
  ASSERT_EQ(choice.tool_calls.size(), 2U);
  EXPECT_EQ(choice.tool_calls[0].name, "get_current_weather");
  EXPECT_EQ(Json(choice.tool_calls[0].arguments),
            Json(R"({"location":"Boston, MA","unit":"fahrenheit"})"));
  EXPECT_EQ(choice.tool_calls[0].index, 0);
  EXPECT_EQ(choice.tool_calls[1].index, 1);
  EXPECT_EQ(choice.tool_calls[0].id.rfind("call_", 0), 0U);
  EXPECT_NE(choice.tool_calls[0].id, choice.tool_calls[1].id);
  for (const wire::ToolCall& call : choice.tool_calls) {
    EXPECT_EQ(call.id.find_first_not_of(
                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."),
              std::string::npos)
        << call.id;
  }
  EXPECT_EQ(r->usage.completion_tokens, 36 + 80);
}

TEST(GeminiParseResponse, SendsThoughtSignaturesBackWithTheirFunctionCalls) {
  auto r = ParseGenerateContentResponse(
      ReadTestdata("gemini/generate_content_response_function_call.json"), "gemini-2.5-pro");
  ASSERT_TRUE(r.has_value());
  // The client echoes the assistant turn and answers both calls, as an OpenAI client does.
  wire::ChatRequest next =
      OpenAIRequest(R"({"model":"m","messages":[{"role":"user","content":"w?"}]})");
  wire::Message assistant;
  assistant.role = "assistant";
  assistant.tool_calls = r->choices[0].tool_calls;
  next.messages.push_back(assistant);
  for (const wire::ToolCall& call : assistant.tool_calls) {
    wire::Message tool;
    tool.role = "tool";
    tool.tool_call_id = call.id;
    tool.content = R"({"temperature":72})";
    next.messages.push_back(tool);
  }
  auto body = BuildGenerateContentRequest(next);
  ASSERT_TRUE(body.has_value()) << body.error().message;
  const auto doc = Json(*body);
  const auto& model_parts = doc.at("contents").at(1).at("parts").as_array();
  ASSERT_EQ(model_parts.size(), 2U);
  EXPECT_EQ(model_parts[0].at("thoughtSignature"),
            "CiQB0e2Kb/7SauRKmrP+fUVFm2Q0XGybmqhC+cIou10Grd3R+w==");
  EXPECT_FALSE(model_parts[1].as_object().contains("thoughtSignature"));
  const auto& responses = doc.at("contents").at(2).at("parts").as_array();
  ASSERT_EQ(responses.size(), 2U);
  EXPECT_EQ(responses[1].at("functionResponse").at("name"), "get_current_weather");
}

TEST(GeminiParseResponse, ReportsABlockedPromptAsAnInvalidRequest) {
  auto r = ParseGenerateContentResponse(
      ReadTestdata("gemini/generate_content_response_blocked.json"), "gemini-2.0-flash");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(r.error().param, "messages");
  EXPECT_NE(r.error().message.find("SAFETY"), std::string::npos);
}

TEST(GeminiParseResponse, MapsASafetyStopToContentFilter) {
  auto r = ParseGenerateContentResponse(
      ReadTestdata("gemini/generate_content_response_safety.json"), "gemini-2.0-flash");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->choices.at(0).finish_reason, "content_filter");
  EXPECT_EQ(r->choices.at(0).content, "");
  EXPECT_EQ(r->model, "gemini-2.0-flash");
}

TEST(GeminiParseResponse, MapsEveryFinishReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"STOP", "stop"},
      {"MAX_TOKENS", "length"},
      {"SAFETY", "content_filter"},
      {"RECITATION", "content_filter"},
      {"BLOCKLIST", "content_filter"},
      {"PROHIBITED_CONTENT", "content_filter"},
      {"SPII", "content_filter"},
      {"IMAGE_SAFETY", "content_filter"},
      {"LANGUAGE", "stop"},
      {"OTHER", "stop"},
      {"MALFORMED_FUNCTION_CALL", "stop"},
      {"FINISH_REASON_UNSPECIFIED", "stop"},
  };
  for (const auto& [gemini, openai] : cases) {
    auto r = ParseGenerateContentResponse(
        R"({"candidates":[{"content":{"role":"model","parts":[{"text":"x"}]},"finishReason":")" +
            gemini + R"("}]})",
        "m");
    ASSERT_TRUE(r.has_value()) << gemini;
    EXPECT_EQ(r->choices.at(0).finish_reason, openai) << gemini;
    EXPECT_EQ(r->model, "m");
    EXPECT_EQ(r->id.rfind("chatcmpl-", 0), 0U);
    EXPECT_FALSE(r->usage.known);
  }
}

TEST(GeminiParseResponse, KeepsCandidatesInIndexOrder) {
  auto r = ParseGenerateContentResponse(
      R"({"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP","index":1},)"
      R"({"content":{"parts":[{"text":"a"}]},"finishReason":"MAX_TOKENS","index":0}]})",
      "m");
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->choices.size(), 2U);
  EXPECT_EQ(r->choices[0].content, "a");
  EXPECT_EQ(r->choices[0].finish_reason, "length");
  EXPECT_EQ(r->choices[1].index, 1);
}

TEST(GeminiParseResponse, ReportsErrorBodies) {
  auto r = ParseGenerateContentResponse(ReadTestdata("gemini/error_response.json"), "m");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUpstreamError);
  EXPECT_EQ(r.error().upstream_status, 400);
  EXPECT_NE(r.error().message.find("API key not valid"), std::string::npos);
  for (const char* bad : {"", "[]", "{}", R"({"candidates":[1]})"}) {
    auto e = ParseGenerateContentResponse(bad, "m");
    ASSERT_FALSE(e.has_value()) << bad;
    EXPECT_EQ(e.error().code, ErrorCode::kUpstreamError) << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// Streams

std::vector<wire::ChatChunk> DecodeAll(StreamDecoder& decoder, std::string_view file) {
  std::vector<wire::ChatChunk> chunks;
  for (const auto& event : ReadSse(file)) {
    auto out = decoder.Feed(event.data);
    EXPECT_TRUE(out.has_value()) << (out ? "" : out.error().message);
    if (!out) break;
    for (auto& c : *out)
      chunks.push_back(std::move(c));
  }
  return chunks;
}

TEST(GeminiStreamDecoder, TranslatesARecordedTextStream) {
  StreamDecoder decoder("gemini-flash-latest");
  const std::vector<wire::ChatChunk> chunks =
      DecodeAll(decoder, "gemini/stream_generate_content.sse");
  ASSERT_EQ(chunks.size(), 4U);
  EXPECT_EQ(chunks[0].role, "assistant");
  EXPECT_EQ(chunks[0].content, "");  // the first event held only a thought summary
  std::string text;
  for (const wire::ChatChunk& c : chunks) {
    EXPECT_EQ(c.id, "ZpqvaPLoLt6Az7IPrLj_oAk");
    EXPECT_EQ(c.model, "gemini-2.5-flash");
    EXPECT_EQ(c.created, chunks[0].created);
    text += c.content;
  }
  for (std::size_t i = 1; i < chunks.size(); ++i)
    EXPECT_EQ(chunks[i].role, "");
  EXPECT_EQ(text, "Once upon a time, in a land of talking foxes, a curious kit set out at dawn.");
  EXPECT_EQ(chunks.back().finish_reason, "stop");
  EXPECT_TRUE(decoder.finished());

  auto usage = decoder.Finish();
  ASSERT_TRUE(usage.has_value());
  EXPECT_TRUE(usage->usage_only);
  EXPECT_EQ(usage->id, "ZpqvaPLoLt6Az7IPrLj_oAk");
  EXPECT_EQ(usage->usage->prompt_tokens, 9);
  EXPECT_EQ(usage->usage->completion_tokens, 20 + 31);
  EXPECT_EQ(usage->usage->total_tokens, 60);

  // Each translated chunk is a valid OpenAI chunk.
  for (const wire::ChatChunk& c : chunks) {
    auto back = wire::openai::ParseChatChunk(wire::openai::EncodeChatChunk(c));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->content, c.content);
    EXPECT_EQ(back->finish_reason, c.finish_reason);
  }
  auto back = wire::openai::ParseChatChunk(wire::openai::EncodeChatChunk(*usage));
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->usage_only);
}

TEST(GeminiStreamDecoder, TranslatesAStreamedFunctionCall) {
  StreamDecoder decoder("gemini-2.5-pro");
  const std::vector<wire::ChatChunk> chunks = DecodeAll(decoder, "gemini/stream_function_call.sse");
  ASSERT_EQ(chunks.size(), 1U);
  EXPECT_EQ(chunks[0].role, "assistant");
  ASSERT_EQ(chunks[0].tool_calls.size(), 1U);
  EXPECT_EQ(chunks[0].tool_calls[0].index, 0);
  EXPECT_EQ(chunks[0].tool_calls[0].name, "get_current_weather");
  EXPECT_EQ(Json(chunks[0].tool_calls[0].arguments), Json(R"({"location":"Boston, MA"})"));
  EXPECT_NE(chunks[0].tool_calls[0].id.find(".gts."), std::string::npos);
  EXPECT_EQ(chunks[0].finish_reason, "tool_calls");
  const auto encoded = Json(wire::openai::EncodeChatChunk(chunks[0]));
  EXPECT_EQ(encoded.at("choices").at(0).at("delta").at("tool_calls").at(0).at("type"), "function");
}

TEST(GeminiStreamDecoder, NumbersToolCallsAcrossEvents) {
  StreamDecoder decoder("m");
  const std::string call =
      R"({"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]}}]})";
  auto first = decoder.Feed(call);
  auto second = decoder.Feed(call);
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(first->at(0).tool_calls.at(0).index, 0);
  EXPECT_EQ(second->at(0).tool_calls.at(0).index, 1);
  EXPECT_EQ(first->at(0).id, second->at(0).id);
  EXPECT_FALSE(decoder.finished());  // no finishReason yet: a stream ending here was cut
  EXPECT_FALSE(decoder.Finish().has_value());
}

TEST(GeminiStreamDecoder, ReturnsAMidStreamErrorEvent) {
  StreamDecoder decoder("gemini-2.0-flash");
  const auto events = ReadSse("gemini/stream_error.sse");
  ASSERT_EQ(events.size(), 2U);
  auto first = decoder.Feed(events[0].data);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->at(0).content, "The answer");
  auto error = decoder.Feed(events[1].data);
  ASSERT_FALSE(error.has_value());
  EXPECT_EQ(error.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(error.error().upstream_status, 503);
  EXPECT_NE(error.error().message.find("overloaded"), std::string::npos);
  EXPECT_FALSE(decoder.finished());
}

TEST(GeminiStreamDecoder, ReturnsABlockedPromptAsAnError) {
  StreamDecoder decoder("m");
  auto out = decoder.Feed(ReadTestdata("gemini/generate_content_response_blocked.json"));
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code, ErrorCode::kInvalidRequest);
}

TEST(GeminiStreamDecoder, RejectsMalformedEvents) {
  StreamDecoder decoder("m");
  for (const char* bad : {"{", "[]", R"({"candidates":[{"index":100000}]})"}) {
    auto out = decoder.Feed(bad);
    ASSERT_FALSE(out.has_value()) << bad;
    EXPECT_EQ(out.error().code, ErrorCode::kUpstreamError) << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// Embeddings

TEST(GeminiEmbed, BuildsEmbedContentForOneInput) {
  auto request = wire::openai::ParseEmbeddingRequest(
      R"({"model":"gemini-embedding-001","input":"What is the meaning of life?","dimensions":4})");
  ASSERT_TRUE(request.has_value());
  EXPECT_FALSE(UsesBatchEmbed(*request));
  auto body = BuildEmbedRequest(*request, "gemini-embedding-001");
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(Json(*body), Json(ReadTestdata("gemini/embed_content_request.json")));
}

TEST(GeminiEmbed, BuildsBatchEmbedContentsForSeveralInputs) {
  auto request = wire::openai::ParseEmbeddingRequest(
      R"({"model":"embed","input":["What is the meaning of life?",)"
      R"("How much wood would a woodchuck chuck?","How does the brain work?"],"dimensions":4})");
  ASSERT_TRUE(request.has_value());
  EXPECT_TRUE(UsesBatchEmbed(*request));
  for (const char* model : {"gemini-embedding-001", "models/gemini-embedding-001"}) {
    auto body = BuildEmbedRequest(*request, model);
    ASSERT_TRUE(body.has_value());
    EXPECT_EQ(Json(*body), Json(ReadTestdata("gemini/batch_embed_contents_request.json"))) << model;
  }
}

TEST(GeminiEmbed, RejectsTokenInput) {
  auto request = wire::openai::ParseEmbeddingRequest(R"({"model":"m","input":[1,2,3]})");
  ASSERT_TRUE(request.has_value());
  auto body = BuildEmbedRequest(*request, "m");
  ASSERT_FALSE(body.has_value());
  EXPECT_EQ(body.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(body.error().param, "input");
}

TEST(GeminiEmbed, ParsesSingleAndBatchResponses) {
  auto single = ParseEmbedResponse(ReadTestdata("gemini/embed_content_response.json"), false);
  ASSERT_TRUE(single.has_value()) << single.error().message;
  ASSERT_EQ(single->vectors.size(), 1U);
  EXPECT_EQ(single->vectors[0],
            (std::vector<float>{-0.022374554F, -0.004560777F, 0.013309286F, -0.0545339F}));
  EXPECT_FALSE(single->usage.known);

  auto batch = ParseEmbedResponse(ReadTestdata("gemini/batch_embed_contents_response.json"), true);
  ASSERT_TRUE(batch.has_value()) << batch.error().message;
  ASSERT_EQ(batch->vectors.size(), 3U);
  EXPECT_EQ(batch->vectors[0], single->vectors[0]);
  EXPECT_EQ(batch->vectors[2][3], -0.030197378F);

  // Translated to the client's format.
  batch->model = "gemini-embedding-001";
  const auto encoded = Json(wire::openai::EncodeEmbeddingResponse(*batch, "float"));
  EXPECT_EQ(encoded.at("data").as_array().size(), 3U);
  EXPECT_EQ(encoded.at("data").at(2).at("index"), 2);
}

TEST(GeminiEmbed, ReadsUsageWhenReported) {
  auto r = ParseEmbedResponse(
      R"({"embedding":{"values":[1,2]},"usageMetadata":{"promptTokenCount":7,"totalTokenCount":7}})",
      false);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->usage.known);
  EXPECT_EQ(r->usage.prompt_tokens, 7);
}

TEST(GeminiEmbed, ReportsErrorsAndMalformedBodies) {
  auto error = ParseEmbedResponse(ReadTestdata("gemini/error_response.json"), true);
  ASSERT_FALSE(error.has_value());
  EXPECT_EQ(error.error().upstream_status, 400);
  for (const char* bad : {R"({"embedding":{}})", R"({"embedding":{"values":["x"]}})", "x"}) {
    EXPECT_FALSE(ParseEmbedResponse(bad, false).has_value()) << bad;
  }
  EXPECT_FALSE(ParseEmbedResponse(R"({"embedding":{"values":[1]}})", true).has_value());
}

}  // namespace
}  // namespace orchestra::providers::gemini
