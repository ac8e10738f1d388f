#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "providers/local/word_vectors.hpp"

// Shared by the local models' tests.
namespace orchestra::providers::local::testing {

// The quality tests run on the real word vectors; without them they fail (not skip): the
// quality they check is what a user gets after scripts/setup.sh.
#define ORCHESTRA_REQUIRE_WORD_VECTORS()                                         \
  ASSERT_TRUE(::orchestra::providers::local::WordVectors::Default().Available()) \
      << ::orchestra::providers::local::WordVectors::Default().Status()          \
      << " -- run scripts/setup.sh (it installs models/word_vectors.bin)"

// Writes a word-vector file in the layout word_vectors.hpp documents, from (word, vector) pairs
// in frequency order, with `common` as the common component.
void WriteVectorsFile(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, std::vector<float>>>& words,
                      const std::vector<float>& common);

// A fresh directory under the test's temporary directory, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace orchestra::providers::local::testing
