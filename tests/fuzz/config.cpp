// The configuration loader (config::LoadConfig: the YAML file, ORCHESTRA_* overrides, $PORT,
// validation) on hostile text.
//
// Input: YAML. Comment lines "#env NAME=value" (which YAML ignores) make the environment.
//
// Invariants:
// - a configuration is either loaded or refused with a ConfigError: any other exception, a
//   crash or undefined behaviour is a bug (an uncaught exception aborts, which libFuzzer
//   reports);
// - a loaded configuration dumps (orchestra check-config) to YAML whose secrets (key hashes,
//   provider header values) are redacted;
// - without secrets in it, the dump loads back to the same dump.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "config/loader.hpp"
#include "fuzz/fuzz_support.hpp"
#include <unistd.h>

namespace {

using orchestra::fuzz::Shown;

const std::string& ConfigPath() {
  static const std::string path =
      "/tmp/orchestra-fuzz-config-" + std::to_string(getpid()) + ".yaml";
  return path;
}

std::shared_ptr<const orchestra::config::Config> Load(std::string_view yaml,
                                                      const std::map<std::string, std::string>& env,
                                                      std::string* error) {
  {
    std::ofstream out(ConfigPath(), std::ios::binary | std::ios::trunc);
    out.write(yaml.data(), static_cast<std::streamsize>(yaml.size()));
  }
  orchestra::config::LoadOptions options;
  options.path = ConfigPath();
  options.env = [&env](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  try {
    return orchestra::config::LoadConfig(options);
  } catch (const orchestra::config::ConfigError& e) {
    if (error != nullptr) *error = e.what();
    return nullptr;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml = orchestra::fuzz::AsText(data, size);
  std::map<std::string, std::string> env;
  for (std::size_t at = 0; at < yaml.size();) {
    std::size_t end = yaml.find('\n', at);
    if (end == std::string_view::npos) end = yaml.size();
    const std::string_view line = yaml.substr(at, end - at);
    if (line.rfind("#env ", 0) == 0) {
      const std::size_t eq = line.find('=');
      if (eq != std::string_view::npos) {
        env[std::string(line.substr(5, eq - 5))] = std::string(line.substr(eq + 1));
      }
    }
    at = end + 1;
  }

  const auto config = Load(yaml, env, nullptr);
  if (!config) return 0;
  const std::string dump = orchestra::config::DumpConfig(*config);
  YAML::Node root;
  try {
    root = YAML::Load(dump);
  } catch (const YAML::Exception& e) {
    FUZZ_CHECK(false, std::string("the dump is not YAML: ") + e.what() + "\n" + dump);
  }
  bool secrets = false;
  for (const YAML::Node& key : root["auth"]["keys"]) {
    // A key read from key_env or key_file dumps an empty sha256: nothing to redact.
    if (!key["sha256"] || key["sha256"].as<std::string>().empty()) continue;
    secrets = true;
    FUZZ_CHECK(key["sha256"].as<std::string>() == "<redacted>", "a key hash in the dump");
  }
  for (const YAML::Node& provider : root["providers"]) {
    if (!provider["headers"]) continue;
    for (const auto& header : provider["headers"]) {
      secrets = true;
      FUZZ_CHECK(header.second.as<std::string>() == "<redacted>", "a header value in the dump");
    }
  }
  if (secrets) return 0;
  std::string error;
  const auto again = Load(dump, env, &error);
  FUZZ_CHECK(again != nullptr, "the dump does not load: " + error + "\n" + dump);
  const std::string second = orchestra::config::DumpConfig(*again);
  FUZZ_CHECK(second == dump, "the dump changes when loaded:\n" + dump + "\n----\n" + second +
                                 "\n---- from\n" + Shown(yaml, 2000));
  return 0;
}
