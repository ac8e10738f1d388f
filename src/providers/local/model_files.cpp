#include "providers/local/model_files.hpp"

#include <cstdlib>
#include <system_error>
#include <vector>

namespace orchestra::providers::local {

std::optional<std::filesystem::path> FindModelFile(std::string_view name) {
  namespace fs = std::filesystem;
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("ORCHESTRA_MODELS_DIR"); env != nullptr && *env != '\0') {
    dirs.emplace_back(env);
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path() / "models");
    dirs.push_back(exe.parent_path().parent_path() / "share" / "orchestra" / "models");
  }
  dirs.emplace_back("/usr/share/orchestra/models");
  for (const fs::path& dir : dirs) {
    fs::path candidate = dir / name;
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }
  return std::nullopt;
}

}  // namespace orchestra::providers::local
