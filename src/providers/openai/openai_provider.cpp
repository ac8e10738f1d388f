#include "providers/openai/openai_provider.hpp"

#include <algorithm>
#include <span>

#include <boost/container/static_vector.hpp>

#include "common/json_scan.hpp"
#include "common/text.hpp"
#include "net/sse.hpp"
#include "providers/codec_util.hpp"
#include "providers/openai/scan.hpp"

namespace orchestra::providers {
namespace {

namespace asio = boost::asio;

constexpr std::string_view kIncludeUsage = R"({"include_usage":true})";
constexpr std::string_view kAppendIncludeUsage = R"(,"stream_options":{"include_usage":true})";
constexpr std::size_t kMaxErrorBody = 64 << 10;

// The upstream model as a JSON string, into `out`, which the caller keeps in its coroutine frame
// until the request is written: the write may come after a suspension (connecting a new
// upstream connection), during which another request on the thread would overwrite a
// per-thread buffer (and its model would be spliced into this body).
std::string_view QuotedJson(std::string_view text, std::string& out) {
  out.assign(1, '"');
  AppendJsonEscaped(out, text);
  out += '"';
  return out;
}

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
  net::OutgoingRequest out;
  out.target = target;
  out.deadline = options.deadline;
  out.first_byte_deadline = options.first_byte_deadline;
  HeaderLines lines;
  AddCommonHeaders(out, options, lines);
  std::string quoted_model;
  Splice splice[] = {{model_begin, model_end, QuotedJson(options.upstream_model, quoted_model)}};
  AddSplicedBody(out, raw_body, splice);

  auto sent = co_await client(options).Send(origin_id(), out);
  if (!sent) co_return FromNet(sent.error());
  if (sent->head.status < 200 || sent->head.status >= 300) {
    co_return FromStatus(sent->head, ErrorMessageFromBody(sent->body));
  }
  // The body goes to the client as application/json: something else (a proxy's or a captive
  // portal's HTML page) is the upstream's failure, not an answer. The first byte tells.
  if (const auto first = sent->body.find_first_not_of(" \t\r\n");
      first == std::string::npos || sent->body[first] != '{') {
    co_return FromNet(
        Error(ErrorCode::kUpstreamError,
              "provider " + name() + " answered " + std::to_string(sent->head.status) +
                  " with a body that is not a JSON object (Content-Type: " +
                  std::string(sent->head.Header("content-type").substr(0, 64)) + ")"));
  }
  Response result;
  result.usage = openai::ScanUsage(sent->body);
  result.model = std::string(options.upstream_model);
  result.raw = std::move(sent->body);
  co_return result;
}

asio::awaitable<ProviderResult<ChatResponse>> OpenAIProvider::Chat(const ChatRequest& request,
                                                                   const CallOptions& options) {
  return Forward<ChatResponse>(chat_target_, request.raw_body, request.model_begin,
                               request.model_end, options);
}

asio::awaitable<ProviderResult<StreamSummary>> OpenAIProvider::ChatStream(
    const ChatRequest& request, const CallOptions& options, ChunkSink& sink) {
  if (auto unusable = Unusable()) co_return *unusable;
  net::OutgoingRequest out;
  out.target = chat_target_;
  out.deadline = options.deadline;
  out.first_byte_deadline = options.first_byte_deadline;
  HeaderLines lines;
  out.headers.push_back("Accept: text/event-stream");
  AddCommonHeaders(out, options, lines);
  std::string quoted_model;
  const std::string_view model = QuotedJson(options.upstream_model, quoted_model);
  // Usage is always asked for, to count tokens; the usage chunk reaches the client only if the
  // client asked for it too (the sink decides).
  boost::container::static_vector<Splice, 2> splices{
      {request.model_begin, request.model_end, model}};
  if (request.stream_options_end > request.stream_options_begin) {
    // Keep the client's other stream options; set include_usage inside them.
    const std::string_view options_text(request.raw_body.data() + request.stream_options_begin,
                                        request.stream_options_end - request.stream_options_begin);
    JsonSpan include;
    bool other_members = false;
    ScanJson(options_text, [&](std::string_view key, const JsonSpan& v) {
      if (key == "include_usage") {
        include = v;
      } else {
        other_members = true;
      }
    });
    if (options_text == "null") {
      splices.push_back({request.stream_options_begin, request.stream_options_end, kIncludeUsage});
    } else if (include.present) {
      splices.push_back({request.stream_options_begin + include.begin,
                         request.stream_options_begin + include.end, "true"});
    } else {
      const std::size_t after_brace = request.stream_options_begin + 1;
      splices.push_back({after_brace, after_brace,
                         other_members ? R"("include_usage":true,)" : R"("include_usage":true)"});
    }
  } else {
    const std::size_t brace = ClosingBrace(request.raw_body);
    splices.push_back({brace, brace, kAppendIncludeUsage});
  }
  AddSplicedBody(out, request.raw_body, splices);

  auto opened = co_await client(options).Open(origin_id(), out);
  if (!opened) co_return FromNet(opened.error());
  net::ResponseStream& stream = **opened;
  if (stream.head().status < 200 || stream.head().status >= 300) {
    std::string body;
    while (body.size() < kMaxErrorBody) {
      auto piece = co_await stream.Read();
      if (!piece || piece->empty()) break;
      body.append(*piece);
    }
    co_return FromStatus(stream.head(), ErrorMessageFromBody(body));
  }

  StreamSummary summary;
  summary.upstream_model = std::string(options.upstream_model);
  net::SseParser parser;
  net::SseEvent event;
  ChatChunk chunk;
  while (true) {
    auto piece = co_await stream.Read();
    if (!piece) co_return FromNet(piece.error());
    if (piece->empty()) break;
    if (!parser.Feed(*piece)) {
      ProviderError e =
          FromNet(Error(ErrorCode::kUpstreamError, "upstream sent an oversized event"));
      co_return e;
    }
    while (parser.Next(event)) {
      if (event.data == "[DONE]") co_return summary;
      openai::ChunkFacts facts = openai::ScanChunk(event.data);
      if (!facts.valid || facts.is_error) {
        ProviderError e;
        e.kind = facts.is_error ? FailureKind::kStatus : FailureKind::kProtocol;
        e.status = 502;
        e.error =
            Error(ErrorCode::kUpstreamError,
                  "provider " + name() +
                      (facts.is_error ? " failed mid-stream: " + ErrorMessageFromBody(event.data)
                                      : " sent a malformed chunk"));
        co_return e;
      }
      if (facts.usage.known) summary.usage = facts.usage;
      chunk.raw.assign(event.data);
      chunk.usage_only = facts.usage_only;
      chunk.usage = facts.usage.known ? std::optional<Usage>(facts.usage) : std::nullopt;
      ++summary.chunks;
      if (!co_await sink.OnChunk(chunk)) {
        ProviderError e;
        e.kind = FailureKind::kCancelled;
        e.error = Error(ErrorCode::kCancelled, "client went away");
        co_return e;
      }
    }
  }
  ProviderError cut;
  cut.kind = FailureKind::kProtocol;
  cut.error =
      Error(ErrorCode::kUpstreamError, "provider " + name() + " ended the stream before [DONE]");
  co_return cut;
}

asio::awaitable<ProviderResult<EmbeddingResponse>> OpenAIProvider::Embed(
    const EmbeddingRequest& request, const CallOptions& options) {
  return Forward<EmbeddingResponse>(embeddings_target_, request.raw_body, request.model_begin,
                                    request.model_end, options);
}

}  // namespace orchestra::providers
