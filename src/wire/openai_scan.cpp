#include "wire/openai_scan.hpp"

#include <cstring>

#include "common/json_scan.hpp"
#include "wire/codec_util.hpp"

namespace orchestra::wire::openai {

Result<void> ScanRoutedMembers(std::string_view body, std::span<const std::string_view> names,
                               std::span<JsonSpan> spans) {
  JsonScanError error;
  std::string scratch;
  std::string_view duplicate;
  auto kind = ScanJson(
      body,
      [&](std::string_view raw_key, const JsonSpan& v) {
        const std::string_view key = JsonMemberName(raw_key, scratch);
        for (std::size_t i = 0; i < names.size(); ++i) {
          if (key != names[i]) continue;
          if (spans[i].present) duplicate = names[i];
          spans[i] = v;
          return;
        }
      },
      &error);
  if (!kind) {
    return Error(ErrorCode::kInvalidRequest,
                 "request body is not valid JSON: " + std::string(error.what) + " at byte " +
                     std::to_string(error.offset));
  }
  if (*kind != JsonKind::kObject) {
    return Error(ErrorCode::kInvalidRequest, "request body must be a JSON object");
  }
  if (!duplicate.empty()) {
    return Error(ErrorCode::kInvalidRequest,
                 "'" + std::string(duplicate) + "' is given more than once",
                 std::string(duplicate));
  }
  return {};
}

Result<std::string> RoutedModel(std::string_view body, const JsonSpan& model) {
  if (!model.present) return Error(ErrorCode::kInvalidRequest, "'model' is required", "model");
  if (model.kind != JsonKind::kString) {
    return Error(ErrorCode::kInvalidRequest, "'model' must be a string", "model");
  }
  auto name = DecodeJsonString(model.In(body));
  if (!name || name->empty()) {
    return Error(ErrorCode::kInvalidRequest, "'model' must be a non-empty string", "model");
  }
  return std::move(*name);
}

Result<ChatRequest> ScanChatRequest(std::string body) {
  ChatRequest req;
  constexpr std::array<std::string_view, 5> kNames{"model", "stream", "stream_options", "messages",
                                                   "documents"};
  std::array<JsonSpan, 5> spans{};
  if (auto scanned = ScanRoutedMembers(body, kNames, spans); !scanned) return scanned.error();
  const JsonSpan& model = spans[0];
  const JsonSpan& stream = spans[1];
  const JsonSpan& stream_options = spans[2];
  const JsonSpan& messages = spans[3];
  auto name = RoutedModel(body, model);
  if (!name) return name.error();
  if (!messages.present) {
    return Error(ErrorCode::kInvalidRequest, "'messages' is required", "messages");
  }
  if (messages.kind != JsonKind::kArray) {
    return Error(ErrorCode::kInvalidRequest, "'messages' must be an array", "messages");
  }
  {
    std::string_view m = messages.In(body);
    m.remove_prefix(1);
    while (!m.empty() &&
           (m.front() == ' ' || m.front() == '\n' || m.front() == '\r' || m.front() == '\t')) {
      m.remove_prefix(1);
    }
    if (!m.empty() && m.front() == ']') {
      return Error(ErrorCode::kInvalidRequest, "'messages' must not be empty", "messages");
    }
  }
  if (stream.present) {
    if (stream.kind == JsonKind::kBool) {
      req.stream = stream.In(body) == "true";
    } else if (stream.kind != JsonKind::kNull) {
      return Error(ErrorCode::kInvalidRequest, "'stream' must be a boolean", "stream");
    }
  }
  if (stream_options.present) {
    if (stream_options.kind == JsonKind::kObject) {
      std::string_view text = stream_options.In(body);
      std::string scratch;
      ScanJson(text, [&](std::string_view raw_key, const JsonSpan& v) {
        if (JsonMemberName(raw_key, scratch) == "include_usage") {
          req.client_wants_usage = v.In(text) == "true";
        }
      });
    } else if (stream_options.kind != JsonKind::kNull) {
      return Error(ErrorCode::kInvalidRequest, "'stream_options' must be an object",
                   "stream_options");
    }
    req.stream_options_begin = stream_options.begin;
    req.stream_options_end = stream_options.end;
  }
  if (spans[4].present) {
    req.documents_begin = spans[4].begin;
    req.documents_end = spans[4].end;
  }
  req.model = std::move(*name);
  req.model_begin = model.begin;
  req.model_end = model.end;
  req.raw_body = std::move(body);
  return req;
}

Result<ChatRequest> WithoutDocuments(const ChatRequest& request, std::string_view system_message) {
  const std::string& body = request.raw_body;
  constexpr std::size_t kNone = std::string::npos;
  std::size_t name_begin = kNone;
  std::size_t value_end = 0;
  std::size_t messages_open = kNone;
  std::string scratch;
  // The body was scanned before (ScanChatRequest): valid, each routed member once.
  ScanJson(body, [&](std::string_view raw_key, const JsonSpan& v) {
    const std::string_view key = JsonMemberName(raw_key, scratch);
    if (key == "documents") {
      // raw_key views the body: the member starts at its name's opening quote.
      name_begin = static_cast<std::size_t>(raw_key.data() - body.data()) - 1;
      value_end = v.end;
    } else if (key == "messages" && v.kind == JsonKind::kArray) {
      messages_open = v.begin;
    }
  });
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  // The member and one comma next to it: the one after it, else (the last member) the one
  // before it; none when it is the only member.
  std::size_t cut_begin = name_begin;
  std::size_t cut_end = value_end;
  if (name_begin != kNone) {
    std::size_t after = value_end;
    while (after < body.size() && is_space(body[after]))
      ++after;
    if (after < body.size() && body[after] == ',') {
      cut_end = after + 1;
    } else {
      std::size_t before = name_begin;
      while (before > 0 && is_space(body[before - 1]))
        --before;
      if (before > 0 && body[before - 1] == ',') cut_begin = before - 1;
    }
  }
  std::string inserted;
  if (!system_message.empty() && messages_open != kNone) {
    inserted = R"({"role":"system","content":)";
    AppendJsonString(inserted, system_message);
    inserted += "},";
  }
  std::string out;
  out.reserve(body.size() + inserted.size());
  auto insert_at = inserted.empty() ? kNone : messages_open + 1;
  std::size_t at = 0;
  auto copy_to = [&](std::size_t end) {
    if (insert_at != kNone && insert_at <= end) {
      out.append(body, at, insert_at - at);
      out += inserted;
      at = insert_at;
      insert_at = kNone;
    }
    out.append(body, at, end - at);
    at = end;
  };
  if (name_begin != kNone) {
    copy_to(cut_begin);
    at = cut_end;
  }
  copy_to(body.size());
  return ScanChatRequest(std::move(out));
}

namespace {

// Where the `usage` member's value starts in an OpenAI-format body, found without validating
// the rest: the body is forwarded as the upstream sent it, so only this one value needs
// reading. Unescaped, the bytes "usage" followed by ':' can only be a member name; OpenAI puts
// the top-level one last, so the search runs backwards.
std::optional<std::size_t> FindUsageValue(std::string_view json) {
  constexpr std::string_view kKey = "\"usage\"";
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  // Hop from quote to quote (memrchr is vectorised) instead of comparing at every offset.
  std::size_t end = json.size();
  while (end >= kKey.size()) {
    const void* quote = memrchr(json.data() + kKey.size() - 1, '"', end - (kKey.size() - 1));
    if (quote == nullptr) break;
    const auto close = static_cast<std::size_t>(static_cast<const char*>(quote) - json.data());
    end = close;
    const std::size_t at = close + 1 - kKey.size();
    if (json.compare(at, kKey.size(), kKey) != 0) continue;
    // An escaped opening quote (`\"usage"`) is inside a longer string, not this key.
    std::size_t backslashes = 0;
    while (backslashes < at && json[at - 1 - backslashes] == '\\')
      ++backslashes;
    if (backslashes % 2 == 1) continue;
    std::size_t i = close + 1;
    while (i < json.size() && is_space(json[i]))
      ++i;
    if (i >= json.size() || json[i] != ':') continue;
    ++i;
    while (i < json.size() && is_space(json[i]))
      ++i;
    return i;
  }
  return std::nullopt;
}

}  // namespace

Usage ScanUsage(std::string_view json) {
  Usage usage;
  auto at = FindUsageValue(json);
  if (!at || *at >= json.size() || json[*at] != '{') return usage;  // absent, or null
  // One pass validates the object and reads its members; text after it is not looked at.
  const std::string_view text = json.substr(*at);
  std::size_t end = 0;
  Usage seen;
  auto kind = ScanJson(
      text,
      [&](std::string_view key, const JsonSpan& v) {
        if (v.kind != JsonKind::kNumber) return;
        auto n = JsonInteger(v.In(text));
        // A count is never negative; a huge one would overflow the sums (tests/fuzz).
        if (!n || *n < 0 || *n > 1'000'000'000'000) return;
        if (key == "prompt_tokens") {
          seen.prompt_tokens = *n;
          seen.known = true;
        } else if (key == "completion_tokens") {
          seen.completion_tokens = *n;
          seen.known = true;
        } else if (key == "total_tokens") {
          seen.total_tokens = *n;
        }
      },
      nullptr, &end);
  if (kind != JsonKind::kObject) return usage;
  usage = seen;
  if (usage.known && usage.total_tokens == 0) {
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  }
  return usage;
}

ChunkFacts ScanChunk(std::string_view data) {
  ChunkFacts facts;
  JsonSpan usage;
  JsonSpan choices;
  bool error = false;
  auto kind = ScanJson(data, [&](std::string_view key, const JsonSpan& v) {
    if (key == "usage" && v.kind == JsonKind::kObject) usage = v;
    if (key == "choices") choices = v;
    if (key == "error" && v.kind == JsonKind::kObject) error = true;
  });
  facts.valid = kind == JsonKind::kObject;
  if (!facts.valid) return facts;
  facts.is_error = error;
  if (usage.present) facts.usage = ScanUsage(data);
  if (choices.present && choices.kind == JsonKind::kArray) {
    std::string_view c = choices.In(data);
    c.remove_prefix(1);
    while (!c.empty() &&
           (c.front() == ' ' || c.front() == '\n' || c.front() == '\r' || c.front() == '\t')) {
      c.remove_prefix(1);
    }
    facts.usage_only = !c.empty() && c.front() == ']' && usage.present;
  }
  return facts;
}

bool ChunkFinishesAChoice(std::string_view data) {
  // "finish_reason" is a member name wherever it is followed by ':' (an escaped quote would put
  // it inside a longer string); the chunks come from a provider, not a client.
  constexpr std::string_view kKey = "\"finish_reason\"";
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  for (std::size_t at = data.find(kKey); at != std::string_view::npos;
       at = data.find(kKey, at + 1)) {
    if (at > 0 && data[at - 1] == '\\') continue;
    std::size_t i = at + kKey.size();
    while (i < data.size() && is_space(data[i]))
      ++i;
    if (i >= data.size() || data[i] != ':') continue;
    ++i;
    while (i < data.size() && is_space(data[i]))
      ++i;
    if (i < data.size() && data[i] == '"') return true;
  }
  return false;
}

void ChunkIdentity(std::string_view data, std::string& id, std::int64_t& created,
                   std::string& model) {
  ScanJson(data, [&](std::string_view key, const JsonSpan& v) {
    if (key == "id" && v.kind == JsonKind::kString) {
      if (auto s = DecodeJsonString(v.In(data))) id = std::move(*s);
    } else if (key == "model" && v.kind == JsonKind::kString) {
      if (auto s = DecodeJsonString(v.In(data))) model = std::move(*s);
    } else if (key == "created" && v.kind == JsonKind::kNumber) {
      if (auto n = JsonInteger(v.In(data))) created = *n;
    }
  });
}

}  // namespace orchestra::wire::openai
