#include "versions/service.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "common/text.hpp"
#include "observability/log.hpp"

namespace orchestra::versions {
namespace {

namespace asio = boost::asio;
using observability::Log;
using observability::Severity;
using storage::kSystemTenant;

// A write that loses to a concurrent writer is read and tried again this many times in all.
constexpr int kWriteAttempts = 4;

// Client-supplied text in a message: bounded.
std::string Quoted(std::string_view name) {
  constexpr std::size_t kMax = 128;
  std::string out = "'";
  out.append(name.substr(0, kMax));
  if (name.size() > kMax) out += "...";
  out += "'";
  return out;
}

Error Invalid(std::string message, std::string_view param) {
  return Error(ErrorCode::kInvalidRequest, std::move(message), std::string(param));
}

Result<void> CheckPercent(int percent) {
  if (percent < 0 || percent > 100) {
    return Invalid("green_traffic_percentage must be an integer from 0 to 100",
                   "green_traffic_percentage");
  }
  return {};
}

Error NoDeployment(const ModelRecord& record) {
  return Error(ErrorCode::kConflict, "the model " + Quoted(record.model_id) +
                                         " has no blue/green deployment; create one with POST "
                                         "/models/deployments/blue-green");
}

}  // namespace

Service::Service(storage::RecordStore& records, orchestration::RouteTable& routes,
                 ServiceOptions options)
    : records_(records),
      routes_(routes),
      options_(std::move(options)),
      follower_(
          records,
          [](const storage::Change& c) {
            return c.tenant == kSystemTenant && c.collection == kCollection;
          },
          [this](std::vector<storage::Change> changes) -> asio::awaitable<Result<void>> {
            for (const storage::Change& c : changes) {
              // On an error the follower's cursor stays: the next poll reads these again.
              if (auto refreshed = co_await Refresh(c.id); !refreshed) co_return refreshed.error();
            }
            co_return Result<void>{};
          },
          [this] { return ReloadAll(); }),
      watcher_(follower_, {.poll_interval = options_.poll_interval,
                           .reload_interval = options_.reload_interval,
                           .subject = "model versions",
                           .kept = "routes stay as they are"}) {}

Service::~Service() {
  Stop();
}

double Service::Now() const {
  if (options_.now) return options_.now();
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Error Service::NotConfigured(std::string_view model_id) const {
  std::vector<std::string_view> names;
  for (const orchestration::ModelRoute* r : routes_.public_routes())
    names.push_back(r->name);
  std::string message = "the model " + Quoted(model_id) +
                        " is not configured: versions belong to a model under `models:` in the "
                        "configuration";
  if (auto near = ClosestMatch(model_id, names)) {
    message += " (did you mean '" + std::string(*near) + "'?)";
  }
  return Error(ErrorCode::kNotFound, std::move(message), "model_id");
}

// Read, change, write back on the version read; a concurrent writer makes the write fail and it
// is tried again on what that writer left. `change` validates against the record and returns an
// error to leave it unwritten.
asio::awaitable<Result<void>> Service::Update(std::string_view model_id, const Change& change) {
  for (int attempt = 1;; ++attempt) {
    auto stored = co_await records_.Get(kSystemTenant, kCollection, model_id);
    if (!stored) co_return stored.error();
    ModelRecord record;
    storage::Expect expect = storage::Expect::Absent();
    if (*stored) {
      auto decoded = Decode((*stored)->value);
      if (!decoded) {
        Log(Severity::kError, "model versions: stored record is damaged",
            {{"model", model_id}, {"error", decoded.error().message}});
        co_return decoded.error();
      }
      record = std::move(*decoded);
      expect = storage::Expect::Version((*stored)->version);
    } else {
      record.model_id = std::string(model_id);
    }
    if (auto changed = change(record); !changed) co_return changed.error();
    // The route must be able to take the plan before the change is stored: a stored change this
    // instance then refused would be half done.
    if (auto plan = PlanFor(record); !plan.empty()) {
      if (auto fits = routes_.CheckPlan(model_id, config::Strategy::kWeighted, plan); !fits) {
        co_return fits.error();
      }
    }
    auto written =
        co_await records_.Put(kSystemTenant, kCollection, model_id, Encode(record), expect);
    if (written) {
      Apply(model_id, *written, record);
      co_return Result<void>{};
    }
    if (written.error().code != ErrorCode::kConflict) co_return written.error();
    if (attempt == kWriteAttempts) {
      co_return Error(ErrorCode::kConflict, "the versions of the model " + Quoted(model_id) +
                                                " kept changing under this request; try again");
    }
  }
}

asio::awaitable<Result<Version>> Service::Register(RegisterRequest request) {
  if (routes_.FindPublic(request.model_id) == nullptr) {
    co_return NotConfigured(request.model_id);
  }
  if (auto ok = CheckName(request.version, kMaxVersionBytes, "version"); !ok) {
    co_return ok.error();
  }
  if (request.endpoint.size() > kMaxEndpointBytes) {
    co_return Invalid("endpoint is longer than " + std::to_string(kMaxEndpointBytes) + " bytes",
                      "endpoint");
  }
  auto endpoint = SplitEndpoint(request.endpoint);
  if (!endpoint) {
    co_return Invalid(
        "endpoint must be provider/model, naming a configured provider and its "
        "upstream model (for example 'openai/gpt-4o-mini'), not " +
            Quoted(request.endpoint),
        "endpoint");
  }
  if (auto usable = routes_.CheckTarget(endpoint->provider, endpoint->upstream_model); !usable) {
    co_return Invalid("endpoint " + Quoted(request.endpoint) + ": " + usable.error().message,
                      "endpoint");
  }
  if (request.capabilities.size() > kMaxCapabilities) {
    co_return Invalid("at most " + std::to_string(kMaxCapabilities) + " capabilities",
                      "capabilities");
  }
  for (const std::string& c : request.capabilities) {
    if (auto ok = CheckName(c, kMaxCapabilityBytes, "capabilities"); !ok) co_return ok.error();
  }

  // Milliseconds are as fine as a registration time needs, and print exactly.
  Version version{request.version, request.endpoint, request.capabilities,
                  std::round(Now() * 1000) / 1000};
  auto updated = co_await Update(request.model_id, [&](ModelRecord& record) -> Result<void> {
    for (Version& v : record.versions) {
      if (v.version == version.version) {
        v = version;  // registered again: replaced (AI Orchestra does the same)
        return {};
      }
    }
    if (record.versions.size() >= kMaxVersionsPerModel) {
      return Error(ErrorCode::kConflict,
                   "the model " + Quoted(record.model_id) + " has " +
                       std::to_string(kMaxVersionsPerModel) + " versions, the most it may have",
                   "version");
    }
    record.versions.push_back(version);
    return {};
  });
  if (!updated) co_return updated.error();
  co_return version;
}

asio::awaitable<Result<ModelRecord>> Service::Versions(std::string_view model_id) {
  auto stored = co_await records_.Get(kSystemTenant, kCollection, model_id);
  if (!stored) co_return stored.error();
  if (!*stored) {
    if (routes_.FindPublic(model_id) == nullptr) co_return NotConfigured(model_id);
    ModelRecord empty;
    empty.model_id = std::string(model_id);
    co_return empty;
  }
  co_return Decode((*stored)->value);
}

asio::awaitable<Result<void>> Service::DeployBlueGreen(std::string_view model_id,
                                                       std::string_view blue_version,
                                                       std::string_view green_version,
                                                       int green_percent) {
  if (routes_.FindPublic(model_id) == nullptr) co_return NotConfigured(model_id);
  if (auto ok = CheckPercent(green_percent); !ok) co_return ok.error();
  co_return co_await Update(model_id, [&](ModelRecord& record) -> Result<void> {
    for (auto [name, param] :
         {std::pair{blue_version, "blue_version"}, std::pair{green_version, "green_version"}}) {
      if (record.Find(name) == nullptr) {
        return Error(ErrorCode::kNotFound,
                     "the model " + Quoted(record.model_id) + " has no version " + Quoted(name) +
                         "; register it with POST /models/versions/register",
                     param);
      }
    }
    record.deployment = {DeploymentState::kBlueGreen, std::string(blue_version),
                         std::string(green_version), green_percent};
    return {};
  });
}

asio::awaitable<Result<void>> Service::ShiftTraffic(std::string_view model_id, int green_percent) {
  if (routes_.FindPublic(model_id) == nullptr) co_return NotConfigured(model_id);
  if (auto ok = CheckPercent(green_percent); !ok) co_return ok.error();
  co_return co_await Update(model_id, [&](ModelRecord& record) -> Result<void> {
    if (record.deployment.state == DeploymentState::kNone) return NoDeployment(record);
    if (record.deployment.state != DeploymentState::kBlueGreen) {
      return Error(
          ErrorCode::kConflict,
          "the blue/green deployment of the model " + Quoted(record.model_id) + " was " +
              (record.deployment.state == DeploymentState::kPromoted ? "promoted" : "rolled back") +
              "; create a new one with POST /models/deployments/blue-green");
    }
    record.deployment.green_percent = green_percent;
    return {};
  });
}

asio::awaitable<Result<void>> Service::PromoteGreen(std::string_view model_id) {
  if (routes_.FindPublic(model_id) == nullptr) co_return NotConfigured(model_id);
  co_return co_await Update(model_id, [](ModelRecord& record) -> Result<void> {
    if (record.deployment.state == DeploymentState::kNone) return NoDeployment(record);
    record.deployment.state = DeploymentState::kPromoted;
    return {};
  });
}

asio::awaitable<Result<void>> Service::Rollback(std::string_view model_id) {
  if (routes_.FindPublic(model_id) == nullptr) co_return NotConfigured(model_id);
  co_return co_await Update(model_id, [](ModelRecord& record) -> Result<void> {
    if (record.deployment.state == DeploymentState::kNone) return NoDeployment(record);
    record.deployment.state = DeploymentState::kRolledBack;
    return {};
  });
}

void Service::Apply(std::string_view model_id, std::int64_t version,
                    const std::optional<ModelRecord>& record) {
  std::lock_guard lock(mutex_);
  auto it = applied_.find(model_id);
  if (!record) {
    if (it == applied_.end()) return;
    applied_.erase(it);
    if (routes_.FindPublic(model_id) != nullptr) routes_.ResetPlan(model_id);
    Log(Severity::kInfo, "model versions: record removed; configured targets restored",
        {{"model", model_id}});
    return;
  }
  if (it == applied_.end()) it = applied_.emplace(std::string(model_id), Applied{}).first;
  Applied& applied = it->second;
  if (version <= applied.version) return;  // this state, or a newer one, is in force already
  applied.version = version;

  if (routes_.FindPublic(model_id) == nullptr) {
    if (!applied.warned) {
      Log(Severity::kWarning,
          "model versions: stored versions of a model this configuration does not have; ignored",
          {{"model", model_id}});
      applied.warned = true;
    }
    return;
  }
  const std::vector<orchestration::RouteTable::PlanTarget> plan = PlanFor(*record);
  const orchestration::TargetPlan* before = &routes_.FindPublic(model_id)->plan();
  auto set = plan.empty() ? routes_.ResetPlan(model_id)
                          : routes_.SetPlan(model_id, config::Strategy::kWeighted, plan);
  const Deployment& d = record->deployment;
  if (!set) {
    // Another instance stored a deployment this one cannot route (a provider it lacks, a cap):
    // the targets in force stay, and the error says why.
    Log(Severity::kError, "model versions: deployment cannot be applied here",
        {{"model", model_id}, {"state", ToString(d.state)}, {"error", set.error().message}});
    return;
  }
  applied.warned = false;
  if (&routes_.FindPublic(model_id)->plan() == before) return;  // a version registered, say
  Log(Severity::kInfo, "model versions: deployment applied",
      {{"model", model_id},
       {"state", ToString(d.state)},
       {"blue_version", d.blue},
       {"green_version", d.green},
       {"green_traffic_percentage", d.green_percent},
       {"record_version", version}});
}

asio::awaitable<Result<void>> Service::Refresh(std::string_view model_id) {
  auto stored = co_await records_.Get(kSystemTenant, kCollection, model_id);
  if (!stored) co_return stored.error();
  if (!*stored) {
    Apply(model_id, 0, std::nullopt);
    co_return Result<void>{};
  }
  auto decoded = Decode((*stored)->value);
  if (!decoded) {
    Log(Severity::kError, "model versions: stored record is damaged; targets in force stay",
        {{"model", model_id}, {"error", decoded.error().message}});
    co_return Result<void>{};
  }
  Apply(model_id, (*stored)->version, *decoded);
  co_return Result<void>{};
}

asio::awaitable<Result<void>> Service::ReloadAll() {
  std::set<std::string, std::less<>> seen;
  std::string cursor;
  do {
    auto page = co_await records_.List(kSystemTenant, kCollection, "", storage::kMaxRecordListLimit,
                                       cursor);
    if (!page) co_return page.error();
    for (const storage::Record& r : page->records) {
      seen.insert(r.id);
      auto decoded = Decode(r.value);
      if (!decoded) {
        Log(Severity::kError, "model versions: stored record is damaged; targets in force stay",
            {{"model", r.id}, {"error", decoded.error().message}});
        continue;
      }
      Apply(r.id, r.version, *decoded);
    }
    cursor = std::move(page->next_cursor);
  } while (!cursor.empty());
  std::vector<std::string> gone;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [model, applied] : applied_) {
      if (!seen.contains(model)) gone.push_back(model);
    }
  }
  for (const std::string& model : gone)
    Apply(model, 0, std::nullopt);
  co_return Result<void>{};
}

}  // namespace orchestra::versions
