// The allocation-free JSON scanner (common/json_scan.hpp) against Boost.JSON, the full parser
// the codecs use and a stand-in for the upstream's.
//
// Invariants, for any bytes:
// - ScanJson accepts exactly what Boost.JSON accepts (invalid UTF-8 aside, which the scanner
//   does not check; and exponents too large for a double, which the grammar allows and
//   Boost.JSON refuses), with the same top-level kind. Escapes of UTF-16 surrogates are
//   replaced first (Boost.JSON refuses unpaired ones, which the grammar allows);
// - for an object, each reported member's key, unescaped with DecodeJsonString, and the value
//   at its span are the member Boost.JSON reads (the last of duplicate keys), the span's kind
//   is the value's kind, and JsonValueEnd finds the span's end from its start;
// - JsonInteger reads a number span only when it holds exactly that integer;
// - DecodeJsonString of a string document is Boost.JSON's string;
// - with `end`, text after the value is allowed and `end` is where the value stopped.
#include "common/json_scan.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "fuzz/fuzz_support.hpp"

namespace {

namespace json = boost::json;
using orchestra::DecodeJsonString;
using orchestra::JsonKind;
using orchestra::JsonSpan;
using orchestra::fuzz::Shown;

bool BoostParse(std::string_view text, json::value& out, boost::system::error_code& ec) {
  json::parse_options options;
  options.max_depth = 100000;
  options.allow_invalid_utf8 = true;
  out = json::parse(text, ec, {}, options);
  return !ec;
}

JsonKind KindOf(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return JsonKind::kNull;
    case json::kind::bool_:
      return JsonKind::kBool;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return JsonKind::kNumber;
    case json::kind::string:
      return JsonKind::kString;
    case json::kind::array:
      return JsonKind::kArray;
    case json::kind::object:
      return JsonKind::kObject;
  }
  return JsonKind::kNull;
}

// What Boost.JSON refuses although the JSON grammar allows it.
bool GrammarAllows(const boost::system::error_code& ec) {
  return ec == json::error::exponent_overflow;
}

// `text` with every \u escape of a UTF-16 surrogate replaced by \u0041, which keeps the
// grammar and every offset: Boost.JSON refuses unpaired surrogates, which the grammar allows.
std::string WithoutSurrogates(std::string_view text) {
  std::string out(text);
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] != '\\') continue;
    if (out[i + 1] == 'u' && i + 5 < out.size() && hex(out[i + 2]) && hex(out[i + 3]) &&
        hex(out[i + 4]) && hex(out[i + 5])) {
      const unsigned v = std::stoul(out.substr(i + 2, 4), nullptr, 16);
      if (v >= 0xD800 && v <= 0xDFFF) out.replace(i + 2, 4, "0041");
    }
    ++i;  // the escaped character
  }
  return out;
}

void CheckNumber(std::string_view raw, const json::value& v) {
  const auto n = orchestra::JsonInteger(raw);
  if (!n) return;
  const bool same = (v.is_int64() && v.get_int64() == *n) ||
                    (v.is_uint64() && *n >= 0 && v.get_uint64() == static_cast<std::uint64_t>(*n));
  FUZZ_CHECK(same, "JsonInteger(" + Shown(raw) + ") = " + std::to_string(*n) +
                       ", Boost.JSON: " + json::serialize(v));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string sanitized = WithoutSurrogates(orchestra::fuzz::AsText(data, size));
  const std::string_view text = sanitized;

  struct Member {
    std::string raw_key;
    JsonSpan span;
  };
  std::vector<Member> members;
  orchestra::JsonScanError error;
  const auto kind = orchestra::ScanJson(
      text,
      [&](std::string_view key, const JsonSpan& v) {
        members.push_back({std::string(key), v});
      },
      &error);

  json::value doc;
  boost::system::error_code ec;
  const bool boost_ok = BoostParse(text, doc, ec);
  const bool too_deep = !kind && std::string_view(error.what) == "nesting too deep";
  if (!too_deep) {
    if (kind && !boost_ok) {
      FUZZ_CHECK(GrammarAllows(ec),
                 "ScanJson accepts, Boost.JSON refuses (" + ec.message() + "): " + Shown(text));
    } else {
      FUZZ_CHECK(kind.has_value() == boost_ok,
                 std::string("ScanJson ") + (kind ? "accepts" : "refuses") + " (" + error.what +
                     " at " + std::to_string(error.offset) + "), Boost.JSON " +
                     (boost_ok ? "accepts" : "refuses (" + ec.message() + ")") + ": " +
                     Shown(text));
    }
  }
  if (!kind) {
    FUZZ_CHECK(error.what[0] != '\0' && error.offset <= text.size(), "error without a place");
    return 0;
  }

  // The value followed by other text: `end` marks where it stopped.
  {
    std::string longer(text);
    longer += " ]x";
    std::size_t end = 0;
    const auto again = orchestra::ScanJson(
        longer, [](std::string_view, const JsonSpan&) {}, nullptr, &end);
    FUZZ_CHECK(again == kind, "a value followed by text is not the same value");
    std::size_t trimmed = text.size();
    while (trimmed > 0 && (text[trimmed - 1] == ' ' || text[trimmed - 1] == '\n' ||
                           text[trimmed - 1] == '\r' || text[trimmed - 1] == '\t')) {
      --trimmed;
    }
    FUZZ_CHECK(end == trimmed,
               "end " + std::to_string(end) + ", the value ends at " + std::to_string(trimmed));
  }

  for (const Member& m : members) {
    FUZZ_CHECK(m.span.present && m.span.begin < m.span.end && m.span.end <= text.size(),
               "bad span");
    const auto end = orchestra::JsonValueEnd(text, m.span.begin);
    FUZZ_CHECK(end && *end == m.span.end, "JsonValueEnd disagrees with the member's span");
    json::value value;
    boost::system::error_code vec;
    const bool value_ok = BoostParse(m.span.In(text), value, vec);
    if (!boost_ok) continue;  // a refusal the grammar allows: nothing to compare with
    FUZZ_CHECK(value_ok, "a member's span is not a JSON value: " + Shown(m.span.In(text)));
    FUZZ_CHECK(KindOf(value) == m.span.kind, "span kind differs: " + Shown(m.span.In(text)));
    if (m.span.kind == JsonKind::kNumber) CheckNumber(m.span.In(text), value);
  }
  if (!boost_ok) return 0;

  FUZZ_CHECK(KindOf(doc) == *kind, "top-level kind differs");
  if (const json::string* s = doc.if_string()) {
    std::size_t begin = text.find('"');
    std::size_t last = text.rfind('"');
    const auto decoded = DecodeJsonString(text.substr(begin, last + 1 - begin));
    FUZZ_CHECK(decoded && *decoded == std::string_view(*s),
               "DecodeJsonString differs from Boost.JSON: " + Shown(text));
  }
  if (doc.is_number()) {
    std::size_t b = 0;
    while (text[b] == ' ' || text[b] == '\n' || text[b] == '\r' || text[b] == '\t')
      ++b;
    std::size_t e = text.size();
    while (text[e - 1] == ' ' || text[e - 1] == '\n' || text[e - 1] == '\r' || text[e - 1] == '\t')
      --e;
    CheckNumber(text.substr(b, e - b), doc);
  }
  if (const json::object* object = doc.if_object()) {
    std::map<std::string, const Member*> last;  // the last of duplicate keys wins, as in Boost
    for (const Member& m : members) {
      const auto key = DecodeJsonString("\"" + m.raw_key + "\"");
      FUZZ_CHECK(key.has_value(), "a member name that does not decode: " + Shown(m.raw_key));
      last[*key] = &m;
    }
    FUZZ_CHECK(last.size() == object->size(), std::to_string(last.size()) +
                                                  " distinct names, Boost.JSON has " +
                                                  std::to_string(object->size()));
    for (const auto& [key, m] : last) {
      const json::value* expected = object->if_contains(key);
      FUZZ_CHECK(expected != nullptr, "member '" + Shown(key) + "' unknown to Boost.JSON");
      json::value value;
      boost::system::error_code vec;
      BoostParse(m->span.In(text), value, vec);
      // Both readings are Boost.JSON's: NaN (its reading of 0e9990) is unequal to itself.
      FUZZ_CHECK(value == *expected || json::serialize(value) == json::serialize(*expected),
                 "member '" + Shown(key) + "': span " + Shown(m->span.In(text)) + ", Boost.JSON " +
                     json::serialize(*expected));
    }
  } else {
    FUZZ_CHECK(members.empty(), "members reported for a document that is not an object");
  }
  return 0;
}
