#include "api/openapi.hpp"

#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>

#include <boost/json.hpp>

#include "api/context.hpp"
#include "observability/log.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr std::string_view kPending = "x-orchestra-pending";
constexpr std::string_view kUndescribed = "x-orchestra-undescribed";

// OpenAPI's name for a method ("get"); empty for one it has no field for.
std::string_view OperationField(http::verb method) {
  switch (method) {
    case http::verb::get:
      return "get";
    case http::verb::post:
      return "post";
    case http::verb::put:
      return "put";
    case http::verb::patch:
      return "patch";
    case http::verb::delete_:
      return "delete";
    case http::verb::head:
      return "head";
    case http::verb::options:
      return "options";
    default:
      return {};
  }
}

constexpr std::string_view kMethods[] = {"get",    "post", "put",    "patch",
                                         "delete", "head", "options"};

std::string Label(std::string_view method, std::string_view path) {
  std::string label(method);
  for (char& c : label)
    c = static_cast<char>(c - ('a' - 'A'));
  label += ' ';
  label += path;
  return label;
}

// A stub for a route the description lacks: enough to be valid, marked for the tests.
json::object Stub(const Route& route) {
  json::object op;
  op["summary"] = "Undescribed route";
  op["description"] = "Registered by the server but not described in src/api/openapi.json.";
  op[kUndescribed] = true;
  json::array params;
  for (const Route::Segment& s : route.segments) {
    if (!s.param) continue;
    json::object p;
    p["name"] = s.text;
    p["in"] = "path";
    p["required"] = true;
    p["schema"] = json::object{{"type", "string"}};
    params.emplace_back(std::move(p));
  }
  if (!params.empty()) op["parameters"] = std::move(params);
  json::object response;
  response["description"] = "Not described.";
  op["responses"] = json::object{{"default", std::move(response)}};
  return op;
}

void SetSecurity(json::object& op, Access access) {
  if (access == Access::kPublic) {
    op["security"] = json::array();
    op.erase("x-orchestra-scope");
    return;
  }
  op["security"] = json::array{json::object{{"bearer", json::array()}}};
  op["x-orchestra-scope"] = access == Access::kAdmin ? "admin" : "user";
}

}  // namespace

OpenApiDocument BuildOpenApi(const Router& router, std::string_view version) {
  json::value parsed = json::parse(OpenApiDescription());
  if (!parsed.is_object() || !parsed.as_object().contains("paths") ||
      !parsed.as_object().at("paths").is_object()) {
    throw std::runtime_error("src/api/openapi.json is not an OpenAPI document with paths");
  }
  json::object& doc = parsed.as_object();
  if (auto* info = doc.if_contains("info"); info != nullptr && info->is_object()) {
    info->as_object()["version"] = version;
  }
  json::object& paths = doc.at("paths").as_object();
  OpenApiDocument out;
  std::set<std::string> served;
  for (const auto& route : router.routes()) {
    const std::string_view method = OperationField(route->method);
    if (method.empty()) continue;
    json::value& item = paths[route->pattern];
    if (!item.is_object()) item = json::object();
    json::object& ops = item.as_object();
    json::value* op = ops.if_contains(method);
    if (op == nullptr || !op->is_object()) {
      ops[method] = Stub(*route);
      op = &ops[method];
      out.undescribed.push_back(Label(method, route->pattern));
    }
    op->as_object().erase(kPending);  // served now
    SetSecurity(op->as_object(), route->access);
    served.insert(Label(method, route->pattern));
  }
  // Described operations the router does not serve must be marked as pending.
  for (const auto& [path, item] : paths) {
    if (!item.is_object()) continue;
    for (std::string_view method : kMethods) {
      const json::value* op = item.as_object().if_contains(method);
      if (op == nullptr || !op->is_object() || op->as_object().contains(kPending)) continue;
      std::string label = Label(method, path);
      if (!served.contains(label)) out.not_served.push_back(std::move(label));
    }
  }
  out.json = json::serialize(parsed);
  return out;
}

void AddOpenApiRoute(Router& router, std::string_view version) {
  // Built on the first request, not at start-up: parsing and serialising the description takes
  // most of a millisecond, a tenth of the start-up budget (DESIGN.md §5), for a document few
  // processes are ever asked for. Routes are all registered by then (the router is read-only
  // once the server runs), so the document is the same whenever it is built.
  struct State {
    std::once_flag once;
    std::string body;
    const Router* router = nullptr;
    std::string version;
  };
  auto state = std::make_shared<State>();
  state->router = &router;
  state->version = std::string(version);
  router.Add(
      http::verb::get, "/openapi.json",
      [state](RequestContext& ctx) -> asio::awaitable<void> {
        std::call_once(state->once, [&] {
          OpenApiDocument doc = BuildOpenApi(*state->router, state->version);
          for (const std::string& route : doc.undescribed) {
            observability::Log(observability::Severity::kWarning,
                               "route not described in /openapi.json (src/api/openapi.json)",
                               {{"route", route}});
          }
          for (const std::string& route : doc.not_served) {
            observability::Log(observability::Severity::kWarning,
                               "/openapi.json describes a route that is not served",
                               {{"route", route}});
          }
          state->body = std::move(doc.json);
        });
        ctx.Json(state->body);
        co_return;
      },
      Access::kPublic);
}

}  // namespace orchestra::api
