#pragma once

#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "common/error.hpp"

// Where the data files that scripts/setup.sh installs (tokenizer ranks, word vectors) are found
// at run time, for every data file (the tokenizer ranks, the local provider's word vectors).
namespace orchestra {

// The directories searched, in order:
//   1. $ORCHESTRA_MODELS_DIR, when set and not empty;
//   2. <directory of the executable>/models (a build tree: CMake links build/<type>/models to
//      the repository's models/);
//   3. <directory of the executable>/../share/orchestra/models (an installed prefix);
//   4. /usr/share/orchestra/models (the container image).
std::vector<std::filesystem::path> ModelSearchDirs();

// The first `dirs`/`file_name` that exists. When none does: kUnavailable, with a message that
// names the file, every directory searched, and how to install the file (scripts/setup.sh).
Result<std::filesystem::path> FindModelFile(std::string_view file_name,
                                            std::span<const std::filesystem::path> dirs);
// The same over ModelSearchDirs(). Only stat()s: cheap enough at start-up.
Result<std::filesystem::path> FindModelFile(std::string_view file_name);

}  // namespace orchestra
