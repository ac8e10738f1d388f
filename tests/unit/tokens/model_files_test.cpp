#include "common/model_files.hpp"

#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "services/child.hpp"
#include "tokens/encoding.hpp"

namespace orchestra::tokens {
namespace {

using orchestra::testing::services::ScratchDir;

TEST(ModelFiles, FindsTheFirstDirectoryThatHoldsTheFile) {
  const ScratchDir a("models-a");
  const ScratchDir b("models-b");
  const ScratchDir c("models-c");
  std::ofstream(b.path() + "/x.bin") << "b";
  std::ofstream(c.path() + "/x.bin") << "c";
  const std::vector<std::filesystem::path> dirs = {a.path(), b.path(), c.path()};
  auto found = FindModelFile("x.bin", dirs);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(*found, std::filesystem::path(b.path()) / "x.bin");
}

TEST(ModelFiles, MissingFileErrorNamesTheFileEveryDirectoryAndTheFix) {
  const ScratchDir a("models-a");
  const ScratchDir b("models-b");
  const std::vector<std::filesystem::path> dirs = {a.path(), b.path()};
  auto found = FindModelFile("o200k_base.tiktoken", dirs);
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code, ErrorCode::kUnavailable);
  const std::string& message = found.error().message;
  EXPECT_NE(message.find("o200k_base.tiktoken"), std::string::npos) << message;
  EXPECT_NE(message.find(a.path()), std::string::npos) << message;
  EXPECT_NE(message.find(b.path()), std::string::npos) << message;
  EXPECT_NE(message.find("scripts/setup.sh"), std::string::npos) << message;
  EXPECT_NE(message.find("ORCHESTRA_MODELS_DIR"), std::string::npos) << message;

  // The same error through the tokenizer.
  auto encoding = Encoding::Load("o200k_base", dirs);
  ASSERT_FALSE(encoding);
  EXPECT_EQ(encoding.error().message, message);
}

TEST(ModelFiles, SearchesTheEnvironmentThenBesideTheExecutableThenTheSystem) {
  const char* saved = std::getenv("ORCHESTRA_MODELS_DIR");
  const std::string saved_value = saved != nullptr ? saved : "";
  ::setenv("ORCHESTRA_MODELS_DIR", "/opt/somewhere", 1);
  const std::vector<std::filesystem::path> dirs = ModelSearchDirs();
  const std::filesystem::path bin = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  ASSERT_EQ(dirs.size(), 4u);
  EXPECT_EQ(dirs[0], "/opt/somewhere");
  EXPECT_EQ(dirs[1], bin / "models");
  EXPECT_EQ(dirs[2], (bin.parent_path() / "share" / "orchestra" / "models").lexically_normal());
  EXPECT_EQ(dirs[3], "/usr/share/orchestra/models");
  ::unsetenv("ORCHESTRA_MODELS_DIR");
  EXPECT_EQ(ModelSearchDirs().size(), 3u);
  if (saved != nullptr) ::setenv("ORCHESTRA_MODELS_DIR", saved_value.c_str(), 1);
}

TEST(ModelFiles, UnknownEncodingIsAnInvalidRequest) {
  auto encoding = Get("p50k_base");
  ASSERT_FALSE(encoding);
  EXPECT_EQ(encoding.error().code, ErrorCode::kInvalidRequest);
  EXPECT_NE(encoding.error().message.find("cl100k_base"), std::string::npos);
  auto loaded = Encoding::Load("gpt2", {});
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kInvalidRequest);
}

TEST(ModelFiles, RejectsAFileThatIsNotTheEncodings) {
  const ScratchDir dir("models-bad");
  std::ofstream(dir.path() + "/cl100k_base.tiktoken") << "IQ== 0\nIg== 1\n";
  const std::vector<std::filesystem::path> dirs = {dir.path()};
  auto encoding = Encoding::Load("cl100k_base", dirs);
  ASSERT_FALSE(encoding);
  EXPECT_EQ(encoding.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(encoding.error().message.find("2 tokens where 100256 were expected"), std::string::npos)
      << encoding.error().message;
}

}  // namespace
}  // namespace orchestra::tokens
