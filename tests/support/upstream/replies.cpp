#include "upstream/replies.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>

#include "common/text.hpp"
#include "upstream/json_scan.hpp"

namespace orchestra::testing::upstream {
namespace {

enum class ErrorShape : std::uint8_t { kOpenAi, kAnthropic, kGemini };

ErrorShape ShapeOf(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::kAnthropicMessages:
      return ErrorShape::kAnthropic;
    case Endpoint::kGeminiGenerate:
    case Endpoint::kGeminiStream:
    case Endpoint::kGeminiEmbed:
    case Endpoint::kGeminiBatchEmbed:
      return ErrorShape::kGemini;
    default:
      return ErrorShape::kOpenAi;
  }
}

void AppendInt(std::string& out, std::int64_t v) {
  char buf[24];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(ptr - buf));
}

void AppendHex(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v, 16);
  out.append(buf, static_cast<std::size_t>(ptr - buf));
}

void AppendQuoted(std::string& out, std::string_view text) {
  out += '"';
  AppendJsonEscaped(out, text);
  out += '"';
}

bool IsSpace(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

std::int64_t CountWords(std::string_view text) {
  std::int64_t words = 0;
  bool in_word = false;
  for (char c : text) {
    bool space = IsSpace(c);
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

// The end offset of every whitespace-separated word of `text`.
void WordEnds(std::string_view text, std::vector<std::uint32_t>& ends) {
  ends.clear();
  bool in_word = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool space = IsSpace(text[i]);
    if (in_word && space) ends.push_back(static_cast<std::uint32_t>(i));
    in_word = !space;
  }
  if (in_word) ends.push_back(static_cast<std::uint32_t>(text.size()));
}

// Piece `i` of `n` of the reply text: whole words grouped evenly when n <= words, else one word
// per piece followed by empty pieces. Concatenated, the pieces are always the whole text.
std::string_view Piece(std::string_view text, const std::vector<std::uint32_t>& ends, std::size_t i,
                       std::size_t n) {
  const std::size_t words = ends.size();
  auto end_of = [&](std::size_t k) -> std::size_t {  // end of piece k
    if (words == 0) return k + 1 == n ? text.size() : 0;
    if (n <= words) return k + 1 == n ? text.size() : ends[((k + 1) * words) / n - 1];
    if (k + 1 >= words) return text.size();
    return ends[k];
  };
  std::size_t begin = i == 0 ? 0 : end_of(i - 1);
  std::size_t end = end_of(i);
  return text.substr(begin, end - begin);
}

std::uint64_t Fnv1a(std::string_view text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

// A unit vector derived from a hash of `text` (splitmix64 stream): equal inputs give equal
// vectors, so tests can assert on caching and similarity.
void MakeVector(std::string_view text, int dims, std::vector<float>& out) {
  out.resize(static_cast<std::size_t>(dims));
  std::uint64_t state = Fnv1a(text);
  double norm = 0;
  for (float& f : out) {
    state += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    double v = static_cast<double>(z >> 11) * 0x1.0p-53 * 2.0 - 1.0;
    f = static_cast<float>(v);
    norm += v * v;
  }
  norm = std::sqrt(norm);
  if (norm > 0) {
    for (float& f : out)
      f = static_cast<float>(f / norm);
  }
}

void AppendBase64(std::string& out, const unsigned char* data, std::size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < size) {
    std::uint32_t v = data[i] << 16;
    if (i + 1 < size) v |= data[i + 1] << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
}

// `[v,v,...]` or a base64 string of little-endian float32 (OpenAI's encoding_format=base64).
void AppendVector(std::string& out, const std::vector<float>& v, bool base64) {
  if (base64) {
    static_assert(std::endian::native == std::endian::little, "base64 embeddings assume LE");
    out += '"';
    AppendBase64(out, reinterpret_cast<const unsigned char*>(v.data()), v.size() * sizeof(float));
    out += '"';
    return;
  }
  out += '[';
  char buf[32];
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i != 0) out += ',';
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v[i]);
    out.append(buf, static_cast<std::size_t>(ptr - buf));
  }
  out += ']';
}

void AppendHead(Reply& reply, int status, std::string_view content_type, std::size_t length,
                bool chunked) {
  std::string& h = reply.head;
  h.clear();
  h += "HTTP/1.1 ";
  AppendInt(h, status);
  h += ' ';
  h += ReasonPhrase(status);
  h += "\r\nContent-Type: ";
  h += content_type;
  if (chunked) {
    h += "\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked";
  } else if (!reply.stream) {
    h += "\r\nContent-Length: ";
    AppendInt(h, static_cast<std::int64_t>(length));
  }
  if (reply.directives.retry_after >= 0 && status >= 400) {
    h += "\r\nRetry-After: ";
    AppendInt(h, reply.directives.retry_after);
  }
  if (reply.close) h += "\r\nConnection: close";
  h += "\r\n\r\n";
}

void FinishJson(Reply& reply, int status) {
  reply.status = status;
  AppendHead(reply, status, "application/json", reply.body.size(), false);
}

std::string_view OpenAiErrorType(int status) {
  if (status == 401) return "invalid_request_error";
  if (status == 403) return "permission_error";
  if (status == 429) return "requests";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

std::string_view AnthropicErrorType(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 529:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

std::string_view GeminiStatus(int status) {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 409:
      return "ABORTED";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 499:
      return "CANCELLED";
    case 501:
      return "UNIMPLEMENTED";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
  }
}

// An error in the provider's own shape, so that Orchestra's translation of each is exercised.
void BuildError(ErrorShape shape, int status, std::string_view message, std::string_view param,
                Reply& reply) {
  reply.stream = false;
  reply.events.clear();
  std::string& b = reply.body;
  b.clear();
  switch (shape) {
    case ErrorShape::kOpenAi:
      b += R"({"error":{"message":)";
      AppendQuoted(b, message);
      b += R"(,"type":")";
      b += OpenAiErrorType(status);
      b += R"(","param":)";
      if (param.empty()) {
        b += "null";
      } else {
        AppendQuoted(b, param);
      }
      b += R"(,"code":)";
      b += status == 429 ? R"("rate_limit_exceeded")" : "null";
      b += "}}";
      break;
    case ErrorShape::kAnthropic:
      b += R"({"type":"error","error":{"type":")";
      b += AnthropicErrorType(status);
      b += R"(","message":)";
      AppendQuoted(b, message);
      b += "}}";
      break;
    case ErrorShape::kGemini:
      b += R"({"error":{"code":)";
      AppendInt(b, status);
      b += R"(,"message":)";
      AppendQuoted(b, message);
      b += R"(,"status":")";
      b += GeminiStatus(status);
      b += R"("}})";
      break;
  }
  FinishJson(reply, status);
}

// Streams: frames one event as an HTTP chunk (or raw for HTTP/1.0) and records its range.
void AppendEvent(Reply& reply, std::string_view event, bool content, bool chunked) {
  auto begin = static_cast<std::uint32_t>(reply.body.size());
  if (chunked) {
    AppendHex(reply.body, event.size());
    reply.body += "\r\n";
  }
  reply.body += event;
  if (chunked) reply.body += "\r\n";
  reply.events.push_back({begin, static_cast<std::uint32_t>(reply.body.size()), content});
}

void StartStream(const HttpRequest& req, Reply& reply) {
  reply.stream = true;
  reply.status = 200;
  reply.body.clear();
  reply.events.clear();
  if (req.http10) reply.close = true;  // HTTP/1.0 has no chunked coding: the close ends it
  AppendHead(reply, 200, "text/event-stream", 0, !req.http10);
}

void EndStream(const HttpRequest& req, Reply& reply) {
  if (!req.http10) {
    auto begin = static_cast<std::uint32_t>(reply.body.size());
    reply.body += "0\r\n\r\n";
    reply.events.push_back({begin, static_cast<std::uint32_t>(reply.body.size()), false});
  }
}

// Appends the text of a message content: a string, or an array of parts whose "text" members
// are joined with spaces (OpenAI content parts, Anthropic text blocks, Gemini parts). Other
// parts (images, tool calls) carry no text. False when the shape is wrong.
bool AppendContentText(std::string_view content, std::string& out) {
  switch (KindOf(content)) {
    case JsonKind::kString:
      return DecodeString(content, out);
    case JsonKind::kNull:
      return true;
    case JsonKind::kArray: {
      bool ok = true;
      bool parsed = ForEachElement(content, [&](std::string_view part) {
        if (KindOf(part) == JsonKind::kString) {  // Gemini-style bare strings are tolerated
          if (!out.empty()) out += ' ';
          ok = DecodeString(part, out);
          return ok;
        }
        if (KindOf(part) != JsonKind::kObject) return true;
        std::string_view text = FindMember(part, "text");
        if (KindOf(text) != JsonKind::kString) return true;
        if (!out.empty()) out += ' ';
        ok = DecodeString(text, out);
        return ok;
      });
      return parsed && ok;
    }
    default:
      return false;
  }
}

// What the builders need from a request body, found by one walk over its top-level members.
struct BodyFields {
  std::string_view model;  // a JSON string value (with quotes), or empty
  std::string_view messages;
  std::string_view system;
  std::string_view input;
  std::string_view contents;
  std::string_view content;
  std::string_view requests;
  std::string_view encoding_format;
  std::string_view dimensions;
  std::string_view max_tokens;
  bool stream = false;
  bool include_usage = false;
};

// Records the member `key` (already decoded) when it is one the builders use. Dispatches on
// the length first: most keys are rejected by one comparison.
void NoteMember(std::string_view key, std::string_view value, BodyFields& f) {
  switch (key.size()) {
    case 5:
      if (key == "model")
        f.model = value;
      else if (key == "input")
        f.input = value;
      break;
    case 6:
      if (key == "stream")
        f.stream = IsTrue(value);
      else if (key == "system")
        f.system = value;
      break;
    case 7:
      if (key == "content") f.content = value;
      break;
    case 8:
      if (key == "messages")
        f.messages = value;
      else if (key == "contents")
        f.contents = value;
      else if (key == "requests")
        f.requests = value;
      break;
    case 10:
      if (key == "dimensions")
        f.dimensions = value;
      else if (key == "max_tokens")
        f.max_tokens = value;
      break;
    case 14:
      if (key == "stream_options") f.include_usage = IsTrue(FindMember(value, "include_usage"));
      break;
    case 15:
      if (key == "encoding_format") f.encoding_format = value;
      break;
    case 17:
      if (key == "systemInstruction") f.system = value;
      break;
    case 20:
      if (key == "outputDimensionality") f.dimensions = value;
      break;
    default:
      break;
  }
}

// One walk over the top-level members; false unless `body` is exactly one JSON object.
bool ScanBody(std::string_view body, BodyFields& f) {
  const char* object_end = nullptr;
  std::string decoded_key;
  bool ok = ForEachMember(
      body,
      [&](std::string_view key, std::string_view value) {
        if (key.find('\\') == std::string_view::npos) {
          NoteMember(key, value, f);
          return true;
        }
        // An escaped key ("\u006dodel"): rare, but it must mean the same.
        decoded_key.clear();
        std::string quoted = "\"" + std::string(key) + "\"";
        if (DecodeString(quoted, decoded_key)) NoteMember(decoded_key, value, f);
        return true;
      },
      &object_end);
  if (!ok || object_end == nullptr) return false;
  const char* end = body.data() + body.size();
  return SkipWhitespace(object_end, end) == end;
}

void MakeReplyText(ReplyContext& ctx) {
  ctx.reply_text.clear();
  ctx.reply_text += "echo: ";
  ctx.reply_text += ctx.last_user;
  WordEnds(ctx.reply_text, ctx.word_ends);
}

std::size_t PieceCount(const ReplyContext& ctx, const Directives& d) {
  return d.chunks > 0 ? static_cast<std::size_t>(d.chunks)
                      : std::max<std::size_t>(ctx.word_ends.size(), 1);
}

constexpr std::size_t kIdDigits = 16;

// 16 hex digits, fixed width so that RefreshReply can rewrite an id in place.
void WriteIdDigits(char* out, ReplyContext& ctx) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t v = (ctx.worker_index << 56) | (++*ctx.id_counter & 0x00FF'FFFF'FFFF'FFFFULL);
  for (std::size_t i = kIdDigits; i-- > 0;) {
    out[i] = kHex[v & 0xF];
    v >>= 4;
  }
}

void AppendId(std::string& out, std::string_view prefix, ReplyContext& ctx) {
  out += prefix;
  std::size_t at = out.size();
  out.resize(at + kIdDigits);
  WriteIdDigits(out.data() + at, ctx);
}

// --- OpenAI --------------------------------------------------------------------------------

// Walks OpenAI or Anthropic `messages`: sums the words of every message and keeps the last user
// message's text. Returns the prompt words, or -1 with `error` set.
std::int64_t ReadMessages(std::string_view messages, bool anthropic, ReplyContext& ctx,
                          std::string& error) {
  if (KindOf(messages) != JsonKind::kArray) {
    error = "'messages' must be a non-empty array";
    return -1;
  }
  std::int64_t words = 0;
  std::size_t count = 0;
  ctx.last_user.clear();
  bool parsed = ForEachElement(messages, [&](std::string_view message) {
    ++count;
    std::string_view role;
    std::string_view content;
    bool ok = KindOf(message) == JsonKind::kObject &&
              ForEachMember(message, [&](std::string_view key, std::string_view value) {
                if (KeyEquals(key, "role"))
                  role = value;
                else if (KeyEquals(key, "content"))
                  content = value;
                return true;
              });
    if (!ok || KindOf(role) != JsonKind::kString) {
      error = "each message needs a 'role'";
      return false;
    }
    if (anthropic && role != R"("user")" && role != R"("assistant")") {
      error =
          "messages: roles must be 'user' or 'assistant' (the system prompt is the top-level "
          "'system' field)";
      return false;
    }
    ctx.text.clear();
    if (!AppendContentText(content, ctx.text)) {
      error = "a message's 'content' must be a string or an array of content parts";
      return false;
    }
    words += CountWords(ctx.text);
    if (role == R"("user")") ctx.last_user = ctx.text;
    return true;
  });
  if (!error.empty()) return -1;
  if (!parsed || count == 0) {
    error = "'messages' must be a non-empty array";
    return -1;
  }
  return words;
}

void AppendOpenAiChunkPrefix(std::string& e, std::string_view id, std::time_t created,
                             std::string_view model) {
  e += R"(data: {"id":")";
  e += id;
  e += R"(","object":"chat.completion.chunk","created":)";
  AppendInt(e, created);
  e += R"(,"model":)";
  AppendQuoted(e, model);
  e += R"(,"system_fingerprint":"fp_orchestra_test","choices":)";
}

void AppendOpenAiUsage(std::string& out, std::int64_t prompt, std::int64_t completion) {
  out += R"("usage":{"prompt_tokens":)";
  AppendInt(out, prompt);
  out += R"(,"completion_tokens":)";
  AppendInt(out, completion);
  out += R"(,"total_tokens":)";
  AppendInt(out, prompt + completion);
  out += '}';
}

void OpenAiChat(const HttpRequest& req, const BodyFields& f, std::string_view model,
                std::int64_t prompt, ReplyContext& ctx, Reply& reply) {
  MakeReplyText(ctx);
  const auto completion = static_cast<std::int64_t>(ctx.word_ends.size());
  const std::time_t created = std::time(nullptr);
  std::string& id = ctx.id;
  id.clear();
  AppendId(id, "chatcmpl-", ctx);
  if (!f.stream) {
    std::string& b = reply.body;
    b.clear();
    b += R"({"id":")";
    b += id;
    b += R"(","object":"chat.completion","created":)";
    AppendInt(b, created);
    b += R"(,"model":)";
    AppendQuoted(b, model);
    b +=
        R"(,"system_fingerprint":"fp_orchestra_test","choices":[{"index":0,"message":{"role":"assistant","content":)";
    AppendQuoted(b, ctx.reply_text);
    b += R"(,"refusal":null},"logprobs":null,"finish_reason":"stop"}],)";
    AppendOpenAiUsage(b, prompt, completion);
    b += '}';
    FinishJson(reply, 200);
    return;
  }
  StartStream(req, reply);
  const bool chunked = !req.http10;
  const std::size_t n = PieceCount(ctx, reply.directives);
  std::string& e = ctx.event;
  for (std::size_t i = 0; i < n; ++i) {
    e.clear();
    AppendOpenAiChunkPrefix(e, id, created, model);
    e += R"([{"index":0,"delta":{)";
    if (i == 0) e += R"("role":"assistant",)";
    e += R"("content":)";
    AppendQuoted(e, Piece(ctx.reply_text, ctx.word_ends, i, n));
    e += R"(},"logprobs":null,"finish_reason":null}]}

)";
    AppendEvent(reply, e, true, chunked);
  }
  e.clear();
  AppendOpenAiChunkPrefix(e, id, created, model);
  e += R"([{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}

)";
  AppendEvent(reply, e, false, chunked);
  if (f.include_usage && !reply.directives.no_usage) {
    e.clear();
    AppendOpenAiChunkPrefix(e, id, created, model);
    e += "[],";
    AppendOpenAiUsage(e, prompt, completion);
    e += "}\n\n";
    AppendEvent(reply, e, false, chunked);
  }
  AppendEvent(reply, "data: [DONE]\n\n", false, chunked);
  EndStream(req, reply);
}

// One embedding input: its text (hashed into the vector) and its token count.
struct EmbeddingInput {
  std::string_view raw;  // the JSON value
  bool tokens = false;   // an array of token ids: hashed as written
};

void OpenAiEmbeddings(const BodyFields& f, std::string_view model, ReplyContext& ctx,
                      Reply& reply) {
  auto bad = [&](std::string_view message) {
    BuildError(ErrorShape::kOpenAi, 400, message, "input", reply);
  };
  // Collect the inputs: a string, an array of strings, one array of token ids, or an array of
  // arrays of token ids.
  std::vector<EmbeddingInput> inputs;
  switch (KindOf(f.input)) {
    case JsonKind::kString:
      inputs.push_back({f.input, false});
      break;
    case JsonKind::kArray: {
      bool all_numbers = true;
      bool any = false;
      ForEachElement(f.input, [&](std::string_view v) {
        any = true;
        if (KindOf(v) != JsonKind::kNumber) all_numbers = false;
        return true;
      });
      if (!any) return bad("'input' must not be empty");
      if (all_numbers) {
        inputs.push_back({f.input, true});
        break;
      }
      bool ok = true;
      ForEachElement(f.input, [&](std::string_view v) {
        JsonKind k = KindOf(v);
        if (k != JsonKind::kString && k != JsonKind::kArray) ok = false;
        inputs.push_back({v, k == JsonKind::kArray});
        return ok;
      });
      if (!ok) return bad("'input' must be a string, an array of strings or of token arrays");
      break;
    }
    default:
      return bad("'input' must be a string, an array of strings or of token arrays");
  }
  bool base64 = false;
  if (!f.encoding_format.empty()) {
    if (f.encoding_format == R"("base64")") {
      base64 = true;
    } else if (f.encoding_format != R"("float")") {
      return BuildError(ErrorShape::kOpenAi, 400, "'encoding_format' must be 'float' or 'base64'",
                        "encoding_format", reply);
    }
  }
  int dims = reply.directives.dims;
  if (dims == 0 && !f.dimensions.empty()) {
    auto d = ToInt(f.dimensions);
    if (!d || *d < 1 || *d > 65536)
      return BuildError(ErrorShape::kOpenAi, 400, "'dimensions' must be a positive integer",
                        "dimensions", reply);
    dims = static_cast<int>(*d);
  }
  if (dims == 0) dims = 16;

  std::string& b = reply.body;
  b.clear();
  b += R"({"object":"list","data":[)";
  std::int64_t words = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::string_view hashed = inputs[i].raw;
    if (inputs[i].tokens) {
      ForEachElement(inputs[i].raw, [&](std::string_view) {
        ++words;
        return true;
      });
    } else {
      ctx.text.clear();
      if (!DecodeString(inputs[i].raw, ctx.text)) return bad("'input' has a malformed string");
      words += CountWords(ctx.text);
      hashed = ctx.text;
    }
    MakeVector(hashed, dims, ctx.vector);
    if (i != 0) b += ',';
    b += R"({"object":"embedding","index":)";
    AppendInt(b, static_cast<std::int64_t>(i));
    b += R"(,"embedding":)";
    AppendVector(b, ctx.vector, base64);
    b += '}';
  }
  b += R"(],"model":)";
  AppendQuoted(b, model);
  b += R"(,"usage":{"prompt_tokens":)";
  AppendInt(b, words);
  b += R"(,"total_tokens":)";
  AppendInt(b, words);
  b += "}}";
  FinishJson(reply, 200);
}

const std::string& ModelsBody() {
  static const std::string body = [] {
    std::string b = R"({"object":"list","data":[)";
    const char* models[] = {"gpt-test", "text-embedding-test", "claude-test", "gemini-test"};
    for (std::size_t i = 0; i < std::size(models); ++i) {
      if (i != 0) b += ',';
      b += R"({"id":")";
      b += models[i];
      b += R"(","object":"model","created":1700000000,"owned_by":"orchestra-test-upstream"})";
    }
    b += "]}";
    return b;
  }();
  return body;
}

// --- Anthropic ------------------------------------------------------------------------------

// Starts an Anthropic SSE event in `e`: the event line, then the data line's prefix.
void BeginAnthropicEvent(std::string& e, std::string_view type) {
  e.clear();
  e += "event: ";
  e += type;
  e += "\ndata: ";
}

void AnthropicMessages(const HttpRequest& req, const BodyFields& f, std::string_view model,
                       std::int64_t prompt, ReplyContext& ctx, Reply& reply) {
  MakeReplyText(ctx);
  const auto completion = static_cast<std::int64_t>(ctx.word_ends.size());
  std::string& id = ctx.id;
  id.clear();
  AppendId(id, "msg_test", ctx);
  if (!f.stream) {
    std::string& b = reply.body;
    b.clear();
    b += R"({"id":")";
    b += id;
    b += R"(","type":"message","role":"assistant","model":)";
    AppendQuoted(b, model);
    b += R"(,"content":[{"type":"text","text":)";
    AppendQuoted(b, ctx.reply_text);
    b += R"(}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":)";
    AppendInt(b, prompt);
    b += R"(,"output_tokens":)";
    AppendInt(b, completion);
    b += "}}";
    FinishJson(reply, 200);
    return;
  }
  StartStream(req, reply);
  const bool chunked = !req.http10;
  std::string& e = ctx.event;
  BeginAnthropicEvent(e, "message_start");
  e += R"({"type":"message_start","message":{"id":")";
  e += id;
  e += R"(","type":"message","role":"assistant","model":)";
  AppendQuoted(e, model);
  e += R"(,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":)";
  AppendInt(e, prompt);
  e += R"(,"output_tokens":1}}})";
  e += "\n\n";
  AppendEvent(reply, e, false, chunked);
  BeginAnthropicEvent(e, "content_block_start");
  e += R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})";
  e += "\n\n";
  AppendEvent(reply, e, false, chunked);
  // The real API sends a ping here; clients must skip it.
  BeginAnthropicEvent(e, "ping");
  e += R"({"type":"ping"})";
  e += "\n\n";
  AppendEvent(reply, e, false, chunked);
  const std::size_t n = PieceCount(ctx, reply.directives);
  for (std::size_t i = 0; i < n; ++i) {
    BeginAnthropicEvent(e, "content_block_delta");
    e += R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":)";
    AppendQuoted(e, Piece(ctx.reply_text, ctx.word_ends, i, n));
    e += "}}\n\n";
    AppendEvent(reply, e, true, chunked);
  }
  BeginAnthropicEvent(e, "content_block_stop");
  e += R"({"type":"content_block_stop","index":0})";
  e += "\n\n";
  AppendEvent(reply, e, false, chunked);
  BeginAnthropicEvent(e, "message_delta");
  e +=
      R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":)";
  AppendInt(e, completion);
  e += "}}\n\n";
  AppendEvent(reply, e, false, chunked);
  BeginAnthropicEvent(e, "message_stop");
  e += R"({"type":"message_stop"})";
  e += "\n\n";
  AppendEvent(reply, e, false, chunked);
  EndStream(req, reply);
}

// --- Gemini ---------------------------------------------------------------------------------

// Walks `contents` (and `systemInstruction`): prompt words and the last user turn's text.
std::int64_t ReadGeminiContents(const BodyFields& f, ReplyContext& ctx, std::string& error) {
  if (KindOf(f.contents) != JsonKind::kArray) {
    error = "'contents' must be a non-empty array";
    return -1;
  }
  std::int64_t words = 0;
  if (KindOf(f.system) == JsonKind::kObject) {
    ctx.text.clear();
    AppendContentText(FindMember(f.system, "parts"), ctx.text);
    words += CountWords(ctx.text);
  }
  std::size_t count = 0;
  ctx.last_user.clear();
  bool parsed = ForEachElement(f.contents, [&](std::string_view content) {
    ++count;
    if (KindOf(content) != JsonKind::kObject) {
      error = "each of 'contents' must be an object with 'parts'";
      return false;
    }
    std::string_view role;
    std::string_view parts;
    ForEachMember(content, [&](std::string_view key, std::string_view value) {
      if (KeyEquals(key, "role"))
        role = value;
      else if (KeyEquals(key, "parts"))
        parts = value;
      return true;
    });
    ctx.text.clear();
    if (KindOf(parts) != JsonKind::kArray || !AppendContentText(parts, ctx.text)) {
      error = "each of 'contents' must have a 'parts' array";
      return false;
    }
    words += CountWords(ctx.text);
    if (role.empty() || role == R"("user")") ctx.last_user = ctx.text;
    return true;
  });
  if (!error.empty()) return -1;
  if (!parsed || count == 0) {
    error = "'contents' must be a non-empty array";
    return -1;
  }
  return words;
}

void AppendGeminiUsage(std::string& out, std::int64_t prompt, std::int64_t completion) {
  out += R"("usageMetadata":{"promptTokenCount":)";
  AppendInt(out, prompt);
  out += R"(,"candidatesTokenCount":)";
  AppendInt(out, completion);
  out += R"(,"totalTokenCount":)";
  AppendInt(out, prompt + completion);
  out += '}';
}

void AppendGeminiResponse(std::string& out, std::string_view text, bool last,
                          std::string_view model, std::string_view id, std::int64_t prompt,
                          std::int64_t completion, bool usage = true) {
  out += R"({"candidates":[{"content":{"parts":[{"text":)";
  AppendQuoted(out, text);
  out += R"(}],"role":"model"},)";
  if (last) out += R"("finishReason":"STOP",)";
  out += R"("index":0}],)";
  if (last && usage) {
    AppendGeminiUsage(out, prompt, completion);
    out += ',';
  }
  out += R"("modelVersion":)";
  AppendQuoted(out, model);
  out += R"(,"responseId":")";
  out += id;
  out += R"("})";
}

void GeminiGenerate(const HttpRequest& req, bool stream, std::string_view model,
                    std::int64_t prompt, ReplyContext& ctx, Reply& reply) {
  MakeReplyText(ctx);
  const auto completion = static_cast<std::int64_t>(ctx.word_ends.size());
  std::string& id = ctx.id;
  id.clear();
  AppendId(id, "resp-", ctx);
  if (!stream) {
    reply.body.clear();
    AppendGeminiResponse(reply.body, ctx.reply_text, true, model, id, prompt, completion);
    FinishJson(reply, 200);
    return;
  }
  // alt=sse gives SSE (Gemini frames events with CRLF); without it, one JSON array streamed.
  const bool sse = req.query.find("alt=sse") != std::string_view::npos;
  StartStream(req, reply);
  if (!sse) AppendHead(reply, 200, "application/json", 0, !req.http10);
  const bool chunked = !req.http10;
  const std::size_t n = PieceCount(ctx, reply.directives);
  std::string& e = ctx.event;
  for (std::size_t i = 0; i < n; ++i) {
    e.clear();
    if (sse) {
      e += "data: ";
    } else {
      e += i == 0 ? "[" : ",\r\n";
    }
    AppendGeminiResponse(e, Piece(ctx.reply_text, ctx.word_ends, i, n), i + 1 == n, model, id,
                         prompt, completion, !reply.directives.no_usage);
    e += sse ? "\r\n\r\n" : "";
    AppendEvent(reply, e, true, chunked);
  }
  if (!sse) AppendEvent(reply, "]", false, chunked);
  EndStream(req, reply);
}

// The text of a Gemini `content` object (its parts' text joined).
bool GeminiContentText(std::string_view content, std::string& out) {
  if (KindOf(content) != JsonKind::kObject) return false;
  std::string_view parts = FindMember(content, "parts");
  return KindOf(parts) == JsonKind::kArray && AppendContentText(parts, out);
}

int GeminiDims(std::string_view requested, const Directives& d) {
  if (d.dims > 0) return d.dims;
  auto v = ToInt(requested);
  if (v && *v >= 1 && *v <= 65536) return static_cast<int>(*v);
  return 16;
}

void GeminiEmbed(const BodyFields& f, ReplyContext& ctx, Reply& reply) {
  ctx.text.clear();
  if (!GeminiContentText(f.content, ctx.text)) {
    return BuildError(ErrorShape::kGemini, 400, "'content' must be an object with 'parts'", {},
                      reply);
  }
  MakeVector(ctx.text, GeminiDims(f.dimensions, reply.directives), ctx.vector);
  std::string& b = reply.body;
  b.clear();
  b += R"({"embedding":{"values":)";
  AppendVector(b, ctx.vector, false);
  b += "}}";
  FinishJson(reply, 200);
}

void GeminiBatchEmbed(const BodyFields& f, ReplyContext& ctx, Reply& reply) {
  if (KindOf(f.requests) != JsonKind::kArray) {
    return BuildError(ErrorShape::kGemini, 400, "'requests' must be an array", {}, reply);
  }
  std::string& b = reply.body;
  b.clear();
  b += R"({"embeddings":[)";
  bool ok = true;
  std::size_t i = 0;
  ForEachElement(f.requests, [&](std::string_view request) {
    BodyFields rf;
    ctx.text.clear();
    if (KindOf(request) != JsonKind::kObject || !ScanBody(request, rf) ||
        !GeminiContentText(rf.content, ctx.text)) {
      ok = false;
      return false;
    }
    MakeVector(ctx.text, GeminiDims(rf.dimensions, reply.directives), ctx.vector);
    if (i++ != 0) b += ',';
    b += R"({"values":)";
    AppendVector(b, ctx.vector, false);
    b += '}';
    return true;
  });
  if (!ok) {
    return BuildError(ErrorShape::kGemini, 400, "each request needs a 'content' with 'parts'", {},
                      reply);
  }
  b += "]}";
  FinishJson(reply, 200);
}

void PercentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      int hi = hex(in[i + 1]);
      int lo = hex(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += in[i];
  }
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

void FindOffsets(const std::string& body, std::string_view needle, std::size_t skip,
                 std::vector<std::uint32_t>& out) {
  out.clear();
  for (std::size_t at = body.find(needle); at != std::string::npos;
       at = body.find(needle, at + needle.size())) {
    out.push_back(static_cast<std::uint32_t>(at + skip));
  }
}

// Everything BuildReply does but the bookkeeping for reuse.
void BuildReplyBytes(const Route& route, const HttpRequest& req, ReplyContext& ctx, Reply& reply) {
  reply.action = Action::kRespond;
  reply.stream = false;
  reply.close = !req.keep_alive;
  reply.events.clear();
  reply.directives = *ctx.defaults;
  const ErrorShape shape = ShapeOf(route.endpoint);

  if (route.endpoint == Endpoint::kOpenAiModels) {
    reply.directives = Directives{};
    reply.body.assign(ModelsBody());
    FinishJson(reply, 200);
    return;
  }

  BodyFields f;
  if (!ScanBody(req.body, f)) {
    reply.directives = Directives{};
    return BuildError(shape, 400, "test upstream: the body is not a JSON object", {}, reply);
  }
  // The model, whose name carries the directives.
  std::string_view model;
  if (shape == ErrorShape::kGemini) {
    PercentDecode(route.model, ctx.model);
    model = ctx.model;
  } else {
    ctx.model.clear();
    if (KindOf(f.model) != JsonKind::kString || !DecodeString(f.model, ctx.model) ||
        ctx.model.empty()) {
      reply.directives = Directives{};
      return BuildError(shape, 400, "test upstream: 'model' is required", "model", reply);
    }
    model = ctx.model;
  }
  auto directives = ParseModelDirectives(model, *ctx.defaults);
  if (!directives) {
    reply.directives = Directives{};
    return BuildError(shape, 400, directives.error().message, "model", reply);
  }
  Directives& d = reply.directives;
  d = *directives;
  if (d.times > 0 && d.HasFailure() && ctx.times->Next(model) > static_cast<std::uint64_t>(d.times))
    d.ClearFailures();

  if (d.stall) {
    reply.action = Action::kStall;
    return;
  }
  if (d.reset) {
    reply.action = Action::kReset;
    return;
  }
  if (d.status != 0 && d.status != 200) {
    ctx.injected_errors->fetch_add(1, std::memory_order_relaxed);
    std::string message = "test upstream: injected status ";
    message += std::to_string(d.status);
    message += " for model '";
    message += model;
    message += '\'';
    return BuildError(shape, d.status, message, {}, reply);
  }

  std::string error;
  switch (route.endpoint) {
    case Endpoint::kOpenAiChat: {
      std::int64_t prompt = ReadMessages(f.messages, false, ctx, error);
      if (prompt < 0) return BuildError(shape, 400, error, "messages", reply);
      return OpenAiChat(req, f, model, prompt, ctx, reply);
    }
    case Endpoint::kOpenAiEmbeddings:
      return OpenAiEmbeddings(f, model, ctx, reply);
    case Endpoint::kAnthropicMessages: {
      auto max_tokens = ToInt(f.max_tokens);
      if (!max_tokens || *max_tokens < 1)
        return BuildError(shape, 400, "max_tokens: Field required (a positive integer)", {}, reply);
      std::int64_t prompt = ReadMessages(f.messages, true, ctx, error);
      if (prompt < 0) return BuildError(shape, 400, error, {}, reply);
      if (!f.system.empty()) {
        ctx.text.clear();
        if (!AppendContentText(f.system, ctx.text))
          return BuildError(shape, 400, "'system' must be a string or text blocks", {}, reply);
        prompt += CountWords(ctx.text);
      }
      return AnthropicMessages(req, f, model, prompt, ctx, reply);
    }
    case Endpoint::kGeminiGenerate:
    case Endpoint::kGeminiStream: {
      std::int64_t prompt = ReadGeminiContents(f, ctx, error);
      if (prompt < 0) return BuildError(shape, 400, error, {}, reply);
      return GeminiGenerate(req, route.endpoint == Endpoint::kGeminiStream, model, prompt, ctx,
                            reply);
    }
    case Endpoint::kGeminiEmbed:
      return GeminiEmbed(f, ctx, reply);
    case Endpoint::kGeminiBatchEmbed:
      return GeminiBatchEmbed(f, ctx, reply);
    default:
      return BuildNotFound(route, req, reply);
  }
}

}  // namespace

std::string_view ToString(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::kOpenAiChat:
      return "openai_chat";
    case Endpoint::kOpenAiEmbeddings:
      return "openai_embeddings";
    case Endpoint::kOpenAiModels:
      return "openai_models";
    case Endpoint::kAnthropicMessages:
      return "anthropic_messages";
    case Endpoint::kGeminiGenerate:
      return "gemini_generate";
    case Endpoint::kGeminiStream:
      return "gemini_stream";
    case Endpoint::kGeminiEmbed:
      return "gemini_embed";
    case Endpoint::kGeminiBatchEmbed:
      return "gemini_batch_embed";
    default:
      return "other";
  }
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 529:
      return "Overloaded";
    default:
      return "Unknown";
  }
}

std::uint64_t TimesCounter::Next(std::string_view model) {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(std::string(model));
  if (it == counts_.end()) it = counts_.emplace(std::string(model), 0).first;
  return ++it->second;
}

void TimesCounter::Clear() {
  std::lock_guard lock(mutex_);
  counts_.clear();
}

Route RouteRequest(const HttpRequest& req) {
  Route route;
  const std::string_view path = req.path;
  const bool post = req.method == "POST";
  auto exact = [&](Endpoint e, bool allowed) {
    route.endpoint = e;
    route.method_allowed = allowed;
    return route;
  };
  if (path == "/v1/chat/completions") return exact(Endpoint::kOpenAiChat, post);
  if (path == "/v1/embeddings") return exact(Endpoint::kOpenAiEmbeddings, post);
  if (path == "/v1/models") return exact(Endpoint::kOpenAiModels, req.method == "GET");
  if (path == "/v1/messages") return exact(Endpoint::kAnthropicMessages, post);

  // Gemini: /v1beta/models/{model}:{method}, and Vertex AI's
  // /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}.
  std::string_view rest;
  if (StartsWith(path, "/v1beta/models/")) {
    rest = path.substr(15);
  } else if (StartsWith(path, "/v1/models/")) {
    rest = path.substr(11);
  } else if (StartsWith(path, "/v1/projects/") || StartsWith(path, "/v1beta1/projects/")) {
    std::size_t at = path.find("/publishers/google/models/");
    if (at != std::string_view::npos) rest = path.substr(at + 26);
  }
  std::size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return route;
  std::string_view method = rest.substr(colon + 1);
  route.model = rest.substr(0, colon);
  if (method == "generateContent") return exact(Endpoint::kGeminiGenerate, post);
  if (method == "streamGenerateContent") return exact(Endpoint::kGeminiStream, post);
  if (method == "embedContent") return exact(Endpoint::kGeminiEmbed, post);
  if (method == "batchEmbedContents") return exact(Endpoint::kGeminiBatchEmbed, post);
  route.model = {};
  return route;
}

void BuildSimple(int status, std::string_view content_type, std::string_view body, bool close,
                 Reply& reply) {
  reply.action = Action::kRespond;
  reply.reusable = false;
  reply.stream = false;
  reply.close = close;
  reply.directives = Directives{};
  reply.events.clear();
  reply.body.assign(body);
  reply.status = status;
  AppendHead(reply, status, content_type, body.size(), false);
}

void BuildNotFound(const Route& route, const HttpRequest& req, Reply& reply) {
  reply.action = Action::kRespond;
  reply.reusable = false;
  reply.close = !req.keep_alive;
  reply.directives = Directives{};
  std::string message = "test upstream: no route for ";
  message += req.method;
  message += ' ';
  message += req.path;
  BuildError(ErrorShape::kOpenAi, route.method_allowed ? 404 : 405, message, {}, reply);
}

void BuildReply(const Route& route, const HttpRequest& req, ReplyContext& ctx, Reply& reply) {
  ctx.id.clear();
  BuildReplyBytes(route, req, ctx, reply);
  reply.reusable = reply.action == Action::kRespond && reply.directives.times == 0;
  if (!reply.reusable) return;
  reply.id_offsets.clear();
  if (!ctx.id.empty()) FindOffsets(reply.body, ctx.id, ctx.id.size() - kIdDigits, reply.id_offsets);
  FindOffsets(reply.body, R"("created":)", 10, reply.created_offsets);
}

void RefreshReply(ReplyContext& ctx, Reply& reply) {
  if (!reply.id_offsets.empty()) {
    char digits[kIdDigits];
    WriteIdDigits(digits, ctx);
    for (std::uint32_t at : reply.id_offsets)
      std::memcpy(reply.body.data() + at, digits, kIdDigits);
  }
  if (!reply.created_offsets.empty()) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, std::time(nullptr));
    if (end - digits == 10) {
      for (std::uint32_t at : reply.created_offsets)
        std::memcpy(reply.body.data() + at, digits, 10);
    }
  }
  const int status = reply.directives.status;
  if (status != 0 && status != 200) ctx.injected_errors->fetch_add(1, std::memory_order_relaxed);
}

}  // namespace orchestra::testing::upstream
