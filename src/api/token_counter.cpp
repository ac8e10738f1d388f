#include "api/token_counter.hpp"

#include <string>
#include <vector>

#include <boost/json.hpp>

#include "api/context.hpp"
#include "api/json_body.hpp"
#include "config/config.hpp"
#include "orchestration/target.hpp"
#include "tokens/chat.hpp"
#include "tokens/encoding.hpp"
#include "wire/openai_codec.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

Error Invalid(std::string message, std::string param) {
  return Error(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
}

Error TooLarge(std::string_view param) {
  return Error(ErrorCode::kPayloadTooLarge,
               "the text to count is over " + std::to_string(kMaxCountedBytes) + " bytes",
               std::string(param));
}

struct Choice {
  std::string_view encoding;
  bool exact = true;
};

// The encoding `body` asks for, directly or through a model's route.
Result<Choice> ChooseEncoding(const JsonBody& body, orchestration::RouteTable& routes) {
  auto model = body.OptionalString("model");
  if (!model) return model.error();
  auto encoding = body.OptionalString("encoding");
  if (!encoding) return encoding.error();
  if (*model && *encoding) return Invalid("give 'model' or 'encoding', not both", "encoding");
  if (*encoding) {
    for (std::string_view name : tokens::EncodingNames()) {
      if (name == **encoding) return Choice{name, true};
    }
    std::string known;
    for (std::string_view name : tokens::EncodingNames())
      known += (known.empty() ? "" : ", ") + std::string(name);
    return Invalid(
        "unknown encoding '" + std::string(ShownName(**encoding)) + "' (known: " + known + ")",
        "encoding");
  }
  if (!*model) return Invalid("give 'model' or 'encoding'", "model");
  auto route = routes.Resolve(**model);
  if (!route) return route.error();
  const auto& targets = (*route)->plan().targets;
  if (targets.empty()) return Error(ErrorCode::kInternal, "the model's route has no target");
  const orchestration::Target& target = *targets.front().target;
  const auto which =
      tokens::EncodingForModel(config::ToString(target.provider().type()), target.upstream_model());
  return Choice{which.encoding, which.exact};
}

asio::awaitable<void> CountTokens(orchestration::RouteTable& routes, RequestContext& ctx) {
  auto body = JsonBody::Parse(ctx.request.body(),
                              {"model", "encoding", "prompt", "messages", "return_tokens"});
  if (!body) {
    ctx.Fail(body.error());
    co_return;
  }
  auto choice = ChooseEncoding(*body, routes);
  if (!choice) {
    ctx.Fail(choice.error());
    co_return;
  }
  auto prompt = body->OptionalString("prompt");
  if (!prompt) {
    ctx.Fail(prompt.error());
    co_return;
  }
  const std::optional<std::string_view> messages_json = body->Raw("messages");
  const std::optional<std::string_view> return_json = body->Raw("return_tokens");
  bool return_tokens = false;
  if (return_json && *return_json != "null") {
    if (*return_json != "true" && *return_json != "false") {
      ctx.Fail(Invalid("return_tokens must be true or false", "return_tokens"));
      co_return;
    }
    return_tokens = *return_json == "true";
  }
  const bool has_messages = messages_json && *messages_json != "null";
  if (*prompt && has_messages) {
    ctx.Fail(Invalid("give 'prompt' or 'messages', not both", "messages"));
    co_return;
  }
  if (!*prompt && !has_messages) {
    ctx.Fail(Invalid("give 'prompt' (text) or 'messages' (chat messages)", "prompt"));
    co_return;
  }
  if (has_messages && return_tokens) {
    ctx.Fail(
        Invalid("return_tokens applies to 'prompt' only: the overhead tokens of chat "
                "messages are not text",
                "return_tokens"));
    co_return;
  }

  // Checked only now: a request that is wrong in any other way gets that answer, not a 503.
  auto encoding = tokens::Get(choice->encoding);
  if (!encoding) {
    ctx.Fail(encoding.error());
    co_return;
  }
  json::object out;
  if (*prompt) {
    if ((*prompt)->size() > kMaxCountedBytes) {
      ctx.Fail(TooLarge("prompt"));
      co_return;
    }
    if (return_tokens) {
      const std::vector<std::uint32_t> ids = (*encoding)->Encode(**prompt);
      out["total_tokens"] = ids.size();
      json::array tokens;
      tokens.reserve(ids.size());
      for (std::uint32_t id : ids)
        tokens.emplace_back(id);
      out["tokens"] = std::move(tokens);
    } else {
      out["total_tokens"] = (*encoding)->Count(**prompt);
    }
  } else {
    // The messages as a chat request would have them, with the same checks and the same names
    // in errors ("messages[1].role").
    wire::ChatRequest chat;
    chat.raw_body.reserve(messages_json->size() + 14);
    chat.raw_body.append("{\"messages\":").append(*messages_json).append("}");
    if (auto parsed = wire::openai::ParseChatMessages(chat); !parsed) {
      ctx.Fail(parsed.error());
      co_return;
    }
    std::size_t bytes = 0;
    std::vector<tokens::ChatMessage> text;
    text.reserve(chat.messages.size());
    for (const wire::Message& m : chat.messages) {
      bytes += m.role.size() + m.content.size() + m.name.size();
      text.push_back({m.role, m.content, m.name});
    }
    if (bytes > kMaxCountedBytes) {
      ctx.Fail(TooLarge("messages"));
      co_return;
    }
    out["total_tokens"] = tokens::CountChatMessages(**encoding, text);
  }
  out["encoding"] = choice->encoding;
  out["exact"] = choice->exact;
  ctx.Json(json::serialize(out));
}

}  // namespace

void AddTokenCounterRoute(Router& router, orchestration::RouteTable& routes) {
  router.Add(http::verb::post, "/utils/token_counter",
             [&routes](RequestContext& ctx) { return CountTokens(routes, ctx); });
}

}  // namespace orchestra::api
