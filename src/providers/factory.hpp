#pragma once

#include <memory>

#include "config/config.hpp"
#include "config/loader.hpp"
#include "net/client.hpp"
#include "providers/provider.hpp"

namespace orchestra::providers {

// The provider a config entry describes. Throws std::runtime_error (naming the provider) when
// its key or URL is unusable. `upstreams` must outlive the provider.
std::unique_ptr<Provider> MakeProvider(const config::ProviderConfig& config,
                                       net::Upstreams& upstreams, const config::EnvLookup& env);

}  // namespace orchestra::providers
