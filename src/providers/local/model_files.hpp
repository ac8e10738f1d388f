#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

namespace orchestra::providers::local {

// Where a model file installed by scripts/setup.sh (scripts/models/) is found at run time, the
// first that holds `name`:
//   1. $ORCHESTRA_MODELS_DIR
//   2. <directory of the executable>/models            (the build tree: CMake links it there)
//   3. <directory of the executable>/../share/orchestra/models   (an installed prefix)
//   4. /usr/share/orchestra/models
// Only stat()s, no read: cheap enough to call at start-up.
std::optional<std::filesystem::path> FindModelFile(std::string_view name);

}  // namespace orchestra::providers::local
