#include "common/model_files.hpp"

#include <cstdlib>
#include <string>
#include <system_error>

namespace orchestra {

std::vector<std::filesystem::path> ModelSearchDirs() {
  std::vector<std::filesystem::path> dirs;
  if (const char* env = std::getenv("ORCHESTRA_MODELS_DIR"); env != nullptr && *env != '\0') {
    dirs.emplace_back(env);
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const std::filesystem::path bin = exe.parent_path();
    dirs.push_back(bin / "models");
    dirs.push_back((bin / ".." / "share" / "orchestra" / "models").lexically_normal());
  }
  dirs.emplace_back("/usr/share/orchestra/models");
  return dirs;
}

Result<std::filesystem::path> FindModelFile(std::string_view file_name,
                                            std::span<const std::filesystem::path> dirs) {
  for (const std::filesystem::path& dir : dirs) {
    std::filesystem::path candidate = dir / file_name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
  }
  std::string message = "data file " + std::string(file_name) + " not found; searched ";
  for (std::size_t i = 0; i < dirs.size(); ++i) {
    if (i > 0) message += ", ";
    message += dirs[i].string();
  }
  if (dirs.empty()) message += "no directory";
  message +=
      ". Run scripts/setup.sh in the source tree to download and check it into models/, or set "
      "ORCHESTRA_MODELS_DIR to a directory that holds it";
  return Error(ErrorCode::kUnavailable, std::move(message));
}

Result<std::filesystem::path> FindModelFile(std::string_view file_name) {
  const std::vector<std::filesystem::path> dirs = ModelSearchDirs();
  return FindModelFile(file_name, dirs);
}

}  // namespace orchestra
