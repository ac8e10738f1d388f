#include "orchestration/default_prices.hpp"

#include <array>

namespace orchestra::orchestration {
namespace {

struct Listed {
  std::string_view name;
  double input_per_mtok;
  double output_per_mtok;
};

// Public list prices, standard tier, as of 2025.
constexpr std::array kPrices{
    // OpenAI
    Listed{"gpt-4o", 2.50, 10.00},
    Listed{"gpt-4o-mini", 0.15, 0.60},
    Listed{"gpt-4.1", 2.00, 8.00},
    Listed{"gpt-4.1-mini", 0.40, 1.60},
    Listed{"gpt-4.1-nano", 0.10, 0.40},
    Listed{"gpt-4-turbo", 10.00, 30.00},
    Listed{"gpt-3.5-turbo", 0.50, 1.50},
    Listed{"o1", 15.00, 60.00},
    Listed{"o1-mini", 1.10, 4.40},
    Listed{"o3", 2.00, 8.00},
    Listed{"o3-mini", 1.10, 4.40},
    Listed{"o4-mini", 1.10, 4.40},
    Listed{"text-embedding-3-small", 0.02, 0},
    Listed{"text-embedding-3-large", 0.13, 0},
    Listed{"text-embedding-ada-002", 0.10, 0},
    // Anthropic
    Listed{"claude-3-haiku", 0.25, 1.25},
    Listed{"claude-3-5-haiku", 0.80, 4.00},
    Listed{"claude-3-5-sonnet", 3.00, 15.00},
    Listed{"claude-3-7-sonnet", 3.00, 15.00},
    Listed{"claude-sonnet-4", 3.00, 15.00},
    Listed{"claude-3-opus", 15.00, 75.00},
    Listed{"claude-opus-4", 15.00, 75.00},
    // Gemini
    Listed{"gemini-1.5-flash", 0.075, 0.30},
    Listed{"gemini-1.5-pro", 1.25, 5.00},
    Listed{"gemini-2.0-flash", 0.10, 0.40},
    Listed{"gemini-2.0-flash-lite", 0.075, 0.30},
    Listed{"gemini-2.5-flash", 0.30, 2.50},
    Listed{"gemini-2.5-pro", 1.25, 10.00},
    Listed{"text-embedding-004", 0, 0},
};

}  // namespace

std::optional<config::PriceConfig> DefaultPrice(std::string_view upstream_model) {
  // "models/gemini-2.0-flash" (Gemini's resource form) and "publishers/.../models/..." alike.
  if (auto slash = upstream_model.rfind('/'); slash != std::string_view::npos)
    upstream_model.remove_prefix(slash + 1);
  const Listed* best = nullptr;
  for (const Listed& p : kPrices) {
    if (!upstream_model.starts_with(p.name)) continue;
    // A dated or suffixed variant ("-2024-08-06", "-latest", "@20240620"), not another model
    // ("gpt-4o" must not price "gpt-4o-mini": the longer name wins).
    if (best == nullptr || p.name.size() > best->name.size()) best = &p;
  }
  if (best == nullptr) return std::nullopt;
  return config::PriceConfig{best->input_per_mtok, best->output_per_mtok};
}

}  // namespace orchestra::orchestration
