#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/router.hpp"
#include "documents/service.hpp"
#include "orchestration/orchestrator.hpp"

// The OpenAI-compatible API (docs/API.md): POST /v1/chat/completions (JSON or, with
// `stream: true`, server-sent events ending in `data: [DONE]`), POST /v1/embeddings,
// GET /v1/models, GET /v1/models/{model}. Requests and responses keep OpenAI's shapes, so its
// SDKs work unchanged; the response headers x-orchestra-provider, x-orchestra-model and
// x-orchestra-overhead-us say who answered and how long Orchestra itself took. Model objects
// carry two fields of Orchestra's: `usable`, and `reason` when a model cannot be served (its
// providers have no key).
namespace orchestra::api {

// A model as /v1/models lists it.
struct ModelStatus {
  std::string id;
  std::string owned_by;  // "orchestra" (configured) or "local"
  // Why the model's own targets cannot serve (their providers' keys are missing), and the
  // fallback its requests go to instead if one can; empty when it is usable. Never a secret.
  std::string unusable;
};

// The configured public models in configuration order, then `local_models`. Also what
// check-config and start-up warn about.
std::vector<ModelStatus> ListModels(const orchestration::RouteTable& routes,
                                    const std::vector<std::string_view>& local_models);

// `orchestrator` must outlive the router. `local_models` are listed by /v1/models besides the
// configured ones. With `documents` (which must outlive the router too), a chat completion may
// carry Orchestra's `documents` option (retrieval from the caller's documents, answered with
// `citations`); without it such a request is 501. The option is never forwarded upstream.
void AddOpenAIRoutes(Router& router, orchestration::Orchestrator& orchestrator,
                     const std::vector<std::string_view>& local_models,
                     documents::Service* documents = nullptr);

}  // namespace orchestra::api
