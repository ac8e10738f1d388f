// api::JsonBody (the memory, checkpoint and task handlers' body reader) and the UTF-8
// validators it and its neighbours use.
//
// Invariants:
// - JsonBody::Parse accepts a body exactly when it is valid UTF-8 and Boost.JSON reads a JSON
//   object whose member names are all known and distinct (names compared unescaped; a name
//   written with an escape may be refused as unknown, which is strict but never a misreading);
// - what the accessors return (Raw, OptionalString, OptionalNumber, OptionalStringArray,
//   OptionalObject) is what Boost.JSON reads, or an error when the type is wrong;
// - ShownName is at most 64 bytes of valid UTF-8, a prefix of the name (or "?");
// - utf8::IsValid and utf8::DecodeAll agree with a reference decoder
//   and a reference decoder; ToValid keeps valid text and makes any text valid.
#include "api/json_body.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "common/utf8.hpp"
#include "fuzz/fuzz_support.hpp"
#include "storage/glob.hpp"

namespace {

namespace json = boost::json;
using orchestra::fuzz::Shown;

// Code point by code point: the shortest form, no surrogates, nothing past U+10FFFF.
bool ReferenceUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = c < 0x80         ? 1
                      : (c >> 5) == 6  ? 2
                      : (c >> 4) == 14 ? 3
                      : (c >> 3) == 30 ? 4
                                       : 0;
    if (len == 0 || i + len > text.size()) return false;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    const char32_t min = len == 1 ? 0 : len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// Equal, numbers within a rounding error: Boost.JSON's number parsing (1.81) is not always
// correctly rounded, and a number at the end of the text may read differently from one inside.
bool Same(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.to_number<double>();
    const double y = b.to_number<double>();
    return x == y || std::fabs(x - y) <= 1e-14 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (const json::array* xs = a.if_array()) {
    const json::array& ys = b.get_array();
    if (xs->size() != ys.size()) return false;
    for (std::size_t i = 0; i < xs->size(); ++i)
      if (!Same((*xs)[i], ys[i])) return false;
    return true;
  }
  if (const json::object* xs = a.if_object()) {
    const json::object& ys = b.get_object();
    if (xs->size() != ys.size()) return false;
    for (const auto& m : *xs) {
      const json::value* other = ys.if_contains(m.key());
      if (other == nullptr || !Same(m.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

void CheckUtf8(std::string_view text) {
  const bool valid = ReferenceUtf8(text);
  FUZZ_CHECK(orchestra::utf8::IsValid(text) == valid, "utf8::IsValid: " + Shown(text));
  std::u32string decoded;
  FUZZ_CHECK(orchestra::utf8::DecodeAll(text, decoded) == valid, "utf8::DecodeAll: " + Shown(text));
  const std::string fixed = orchestra::utf8::ToValid(text);
  FUZZ_CHECK(ReferenceUtf8(fixed), "ToValid made invalid UTF-8 of " + Shown(text));
  if (valid) FUZZ_CHECK(fixed == text, "ToValid changed valid text");
  const std::string_view shown = orchestra::api::ShownName(text);
  FUZZ_CHECK(shown.size() <= 64 && ReferenceUtf8(shown), "ShownName: " + Shown(shown));
  FUZZ_CHECK(shown == "?" || text.substr(0, shown.size()) == shown, "ShownName not a prefix");
}

void CheckBody(std::string_view body, std::initializer_list<std::string_view> names) {
  const auto parsed = orchestra::api::JsonBody::Parse(body, names);

  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 100000;
  const json::value doc = json::parse(body, ec, {}, options);
  bool acceptable = !ec && doc.is_object() && ReferenceUtf8(body);
  if (acceptable) {
    // Boost.JSON keeps one of duplicate names: count them from the scan.
    std::multiset<std::string> seen;
    bool escaped = false;
    orchestra::ScanJson(body, [&](std::string_view raw, const orchestra::JsonSpan&) {
      std::string storage;
      seen.insert(std::string(orchestra::JsonMemberName(raw, storage)));
      escaped = escaped || raw.find('\\') != std::string_view::npos;
    });
    // JsonBody compares names as written, so a known name written with an escape is refused
    // as unknown: stricter than needed, never a misreading. Nothing to compare then.
    if (escaped && !parsed) return;
    for (const std::string& name : seen) {
      bool known = false;
      for (std::string_view n : names)
        known = known || n == name;
      if (!known || seen.count(name) > 1) acceptable = false;
    }
  }
  if (ec == json::error::exponent_overflow || ec == json::error::illegal_leading_surrogate ||
      ec == json::error::illegal_trailing_surrogate) {
    return;  // JSON Boost.JSON cannot hold: nothing to compare with
  }
  FUZZ_CHECK(parsed.has_value() == acceptable,
             std::string("JsonBody ") +
                 (parsed ? "accepts" : "refuses (" + parsed.error().message + ")") +
                 ", Boost.JSON " + (ec ? "refuses (" + ec.message() + ")" : "reads it") + ": " +
                 Shown(body));
  if (!parsed) return;
  const json::object& object = doc.get_object();
  for (std::string_view name : names) {
    const json::value* expected = object.if_contains(name);
    const auto raw = parsed->Raw(name);
    FUZZ_CHECK(raw.has_value() == (expected != nullptr), "Raw(" + std::string(name) + ")");
    if (expected == nullptr) continue;
    boost::system::error_code raw_ec;
    FUZZ_CHECK(Same(json::parse(*raw, raw_ec, {}, options), *expected),
               "Raw(" + std::string(name) + ") differs");

    const auto s = parsed->OptionalString(name);
    if (expected->is_string()) {
      FUZZ_CHECK(s && *s && **s == std::string_view(expected->get_string()),
                 "OptionalString(" + std::string(name) + ")");
    } else {
      FUZZ_CHECK(expected->is_null() ? (s && !*s) : !s, "OptionalString of a non-string");
    }
    const auto n = parsed->OptionalNumber(name);
    if (expected->is_number()) {
      const double reference = std::strtod(std::string(*raw).c_str(), nullptr);
      if (std::isfinite(reference)) {
        FUZZ_CHECK(n && *n && **n == reference,
                   "OptionalNumber(" + std::string(name) + ") " + Shown(*raw));
      } else {
        FUZZ_CHECK(!n, "an infinite number accepted");
      }
    } else {
      FUZZ_CHECK(expected->is_null() ? (n && !*n) : !n, "OptionalNumber of a non-number");
    }
    const auto a = parsed->OptionalStringArray(name);
    if (const json::array* items = expected->if_array()) {
      bool all_strings = true;
      for (const json::value& item : *items)
        all_strings = all_strings && item.is_string();
      FUZZ_CHECK(a.has_value() == all_strings, "OptionalStringArray(" + std::string(name) + ")");
      if (all_strings) {
        FUZZ_CHECK(*a && (*a)->size() == items->size(), "OptionalStringArray size");
        for (std::size_t i = 0; i < items->size(); ++i)
          FUZZ_CHECK((**a)[i] == std::string_view((*items)[i].get_string()), "array item");
      }
    } else {
      FUZZ_CHECK(expected->is_null() ? (a && !*a) : !a, "OptionalStringArray of a non-array");
    }
    const auto o = parsed->OptionalObject(name);
    if (expected->is_object()) {
      FUZZ_CHECK(o && *o && **o == *raw, "OptionalObject");
    } else {
      FUZZ_CHECK(expected->is_null() ? (o && !*o) : !o, "OptionalObject of a non-object");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = orchestra::fuzz::AsText(data, size);
  CheckUtf8(text);
  // The members of the memory, checkpoint and task bodies.
  CheckBody(text, {"key", "value", "ttl"});
  CheckBody(text, {"agent_id", "state", "metadata", "checkpoint_id"});
  CheckBody(text, {"text", "categories", "model_id", "max_length", "temperature"});
  return 0;
}
