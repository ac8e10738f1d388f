#include "providers/local/word_vectors.hpp"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/model_files.hpp"
#include "unit/providers/local/support.hpp"

namespace orchestra::providers::local {
namespace {

using testing::TempDir;
using testing::WriteVectorsFile;

std::vector<std::pair<std::string, std::vector<float>>> SmallVocabulary() {
  return {{"the", {0.1f, 0.2f, 0.3f, 0.4f}},
          {"cat", {1.0f, 0.0f, 0.5f, -0.5f}},
          {"dog", {0.9f, 0.1f, 0.4f, -0.6f}},
          {"café", {-1.0f, 2.0f, 0.0f, 0.25f}}};
}

TEST(WordVectors, ReadsTheFileLayoutLazily) {
  TempDir dir;
  const auto path = dir.path() / "v.bin";
  WriteVectorsFile(path, SmallVocabulary(), {0.5f, 0.5f, 0.5f, 0.5f});
  WordVectors v(path, *FileSha256(path));
  EXPECT_EQ(v.state(), WordVectors::State::kNotLoaded);
  ASSERT_TRUE(v.Available()) << v.Status();
  EXPECT_EQ(v.state(), WordVectors::State::kLoaded);
  EXPECT_EQ(v.dims(), 4u);
  EXPECT_EQ(v.size(), 4u);
  EXPECT_EQ(v.common()[2], 0.5f);
  auto cafe = v.Find("café");
  ASSERT_TRUE(cafe);
  EXPECT_EQ(v.Word(*cafe), "café");
  EXPECT_EQ(v.Rank(*cafe), 3u);
  std::vector<float> out(4);
  v.Vector(*cafe, out);
  EXPECT_NEAR(out[0], -1.0f, 0.02f);
  EXPECT_NEAR(out[1], 2.0f, 0.02f);
  EXPECT_NEAR(out[3], 0.25f, 0.02f);
  std::vector<float> sum(4, 0.0f);
  v.AddTo(*v.Find("cat"), 2.0f, sum);
  EXPECT_NEAR(sum[0], 2.0f, 0.02f);
  EXPECT_FALSE(v.Find("bird"));
  EXPECT_FALSE(v.Find(""));
  EXPECT_NE(v.Status().find("4 word vectors"), std::string::npos) << v.Status();
}

TEST(WordVectors, AWrongChecksumLeavesLexicalFeaturesOnly) {
  TempDir dir;
  const auto path = dir.path() / "v.bin";
  WriteVectorsFile(path, SmallVocabulary(), {0.5f, 0.5f, 0.5f, 0.5f});
  WordVectors v(path, std::string(64, '0'));
  EXPECT_FALSE(v.Available());
  EXPECT_EQ(v.state(), WordVectors::State::kInvalid);
  EXPECT_NE(v.Status().find("SHA-256"), std::string::npos) << v.Status();
  EXPECT_FALSE(v.Find("cat"));
}

TEST(WordVectors, MalformedFilesAreRefused) {
  TempDir dir;
  const auto good = dir.path() / "good.bin";
  WriteVectorsFile(good, SmallVocabulary(), {0.5f, 0.5f, 0.5f, 0.5f});
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto variant = [&](std::string name, auto change) {
    std::string b = bytes;
    change(b);
    const auto p = dir.path() / name;
    std::ofstream(p, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
    return p;
  };
  const std::vector<std::filesystem::path> bad = {
      variant("magic.bin", [](std::string& b) { b[0] = 'X'; }),
      variant("truncated.bin", [](std::string& b) { b.resize(b.size() - 1); }),
      variant("short.bin", [](std::string& b) { b.resize(40); }),
      variant("dims.bin", [](std::string& b) { b[12] = 0; }),
      variant("slots.bin", [](std::string& b) { b[20] = 3; }),
      variant("section.bin", [](std::string& b) { b[24 + 8 * 7 + 3] = 0x7f; }),
      dir.path() / "absent.bin",
  };
  for (const auto& p : bad) {
    WordVectors v(p, "");  // no checksum: the layout checks alone must refuse it
    EXPECT_FALSE(v.Available()) << p;
    EXPECT_NE(v.state(), WordVectors::State::kLoaded) << p;
  }
}

TEST(WordVectors, ConcurrentFirstUseLoadsOnce) {
  TempDir dir;
  const auto path = dir.path() / "v.bin";
  WriteVectorsFile(path, SmallVocabulary(), {0.5f, 0.5f, 0.5f, 0.5f});
  WordVectors v(path, *FileSha256(path));
  std::vector<std::thread> threads;
  std::atomic<int> found{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (v.Find("dog")) ++found;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(found.load(), 8);
}

TEST(WordVectors, TheInstalledFileIsTheGloveVocabulary) {
  ORCHESTRA_REQUIRE_WORD_VECTORS();
  const WordVectors& v = WordVectors::Default();
  EXPECT_EQ(v.dims(), 100u);
  EXPECT_EQ(v.size(), 100000u);
  EXPECT_EQ(v.Rank(*v.Find("the")), 0u);
  for (std::string_view w : {"password", "credentials", "login", "photosynthesis", "kilometres"})
    EXPECT_TRUE(v.Find(w)) << w;
  EXPECT_FALSE(v.Find(","));     // the tokenizer never makes punctuation words
  EXPECT_FALSE(v.Find("1998"));  // the package has no numbers
  double norm = 0;
  for (float x : v.common())
    norm += static_cast<double>(x) * x;
  EXPECT_NEAR(norm, 1.0, 1e-4);
}

TEST(ModelFiles, TheEnvironmentDirectoryComesFirst) {
  TempDir dir;
  const auto path = dir.path() / "some_model.bin";
  std::ofstream(path) << "x";
  ASSERT_EQ(::setenv("ORCHESTRA_MODELS_DIR", dir.path().c_str(), 1), 0);
  auto found = FindModelFile("some_model.bin");
  ::unsetenv("ORCHESTRA_MODELS_DIR");
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, path);
  EXPECT_FALSE(FindModelFile("no_such_model.bin"));
  // The build tree links models/ next to the test binary.
  auto installed = FindModelFile(WordVectors::kFileName);
  if (installed) {
    EXPECT_EQ(installed->parent_path().filename(), "models");
  }
}

}  // namespace
}  // namespace orchestra::providers::local
