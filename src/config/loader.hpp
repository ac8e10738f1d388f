#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace orchestra::config {

// A configuration that cannot be used. The message names the key's path, the file position
// when known, and the closest valid key for a typo:
//   orchestra.yaml:3:3: server.listn: unknown key (did you mean 'listen'?)
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Looks up an environment variable; injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;
EnvLookup ProcessEnv();

struct LoadOptions {
  // Empty: $ORCHESTRA_CONFIG, else ./orchestra.yaml when it exists, else built-in defaults.
  std::string path;
  // Command-line flags, the highest precedence.
  std::optional<std::string> listen;
  std::optional<std::string> log_format;
  std::optional<std::string> log_level;
  EnvLookup env = ProcessEnv();
};

// Precedence, lowest to highest: built-in defaults, the YAML file, ORCHESTRA_<PATH> environment
// variables (ORCHESTRA_SERVER_MAX_INFLIGHT overrides server.max_inflight; any scalar key
// outside lists), command-line flags; finally $PORT replaces the listen port.
// Throws ConfigError.
std::shared_ptr<const Config> LoadConfig(const LoadOptions& options);

// Parses and validates YAML text; `source` names it in messages. Throws ConfigError.
Config ParseConfig(std::string_view yaml, std::string_view source, const EnvLookup& env);

// ORCHESTRA_* variables in `environment` (NAME=value strings) that configure nothing: neither
// a key's override, ORCHESTRA_CONFIG, nor a secret a key_env/api_key_env names. Each comes with
// the closest real name when one is close.
std::vector<std::string> UnusedOrchestraVariables(const Config& config,
                                                  const std::vector<std::string>& environment);

// The effective configuration as YAML, secrets redacted (`orchestra check-config`).
std::string DumpConfig(const Config& config);

// Every configuration key as a dotted path, list items as "[]" (`models[].retry.attempts`), in
// the order the schema declares them (`orchestra check-config --keys`; docs/CONFIG.md must
// document each, tests/docs/check_config_docs.sh checks it).
std::vector<std::string> ConfigKeys();

}  // namespace orchestra::config
