// The model versions service against the in-memory record store: what each operation stores and
// does to the route table, every bad input (refused, nothing written, routing unchanged),
// conflicts with a concurrent writer, persistence across a restart, and propagation to another
// instance through the change log.

#include "versions/service.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "support/memory_records.hpp"
#include "unit/orchestration/fake_provider.hpp"

namespace orchestra::versions {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using orchestration::ModelRoute;
using orchestration::RouteTable;
using orchestration::TargetPlan;
using orchestration::testing::FakeProvider;
using testing::MemoryRecords;
using testing::RunSync;

// A record store that delegates to a MemoryRecords, with hooks to play a concurrent writer and a
// change log that no longer reaches back.
class ScriptedRecords final : public storage::RecordStore {
 public:
  explicit ScriptedRecords(MemoryRecords& inner) : inner_(inner) {}

  // Runs (once) just before the next Put reaches the store.
  std::function<void()> before_put;
  std::atomic<int> changes_conflicts{0};  // ChangesSince answers kConflict this many times
  int puts = 0;

  asio::awaitable<Result<std::int64_t>> Put(std::string_view tenant, std::string_view collection,
                                            std::string_view id, std::string_view value,
                                            storage::Expect expect) override {
    ++puts;
    if (auto hook = std::exchange(before_put, nullptr)) hook();
    co_return co_await inner_.Put(tenant, collection, id, value, expect);
  }
  asio::awaitable<Result<std::optional<storage::Record>>> Get(std::string_view tenant,
                                                              std::string_view collection,
                                                              std::string_view id) override {
    return inner_.Get(tenant, collection, id);
  }
  asio::awaitable<Result<bool>> Delete(std::string_view tenant, std::string_view collection,
                                       std::string_view id, storage::Expect expect) override {
    return inner_.Delete(tenant, collection, id, expect);
  }
  asio::awaitable<Result<storage::RecordPage>> List(std::string_view tenant,
                                                    std::string_view collection,
                                                    std::string_view prefix, int limit,
                                                    std::string_view cursor) override {
    return inner_.List(tenant, collection, prefix, limit, cursor);
  }
  asio::awaitable<Result<void>> Apply(std::string_view tenant,
                                      std::vector<storage::RecordWrite> writes) override {
    return inner_.Apply(tenant, std::move(writes));
  }
  asio::awaitable<Result<std::vector<storage::Change>>> ChangesSince(std::int64_t sequence,
                                                                     int limit) override {
    if (changes_conflicts.load() > 0) {
      changes_conflicts.fetch_sub(1);
      co_return Error(ErrorCode::kConflict, "the change log was trimmed");
    }
    co_return co_await inner_.ChangesSince(sequence, limit);
  }
  asio::awaitable<Result<std::int64_t>> LatestSequence() override {
    return inner_.LatestSequence();
  }
  asio::awaitable<Result<std::vector<double>>> Add(
      std::string_view tenant, std::string_view collection, std::string_view id,
      std::vector<std::pair<std::string, double>> deltas) override {
    return inner_.Add(tenant, collection, id, std::move(deltas));
  }
  asio::awaitable<Result<storage::CounterPage>> Counters(std::string_view tenant,
                                                         std::string_view collection,
                                                         std::string_view prefix, int limit,
                                                         std::string_view cursor) override {
    return inner_.Counters(tenant, collection, prefix, limit, cursor);
  }

 private:
  MemoryRecords& inner_;
};

config::ModelConfig Model(std::string name, std::string provider, std::string upstream) {
  config::ModelConfig m;
  m.name = std::move(name);
  m.targets = {{std::move(provider), std::move(upstream), 1}};
  return m;
}

// One Orchestra instance: its providers, route table and versions service, over a shared store.
class Instance {
 public:
  Instance(storage::RecordStore& records, bool with_other = true,
           std::chrono::milliseconds poll = 10ms) {
    providers_["up"] = &up_;
    providers_["local"] = &local_;
    if (with_other) providers_["other"] = &other_;
    config_.models = {Model("chat", "up", "configured-1"), Model("embed", "up", "embed-1")};
    RouteTable::Options options;
    options.local_models = {"local-extractive"};
    routes = std::make_unique<RouteTable>(config_, providers_, metrics_, orchestration::RealClock(),
                                          options);
    ServiceOptions service_options;
    service_options.poll_interval = poll;
    service_options.now = [this] { return now; };
    service = std::make_unique<Service>(records, *routes, service_options);
  }

  const ModelRoute& chat() { return **routes->Resolve("chat"); }

  // The chat route's targets as "provider/model=weight".
  std::vector<std::string> Plan() {
    std::vector<std::string> out;
    for (const auto& t : chat().plan().targets) {
      out.push_back(t.target->label() + "=" + std::to_string(static_cast<int>(t.weight)));
    }
    return out;
  }

  double now = 1715000000.5;
  std::unique_ptr<RouteTable> routes;
  std::unique_ptr<Service> service;

 private:
  FakeProvider up_{"up"};
  FakeProvider other_{"other"};
  FakeProvider local_{"local", config::ProviderType::kLocal};
  orchestration::ProviderMap providers_;
  observability::Registry registry_;
  orchestration::Metrics metrics_{registry_};
  config::Config config_;
};

using Plan = std::vector<std::string>;

class VersionsTest : public ::testing::Test {
 public:
  Result<Version> Register(Instance& i, std::string version, std::string endpoint,
                           std::vector<std::string> capabilities = {"chat"},
                           std::string model = "chat") {
    return RunSync(i.service->Register(
        {std::move(model), std::move(version), std::move(endpoint), std::move(capabilities)}));
  }
  Result<void> Deploy(Instance& i, std::string_view blue, std::string_view green, int percent,
                      std::string_view model = "chat") {
    return RunSync(i.service->DeployBlueGreen(model, blue, green, percent));
  }
  Result<void> Shift(Instance& i, int percent, std::string_view model = "chat") {
    return RunSync(i.service->ShiftTraffic(model, percent));
  }
  // Registers blue (up/blue-1) and green (other/green-1) on `i`.
  void RegisterBlueAndGreen(Instance& i) {
    ASSERT_TRUE(Register(i, "blue", "up/blue-1").has_value());
    ASSERT_TRUE(Register(i, "green", "other/green-1").has_value());
  }
  std::int64_t Sequence() { return *RunSync(memory_.LatestSequence()); }

 protected:
  // Waits (at most 10 s) until `i`'s chat plan is `want`.
  static bool WaitForPlan(Instance& i, const Plan& want) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (i.Plan() == want) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  MemoryRecords memory_;
  ScriptedRecords records_{memory_};
};

TEST_F(VersionsTest, RegisteringStoresTheVersionAndMovesNoTraffic) {
  Instance a(records_);
  auto v = Register(a, "v1", "up/meta-llama/llama-3-8b", {"chat", "json"});
  ASSERT_TRUE(v.has_value()) << v.error().message;
  EXPECT_EQ(v->version, "v1");
  EXPECT_EQ(v->endpoint, "up/meta-llama/llama-3-8b");
  EXPECT_EQ(v->capabilities, (std::vector<std::string>{"chat", "json"}));
  EXPECT_EQ(v->created_at, 1715000000.5);
  EXPECT_EQ(a.Plan(), Plan{"up/configured-1=1"});

  auto stored = *RunSync(memory_.Get(storage::kSystemTenant, kCollection, "chat"));
  ASSERT_TRUE(stored.has_value());
  json::value record = json::parse(stored->value);
  EXPECT_EQ(record.at("model_id"), "chat");
  EXPECT_EQ(record.at("versions").at(0).at("endpoint"), "up/meta-llama/llama-3-8b");
  EXPECT_TRUE(record.at("deployment").is_null());

  auto listed = RunSync(a.service->Versions("chat"));
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->versions.size(), 1u);
  EXPECT_EQ(listed->versions[0].capabilities.size(), 2u);

  // Registered again: replaced in place, with its new time.
  a.now += 60;
  ASSERT_TRUE(Register(a, "v1", "up/other-model", {}).has_value());
  listed = RunSync(a.service->Versions("chat"));
  ASSERT_EQ(listed->versions.size(), 1u);
  EXPECT_EQ(listed->versions[0].endpoint, "up/other-model");
  EXPECT_EQ(listed->versions[0].created_at, 1715000060.5);

  // A configured model without versions lists none; an unknown one is a 404.
  auto none = RunSync(a.service->Versions("embed"));
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->versions.empty());
  auto unknown = RunSync(a.service->Versions("chta"));
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_NE(unknown.error().message.find("did you mean 'chat'"), std::string::npos);
}

TEST_F(VersionsTest, BlueGreenSplitsTheRouteAndShiftPromoteAndRollbackFollow) {
  Instance a(records_);
  RegisterBlueAndGreen(a);
  ASSERT_TRUE(Deploy(a, "blue", "green", 30).has_value());
  EXPECT_EQ(a.Plan(), (Plan{"up/blue-1=70", "other/green-1=30"}));
  EXPECT_EQ(a.chat().plan().strategy, config::Strategy::kWeighted);

  ASSERT_TRUE(Shift(a, 80).has_value());
  EXPECT_EQ(a.Plan(), (Plan{"up/blue-1=20", "other/green-1=80"}));
  // 0 % and 100 % leave the other side out (not kept as a standby).
  ASSERT_TRUE(Shift(a, 0).has_value());
  EXPECT_EQ(a.Plan(), Plan{"up/blue-1=100"});
  ASSERT_TRUE(Shift(a, 100).has_value());
  EXPECT_EQ(a.Plan(), Plan{"other/green-1=100"});

  ASSERT_TRUE(RunSync(a.service->PromoteGreen("chat")).has_value());
  EXPECT_EQ(a.Plan(), Plan{"other/green-1=1"});
  auto listed = RunSync(a.service->Versions("chat"));
  EXPECT_EQ(listed->deployment.state, DeploymentState::kPromoted);
  // A promoted deployment takes no traffic shift...
  auto shift = Shift(a, 50);
  ASSERT_FALSE(shift.has_value());
  EXPECT_EQ(shift.error().code, ErrorCode::kConflict);
  EXPECT_NE(shift.error().message.find("promoted"), std::string::npos);
  // ...but can still be rolled back to blue, and promoted again.
  ASSERT_TRUE(RunSync(a.service->Rollback("chat")).has_value());
  EXPECT_EQ(a.Plan(), Plan{"up/blue-1=1"});
  ASSERT_TRUE(RunSync(a.service->PromoteGreen("chat")).has_value());
  EXPECT_EQ(a.Plan(), Plan{"other/green-1=1"});
  // A new deployment starts over; the same version on both sides is one target.
  ASSERT_TRUE(Deploy(a, "blue", "blue", 40).has_value());
  EXPECT_EQ(a.Plan(), Plan{"up/blue-1=100"});
  // The other model's route was never touched.
  EXPECT_EQ(&(*a.routes->Resolve("embed"))->plan(), &(*a.routes->Resolve("embed"))->configured);
}

TEST_F(VersionsTest, ReRegisteringAVersionInUseMovesItsTraffic) {
  Instance a(records_);
  RegisterBlueAndGreen(a);
  ASSERT_TRUE(Deploy(a, "blue", "green", 50).has_value());
  ASSERT_TRUE(Register(a, "green", "up/green-2").has_value());
  EXPECT_EQ(a.Plan(), (Plan{"up/blue-1=50", "up/green-2=50"}));
}

struct BadCase {
  const char* name;
  std::function<Result<void>(VersionsTest&, Instance&)> call;
  ErrorCode code;
  const char* param;
  const char* message_part;
};

TEST_F(VersionsTest, BadInputIsRefusedWritesNothingAndLeavesRoutingAlone) {
  Instance a(records_);
  RegisterBlueAndGreen(a);
  ASSERT_TRUE(Deploy(a, "blue", "green", 25).has_value());
  const Plan before = a.Plan();
  auto reg = [](std::string model, std::string version, std::string endpoint,
                std::vector<std::string> caps = {}) {
    return [=](VersionsTest& t, Instance& i) -> Result<void> {
      auto r = t.Register(i, version, endpoint, caps, model);
      if (!r) return r.error();
      return {};
    };
  };
  const std::string long_version(kMaxVersionBytes + 1, 'v');
  const std::vector<std::string> many_caps(kMaxCapabilities + 1, "c");
  const BadCase cases[] = {
      {"unknown model", reg("nope", "v1", "up/x"), ErrorCode::kNotFound, "model_id",
       "not configured"},
      {"provider/model is not a model", reg("up/x", "v1", "up/x"), ErrorCode::kNotFound, "model_id",
       "not configured"},
      {"endpoint without a slash", reg("chat", "v1", "gpt-4o"), ErrorCode::kInvalidRequest,
       "endpoint", "provider/model"},
      {"endpoint without provider", reg("chat", "v1", "/gpt-4o"), ErrorCode::kInvalidRequest,
       "endpoint", "provider/model"},
      {"endpoint without model", reg("chat", "v1", "up/"), ErrorCode::kInvalidRequest, "endpoint",
       "provider/model"},
      {"endpoint a URL", reg("chat", "v1", "http://10.0.0.1/v1"), ErrorCode::kInvalidRequest,
       "endpoint", "no provider named 'http:'"},
      {"unknown provider", reg("chat", "v1", "nobody/x"), ErrorCode::kInvalidRequest, "endpoint",
       "no provider named 'nobody'"},
      {"provider typo", reg("chat", "v1", "uo/x"), ErrorCode::kInvalidRequest, "endpoint",
       "did you mean 'up'"},
      {"unknown local model", reg("chat", "v1", "local/local-nothing"), ErrorCode::kInvalidRequest,
       "endpoint", "local provider has no model"},
      {"empty version", reg("chat", "", "up/x"), ErrorCode::kInvalidRequest, "version", "empty"},
      {"control character", reg("chat", "v\n1", "up/x"), ErrorCode::kInvalidRequest, "version",
       "control"},
      {"long version", reg("chat", long_version, "up/x"), ErrorCode::kInvalidRequest, "version",
       "longer"},
      {"too many capabilities", reg("chat", "v1", "up/x", many_caps), ErrorCode::kInvalidRequest,
       "capabilities", "at most"},
      {"empty capability", reg("chat", "v1", "up/x", {""}), ErrorCode::kInvalidRequest,
       "capabilities", "empty"},
      {"deploy unknown model",
       [](VersionsTest& t, Instance& i) { return t.Deploy(i, "blue", "green", 5, "nope"); },
       ErrorCode::kNotFound, "model_id", "not configured"},
      {"deploy unknown blue",
       [](VersionsTest& t, Instance& i) { return t.Deploy(i, "bleu", "green", 5); },
       ErrorCode::kNotFound, "blue_version", "no version 'bleu'"},
      {"deploy unknown green",
       [](VersionsTest& t, Instance& i) { return t.Deploy(i, "blue", "gren", 5); },
       ErrorCode::kNotFound, "green_version", "no version 'gren'"},
      {"deploy below 0",
       [](VersionsTest& t, Instance& i) { return t.Deploy(i, "blue", "green", -1); },
       ErrorCode::kInvalidRequest, "green_traffic_percentage", "0 to 100"},
      {"deploy above 100",
       [](VersionsTest& t, Instance& i) { return t.Deploy(i, "blue", "green", 101); },
       ErrorCode::kInvalidRequest, "green_traffic_percentage", "0 to 100"},
      {"shift above 100", [](VersionsTest& t, Instance& i) { return t.Shift(i, 101); },
       ErrorCode::kInvalidRequest, "green_traffic_percentage", "0 to 100"},
      {"shift unknown model", [](VersionsTest& t, Instance& i) { return t.Shift(i, 5, "nope"); },
       ErrorCode::kNotFound, "model_id", "not configured"},
      {"shift without deployment",
       [](VersionsTest& t, Instance& i) { return t.Shift(i, 5, "embed"); }, ErrorCode::kConflict,
       "", "no blue/green deployment"},
      {"promote without deployment",
       [](VersionsTest&, Instance& i) { return RunSync(i.service->PromoteGreen("embed")); },
       ErrorCode::kConflict, "", "no blue/green deployment"},
      {"rollback without deployment",
       [](VersionsTest&, Instance& i) { return RunSync(i.service->Rollback("embed")); },
       ErrorCode::kConflict, "", "no blue/green deployment"},
      {"promote unknown model",
       [](VersionsTest&, Instance& i) { return RunSync(i.service->PromoteGreen("nope")); },
       ErrorCode::kNotFound, "model_id", "not configured"},
  };
  const std::int64_t sequence = Sequence();
  for (const BadCase& c : cases) {
    Result<void> r = c.call(*this, a);
    ASSERT_FALSE(r.has_value()) << c.name;
    EXPECT_EQ(r.error().code, c.code) << c.name << ": " << r.error().message;
    EXPECT_EQ(r.error().param, c.param) << c.name;
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos)
        << c.name << ": " << r.error().message;
    EXPECT_EQ(Sequence(), sequence) << c.name << " wrote to the store";
    EXPECT_EQ(a.Plan(), before) << c.name;
  }
}

TEST_F(VersionsTest, AModelHoldsAtMostSoManyVersions) {
  Instance a(records_);
  for (std::size_t i = 0; i < kMaxVersionsPerModel; ++i) {
    ASSERT_TRUE(Register(a, "v" + std::to_string(i), "up/m").has_value());
  }
  auto over = Register(a, "one-more", "up/m");
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(Register(a, "v0", "up/m2").has_value());  // replacing one is still possible
}

TEST_F(VersionsTest, AStorageOutageIsAnErrorAndChangesNothing) {
  Instance a(records_);
  RegisterBlueAndGreen(a);
  memory_.down = true;
  auto r = Deploy(a, "blue", "green", 50);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(a.Plan(), Plan{"up/configured-1=1"});
  memory_.down = false;
}

TEST_F(VersionsTest, AConcurrentWriterIsNotOverwritten) {
  Instance a(records_);
  Instance b(records_);
  ASSERT_TRUE(Register(a, "blue", "up/blue-1").has_value());
  // B registers green between A's read and A's write: A's write fails on the version it read,
  // and A reads again and writes on top of B's change.
  records_.before_put = [&] { ASSERT_TRUE(Register(b, "green", "other/green-1").has_value()); };
  const int puts = records_.puts;
  ASSERT_TRUE(Register(a, "blue2", "up/blue-2").has_value());
  EXPECT_EQ(records_.puts - puts, 3);  // A's failed write, B's, A's second
  auto listed = RunSync(a.service->Versions("chat"));
  ASSERT_EQ(listed->versions.size(), 3u);
  EXPECT_EQ(listed->versions[1].version, "green");
  EXPECT_EQ(listed->versions[2].version, "blue2");
}

TEST_F(VersionsTest, AnotherInstanceFollowsThroughTheChangeLog) {
  Instance a(records_);
  Instance b(records_);
  ASSERT_TRUE(b.service->Start().has_value());
  RegisterBlueAndGreen(a);
  ASSERT_TRUE(Deploy(a, "blue", "green", 30).has_value());
  EXPECT_TRUE(WaitForPlan(b, {"up/blue-1=70", "other/green-1=30"})) << b.Plan().size();
  ASSERT_TRUE(Shift(a, 90).has_value());
  EXPECT_TRUE(WaitForPlan(b, {"up/blue-1=10", "other/green-1=90"}));
  ASSERT_TRUE(RunSync(a.service->PromoteGreen("chat")).has_value());
  EXPECT_TRUE(WaitForPlan(b, {"other/green-1=1"}));
  ASSERT_TRUE(RunSync(a.service->Rollback("chat")).has_value());
  EXPECT_TRUE(WaitForPlan(b, {"up/blue-1=1"}));
  b.service->Stop();
}

TEST_F(VersionsTest, AChangeLogThatNoLongerReachesBackMeansAFullReload) {
  Instance a(records_);
  Instance b(records_);
  ASSERT_TRUE(b.service->Start().has_value());
  // From now on the log answers "too old" to every read: only reloading the records themselves
  // can bring B the deployment.
  records_.changes_conflicts = 1 << 30;
  RegisterBlueAndGreen(a);
  ASSERT_TRUE(Deploy(a, "blue", "green", 60).has_value());
  EXPECT_TRUE(WaitForPlan(b, {"up/blue-1=40", "other/green-1=60"}));
  b.service->Stop();
  EXPECT_LT(records_.changes_conflicts, 1 << 30);
}

TEST_F(VersionsTest, ARestartedInstanceStartsWithTheStoredDeployment) {
  {
    Instance a(records_);
    RegisterBlueAndGreen(a);
    ASSERT_TRUE(Deploy(a, "blue", "green", 45).has_value());
  }
  Instance restarted(records_, true, 1h);  // no poll can help: Start's load must do it
  EXPECT_EQ(restarted.Plan(), Plan{"up/configured-1=1"});
  ASSERT_TRUE(restarted.service->Start().has_value());
  EXPECT_EQ(restarted.Plan(), (Plan{"up/blue-1=55", "other/green-1=45"}));
  auto listed = RunSync(restarted.service->Versions("chat"));
  EXPECT_EQ(listed->deployment.green_percent, 45);
}

TEST_F(VersionsTest, StartReportsAStorageOutageAndFollowsOnceItEnds) {
  {
    Instance a(records_);
    RegisterBlueAndGreen(a);
    ASSERT_TRUE(Deploy(a, "blue", "green", 20).has_value());
  }
  memory_.down = true;
  Instance b(records_);
  auto started = b.service->Start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(b.Plan(), Plan{"up/configured-1=1"});
  memory_.down = false;
  EXPECT_TRUE(WaitForPlan(b, {"up/blue-1=80", "other/green-1=20"}));
}

TEST_F(VersionsTest, ADeploymentAnInstanceCannotRouteKeepsItsTargets) {
  Instance a(records_);
  Instance without_other(records_, false);
  ASSERT_TRUE(without_other.service->Start().has_value());
  RegisterBlueAndGreen(a);
  ASSERT_TRUE(Deploy(a, "blue", "green", 50).has_value());
  ASSERT_TRUE(Register(a, "blue2", "up/blue-2").has_value());  // a later, unrelated change
  const auto polls = without_other.service->polls();
  while (without_other.service->polls() < polls + 3)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(without_other.Plan(), Plan{"up/configured-1=1"});
}

TEST_F(VersionsTest, DamagedRecordsAreReportedNotApplied) {
  ASSERT_TRUE(RunSync(memory_.Put(storage::kSystemTenant, kCollection, "chat", "{\"nope\":1}",
                                  storage::Expect::Any()))
                  .has_value());
  Instance a(records_);
  ASSERT_TRUE(a.service->Start().has_value());
  EXPECT_EQ(a.Plan(), Plan{"up/configured-1=1"});
  auto r = Register(a, "v1", "up/x");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
}

}  // namespace
}  // namespace orchestra::versions
