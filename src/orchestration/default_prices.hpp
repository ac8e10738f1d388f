#pragma once

#include <optional>
#include <string_view>

#include "config/config.hpp"

// List prices (USD per million tokens) of common OpenAI, Anthropic and Gemini models, used for a
// model whose `models[].price` is not configured (all zero), so that spend and budgets count
// without a price table in every config. A configured price always wins. Dated model names
// ("gpt-4o-mini-2024-07-18", "claude-3-5-haiku-20241022") take the price of the longest known
// name they start with. Prices change: configure `price` where exact spend matters.
namespace orchestra::orchestration {

std::optional<config::PriceConfig> DefaultPrice(std::string_view upstream_model);

}  // namespace orchestra::orchestration
