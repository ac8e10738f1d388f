#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

// How Orchestra's names and values are written in Firestore. (A document id is 1..1500 bytes of
// UTF-8 without '/', neither "." nor "..", and not of the reserved form __.*__.)
namespace orchestra::storage::firestore {

// Memory keys (1..512 bytes of UTF-8). An order-preserving, prefix-preserving escape that leaves
// the usual keys readable ("user:42" stays "user:42"):
//   bytes 0x00..0x2F (controls, space, punctuation such as / . * -)  →  '!' + (0x30 + byte)
//   bytes 0x7E..0x7F (~ and DEL)                                     →  '~' + ('0' + byte − 0x7E)
//   a '_' as the first byte                                          →  "_="
//   every other byte (0x30..0x7D, and the bytes of non-ASCII characters) is itself.
// Each byte's code sorts where the byte does and no code is a prefix of another, so document
// ids sort like the keys (byte order) and the keys starting with P are exactly the ids starting
// with KeyToDocumentId(P): ListKeys pages and prefix ranges work on document ids directly. The
// leading "_=" keeps keys like "__x__" from forming a reserved id. At most 1025 bytes.
std::string KeyToDocumentId(std::string_view key);
// The inverse; nullopt for an id KeyToDocumentId cannot produce (a document not written by us).
std::optional<std::string> DocumentIdToKey(std::string_view id);

// Tenant and agent names (1..512 bytes): ids that are also safe as-is in a URL path (queries
// name their parent document in the URL). Letters, digits and '-' stay; every other byte becomes
// '~' + two upper-case hex digits ("team:x" → "team~3Ax"). A name whose escaped form would pass
// 1500 bytes becomes "~H" + the hex SHA-256 of the name (not a valid escape, so it cannot collide
// with one). Injective; not order-preserving (nothing lists tenants or agents in order).
std::string NameToDocumentId(std::string_view name);

// Firestore timestamps: RFC 3339 in UTC ("2026-01-31T12:34:56.789Z"); parsing accepts 0 to 9
// fractional digits and keeps microseconds.
std::string FormatTimestamp(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> ParseTimestamp(std::string_view text);

// Standard base64 with padding (Firestore's bytesValue).
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace orchestra::storage::firestore
