#include "wire/openai_codec.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "unit/wire/codec_test_support.hpp"

namespace orchestra::wire::openai {
namespace {

using testing::Json;
using testing::Pruned;
using testing::ReadSse;
using testing::ReadTestdata;
using testing::RequestFromBody;

// What the recorded OpenAI bodies carry that the canonical types do not model.
const std::initializer_list<std::string_view> kUnmodelled = {
    "system_fingerprint",        "service_tier", "refusal", "annotations", "prompt_tokens_details",
    "completion_tokens_details", "logprobs"};

ChatRequest Parsed(std::string body) {
  ChatRequest request = RequestFromBody(std::move(body));
  auto parsed = ParseChatMessages(request);
  EXPECT_TRUE(parsed.has_value()) << (parsed ? "" : parsed.error().message);
  return request;
}

// ---------------------------------------------------------------------------------------------
// ParseChatMessages

TEST(OpenAIParseChatMessages, ReadsEveryModelledFieldOfARecordedRequest) {
  ChatRequest r = Parsed(ReadTestdata("openai/chat_request_basic.json"));
  ASSERT_EQ(r.messages.size(), 2U);
  EXPECT_EQ(r.messages[0].role, "developer");
  EXPECT_EQ(r.messages[0].content, "You are a helpful assistant.");
  EXPECT_EQ(r.messages[1].role, "user");
  EXPECT_EQ(r.messages[1].content, "Hello!");
  EXPECT_EQ(r.temperature, 0.7);
  EXPECT_EQ(r.top_p, 0.9);
  EXPECT_EQ(r.max_tokens, 256);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_EQ(r.n, 1);
  EXPECT_EQ(r.seed, 42);
  EXPECT_EQ(r.user, "user-1234");
  EXPECT_TRUE(r.tools_json.empty());
  EXPECT_TRUE(r.tool_choice_json.empty());
  EXPECT_TRUE(r.response_format_json.empty());
}

// A translating provider reads the members by their unescaped names, and one given twice is
// refused rather than read first-wins here and last-wins by whoever reads the body next.
TEST(OpenAIParseChatMessages, ReadsEscapedNamesAndRefusesAMemberGivenTwice) {
  ChatRequest r =
      Parsed(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temp\u0065rature":0.5})");
  EXPECT_EQ(r.temperature, 0.5);

  ChatRequest twice =
      RequestFromBody(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1,)"
                      R"("max_tok\u0065ns":9000})");
  auto parsed = ParseChatMessages(twice);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(parsed.error().param, "max_tokens");
}

TEST(OpenAIParseChatMessages, ReadsToolCallsToolResultsAndToolDefinitions) {
  const std::string body = ReadTestdata("openai/chat_request_tools.json");
  ChatRequest r = Parsed(body);
  ASSERT_EQ(r.messages.size(), 5U);
  const Message& assistant = r.messages[2];
  EXPECT_EQ(assistant.role, "assistant");
  EXPECT_EQ(assistant.content, "");
  ASSERT_EQ(assistant.tool_calls.size(), 1U);
  EXPECT_EQ(assistant.tool_calls[0].id, "call_abc123");
  EXPECT_EQ(assistant.tool_calls[0].name, "get_current_weather");
  EXPECT_EQ(assistant.tool_calls[0].arguments, R"({"location":"Boston, MA","unit":"fahrenheit"})");
  EXPECT_EQ(assistant.tool_calls[0].index, 0);
  EXPECT_EQ(r.messages[3].role, "tool");
  EXPECT_EQ(r.messages[3].tool_call_id, "call_abc123");
  EXPECT_EQ(Json(r.tools_json), Json(body).at("tools"));
  EXPECT_EQ(r.tool_choice_json, "\"auto\"");
  EXPECT_EQ(r.max_tokens, 1024);
  EXPECT_EQ(r.temperature, 0.2);
}

TEST(OpenAIParseChatMessages, JoinsTextPartsAndKeepsImagePartsInOrder) {
  ChatRequest r = Parsed(ReadTestdata("openai/chat_request_vision.json"));
  ASSERT_EQ(r.messages.size(), 1U);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.content, "What's in this image?\nAnswer in one sentence.");
  EXPECT_TRUE(m.has_non_text_parts);
  ASSERT_EQ(m.parts.size(), 3U);
  EXPECT_EQ(m.parts[0].text, "What's in this image?");
  EXPECT_EQ(m.parts[1].image_url.rfind("https://upload.wikimedia.org/", 0), 0U);
  EXPECT_EQ(m.parts[1].text, "");
  EXPECT_EQ(m.parts[2].text, "Answer in one sentence.");
}

TEST(OpenAIParseChatMessages, KeepsNoPartsForTextOnlyArrayContent) {
  ChatRequest r =
      Parsed(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},)"
             R"({"type":"text","text":"b"}]}]})");
  EXPECT_EQ(r.messages[0].content, "a\nb");
  EXPECT_FALSE(r.messages[0].has_non_text_parts);
  EXPECT_TRUE(r.messages[0].parts.empty());
}

TEST(OpenAIParseChatMessages, KeepsTheResponseFormatText) {
  const std::string body = ReadTestdata("openai/chat_request_json_schema.json");
  ChatRequest r = Parsed(body);
  EXPECT_EQ(Json(r.response_format_json), Json(body).at("response_format"));
}

TEST(OpenAIParseChatMessages, PrefersMaxCompletionTokensOverMaxTokens) {
  ChatRequest r = Parsed(
      R"({"model":"m","max_completion_tokens":50,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(r.max_tokens, 50);
}

TEST(OpenAIParseChatMessages, TreatsNullAsAbsent) {
  ChatRequest r = Parsed(
      R"({"model":"m","messages":[{"role":"user","content":"hi","name":null}],"temperature":null,)"
      R"("top_p":null,"max_tokens":null,"stop":null,"n":null,"seed":null,"user":null,)"
      R"("tools":null,"tool_choice":null,"response_format":null})");
  EXPECT_FALSE(r.temperature || r.top_p || r.max_tokens || r.n || r.seed);
  EXPECT_TRUE(r.stop.empty() && r.user.empty() && r.tools_json.empty() &&
              r.tool_choice_json.empty() && r.response_format_json.empty());
}

TEST(OpenAIParseChatMessages, AcceptsAStringStopAndIntegralFloats) {
  ChatRequest r = Parsed(
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stop":"###","n":2.0,"temperature":1})");
  EXPECT_EQ(r.stop, std::vector<std::string>{"###"});
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.temperature, 1.0);
}

TEST(OpenAIParseChatMessages, MarksMessagesOnlyOpenAICanTake) {
  ChatRequest r = Parsed(
      R"({"model":"m","messages":[)"
      R"({"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]},)"
      R"({"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{}"}},)"
      R"({"role":"function","name":"f","content":"42"},)"
      R"({"role":"assistant","tool_calls":[{"id":"c1","type":"custom","custom":{"name":"x","input":"y"}}]},)"
      R"({"role":"user","content":"plain"}]})");
  ASSERT_EQ(r.messages.size(), 5U);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(r.messages[i].has_non_text_parts) << i;
    EXPECT_TRUE(r.messages[i].parts.empty()) << i;
  }
  EXPECT_FALSE(r.messages[4].has_non_text_parts);
  EXPECT_TRUE(r.messages[3].tool_calls.empty());
}

struct InvalidCase {
  std::string name;
  std::string body;
  std::string param;
};

TEST(OpenAIParseChatMessages, RejectsInvalidRequestsNamingTheParam) {
  auto with = [](std::string members) {
    return R"({"model":"m","messages":[{"role":"user","content":"hi"}],)" + members + "}";
  };
  auto messages = [](std::string list) { return R"({"model":"m","messages":)" + list + "}"; };
  const std::vector<InvalidCase> cases = {
      {"no messages", R"({"model":"m"})", "messages"},
      {"messages not array", messages(R"({"role":"user"})"), "messages"},
      {"messages empty", messages("[]"), "messages"},
      {"message not object", messages(R"(["hi"])"), "messages[0]"},
      {"no role", messages(R"([{"content":"hi"}])"), "messages[0].role"},
      {"unknown role",
       messages(R"([{"role":"user","content":"a"},{"role":"user","content":"b"},)"
                R"({"role":"robot","content":"c"}])"),
       "messages[2].role"},
      {"role not string", messages(R"([{"role":1,"content":"hi"}])"), "messages[0].role"},
      {"user without content", messages(R"([{"role":"user"}])"), "messages[0].content"},
      {"user null content", messages(R"([{"role":"user","content":null}])"), "messages[0].content"},
      {"content number", messages(R"([{"role":"user","content":5}])"), "messages[0].content"},
      {"part without type", messages(R"([{"role":"user","content":[{"text":"x"}]}])"),
       "messages[0].content[0].type"},
      {"text part without text",
       messages(R"([{"role":"user","content":[{"type":"text","text":"a"},{"type":"text"}]}])"),
       "messages[0].content[1].text"},
      {"part not object", messages(R"([{"role":"user","content":["x"]}])"),
       "messages[0].content[0]"},
      {"image without url",
       messages(R"([{"role":"user","content":[{"type":"image_url","image_url":{}}]}])"),
       "messages[0].content[0].image_url.url"},
      {"assistant without content or calls", messages(R"([{"role":"assistant"}])"),
       "messages[0].content"},
      {"tool without call id", messages(R"([{"role":"tool","content":"x"}])"),
       "messages[0].tool_call_id"},
      {"tool_calls not array", messages(R"([{"role":"assistant","tool_calls":{}}])"),
       "messages[0].tool_calls"},
      {"tool_calls on user", messages(R"([{"role":"user","content":"x","tool_calls":[]}])"),
       "messages[0].tool_calls"},
      {"tool call without id",
       messages(R"([{"role":"assistant","tool_calls":[{"type":"function","function":)"
                R"({"name":"f","arguments":"{}"}}]}])"),
       "messages[0].tool_calls[0].id"},
      {"tool call without name",
       messages(R"([{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":)"
                R"({"arguments":"{}"}}]}])"),
       "messages[0].tool_calls[0].function.name"},
      {"tool call arguments object",
       messages(R"([{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":)"
                R"({"name":"f","arguments":{}}}]}])"),
       "messages[0].tool_calls[0].function.arguments"},
      {"name not string", messages(R"([{"role":"user","content":"x","name":3}])"),
       "messages[0].name"},
      {"temperature string", with(R"("temperature":"0.5")"), "temperature"},
      {"temperature too high", with(R"("temperature":2.5)"), "temperature"},
      {"temperature negative", with(R"("temperature":-0.1)"), "temperature"},
      // Boost.JSON 1.81 reads 0e9990 as NaN, which passed the range check and reached Gemini
      // and Anthropic as `NaN`, not JSON (tests/fuzz/provider_request).
      {"temperature read as NaN", with(R"("temperature":0e9990)"), "temperature"},
      {"top_p read as NaN", with(R"("top_p":-0e99999)"), "top_p"},
      {"top_p too high", with(R"("top_p":1.5)"), "top_p"},
      {"n zero", with(R"("n":0)"), "n"},
      {"n fraction", with(R"("n":1.5)"), "n"},
      {"max_tokens zero", with(R"("max_tokens":0)"), "max_tokens"},
      {"max_completion_tokens string", with(R"("max_completion_tokens":"10")"),
       "max_completion_tokens"},
      {"seed fraction", with(R"("seed":1.5)"), "seed"},
      {"user number", with(R"("user":7)"), "user"},
      {"stop number", with(R"("stop":7)"), "stop"},
      {"stop array of numbers", with(R"("stop":["a",1])"), "stop"},
      {"tools object", with(R"("tools":{})"), "tools"},
      {"tool without type", with(R"("tools":[{"function":{"name":"f"}}])"), "tools[0].type"},
      {"function tool without name",
       with(R"("tools":[{"type":"function","function":{"description":"d"}}])"),
       "tools[0].function.name"},
      {"tool_choice unknown", with(R"("tool_choice":"always")"), "tool_choice"},
      {"tool_choice number", with(R"("tool_choice":1)"), "tool_choice"},
      {"response_format string", with(R"("response_format":"json")"), "response_format"},
      {"response_format without type", with(R"("response_format":{})"), "response_format.type"},
  };
  for (const auto& c : cases) {
    ChatRequest r = RequestFromBody(c.body);
    auto parsed = ParseChatMessages(r);
    ASSERT_FALSE(parsed.has_value()) << c.name;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidRequest) << c.name;
    EXPECT_EQ(parsed.error().param, c.param) << c.name << ": " << parsed.error().message;
    EXPECT_FALSE(parsed.error().message.empty()) << c.name;
  }
}

TEST(OpenAIParseChatMessages, RejectsABodyThatIsNotAJsonObject) {
  for (const char* body : {"", "[1]", R"({"messages": [})",
                           "{\"messages\":[{\"role\":\"user\","
                           "\"content\":\"\xff\"}]}"}) {
    ChatRequest r = RequestFromBody(body);
    auto parsed = ParseChatMessages(r);
    ASSERT_FALSE(parsed.has_value()) << body;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidRequest);
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

TEST(OpenAIChatResponse, ParsesTheRecordedResponse) {
  auto r = ParseChatResponse(ReadTestdata("openai/chat_response.json"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->id, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
  EXPECT_EQ(r->model, "gpt-4.1-2025-04-14");
  EXPECT_EQ(r->created, 1741569952);
  ASSERT_EQ(r->choices.size(), 1U);
  EXPECT_EQ(r->choices[0].content, "Hello! How can I assist you today?");
  EXPECT_EQ(r->choices[0].finish_reason, "stop");
  EXPECT_TRUE(r->usage.known);
  EXPECT_EQ(r->usage.prompt_tokens, 19);
  EXPECT_EQ(r->usage.completion_tokens, 10);
  EXPECT_EQ(r->usage.total_tokens, 29);
  EXPECT_TRUE(r->raw.empty());
}

TEST(OpenAIChatResponse, EncodesBackToTheRecordedWireForm) {
  for (const char* file : {"openai/chat_response.json", "openai/chat_response_tool_calls.json"}) {
    const std::string body = ReadTestdata(file);
    auto parsed = ParseChatResponse(body);
    ASSERT_TRUE(parsed.has_value()) << file;
    const boost::json::value encoded = Json(EncodeChatResponse(*parsed));
    EXPECT_EQ(Pruned(encoded, kUnmodelled), Pruned(Json(body), kUnmodelled)) << file;
  }
}

TEST(OpenAIChatResponse, WritesNullContentForAToolCallOnlyChoice) {
  auto parsed = ParseChatResponse(ReadTestdata("openai/chat_response_tool_calls.json"));
  ASSERT_TRUE(parsed.has_value());
  ASSERT_EQ(parsed->choices[0].tool_calls.size(), 1U);
  EXPECT_EQ(parsed->choices[0].tool_calls[0].arguments, "{\n\"location\": \"Boston, MA\"\n}");
  const boost::json::value encoded = Json(EncodeChatResponse(*parsed));
  const auto& message = encoded.at("choices").at(0).at("message");
  EXPECT_TRUE(message.at("content").is_null());
  EXPECT_EQ(message.at("tool_calls").at(0).at("type"), "function");
  EXPECT_EQ(encoded.at("choices").at(0).at("finish_reason"), "tool_calls");
}

TEST(OpenAIChatResponse, OmitsUnknownUsageAndWritesNullFinishReasonWhenUnset) {
  ChatResponse response;
  response.id = "chatcmpl-x";
  response.model = "m";
  response.created = 7;
  response.choices.push_back({});
  const boost::json::value encoded = Json(EncodeChatResponse(response));
  EXPECT_FALSE(encoded.as_object().contains("usage"));
  EXPECT_TRUE(encoded.at("choices").at(0).at("finish_reason").is_null());
  EXPECT_EQ(encoded.at("object"), "chat.completion");
  EXPECT_EQ(encoded.at("choices").at(0).at("message").at("content"), "");
}

TEST(OpenAIChatResponse, ReturnsARawUpstreamBodyUnchanged) {
  ChatResponse response;
  response.raw = R"({"id":"x", "kept":"as is"})";
  EXPECT_EQ(EncodeChatResponse(response), response.raw);
}

TEST(OpenAIChatResponse, ReportsAnErrorBodyAsAnUpstreamError) {
  auto r = ParseChatResponse(ReadTestdata("openai/error_response.json"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUpstreamError);
  EXPECT_NE(r.error().message.find("Incorrect API key"), std::string::npos);
  for (const char* bad : {"not json", "[]", R"({"id":"x"})"}) {
    auto e = ParseChatResponse(bad);
    ASSERT_FALSE(e.has_value()) << bad;
    EXPECT_EQ(e.error().code, ErrorCode::kUpstreamError);
  }
}

// ---------------------------------------------------------------------------------------------
// Stream chunks

TEST(OpenAIChatChunk, ParsesARecordedStreamIncludingTheUsageChunk) {
  std::string content;
  std::string finish_reason;
  std::optional<Usage> usage;
  int usage_only = 0;
  for (const auto& event : ReadSse("openai/chat_stream.sse")) {
    if (event.data == "[DONE]") break;
    auto chunk = ParseChatChunk(event.data);
    ASSERT_TRUE(chunk.has_value()) << event.data;
    EXPECT_EQ(chunk->id, "chatcmpl-123");
    content += chunk->content;
    if (!chunk->finish_reason.empty()) finish_reason = chunk->finish_reason;
    if (chunk->usage_only) {
      ++usage_only;
      usage = chunk->usage;
    }
  }
  EXPECT_EQ(content, "Hello! How can I help?");
  EXPECT_EQ(finish_reason, "stop");
  EXPECT_EQ(usage_only, 1);
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->prompt_tokens, 9);
  EXPECT_EQ(usage->completion_tokens, 7);
  EXPECT_EQ(usage->total_tokens, 16);
}

TEST(OpenAIChatChunk, EncodesEveryRecordedChunkBackToItsWireForm) {
  for (const char* file : {"openai/chat_stream.sse", "openai/chat_stream_tool_calls.sse"}) {
    int chunks = 0;
    for (const auto& event : ReadSse(file)) {
      if (event.data == "[DONE]") break;
      auto chunk = ParseChatChunk(event.data);
      ASSERT_TRUE(chunk.has_value()) << event.data;
      EXPECT_EQ(Pruned(Json(EncodeChatChunk(*chunk)), kUnmodelled),
                Pruned(Json(event.data), kUnmodelled))
          << file << ": " << event.data;
      ++chunks;
    }
    EXPECT_GT(chunks, 3) << file;
  }
}

TEST(OpenAIChatChunk, ReassemblesStreamedToolCallArguments) {
  std::vector<ToolCall> calls;
  std::string finish_reason;
  for (const auto& event : ReadSse("openai/chat_stream_tool_calls.sse")) {
    if (event.data == "[DONE]") break;
    auto chunk = ParseChatChunk(event.data);
    ASSERT_TRUE(chunk.has_value());
    for (const ToolCall& delta : chunk->tool_calls) {
      if (static_cast<std::size_t>(delta.index) >= calls.size()) calls.resize(delta.index + 1);
      ToolCall& call = calls[delta.index];
      if (!delta.id.empty()) call.id = delta.id;
      if (!delta.name.empty()) call.name = delta.name;
      call.arguments += delta.arguments;
    }
    if (!chunk->finish_reason.empty()) finish_reason = chunk->finish_reason;
  }
  ASSERT_EQ(calls.size(), 1U);
  EXPECT_EQ(calls[0].id, "call_DdmO9pD3xa9XTPNJ32zg2hcA");
  EXPECT_EQ(calls[0].name, "get_current_weather");
  EXPECT_EQ(calls[0].arguments, R"({"location":"Boston, MA"})");
  EXPECT_EQ(finish_reason, "tool_calls");
}

TEST(OpenAIChatChunk, ReportsAMidStreamErrorPayload) {
  const auto events = ReadSse("openai/chat_stream_error.sse");
  ASSERT_EQ(events.size(), 2U);
  EXPECT_TRUE(ParseChatChunk(events[0].data).has_value());
  auto error = ParseChatChunk(events[1].data);
  ASSERT_FALSE(error.has_value());
  EXPECT_EQ(error.error().code, ErrorCode::kUpstreamError);
  EXPECT_NE(error.error().message.find("The server had an error"), std::string::npos);
}

TEST(OpenAIChatChunk, WritesTheFirstDeltaWithRoleAndEmptyContent) {
  ChatChunk chunk;
  chunk.id = "chatcmpl-1";
  chunk.model = "m";
  chunk.created = 1;
  chunk.role = "assistant";
  const boost::json::value v = Json(EncodeChatChunk(chunk));
  EXPECT_EQ(v.at("object"), "chat.completion.chunk");
  EXPECT_EQ(v.at("choices").at(0).at("delta"), Json(R"({"role":"assistant","content":""})"));
  EXPECT_TRUE(v.at("choices").at(0).at("finish_reason").is_null());
  EXPECT_FALSE(v.as_object().contains("usage"));
}

TEST(OpenAIChatChunk, WritesAUsageOnlyChunkWithEmptyChoices) {
  ChatChunk chunk;
  chunk.id = "chatcmpl-1";
  chunk.model = "m";
  chunk.usage_only = true;
  chunk.usage = Usage{.prompt_tokens = 3, .completion_tokens = 4, .total_tokens = 0, .known = true};
  const boost::json::value v = Json(EncodeChatChunk(chunk));
  EXPECT_TRUE(v.at("choices").as_array().empty());
  EXPECT_EQ(v.at("usage"), Json(R"({"prompt_tokens":3,"completion_tokens":4,"total_tokens":7})"));
}

// ---------------------------------------------------------------------------------------------
// Embeddings

TEST(OpenAIEmbeddingRequest, ParsesTheRecordedRequest) {
  const std::string body = ReadTestdata("openai/embeddings_request.json");
  auto r = ParseEmbeddingRequest(body);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->model, "text-embedding-3-small");
  EXPECT_EQ(r->inputs, (std::vector<std::string>{"The food was delicious and the waiter...",
                                                 "The service was slow."}));
  EXPECT_FALSE(r->token_input);
  EXPECT_EQ(r->encoding_format, "float");
  EXPECT_EQ(r->dimensions, 4);
  EXPECT_EQ(r->user, "user-1234");
  EXPECT_EQ(r->raw_body, body);
  EXPECT_EQ(r->raw_body.substr(r->model_begin, r->model_end - r->model_begin),
            "\"text-embedding-3-small\"");
}

struct ModelSpanCase {
  std::string body;
  std::string span;
  std::string model;
};

TEST(OpenAIEmbeddingRequest, FindsTheTopLevelModelSpanWhateverTheLayout) {
  const std::vector<ModelSpanCase> cases = {
      {R"({"model":"m","input":"x"})", R"("m")", "m"},
      {"{ \"input\" : \"x\" ,\n\t\"model\"  :\r\n \"a\\\"b\\u00e9\" }", R"("a\"b\u00e9")",
       "a\"b\xC3\xA9"},
      {R"({"metadata":{"model":"inner"},"input":"model","model":"outer"})", R"("outer")", "outer"},
      {R"({"input":["{\"model\":\"fake\"}"],"model":"real"})", R"("real")", "real"},
  };
  for (const auto& c : cases) {
    auto r = ParseEmbeddingRequest(c.body);
    ASSERT_TRUE(r.has_value()) << c.body << ": " << r.error().message;
    EXPECT_EQ(r->raw_body.substr(r->model_begin, r->model_end - r->model_begin), c.span);
    EXPECT_EQ(r->model, c.model);
  }
}

// Found by tests/fuzz/openai_request (issue 10, #4): the model routed is the one the upstream
// reads, names unescaped and the model given once.
TEST(OpenAIEmbeddingRequest, ReadsNamesUnescapedAndRefusesASecondModel) {
  auto r = ParseEmbeddingRequest(R"({"mod\u0065l":"m","inp\u0075t":["a","b"]})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(r->inputs, (std::vector<std::string>{"a", "b"}));
  for (const char* body : {R"({"model":"cheap","input":"x","mod\u0065l":"expensive"})",
                           R"({"model":"a","model":"b","input":"x"})"}) {
    auto twice = ParseEmbeddingRequest(body);
    ASSERT_FALSE(twice.has_value()) << body;
    EXPECT_EQ(twice.error().param, "model") << body;
  }
}

TEST(OpenAIChatRequest, ReadsMemberNamesUnescaped) {
  const ChatRequest r = Parsed(
      R"({"model":"m","m\u0065ssages":[{"role":"user","content":"hi"}],"temp\u0065rature":0.5})");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].content, "hi");
  EXPECT_EQ(r.temperature, 0.5);
}

TEST(OpenAIEmbeddingRequest, AcceptsTokenIdInput) {
  for (const char* body :
       {R"({"model":"m","input":[1,2,3]})", R"({"model":"m","input":[[1,2],[3]]})"}) {
    auto r = ParseEmbeddingRequest(body);
    ASSERT_TRUE(r.has_value()) << body;
    EXPECT_TRUE(r->token_input);
    EXPECT_TRUE(r->inputs.empty());
  }
  auto single = ParseEmbeddingRequest(R"({"model":"m","input":"one","encoding_format":"base64"})");
  ASSERT_TRUE(single.has_value());
  EXPECT_EQ(single->inputs, std::vector<std::string>{"one"});
  EXPECT_EQ(single->encoding_format, "base64");
}

TEST(OpenAIEmbeddingRequest, RejectsInvalidRequestsNamingTheParam) {
  const std::vector<InvalidCase> cases = {
      {"no model", R"({"input":"x"})", "model"},
      {"model number", R"({"model":1,"input":"x"})", "model"},
      {"model empty", R"({"model":"","input":"x"})", "model"},
      {"no input", R"({"model":"m"})", "input"},
      {"null input", R"({"model":"m","input":null})", "input"},
      {"empty string", R"({"model":"m","input":""})", "input"},
      {"empty array", R"({"model":"m","input":[]})", "input"},
      {"empty string item", R"({"model":"m","input":["a",""]})", "input"},
      {"mixed items", R"({"model":"m","input":["a",1]})", "input"},
      {"float tokens", R"({"model":"m","input":[1.5]})", "input"},
      {"empty token array", R"({"model":"m","input":[[]]})", "input"},
      {"object input", R"({"model":"m","input":{}})", "input"},
      {"bad format", R"({"model":"m","input":"x","encoding_format":"int8"})", "encoding_format"},
      {"format number", R"({"model":"m","input":"x","encoding_format":1})", "encoding_format"},
      {"dimensions zero", R"({"model":"m","input":"x","dimensions":0})", "dimensions"},
      {"dimensions string", R"({"model":"m","input":"x","dimensions":"4"})", "dimensions"},
      {"dimensions fraction", R"({"model":"m","input":"x","dimensions":1.5})", "dimensions"},
      {"user number", R"({"model":"m","input":"x","user":5})", "user"},
  };
  for (const auto& c : cases) {
    auto r = ParseEmbeddingRequest(c.body);
    ASSERT_FALSE(r.has_value()) << c.name;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest) << c.name;
    EXPECT_EQ(r.error().param, c.param) << c.name << ": " << r.error().message;
  }
  for (const char* body : {"", "[]", R"({"model":"m",)", "\"x\""}) {
    auto r = ParseEmbeddingRequest(body);
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest);
  }
}

TEST(OpenAIEmbeddingResponse, ParsesFloatAndBase64BodiesToTheSameVectors) {
  auto floats = ParseEmbeddingResponse(ReadTestdata("openai/embeddings_response_float.json"));
  auto base64 = ParseEmbeddingResponse(ReadTestdata("openai/embeddings_response_base64.json"));
  ASSERT_TRUE(floats.has_value()) << floats.error().message;
  ASSERT_TRUE(base64.has_value()) << base64.error().message;
  ASSERT_EQ(floats->vectors.size(), 2U);
  EXPECT_EQ(floats->vectors, base64->vectors);
  EXPECT_EQ(floats->vectors[1][2], 0.0264285F);
  EXPECT_EQ(floats->model, "text-embedding-3-small");
  EXPECT_TRUE(floats->usage.known);
  EXPECT_EQ(floats->usage.prompt_tokens, 14);
  EXPECT_EQ(floats->usage.total_tokens, 14);
}

TEST(OpenAIEmbeddingResponse, EncodesBackToTheRecordedBodiesInBothFormats) {
  auto parsed = ParseEmbeddingResponse(ReadTestdata("openai/embeddings_response_float.json"));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(Json(EncodeEmbeddingResponse(*parsed, "float")),
            Json(ReadTestdata("openai/embeddings_response_float.json")));
  EXPECT_EQ(Json(EncodeEmbeddingResponse(*parsed, "base64")),
            Json(ReadTestdata("openai/embeddings_response_base64.json")));
}

TEST(OpenAIEmbeddingResponse, OrdersVectorsByIndex) {
  auto r = ParseEmbeddingResponse(
      R"({"object":"list","data":[{"object":"embedding","index":1,"embedding":[2]},)"
      R"({"object":"embedding","index":0,"embedding":[1]}],"model":"m"})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->vectors, (std::vector<std::vector<float>>{{1}, {2}}));
  EXPECT_FALSE(r->usage.known);
}

TEST(OpenAIEmbeddingResponse, RejectsMalformedBodies) {
  for (const char* bad :
       {R"({"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]})",
        R"({"data":[{"index":5,"embedding":[1]}]})", R"({"data":[{"index":0,"embedding":"***"}]})",
        R"({"data":[{"index":0,"embedding":["x"]}]})", R"({"data":[{"index":0}]})",
        R"({"object":"list"})", R"({"error":{"message":"boom"}})", "nope"}) {
    auto r = ParseEmbeddingResponse(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kUpstreamError) << bad;
  }
}

}  // namespace
}  // namespace orchestra::wire::openai
