#include "versions/record.hpp"

#include <cmath>

#include <boost/json.hpp>

namespace orchestra::versions {
namespace {

namespace json = boost::json;

Error Damaged(std::string what) {
  return Error(ErrorCode::kInternal, "stored model record: " + std::move(what));
}

const json::string* StringAt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

DeploymentState StateFrom(std::string_view s) {
  if (s == "blue_green") return DeploymentState::kBlueGreen;
  if (s == "promoted") return DeploymentState::kPromoted;
  if (s == "rolled_back") return DeploymentState::kRolledBack;
  return DeploymentState::kNone;
}

}  // namespace

std::string_view ToString(DeploymentState state) {
  switch (state) {
    case DeploymentState::kNone:
      return "none";
    case DeploymentState::kBlueGreen:
      return "blue_green";
    case DeploymentState::kPromoted:
      return "promoted";
    case DeploymentState::kRolledBack:
      return "rolled_back";
  }
  return "none";
}

const Version* ModelRecord::Find(std::string_view version) const {
  for (const Version& v : versions) {
    if (v.version == version) return &v;
  }
  return nullptr;
}

std::string Encode(const ModelRecord& record) {
  json::object out;
  out["model_id"] = record.model_id;
  json::array versions;
  for (const Version& v : record.versions) {
    json::array capabilities;
    for (const std::string& c : v.capabilities)
      capabilities.emplace_back(c);
    versions.emplace_back(json::object{{"version", v.version},
                                       {"endpoint", v.endpoint},
                                       {"capabilities", std::move(capabilities)},
                                       {"created_at", v.created_at}});
  }
  out["versions"] = std::move(versions);
  if (record.deployment.state == DeploymentState::kNone) {
    out["deployment"] = nullptr;
  } else {
    out["deployment"] = json::object{{"state", ToString(record.deployment.state)},
                                     {"blue_version", record.deployment.blue},
                                     {"green_version", record.deployment.green},
                                     {"green_traffic_percentage", record.deployment.green_percent}};
  }
  return json::serialize(out);
}

Result<ModelRecord> Decode(std::string_view text) {
  boost::system::error_code ec;
  json::value parsed = json::parse(text, ec);
  if (ec) return Damaged("not JSON (" + ec.message() + ")");
  const json::object* o = parsed.if_object();
  if (o == nullptr) return Damaged("not an object");
  ModelRecord record;
  const json::string* model_id = StringAt(*o, "model_id");
  if (model_id == nullptr || model_id->empty()) return Damaged("no model_id");
  record.model_id = std::string(*model_id);

  const json::value* versions = o->if_contains("versions");
  if (versions == nullptr || !versions->is_array()) return Damaged("no versions array");
  for (const json::value& item : versions->get_array()) {
    const json::object* v = item.if_object();
    if (v == nullptr) return Damaged("a version is not an object");
    const json::string* name = StringAt(*v, "version");
    const json::string* endpoint = StringAt(*v, "endpoint");
    if (name == nullptr || endpoint == nullptr || !SplitEndpoint(*endpoint)) {
      return Damaged("a version lacks its name or a provider/model endpoint");
    }
    Version version{std::string(*name), std::string(*endpoint), {}, 0};
    if (const json::value* caps = v->if_contains("capabilities"); caps && caps->is_array()) {
      for (const json::value& c : caps->get_array()) {
        if (c.is_string()) version.capabilities.emplace_back(c.get_string());
      }
    }
    if (const json::value* at = v->if_contains("created_at"); at && at->is_number()) {
      version.created_at = at->to_number<double>();
    }
    if (record.Find(version.version) != nullptr) return Damaged("a version is listed twice");
    record.versions.push_back(std::move(version));
  }

  const json::value* deployment = o->if_contains("deployment");
  if (deployment != nullptr && !deployment->is_null()) {
    const json::object* d = deployment->if_object();
    if (d == nullptr) return Damaged("deployment is not an object");
    const json::string* state = StringAt(*d, "state");
    const json::string* blue = StringAt(*d, "blue_version");
    const json::string* green = StringAt(*d, "green_version");
    const json::value* percent = d->if_contains("green_traffic_percentage");
    if (state == nullptr || StateFrom(*state) == DeploymentState::kNone || blue == nullptr ||
        green == nullptr || percent == nullptr || !percent->is_int64()) {
      return Damaged("malformed deployment");
    }
    const std::int64_t p = percent->get_int64();
    if (p < 0 || p > 100) return Damaged("green_traffic_percentage out of range");
    record.deployment = {StateFrom(*state), std::string(*blue), std::string(*green),
                         static_cast<int>(p)};
    if (record.Find(record.deployment.blue) == nullptr ||
        record.Find(record.deployment.green) == nullptr) {
      return Damaged("the deployment names a version that is not registered");
    }
  }
  return record;
}

std::optional<Endpoint> SplitEndpoint(std::string_view endpoint) {
  const std::size_t slash = endpoint.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == endpoint.size()) {
    return std::nullopt;
  }
  return Endpoint{endpoint.substr(0, slash), endpoint.substr(slash + 1)};
}

std::vector<orchestration::RouteTable::PlanTarget> PlanFor(const ModelRecord& record) {
  std::vector<orchestration::RouteTable::PlanTarget> plan;
  const Deployment& d = record.deployment;
  auto add = [&](std::string_view version, double weight) {
    const Version* v = record.Find(version);
    if (v == nullptr) return;
    if (auto e = SplitEndpoint(v->endpoint))
      plan.push_back({e->provider, e->upstream_model, weight});
  };
  switch (d.state) {
    case DeploymentState::kNone:
      break;
    case DeploymentState::kBlueGreen:
      // A side with 0 % is left out, not kept as a standby: the balancer would send it the
      // requests the other side fails (balancer.hpp), which is not what 0 % means.
      if (d.green_percent < 100) add(d.blue, 100 - d.green_percent);
      if (d.green_percent > 0) add(d.green, d.green_percent);
      break;
    case DeploymentState::kPromoted:
      add(d.green, 1);
      break;
    case DeploymentState::kRolledBack:
      add(d.blue, 1);
      break;
  }
  return plan;
}

Result<void> CheckName(std::string_view text, std::size_t max_bytes, std::string_view field) {
  if (text.empty()) {
    return Error(ErrorCode::kInvalidRequest, std::string(field) + " must not be empty",
                 std::string(field));
  }
  if (text.size() > max_bytes) {
    return Error(ErrorCode::kInvalidRequest,
                 std::string(field) + " is longer than " + std::to_string(max_bytes) + " bytes",
                 std::string(field));
  }
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      return Error(ErrorCode::kInvalidRequest,
                   std::string(field) + " must not contain control characters", std::string(field));
    }
  }
  return {};
}

}  // namespace orchestra::versions
