#pragma once

#include "api/router.hpp"
#include "orchestration/route_table.hpp"

// POST /utils/token_counter (user scope): counts tokens before a request is sent, with the
// exact tokenizers of src/tokens/, as LiteLLM's endpoint of the same name does.
//
//   {model? | encoding?, prompt? | messages?, return_tokens?}
//     → {total_tokens, encoding, exact, model?, tokens?}
//
// Exactly one of `model` (the encoding its route's first target uses:
// tokens::EncodingForModel of that target's provider type and upstream model; `exact` says
// whether that is the model's own tokenizer or a stand-in) and `encoding` (cl100k_base or
// o200k_base; `exact` true). Exactly one of `prompt` (ordinary text: special-token text counts
// as ordinary text) and `messages` (chat messages, counted as OpenAI bills them:
// tokens/chat.hpp, the per-message overhead and the reply priming included; text parts only,
// no images or tools). `return_tokens: true` adds the ids of a prompt (not of messages: their
// overhead tokens are not text). The text counted is at most kMaxCountedBytes (413 beyond).
// Bad input is a 400 naming the field; an unknown model a 404; a missing rank file a 503.
namespace orchestra::api {

inline constexpr std::size_t kMaxCountedBytes = 1 << 20;

// `routes` must outlive the router.
void AddTokenCounterRoute(Router& router, orchestration::RouteTable& routes);

}  // namespace orchestra::api
