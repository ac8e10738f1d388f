#pragma once

#include "api/router.hpp"
#include "config/config.hpp"
#include "orchestration/orchestrator.hpp"

// The AI task API (DESIGN.md §4): POST /generate-text, /generate-embeddings, /classify-text,
// /answer-question, /summarize-text and GET /models. Each task is a chat completion (or an
// embedding) made through the orchestrator, so routing, fallbacks, retries and accounting apply
// exactly as for the OpenAI-compatible API. The model is the request's `model`, else the task's
// configured model (`tasks.<task>_model`), else `tasks.default_model`. On the built-in local
// models the tasks run natively (local-extractive answers and summarises from the text; classify
// compares local-embed vectors); on an LLM they are prompted.
namespace orchestra::api {

// `orchestrator` must outlive the router.
void AddTaskRoutes(Router& router, orchestration::Orchestrator& orchestrator,
                   const config::TasksConfig& tasks);

}  // namespace orchestra::api
