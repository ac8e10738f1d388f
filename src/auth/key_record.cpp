#include "auth/key_record.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <vector>

#include <boost/json.hpp>
#include <openssl/rand.h>

#include "common/text.hpp"

namespace orchestra::auth {
namespace {

namespace json = boost::json;

Error Invalid(std::string message, std::string param) {
  return Error(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
}

// Client text in a message: bounded.
std::string Quoted(std::string_view text) {
  constexpr std::size_t kMax = 64;
  std::string out = "'";
  out.append(text.substr(0, kMax));
  if (text.size() > kMax) out += "...";
  out += "'";
  return out;
}

std::string WithNear(std::string message, std::string_view word,
                     std::span<const std::string_view> candidates) {
  if (auto near = ClosestMatch(word, candidates)) {
    message += " (did you mean '" + std::string(*near) + "'?)";
  }
  return message;
}

Error UnknownField(std::string_view field, std::string_view prefix,
                   std::span<const std::string_view> allowed) {
  std::string param = std::string(prefix) + std::string(field.substr(0, kMaxNameBytes));
  return Invalid(WithNear("unknown field " + Quoted(field), field, allowed), std::move(param));
}

Result<void> CheckFields(const json::object& o, std::string_view prefix,
                         std::span<const std::string_view> allowed) {
  for (const auto& member : o) {
    const std::string_view key(member.key().data(), member.key().size());
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return UnknownField(key, prefix, allowed);
    }
  }
  return {};
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == ':';
}

Result<std::string> NameField(const json::value& v, std::string_view field) {
  const json::string* s = v.if_string();
  if (s == nullptr) return Invalid(std::string(field) + " must be a string", std::string(field));
  const std::string_view text(s->data(), s->size());
  if (text.empty() || text.size() > kMaxNameBytes ||
      !std::all_of(text.begin(), text.end(), IsNameChar)) {
    return Invalid(std::string(field) + " must be 1 to " + std::to_string(kMaxNameBytes) +
                       " letters, digits, '-', '_', '.' or ':'",
                   std::string(field));
  }
  return std::string(text);
}

// A non-negative whole number up to kMaxLimit.
Result<std::int64_t> LimitField(const json::value& v, const std::string& param) {
  double d = 0;
  if (const auto* i = v.if_int64()) {
    d = static_cast<double>(*i);
  } else if (const auto* u = v.if_uint64()) {
    d = static_cast<double>(*u);
  } else if (const auto* f = v.if_double()) {
    d = *f;
  } else {
    return Invalid(param + " must be a number", param);
  }
  if (d < 0 || std::floor(d) != d || d > static_cast<double>(kMaxLimit)) {
    return Invalid(
        param + " must be a whole number from 0 (no limit) to " + std::to_string(kMaxLimit), param);
  }
  return static_cast<std::int64_t>(d);
}

Result<double> NumberField(const json::value& v, const std::string& param) {
  if (const auto* i = v.if_int64()) return static_cast<double>(*i);
  if (const auto* u = v.if_uint64()) return static_cast<double>(*u);
  if (const auto* f = v.if_double()) return *f;
  return Invalid(param + " must be a number", param);
}

std::vector<std::string_view> Views(std::span<const std::string> names) {
  return {names.begin(), names.end()};
}

bool IsGlob(std::string_view pattern) {
  return pattern.find_first_of("*?") != std::string_view::npos;
}

Result<void> CheckModelName(std::string_view name, std::span<const std::string> models,
                            const std::string& param, bool glob_allowed) {
  if (name.empty() || name.size() > 256) {
    return Invalid(param + " must hold model names of 1 to 256 bytes", param);
  }
  if (glob_allowed && IsGlob(name)) {
    for (const std::string& m : models) {
      if (ModelMatches(name, m)) return {};
    }
    return Invalid("the pattern " + Quoted(name) + " matches no configured model", param);
  }
  if (std::find(models.begin(), models.end(), name) != models.end()) return {};
  const std::vector<std::string_view> names = Views(models);
  return Invalid(WithNear("unknown model " + Quoted(name), name, names), param);
}

Result<std::vector<std::string>> ParseModels(const json::value& v,
                                             std::span<const std::string> models) {
  const json::array* a = v.if_array();
  if (a == nullptr) return Invalid("models must be an array of model names or globs", "models");
  if (a->size() > kMaxModels) {
    return Invalid("models holds at most " + std::to_string(kMaxModels) + " names", "models");
  }
  std::vector<std::string> out;
  for (const json::value& m : *a) {
    const json::string* s = m.if_string();
    if (s == nullptr) return Invalid("models must be an array of strings", "models");
    const std::string_view name(s->data(), s->size());
    if (auto ok = CheckModelName(name, models, "models", true); !ok) return ok.error();
    out.emplace_back(name);
  }
  return out;
}

Result<limits::RateLimits> ParseRateLimits(const json::object& o, const std::string& prefix,
                                           bool per_model) {
  static constexpr std::string_view kKey[] = {"rpm", "tpm", "max_parallel", "per_model"};
  static constexpr std::string_view kModel[] = {"rpm", "tpm", "max_parallel"};
  if (auto ok = per_model ? CheckFields(o, prefix, kModel) : CheckFields(o, prefix, kKey); !ok) {
    return ok.error();
  }
  limits::RateLimits out;
  for (auto [field, target] : {std::pair{"rpm", &out.rpm}, std::pair{"tpm", &out.tpm},
                               std::pair{"max_parallel", &out.max_parallel}}) {
    if (const json::value* v = o.if_contains(field); v != nullptr && !v->is_null()) {
      auto n = LimitField(*v, prefix + field);
      if (!n) return n.error();
      *target = *n;
    }
  }
  return out;
}

Result<void> ParseLimits(const json::value& v, std::span<const std::string> models,
                         limits::KeyPolicy& policy) {
  if (v.is_null()) {
    policy.limits = {};
    policy.per_model.clear();
    return {};
  }
  const json::object* o = v.if_object();
  if (o == nullptr) return Invalid("limits must be an object", "limits");
  auto key = ParseRateLimits(*o, "limits.", false);
  if (!key) return key.error();
  std::vector<limits::ModelLimits> per_model;
  if (const json::value* pm = o->if_contains("per_model"); pm != nullptr && !pm->is_null()) {
    const json::object* models_object = pm->if_object();
    if (models_object == nullptr) {
      return Invalid("limits.per_model must be an object of model names", "limits.per_model");
    }
    if (models_object->size() > kMaxModels) {
      return Invalid("limits.per_model holds at most " + std::to_string(kMaxModels) + " models",
                     "limits.per_model");
    }
    for (const auto& member : *models_object) {
      const std::string_view model(member.key().data(), member.key().size());
      const std::string prefix =
          "limits.per_model." + std::string(model.substr(0, kMaxNameBytes * 4));
      if (auto ok = CheckModelName(model, models, prefix, false); !ok) return ok.error();
      const json::object* limits_object = member.value().if_object();
      if (limits_object == nullptr) return Invalid(prefix + " must be an object", prefix);
      auto limits = ParseRateLimits(*limits_object, prefix + ".", true);
      if (!limits) return limits.error();
      per_model.push_back({std::string(model), *limits});
    }
  }
  policy.limits = *key;
  policy.per_model = std::move(per_model);
  return {};
}

Result<std::optional<limits::Budget>> ParseBudget(const json::value& v) {
  if (v.is_null()) return std::optional<limits::Budget>();
  const json::object* o = v.if_object();
  if (o == nullptr) return Invalid("budget must be an object {usd, period}", "budget");
  static constexpr std::string_view kFields[] = {"usd", "period"};
  if (auto ok = CheckFields(*o, "budget.", kFields); !ok) return ok.error();
  const json::value* usd = o->if_contains("usd");
  if (usd == nullptr) return Invalid("budget.usd is required", "budget.usd");
  auto amount = NumberField(*usd, "budget.usd");
  if (!amount) return amount.error();
  if (!(*amount > 0) || *amount > kMaxBudgetUsd) {
    return Invalid("budget.usd must be more than 0 and at most 1e9", "budget.usd");
  }
  const json::value* period = o->if_contains("period");
  if (period == nullptr || period->is_null()) {
    return Invalid("budget.period is required: day, week or month", "budget.period");
  }
  const json::string* p = period->if_string();
  static constexpr std::string_view kPeriods[] = {"day", "week", "month"};
  limits::Budget budget;
  budget.usd = *amount;
  if (p != nullptr && *p == "day") {
    budget.period = limits::BudgetPeriod::kDay;
  } else if (p != nullptr && *p == "week") {
    budget.period = limits::BudgetPeriod::kWeek;
  } else if (p != nullptr && *p == "month") {
    budget.period = limits::BudgetPeriod::kMonth;
  } else {
    std::string message = "budget.period must be day, week or month";
    if (p != nullptr) message = WithNear(std::move(message), std::string_view(*p), kPeriods);
    return Invalid(std::move(message), "budget.period");
  }
  return std::optional<limits::Budget>(budget);
}

Result<std::pair<bool, bool>> ParseScopes(const json::value& v) {
  const json::array* a = v.if_array();
  if (a == nullptr || a->empty()) {
    return Invalid("scopes must be a non-empty array of 'user' and 'admin'", "scopes");
  }
  std::pair<bool, bool> out{false, false};
  static constexpr std::string_view kScopes[] = {"user", "admin"};
  for (const json::value& s : *a) {
    const json::string* text = s.if_string();
    if (text != nullptr && *text == "user") {
      out.first = true;
    } else if (text != nullptr && *text == "admin") {
      out.second = true;
    } else {
      std::string message = "scopes may hold 'user' and 'admin'";
      if (text != nullptr) message = WithNear(std::move(message), std::string_view(*text), kScopes);
      return Invalid(std::move(message), "scopes");
    }
  }
  return out;
}

// An RFC 3339 time ("2027-01-31T12:00:00Z", fractions and offsets allowed) in seconds since
// the epoch.
std::optional<double> ParseRfc3339(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  const std::string s(text.substr(0, 64));
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) != 6 ||
      consumed != 19 || (s[10] != 'T' && s[10] != 't')) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  std::size_t i = 19;
  double fraction = 0;
  if (i < s.size() && s[i] == '.') {
    double scale = 0.1;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, scale /= 10)
      fraction += (s[i] - '0') * scale;
  }
  int offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' &&
             std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
             std::isdigit(static_cast<unsigned char>(s[i + 2])) &&
             std::isdigit(static_cast<unsigned char>(s[i + 4])) &&
             std::isdigit(static_cast<unsigned char>(s[i + 5]))) {
    const int hours = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
    const int minutes = (s[i + 4] - '0') * 10 + (s[i + 5] - '0');
    offset = (s[i] == '+' ? 1 : -1) * (hours * 3600 + minutes * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size() || s.size() != text.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<double>(timegm(&tm)) - offset + fraction;
}

Result<double> ParseExpiry(const json::value& v, double now) {
  if (v.is_null()) return 0.0;
  Result<double> at = 0.0;
  if (const json::string* text = v.if_string()) {
    auto parsed = ParseRfc3339(std::string_view(text->data(), text->size()));
    if (!parsed) {
      return Invalid(
          "expires_at must be seconds since the Unix epoch or an RFC 3339 time such as "
          "2027-01-31T12:00:00Z",
          "expires_at");
    }
    at = *parsed;
  } else {
    at = NumberField(v, "expires_at");
  }
  if (!at) return at.error();
  if (!(*at > now) || *at > 4102444800.0) {  // 2100-01-01
    return Invalid("expires_at must be a time in the future, in seconds since the Unix epoch",
                   "expires_at");
  }
  return *at;
}

Result<std::string> ParseMetadata(const json::value& v) {
  if (v.is_null()) return std::string();
  if (!v.is_object()) return Invalid("metadata must be an object", "metadata");
  std::string text = json::serialize(v);
  if (text.size() > kMaxMetadataBytes) {
    return Invalid("metadata is larger than " + std::to_string(kMaxMetadataBytes) + " bytes",
                   "metadata");
  }
  return text;
}

Result<json::object> ParseObject(std::string_view body) {
  boost::system::error_code ec;
  json::value parsed = json::parse(body, ec);
  if (ec) return Invalid("the body is not valid JSON (" + ec.message() + ")", "");
  json::object* o = parsed.if_object();
  if (o == nullptr) return Invalid("the body must be a JSON object", "");
  return std::move(*o);
}

// The fields a PATCH may change, applied to a copy: all or nothing.
Result<void> ApplyFields(const json::object& o, std::span<const std::string> models, double now,
                         KeyRecord& r) {
  if (const json::value* v = o.if_contains("scopes")) {
    auto scopes = ParseScopes(*v);
    if (!scopes) return scopes.error();
    r.user = scopes->first;
    r.admin = scopes->second;
  }
  if (const json::value* v = o.if_contains("models")) {
    if (v->is_null()) {
      r.policy.models.clear();
    } else {
      auto list = ParseModels(*v, models);
      if (!list) return list.error();
      r.policy.models = std::move(*list);
    }
  }
  if (const json::value* v = o.if_contains("limits")) {
    if (auto ok = ParseLimits(*v, models, r.policy); !ok) return ok.error();
  }
  if (const json::value* v = o.if_contains("budget")) {
    auto budget = ParseBudget(*v);
    if (!budget) return budget.error();
    r.policy.budget = *budget;
  }
  if (const json::value* v = o.if_contains("expires_at")) {
    auto at = ParseExpiry(*v, now);
    if (!at) return at.error();
    r.expires_at = *at;
  }
  if (const json::value* v = o.if_contains("metadata")) {
    auto metadata = ParseMetadata(*v);
    if (!metadata) return metadata.error();
    r.metadata = std::move(*metadata);
  }
  return {};
}

std::string_view PeriodName(limits::BudgetPeriod p) {
  switch (p) {
    case limits::BudgetPeriod::kDay:
      return "day";
    case limits::BudgetPeriod::kWeek:
      return "week";
    case limits::BudgetPeriod::kMonth:
      return "month";
  }
  return "month";
}

json::object LimitsJson(const limits::RateLimits& l, bool with_parallel = true) {
  json::object o{{"rpm", l.rpm}, {"tpm", l.tpm}};
  if (with_parallel) o["max_parallel"] = l.max_parallel;
  return o;
}

// A whole number as an integer (Boost.JSON would print 1800000000.0 as 1.8E9).
json::value Number(double d) {
  if (std::floor(d) == d && std::fabs(d) < 9e15) return json::value(static_cast<std::int64_t>(d));
  return json::value(d);
}

// The fields the client sees (and that are stored, with the digests added).
json::object View(const KeyRecord& r) {
  json::array scopes;
  if (r.user) scopes.emplace_back("user");
  if (r.admin) scopes.emplace_back("admin");
  json::array models;
  for (const std::string& m : r.policy.models)
    models.emplace_back(m);
  json::object limits = LimitsJson(r.policy.limits);
  json::object per_model;
  for (const limits::ModelLimits& m : r.policy.per_model)
    per_model[m.model] = LimitsJson(m.limits);
  limits["per_model"] = std::move(per_model);
  json::object o{{"id", r.id},
                 {"object", "api_key"},
                 {"name", r.name},
                 {"tenant", r.tenant},
                 {"scopes", std::move(scopes)},
                 {"models", std::move(models)},
                 {"limits", std::move(limits)},
                 {"created_at", Number(r.created_at)}};
  if (r.policy.budget) {
    o["budget"] = json::object{{"usd", Number(r.policy.budget->usd)},
                               {"period", PeriodName(r.policy.budget->period)}};
  } else {
    o["budget"] = nullptr;
  }
  o["expires_at"] = r.expires_at > 0 ? Number(r.expires_at) : json::value(nullptr);
  if (r.metadata.empty()) {
    o["metadata"] = nullptr;
  } else {
    boost::system::error_code ec;
    json::value m = json::parse(r.metadata, ec);
    o["metadata"] = ec ? json::value(nullptr) : std::move(m);
  }
  o["rotation_grace_until"] = r.previous_digest && r.previous_valid_until > 0
                                  ? Number(r.previous_valid_until)
                                  : json::value(nullptr);
  return o;
}

Error Damaged(std::string what) {
  return Error(ErrorCode::kInternal, "stored API key record: " + std::move(what));
}

std::optional<Digest> DigestFromHex(std::string_view hex) {
  if (hex.size() != 64 || !IsHex(hex)) return std::nullopt;
  Digest d{};
  auto nibble = [](char c) -> std::uint8_t {
    if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
    return static_cast<std::uint8_t>(c - 'A' + 10);
  };
  for (std::size_t i = 0; i < d.size(); ++i) {
    d[i] = static_cast<std::uint8_t>((nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]));
  }
  return d;
}

}  // namespace

std::string Base62(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  // Enough digits for any number of this many bytes: log(256) / log(62) < 1.3437.
  const std::size_t width = (bytes.size() * 13437 + 9999) / 10000;
  std::vector<std::uint8_t> number(bytes.begin(), bytes.end());
  std::string out(width, '0');
  for (std::size_t pos = width; pos-- > 0;) {
    unsigned remainder = 0;
    for (std::uint8_t& b : number) {
      const unsigned acc = (remainder << 8) | b;
      b = static_cast<std::uint8_t>(acc / 62);
      remainder = acc % 62;
    }
    out[pos] = kDigits[remainder];
  }
  return out;
}

std::string NewSecret() {
  std::array<std::uint8_t, kSecretBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("the system's random generator failed");
  }
  std::string secret = std::string(kSecretPrefix) + Base62(bytes);
  std::fill(bytes.begin(), bytes.end(), 0);
  return secret;
}

std::string NewKeyId() {
  std::array<std::uint8_t, 12> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("the system's random generator failed");
  }
  return "key_" + HexEncode(bytes);
}

bool ModelMatches(std::string_view pattern, std::string_view model) {
  // Iterative wildcard match with one backtrack point: linear for patterns with one `*`,
  // O(n·m) at worst; names are bounded at 256 bytes.
  std::size_t p = 0;
  std::size_t m = 0;
  std::size_t star = std::string_view::npos;
  std::size_t resume = 0;
  while (m < model.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == model[m])) {
      ++p;
      ++m;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = m;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      m = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

bool ModelAllowed(const limits::KeyPolicy& policy, std::string_view model) {
  if (policy.models.empty()) return true;
  for (const std::string& pattern : policy.models) {
    if (ModelMatches(pattern, model)) return true;
  }
  return false;
}

Result<KeyRecord> ParseCreate(std::string_view body, std::span<const std::string> models,
                              double now) {
  static constexpr std::string_view kFields[] = {"name",   "tenant",     "scopes",   "models",
                                                 "limits", "expires_at", "metadata", "budget"};
  auto o = ParseObject(body);
  if (!o) return o.error();
  if (auto ok = CheckFields(*o, "", kFields); !ok) return ok.error();
  KeyRecord r;
  const json::value* name = o->if_contains("name");
  if (name == nullptr) return Invalid("name is required", "name");
  auto n = NameField(*name, "name");
  if (!n) return n.error();
  r.name = std::move(*n);
  if (const json::value* t = o->if_contains("tenant"); t != nullptr && !t->is_null()) {
    auto tenant = NameField(*t, "tenant");
    if (!tenant) return tenant.error();
    r.tenant = std::move(*tenant);
  } else {
    r.tenant = r.name;
  }
  if (o->if_contains("scopes") == nullptr) {
    return Invalid("scopes is required: ['user'], ['admin'] or both", "scopes");
  }
  if (auto ok = ApplyFields(*o, models, now, r); !ok) return ok.error();
  return r;
}

Result<void> ApplyPatch(std::string_view body, std::span<const std::string> models, double now,
                        KeyRecord& record) {
  static constexpr std::string_view kFields[] = {"scopes", "models",     "limits",
                                                 "budget", "expires_at", "metadata"};
  auto o = ParseObject(body);
  if (!o) return o.error();
  for (std::string_view fixed : {"name", "tenant", "id"}) {
    if (o->contains(fixed)) {
      return Invalid(std::string(fixed) + " cannot be changed; create a new key instead",
                     std::string(fixed));
    }
  }
  if (auto ok = CheckFields(*o, "", kFields); !ok) return ok.error();
  KeyRecord changed = record;
  if (auto ok = ApplyFields(*o, models, now, changed); !ok) return ok.error();
  record = std::move(changed);
  return {};
}

Result<double> ParseRotate(std::string_view body, double default_grace) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return default_grace;
  auto o = ParseObject(body);
  if (!o) return o.error();
  static constexpr std::string_view kFields[] = {"grace_seconds"};
  if (auto ok = CheckFields(*o, "", kFields); !ok) return ok.error();
  const json::value* v = o->if_contains("grace_seconds");
  if (v == nullptr || v->is_null()) return default_grace;
  auto grace = NumberField(*v, "grace_seconds");
  if (!grace) return grace.error();
  if (!(*grace >= 0) || *grace > kMaxRotationGraceSeconds) {
    return Invalid("grace_seconds must be from 0 to 2592000 (30 days)", "grace_seconds");
  }
  return *grace;
}

Result<void> CheckPolicy(const limits::KeyPolicy& policy, std::span<const std::string> models,
                         std::string_view where) {
  auto fail = [&](const Error& e) {
    return Error(ErrorCode::kInvalidRequest, std::string(where) + ": " + e.message, e.param);
  };
  for (const std::string& m : policy.models) {
    if (auto ok = CheckModelName(m, models, "models", true); !ok) return fail(ok.error());
  }
  for (const limits::ModelLimits& m : policy.per_model) {
    if (auto ok = CheckModelName(m.model, models, "limits.per_model", false); !ok) {
      return fail(ok.error());
    }
  }
  return {};
}

std::string EncodeStored(const KeyRecord& record) {
  json::object o = View(record);
  o.erase("object");
  o["sha256"] = HexEncode(record.digest);
  if (record.previous_digest) {
    o["previous_sha256"] = HexEncode(*record.previous_digest);
    o["previous_valid_until"] = Number(record.previous_valid_until);
  }
  return json::serialize(o);
}

Result<KeyRecord> DecodeStored(std::string_view text) {
  boost::system::error_code ec;
  json::value parsed = json::parse(text, ec);
  if (ec) return Damaged("not JSON");
  const json::object* o = parsed.if_object();
  if (o == nullptr) return Damaged("not an object");
  auto str = [&](std::string_view k) -> std::string {
    const json::value* v = o->if_contains(k);
    const json::string* s = v != nullptr ? v->if_string() : nullptr;
    return s != nullptr ? std::string(*s) : std::string();
  };
  auto num = [&](std::string_view k) -> double {
    const json::value* v = o->if_contains(k);
    if (v == nullptr) return 0;
    if (const auto* i = v->if_int64()) return static_cast<double>(*i);
    if (const auto* u = v->if_uint64()) return static_cast<double>(*u);
    if (const auto* f = v->if_double()) return *f;
    return 0;
  };
  KeyRecord r;
  r.id = str("id");
  r.name = str("name");
  r.tenant = str("tenant");
  auto digest = DigestFromHex(str("sha256"));
  if (r.id.empty() || r.name.empty() || r.tenant.empty() || !digest) {
    return Damaged("id, name, tenant or sha256 missing");
  }
  r.digest = *digest;
  if (auto previous = DigestFromHex(str("previous_sha256"))) {
    r.previous_digest = previous;
    r.previous_valid_until = num("previous_valid_until");
  }
  r.created_at = num("created_at");
  r.expires_at = num("expires_at");
  // The policy fields were validated when written; they are read back with the same parsers
  // (against no model list: models may have left the configuration since, which only makes a
  // restriction stricter, so names are taken as stored).
  if (const json::value* v = o->if_contains("scopes")) {
    auto scopes = ParseScopes(*v);
    if (!scopes) return Damaged("scopes");
    r.user = scopes->first;
    r.admin = scopes->second;
  }
  if (const json::value* v = o->if_contains("models"); v != nullptr && v->is_array()) {
    for (const json::value& m : v->as_array()) {
      if (const json::string* s = m.if_string()) r.policy.models.emplace_back(*s);
    }
  }
  if (const json::value* v = o->if_contains("limits"); v != nullptr && v->is_object()) {
    const json::object& l = v->as_object();
    auto read = [](const json::object& obj, limits::RateLimits& out) {
      for (auto [field, target] : {std::pair{"rpm", &out.rpm}, std::pair{"tpm", &out.tpm},
                                   std::pair{"max_parallel", &out.max_parallel}}) {
        if (const json::value* n = obj.if_contains(field); n != nullptr && n->is_int64()) {
          *target = n->as_int64();
        }
      }
    };
    read(l, r.policy.limits);
    if (const json::value* pm = l.if_contains("per_model"); pm != nullptr && pm->is_object()) {
      for (const auto& member : pm->as_object()) {
        limits::ModelLimits m;
        m.model = std::string(member.key());
        if (member.value().is_object()) read(member.value().as_object(), m.limits);
        r.policy.per_model.push_back(std::move(m));
      }
    }
  }
  if (const json::value* v = o->if_contains("budget"); v != nullptr && !v->is_null()) {
    auto budget = ParseBudget(*v);
    if (!budget) return Damaged("budget");
    r.policy.budget = *budget;
  }
  if (const json::value* v = o->if_contains("metadata"); v != nullptr && v->is_object()) {
    r.metadata = json::serialize(*v);
  }
  return r;
}

std::string RenderKey(const KeyRecord& record, std::string_view secret) {
  json::object o = View(record);
  if (!secret.empty()) o["key"] = secret;
  return json::serialize(o);
}

Principal ToPrincipal(const KeyRecord& record) {
  Principal p;
  p.name = record.name;
  p.user = record.user;
  p.admin = record.admin;
  p.policy = record.policy;
  p.tenant = record.tenant;
  return p;
}

}  // namespace orchestra::auth
