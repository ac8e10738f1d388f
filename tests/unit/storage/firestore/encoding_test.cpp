// Document ids, timestamps and bytes as the Firestore backend writes them (no emulator needed).
#include "storage/firestore/encoding.hpp"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/utf8.hpp"
#include "storage/glob.hpp"
#include "storage/validation.hpp"

namespace orchestra::storage::firestore {
namespace {

// What Firestore accepts as a document id.
bool ValidDocumentId(std::string_view id) {
  if (id.empty() || id.size() > 1500 || id == "." || id == "..") return false;
  if (id.find('/') != std::string_view::npos || !utf8::IsValid(id)) return false;
  return !(id.size() >= 4 && id.starts_with("__") && id.ends_with("__"));
}

// Random valid keys over an alphabet rich in the bytes the encoding treats specially.
std::vector<std::string> RandomKeys(std::size_t count, std::uint32_t seed) {
  static const std::vector<std::string> kPieces = {
      "a", "z", "A", "0", "9", ":",    ";",    "/",    ".", "!", "~", "_", "-", " ",
      "*", "?", "[", "}", "|", "\x7f", "\x01", "\x1f", "=", "é", "ü", "€", "😀", "\xef\xbf\xbf",
      "@", "^", "`"};
  std::mt19937 rng(seed);
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < count; ++i) {
    std::string key;
    const std::size_t length = 1 + rng() % 8;
    for (std::size_t j = 0; j < length; ++j)
      key += kPieces[rng() % kPieces.size()];
    keys.push_back(key);
  }
  return keys;
}

TEST(EncodingForFirestore, UsualKeysStayReadable) {
  EXPECT_EQ(KeyToDocumentId("user:42"), "user:42");
  EXPECT_EQ(KeyToDocumentId("Session=ABC"), "Session=ABC");
  EXPECT_EQ(KeyToDocumentId("ключ"), "ключ");
  EXPECT_EQ(KeyToDocumentId("a/b.c"), "a!_b!^c");
  EXPECT_EQ(KeyToDocumentId("x~y"), "x~0y");
  EXPECT_EQ(KeyToDocumentId("_private"), "_=private");
  EXPECT_EQ(KeyToDocumentId("a_b"), "a_b");
}

TEST(EncodingForFirestore, IdsAreValidAndDecodeBack) {
  for (const std::string& key :
       {std::string("."), std::string(".."), std::string("__x__"), std::string("__"),
        std::string("/"), std::string(512, '/'), std::string(512, '_'), std::string("\x01\x7f"),
        std::string("!0"), std::string("~1"), std::string("_="), std::string("a b")}) {
    const std::string id = KeyToDocumentId(key);
    EXPECT_TRUE(ValidDocumentId(id)) << key << " → " << id;
    EXPECT_EQ(DocumentIdToKey(id), key) << id;
  }
  for (const std::string& key : RandomKeys(2000, 7)) {
    const std::string id = KeyToDocumentId(key);
    ASSERT_TRUE(ValidDocumentId(id)) << id;
    ASSERT_EQ(DocumentIdToKey(id), key) << id;
  }
  EXPECT_LE(KeyToDocumentId(std::string(512, '/')).size(), 1500U);
}

TEST(EncodingForFirestore, IdsSortLikeTheirKeys) {
  std::vector<std::string> keys = RandomKeys(3000, 11);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (std::size_t i = 1; i < keys.size(); ++i) {
    ASSERT_LT(KeyToDocumentId(keys[i - 1]), KeyToDocumentId(keys[i]))
        << "'" << keys[i - 1] << "' < '" << keys[i] << "'";
  }
}

// ListKeys scans [id(prefix), id(PrefixUpperBound(prefix))): exactly the keys with the prefix.
TEST(EncodingForFirestore, APrefixRangeOfIdsHoldsExactlyTheKeysWithThePrefix) {
  const std::vector<std::string> keys = RandomKeys(3000, 13);
  for (const std::string& prefix :
       {std::string("a"), std::string("_"), std::string("a/"), std::string("é"), std::string("~"),
        std::string("^"), std::string(":"), std::string("z\x7f")}) {
    const std::string lo = KeyToDocumentId(prefix);
    const std::string hi = KeyToDocumentId(PrefixUpperBound(prefix));
    for (const std::string& key : keys) {
      const std::string id = KeyToDocumentId(key);
      EXPECT_EQ(key.starts_with(prefix), id >= lo && id < hi) << prefix << " / " << key;
    }
  }
}

TEST(EncodingForFirestore, ForeignIdsAreNotKeys) {
  for (const char* id : {"", "!", "!z", "~", "~2", "_", "_x", "a.b", "a b", "\x7f"}) {
    EXPECT_EQ(DocumentIdToKey(id), std::nullopt) << id;
  }
}

TEST(EncodingForFirestore, NamesBecomeUrlSafeIds) {
  EXPECT_EQ(NameToDocumentId("default"), "default");
  EXPECT_EQ(NameToDocumentId("team:x"), "team~3Ax");
  EXPECT_EQ(NameToDocumentId("planner/1"), "planner~2F1");
  EXPECT_EQ(NameToDocumentId("__x__"), "~5F~5Fx~5F~5F");
  EXPECT_EQ(NameToDocumentId("."), "~2E");
  EXPECT_NE(NameToDocumentId("a:b"), NameToDocumentId("a~3Ab"));  // '~' is escaped too
  // Too long to escape: a hash, still a valid id and still distinct.
  const std::string long_a(512, '/');
  const std::string long_b = std::string(511, '/') + ":";
  EXPECT_EQ(NameToDocumentId(long_a).size(), 2U + 64U);
  EXPECT_TRUE(NameToDocumentId(long_a).starts_with("~H"));
  EXPECT_NE(NameToDocumentId(long_a), NameToDocumentId(long_b));
  for (const std::string& name : RandomKeys(500, 17)) {
    const std::string id = NameToDocumentId(name);
    EXPECT_TRUE(ValidDocumentId(id)) << id;
    EXPECT_TRUE(std::all_of(id.begin(), id.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '~';
    })) << id;
  }
}

TEST(EncodingForFirestore, TimestampsRoundTripInUtc) {
  using namespace std::chrono;
  const sys_time<milliseconds> t = sys_days(2026y / 1 / 31) + 12h + 34min + 56s + 789ms;
  EXPECT_EQ(FormatTimestamp(t), "2026-01-31T12:34:56.789Z");
  EXPECT_EQ(ParseTimestamp("2026-01-31T12:34:56.789Z"), t);
  EXPECT_EQ(ParseTimestamp("2026-01-31T12:34:56.789123456Z"), t + 123us);
  EXPECT_EQ(ParseTimestamp("2026-01-31T12:34:56Z"), t - 789ms);
  for (const char* bad : {"", "2026-01-31", "2026-01-31T12:34:56", "2026-13-01T00:00:00Z",
                          "2026-01-31T12:34:56.Z", "2026-01-31T12:34:56+01:00"}) {
    EXPECT_EQ(ParseTimestamp(bad), std::nullopt) << bad;
  }
}

TEST(EncodingForFirestore, Base64RoundTrips) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  std::string all;
  for (int i = 0; i < 256; ++i)
    all.push_back(static_cast<char>(i));
  EXPECT_EQ(Base64Decode(Base64Encode(all)), all);
  EXPECT_EQ(Base64Decode("Zm9v!"), std::nullopt);
}

}  // namespace
}  // namespace orchestra::storage::firestore
