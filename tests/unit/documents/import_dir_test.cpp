// documents.import_dir: only files under it can be read, whatever the path says.

#include "documents/import_dir.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/process.hpp"
#include <sys/stat.h>

namespace orchestra::documents {
namespace {

namespace fs = std::filesystem;
using orchestra::testing::TempDir;

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

class ImportDirTest : public ::testing::Test {
 protected:
  ImportDirTest() : root_(fs::canonical(tmp_.path())) {
    Write(root_ / "import/a.txt", "alpha");
    Write(root_ / "import/sub/b.md", "# beta");
    Write(root_ / "secret.txt", "top secret");
    fs::create_symlink(root_ / "secret.txt", root_ / "import/link_out");
    fs::create_symlink("../secret.txt", root_ / "import/relative_out");
    fs::create_symlink("sub/b.md", root_ / "import/link_in");
    fs::create_directory_symlink(root_, root_ / "import/dir_out");
    ::mkfifo((root_ / "import/fifo").c_str(), 0600);
    dir_ = std::make_unique<ImportDir>(root_ / "import");
  }

  Result<std::string> Read(const std::string& path, std::uint64_t max = 1 << 20) {
    return dir_->Read(path, max);
  }

  TempDir tmp_;
  fs::path root_;
  std::unique_ptr<ImportDir> dir_;
};

TEST_F(ImportDirTest, ReadsFilesUnderTheDirectory) {
  EXPECT_EQ(Read("a.txt").value(), "alpha");
  EXPECT_EQ(Read("sub/b.md").value(), "# beta");
  EXPECT_EQ(Read("./sub/../a.txt").value(), "alpha");  // .. that stays inside
  EXPECT_EQ(Read("link_in").value(), "# beta");        // a link that stays inside
  EXPECT_EQ(Read((root_ / "import/a.txt").string()).value(), "alpha");
}

TEST_F(ImportDirTest, EveryWayOutIsRefusedWith403) {
  for (const std::string& path : std::vector<std::string>{
           "../secret.txt", "sub/../../secret.txt", "link_out", "relative_out",
           "dir_out/secret.txt", "/etc/passwd", (root_ / "secret.txt").string(),
           (root_ / "import/../secret.txt").string(), (root_ / "importer/x").string(),
           "/proc/self/root/etc/passwd"}) {
    auto r = Read(path);
    ASSERT_FALSE(r) << path << " was read";
    EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied) << path << ": " << r.error().message;
    EXPECT_EQ(r.error().param, "file_path");
    // The message never names the import directory itself (unless the path given did).
    const std::string dir = (root_ / "import").string() + "/";
    if (path.find(dir) == std::string::npos) {
      EXPECT_EQ(r.error().message.find(dir), std::string::npos) << r.error().message;
    }
  }
}

TEST_F(ImportDirTest, OtherFailuresSayWhat) {
  EXPECT_EQ(Read("missing.txt").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Read("").error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(Read(std::string("a\0b", 3)).error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(Read("sub").error().code, ErrorCode::kInvalidRequest);   // a directory
  EXPECT_EQ(Read("fifo").error().code, ErrorCode::kInvalidRequest);  // and it does not hang
  EXPECT_EQ(Read("a.txt", 3).error().code, ErrorCode::kPayloadTooLarge);
}

}  // namespace
}  // namespace orchestra::documents
