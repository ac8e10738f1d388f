#include "providers/openai/openai_provider.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <span>

#include <boost/container/static_vector.hpp>

#include "common/json_scan.hpp"
#include "common/text.hpp"
#include "wire/codec_util.hpp"
#include "wire/openai_scan.hpp"

namespace orchestra::providers {
namespace {

namespace asio = boost::asio;

constexpr std::string_view kIncludeUsage = R"({"include_usage":true})";
constexpr std::string_view kAppendIncludeUsage = R"(,"stream_options":{"include_usage":true})";

// The upstream model as a JSON string. It is a piece of the outgoing body, so it lives on the
// calling coroutine's frame until the request is written: writing may suspend (connect, TLS,
// a partial send), and another request on the same worker runs meanwhile. Names that need no
// escaping and fit (nearly all) are copied into the frame without an allocation.
class QuotedJson {
 public:
  explicit QuotedJson(std::string_view text) {
    if (text.size() + 2 <= inline_.size() && JsonPlainPrefix(text) == text.size()) {
      inline_[0] = '"';
      std::memcpy(inline_.data() + 1, text.data(), text.size());
      inline_[text.size() + 1] = '"';
      view_ = std::string_view(inline_.data(), text.size() + 2);
      return;
    }
    heap_.assign(1, '"');
    AppendJsonEscaped(heap_, text);
    heap_ += '"';
    view_ = heap_;
  }
  QuotedJson(const QuotedJson&) = delete;
  QuotedJson& operator=(const QuotedJson&) = delete;
  std::string_view view() const { return view_; }

 private:
  std::array<char, 64> inline_;  // small: it is on a coroutine frame
  std::string heap_;
  std::string_view view_;
};

struct Splice {
  std::size_t begin;
  std::size_t end;
  std::string_view replacement;
};

// The body as pieces: the original text with the splices applied, never copied.
void AddSplicedBody(net::OutgoingRequest& out, std::string_view body, std::span<Splice> splices) {
  std::sort(splices.begin(), splices.end(),
            [](const Splice& a, const Splice& b) { return a.begin < b.begin; });
  std::size_t at = 0;
  for (const Splice& s : splices) {
    out.AddBody(body.substr(at, s.begin - at));
    out.AddBody(s.replacement);
    at = s.end;
  }
  out.AddBody(body.substr(at));
}

// Where `,"stream_options":...` goes when the client sent none: before the closing brace.
std::size_t ClosingBrace(std::string_view body) {
  std::size_t i = body.size();
  while (i > 0 && body[i - 1] != '}')
    --i;
  return i > 0 ? i - 1 : body.size();
}

// The stream_options splice: include_usage set inside the client's own options (kept), or the
// member added when the client sent none.
Splice IncludeUsage(const wire::ChatRequest& request) {
  if (request.stream_options_end <= request.stream_options_begin) {
    const std::size_t brace = ClosingBrace(request.raw_body);
    return {brace, brace, kAppendIncludeUsage};
  }
  const std::string_view options_text(request.raw_body.data() + request.stream_options_begin,
                                      request.stream_options_end - request.stream_options_begin);
  if (options_text == "null") {
    return {request.stream_options_begin, request.stream_options_end, kIncludeUsage};
  }
  JsonSpan include;
  bool other_members = false;
  ScanJson(options_text, [&](std::string_view key, const JsonSpan& v) {
    if (key == "include_usage") {
      include = v;
    } else {
      other_members = true;
    }
  });
  if (include.present) {
    return {request.stream_options_begin + include.begin,
            request.stream_options_begin + include.end, "true"};
  }
  const std::size_t after_brace = request.stream_options_begin + 1;
  return {after_brace, after_brace,
          other_members ? R"("include_usage":true,)" : R"("include_usage":true)"};
}

// OpenAI's stream: each `data:` payload is a chunk forwarded as it came, `[DONE]` its end.
class ChunkForwarder final : public EventDecoder {
 public:
  boost::system::result<std::size_t, Failure> Feed(const net::SseEvent& event,
                                                   std::vector<wire::ChatChunk>& out) override {
    if (event.data == "[DONE]") {
      done_ = true;
      return 0;
    }
    const wire::openai::ChunkFacts facts = wire::openai::ScanChunk(event.data);
    if (!facts.valid) return Failure{Error(ErrorCode::kUpstreamError, "not a JSON object"), true};
    if (facts.is_error) {
      return Failure{Error(ErrorCode::kUpstreamError, wire::ErrorMessageFromBody(event.data)),
                     false};
    }
    if (facts.usage.known) usage_ = facts.usage;
    if (out.empty()) out.emplace_back();
    wire::ChatChunk& chunk = out.front();
    chunk.raw.assign(event.data);
    chunk.usage_only = facts.usage_only;
    chunk.usage = facts.usage.known ? std::optional<wire::Usage>(facts.usage) : std::nullopt;
    return 1;
  }
  bool done() const override { return done_; }
  std::string_view end_marker() const override { return "[DONE]"; }
  bool Complete(std::optional<wire::ChatChunk>& /*last*/) override { return done_; }
  wire::Usage usage() const override { return usage_; }

 private:
  bool done_ = false;
  wire::Usage usage_;
};

}  // namespace

OpenAIProvider::OpenAIProvider(const config::ProviderConfig& config, net::Upstreams& upstreams,
                               const config::EnvLookup& env)
    : HttpProvider(config, upstreams, env),
      chat_target_(origin().base_path + "/chat/completions"),
      embeddings_target_(origin().base_path + "/embeddings") {
  if (!api_key().empty()) SetAuthLine("Authorization: Bearer " + api_key());
}

template <class Response>
asio::awaitable<ProviderResult<Response>> OpenAIProvider::Forward(std::string_view target,
                                                                  std::string_view raw_body,
                                                                  std::size_t model_begin,
                                                                  std::size_t model_end,
                                                                  const CallOptions& options) {
  if (auto unusable = Unusable()) co_return *unusable;
  net::OutgoingRequest out = NewRequest(target, options);
  const QuotedJson model(options.upstream_model);
  Splice splice[] = {{model_begin, model_end, model.view()}};
  AddSplicedBody(out, raw_body, splice);

  auto body = Answer(co_await client(options).Send(origin_id(), out));
  if (!body) co_return body.error();
  Response result;
  result.usage = wire::openai::ScanUsage(*body);
  result.model = std::string(options.upstream_model);
  result.raw = std::move(*body);
  co_return result;
}

asio::awaitable<ProviderResult<wire::ChatResponse>> OpenAIProvider::Chat(
    const wire::ChatRequest& request, const CallOptions& options) {
  return Forward<wire::ChatResponse>(chat_target_, request.raw_body, request.model_begin,
                                     request.model_end, options);
}

asio::awaitable<ProviderResult<StreamSummary>> OpenAIProvider::ChatStream(
    const wire::ChatRequest& request, const CallOptions& options, ChunkSink& sink) {
  if (auto unusable = Unusable()) co_return *unusable;
  net::OutgoingRequest out = NewRequest(chat_target_, options);
  out.headers.push_back("Accept: text/event-stream");
  const QuotedJson model(options.upstream_model);
  // Usage is always asked for, to count tokens; the usage chunk reaches the client only if the
  // client asked for it too (the sink decides).
  boost::container::static_vector<Splice, 2> splices{
      {request.model_begin, request.model_end, model.view()}, IncludeUsage(request)};
  AddSplicedBody(out, request.raw_body, splices);
  ChunkForwarder decoder;
  co_return co_await Stream(out, options, decoder, sink);
}

asio::awaitable<ProviderResult<wire::EmbeddingResponse>> OpenAIProvider::Embed(
    const wire::EmbeddingRequest& request, const CallOptions& options) {
  return Forward<wire::EmbeddingResponse>(embeddings_target_, request.raw_body, request.model_begin,
                                          request.model_end, options);
}

}  // namespace orchestra::providers
