#pragma once

#include <string_view>
#include <vector>

#include "api/router.hpp"
#include "documents/service.hpp"
#include "orchestration/orchestrator.hpp"
#include "tasks/service.hpp"

// The AI task API (DESIGN.md §4) over tasks::Service: POST /generate-text, /generate-embeddings,
// /classify-text, /answer-question, /summarize-text and GET /models. Each handler decodes the
// body (AI Orchestra's field names and Orchestra's own, both accepted), admits the request with
// the model it names, calls the service once and encodes the result with both sets of names
// where they differ (`model_id` and `model`, `classifications` and `scores`).
namespace orchestra::api {

// `service` and `orchestrator` must outlive the router; `local_models` are the built-in ones.
// With `documents` (which must outlive the router too), /answer-question also takes
// {use_documents: true, document_id?, limit?, score_threshold?, mode?}: the question is searched
// among the caller's documents (documents::Service::Search) and answered from the chunks found,
// whose ids come back as `citations` and whose texts and documents as `sources`.
void AddTaskRoutes(Router& router, tasks::Service& service,
                   orchestration::Orchestrator& orchestrator,
                   const std::vector<std::string_view>& local_models,
                   documents::Service* documents = nullptr);

}  // namespace orchestra::api
