#include "api/spend.hpp"

#include <array>
#include <map>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "api/context.hpp"
#include "api/query.hpp"
#include "common/text.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

Error Invalid(std::string message, std::string_view param) {
  return {ErrorCode::kInvalidRequest, std::move(message), std::string(param)};
}

struct SpendQuery {
  std::string key;
  std::string model;
  std::optional<std::int64_t> from;
  std::optional<std::int64_t> to;
  std::string group_by = "key";
};

constexpr std::array<std::string_view, 5> kParams{"key", "model", "from", "to", "group_by"};
constexpr std::array<std::string_view, 3> kGroups{"key", "model", "day"};

Result<SpendQuery> ParseSpendQuery(std::string_view query) {
  auto params = QueryParams::Parse(query, kParams);
  if (!params) return params.error();
  SpendQuery q;
  if (const std::string* key = params->Get("key")) q.key = *key;
  if (const std::string* model = params->Get("model")) q.model = *model;
  if (const std::string* group = params->Get("group_by")) {
    if (std::find(kGroups.begin(), kGroups.end(), *group) == kGroups.end()) {
      std::string message = "group_by must be key, model or day";
      if (auto near = ClosestMatch(*group, kGroups))
        message += "; did you mean '" + std::string(*near) + "'?";
      return Invalid(std::move(message), "group_by");
    }
    q.group_by = *group;
  }
  for (std::string_view name : {"from", "to"}) {
    const std::string* text = params->Get(name);
    if (text == nullptr) continue;
    auto day = limits::ParseDay(*text);
    if (!day) return Invalid(std::string(name) + " must be a day as YYYY-MM-DD (UTC)", name);
    (name == "from" ? q.from : q.to) = *day;
  }
  if (q.from && q.to && *q.from > *q.to) return Invalid("from is after to", "from");
  return q;
}

struct Totals {
  double requests = 0;
  double prompt_tokens = 0;
  double completion_tokens = 0;
  double cost_usd = 0;
};

void AddFields(Totals& t, const storage::Counter& c) {
  for (const auto& [name, value] : c.fields) {
    if (name == "requests") t.requests += value;
    if (name == "prompt_tokens") t.prompt_tokens += value;
    if (name == "completion_tokens") t.completion_tokens += value;
    if (name == "cost_usd") t.cost_usd += value;
  }
}

json::object ToJson(const Totals& t) {
  json::object o;
  o["requests"] = static_cast<std::int64_t>(t.requests);
  o["prompt_tokens"] = static_cast<std::int64_t>(t.prompt_tokens);
  o["completion_tokens"] = static_cast<std::int64_t>(t.completion_tokens);
  o["cost_usd"] = t.cost_usd;
  return o;
}

asio::awaitable<void> Spend(storage::RecordStore* store, RequestContext& ctx) {
  auto query = ParseSpendQuery(ctx.request.query);
  if (!query) {
    ctx.Fail(query.error());
    co_return;
  }
  if (store == nullptr) {
    ctx.Fail(Error(ErrorCode::kUnavailable, "spend is not kept without a storage backend"));
    co_return;
  }
  const SpendQuery& q = *query;
  const std::string prefix = q.key.empty() ? std::string() : q.key + '\x1f';
  std::map<std::string, Totals> groups;
  Totals total;
  std::string cursor;
  do {
    auto page = co_await store->Counters(storage::kSystemTenant, limits::kSpendCollection, prefix,
                                         storage::kMaxRecordListLimit, cursor);
    if (!page) {
      ctx.Fail(page.error());
      co_return;
    }
    for (const storage::Counter& c : page->counters) {
      const std::string_view id = c.id;
      const auto a = id.find('\x1f');
      const auto b = a == std::string_view::npos ? a : id.find('\x1f', a + 1);
      if (b == std::string_view::npos) continue;
      const std::string_view key = id.substr(0, a);
      const std::string_view day_text = id.substr(a + 1, b - a - 1);
      const std::string_view model = id.substr(b + 1);
      if (!q.key.empty() && key != q.key) continue;
      if (!q.model.empty() && model != q.model) continue;
      const auto day = limits::ParseDay(day_text);
      if (!day || (q.from && *day < *q.from) || (q.to && *day > *q.to)) continue;
      const std::string_view group = q.group_by == "key"     ? key
                                     : q.group_by == "model" ? model
                                                             : day_text;
      AddFields(groups[std::string(group)], c);
      AddFields(total, c);
    }
    cursor = std::move(page->next_cursor);
  } while (!cursor.empty());

  json::object out;
  out["object"] = "spend";
  out["group_by"] = q.group_by;
  out["from"] = q.from ? json::value(limits::DayText(*q.from)) : json::value(nullptr);
  out["to"] = q.to ? json::value(limits::DayText(*q.to)) : json::value(nullptr);
  json::array data;
  for (const auto& [group, totals] : groups) {
    json::object row = ToJson(totals);
    row[q.group_by] = group;
    data.push_back(std::move(row));
  }
  out["data"] = std::move(data);
  out["total"] = ToJson(total);
  ctx.Json(json::serialize(out));
}

json::object LimitsJson(const limits::RateLimits& l) {
  json::object o;
  o["rpm"] = l.rpm;
  o["tpm"] = l.tpm;
  o["max_parallel"] = l.max_parallel;
  return o;
}

asio::awaitable<void> Me(limits::SpendLedger& ledger, RequestContext& ctx) {
  const auth::Principal& p = ctx.principal;
  const limits::KeyPolicy& policy = p.policy;
  json::object out;
  out["name"] = p.name;
  json::array scopes;
  if (p.user) scopes.emplace_back("user");
  if (p.admin) scopes.emplace_back("admin");
  out["scopes"] = std::move(scopes);
  json::object limits = LimitsJson(policy.limits);
  json::object per_model;
  for (const limits::ModelLimits& m : policy.per_model)
    per_model[m.model] = LimitsJson(m.limits);
  limits["per_model"] = std::move(per_model);
  out["limits"] = std::move(limits);
  if (policy.budget) {
    const limits::Budget& b = *policy.budget;
    const double spent = ledger.PeriodSpend(p.name, b.period);
    json::object budget;
    budget["usd"] = b.usd;
    budget["period"] = limits::ToString(b.period);
    const std::int64_t today =
        limits::DayOf(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count());
    budget["period_start"] = limits::DayText(limits::PeriodStart(b.period, today));
    budget["spent_usd"] = spent;
    budget["remaining_usd"] = std::max(b.usd - spent, 0.0);
    out["budget"] = std::move(budget);
  } else {
    out["budget"] = nullptr;
  }
  ctx.Json(json::serialize(out));
  co_return;
}

}  // namespace

void AddSpendRoutes(Router& router, storage::RecordStore* store, limits::SpendLedger& ledger) {
  router.Add(
      http::verb::get, "/admin/spend", [store](RequestContext& ctx) { return Spend(store, ctx); },
      Access::kAdmin);
  router.Add(
      http::verb::get, "/v1/me", [&ledger](RequestContext& ctx) { return Me(ledger, ctx); },
      Access::kUser);
}

}  // namespace orchestra::api
