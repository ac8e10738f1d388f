#pragma once

#include "api/router.hpp"
#include "orchestration/orchestrator.hpp"

// The OpenAI-compatible API (docs/API.md): POST /v1/chat/completions (JSON or, with
// `stream: true`, server-sent events ending in `data: [DONE]`), POST /v1/embeddings,
// GET /v1/models. Requests and responses keep OpenAI's shapes, so its SDKs work unchanged; the
// response headers x-orchestra-provider, x-orchestra-model and x-orchestra-overhead-us say who
// answered and how long Orchestra itself took.
namespace orchestra::api {

// `orchestrator` must outlive the router. `local_models` are listed by /v1/models besides the
// configured ones.
void AddOpenAIRoutes(Router& router, orchestration::Orchestrator& orchestrator,
                     const std::vector<std::string_view>& local_models);

}  // namespace orchestra::api
