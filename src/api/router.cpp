#include "api/router.hpp"

#include <stdexcept>

#include "common/text.hpp"

namespace orchestra::api {
namespace {

bool Serves(const Route& r, http::verb method) {
  return r.method == method || (method == http::verb::head && r.method == http::verb::get);
}

void AppendAllow(std::string& allow, http::verb method) {
  std::string_view name = http::to_string(method);
  if (allow.find(name) != std::string::npos) return;
  if (!allow.empty()) allow += ", ";
  allow += name;
  if (method == http::verb::get) AppendAllow(allow, http::verb::head);
}

}  // namespace

Route& Router::Add(http::verb method, std::string pattern, RouteHandler handler, Access access) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + pattern);
  }
  auto route = std::make_unique<Route>();
  route->method = method;
  route->pattern = pattern;
  route->handler = std::move(handler);
  route->access = access;
  route->index = routes_.size();
  bool has_param = false;
  std::string_view rest(pattern);
  rest.remove_prefix(1);
  while (!rest.empty() || route->segments.empty()) {
    auto slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    Route::Segment s;
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      s.text = std::string(seg.substr(1, seg.size() - 2));
      s.param = true;
      has_param = true;
    } else {
      if (seg.find_first_of("{}") != std::string_view::npos) {
        throw std::invalid_argument("malformed route pattern: " + pattern);
      }
      s.text = std::string(seg);
    }
    route->segments.push_back(std::move(s));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  for (const auto& existing : routes_) {
    if (existing->method == method && existing->pattern == pattern) {
      throw std::invalid_argument("duplicate route: " + std::string(http::to_string(method)) + " " +
                                  pattern);
    }
  }
  const Route* raw = route.get();
  if (has_param) {
    param_routes_.push_back(raw);
  } else {
    static_routes_[pattern].push_back(raw);
  }
  routes_.push_back(std::move(route));
  return *routes_.back();
}

bool Router::MatchSegments(const Route& route, std::string_view path,
                           std::vector<PathParam>* params) {
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  for (std::size_t i = 0; i < route.segments.size(); ++i) {
    const bool last = i + 1 == route.segments.size();
    auto slash = path.find('/');
    if (last != (slash == std::string_view::npos)) return false;
    std::string_view seg = path.substr(0, slash);
    const Route::Segment& s = route.segments[i];
    if (s.param) {
      if (seg.empty()) return false;
      if (params != nullptr) params->push_back({s.text, std::string(seg)});
    } else if (seg != s.text) {
      return false;
    }
    if (!last) path.remove_prefix(slash + 1);
  }
  return true;
}

RouteMatch Router::Match(http::verb method, std::string_view path) const {
  RouteMatch m;
  if (auto it = static_routes_.find(path); it != static_routes_.end()) {
    for (const Route* r : it->second) {
      if (Serves(*r, method)) {
        m.kind = RouteMatch::Kind::kFound;
        m.route = r;
        return m;
      }
    }
    for (const Route* r : it->second)
      AppendAllow(m.allow, r->method);
  }
  for (const Route* r : param_routes_) {
    if (!MatchSegments(*r, path, nullptr)) continue;
    if (Serves(*r, method)) {
      m.kind = RouteMatch::Kind::kFound;
      m.route = r;
      m.allow.clear();
      MatchSegments(*r, path, &m.params);
      for (PathParam& p : m.params) {
        auto decoded = PercentDecode(p.value);
        if (!decoded) {
          m.kind = RouteMatch::Kind::kBadParameter;
          m.bad_param = p.name;
          return m;
        }
        p.value = std::move(*decoded);
      }
      return m;
    }
    AppendAllow(m.allow, r->method);
  }
  m.kind = m.allow.empty() ? RouteMatch::Kind::kNotFound : RouteMatch::Kind::kMethodNotAllowed;
  return m;
}

}  // namespace orchestra::api
