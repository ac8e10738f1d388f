#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>

// Method + path → handler. Patterns are literal segments and `{name}` parameters
// (`/checkpoints/{agent_id}/{checkpoint_id}`); a parameter matches one non-empty segment and
// is percent-decoded (a broken escape is kBadParameter, never taken literally). HEAD is served by
// the GET route. A path that exists under other methods is a 405 with their Allow list; no match at
// all is a 404. Routes are added at start-up and the router is read-only afterwards (thread-safe to
// match from every worker).
namespace orchestra::api {

namespace http = boost::beast::http;
class RequestContext;
using RouteHandler = std::function<boost::asio::awaitable<void>(RequestContext&)>;

// Who may call a route. kPublic skips authentication and load shedding (probes, /warmup).
enum class Access : std::uint8_t { kPublic, kUser, kAdmin };

struct Route {
  http::verb method;
  std::string pattern;  // also the metrics label
  RouteHandler handler;
  Access access = Access::kUser;
  bool probe = false;  // a health probe: no access log line unless observability.log_probes
  // The handler decodes the body, then calls RequestContext::Admit with the model it names;
  // otherwise (non-public routes) the pipeline admits the request before the handler runs.
  bool admits_in_handler = false;
  std::size_t index = 0;

  struct Segment {
    std::string text;  // literal text, or the parameter's name
    bool param = false;
  };
  std::vector<Segment> segments;
};

struct PathParam {
  std::string_view name;
  std::string value;
};

struct RouteMatch {
  // kBadParameter: the route matched but a parameter's percent-encoding is broken ("%zz");
  // `bad_param` names it.
  enum class Kind : std::uint8_t { kFound, kNotFound, kMethodNotAllowed, kBadParameter };
  Kind kind = Kind::kNotFound;
  const Route* route = nullptr;
  std::vector<PathParam> params;
  std::string allow;  // for kMethodNotAllowed, e.g. "GET, HEAD"
  std::string_view bad_param;
};

class Router {
 public:
  // Throws std::invalid_argument for a malformed pattern or a duplicate method + pattern.
  Route& Add(http::verb method, std::string pattern, RouteHandler handler,
             Access access = Access::kUser);
  RouteMatch Match(http::verb method, std::string_view path) const;
  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  static bool MatchSegments(const Route& route, std::string_view path,
                            std::vector<PathParam>* params);

  // Lets the static-route map be searched with a string_view, without building a string.
  struct PathHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::vector<std::unique_ptr<Route>> routes_;
  std::unordered_map<std::string, std::vector<const Route*>, PathHash, std::equal_to<>>
      static_routes_;
  std::vector<const Route*> param_routes_;
};

}  // namespace orchestra::api
