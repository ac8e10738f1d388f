#include "config/loader.hpp"

#include <fstream>
#include <map>

#include <gtest/gtest.h>

namespace orchestra::config {
namespace {

using namespace std::chrono_literals;

struct FakeEnv {
  std::map<std::string, std::string, std::less<>> vars;
  EnvLookup Lookup() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
};

std::string ErrorOf(std::string_view yaml, const FakeEnv& env = {}) {
  try {
    ParseConfig(yaml, "orchestra.yaml", env.Lookup());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ParseConfig, EmptyFileGivesTheDocumentedDefaults) {
  FakeEnv env;
  Config c = ParseConfig("", "orchestra.yaml", env.Lookup());
  EXPECT_EQ(c.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.server.max_body_bytes, 8u << 20);
  EXPECT_EQ(c.server.drain_timeout, 8s);
  EXPECT_EQ(c.storage.backend, StorageBackend::kSqlite);
  EXPECT_EQ(c.storage.path, "./data/orchestra.db");
  EXPECT_EQ(c.observability.log_format, LogFormat::kJson);
  EXPECT_EQ(c.cache.redis_url, "");
  EXPECT_TRUE(c.cache.shared);
  EXPECT_EQ(c.cache.redis_timeout, 5ms);
  EXPECT_EQ(c.cache.max_bytes, 64u << 20);
  EXPECT_EQ(c.cache.max_entries, 10'000);
}

TEST(ParseConfig, ReadsTheCacheSection) {
  FakeEnv env;
  Config c = ParseConfig(
      "cache: {redis_url: 'redis://:pw@10.0.0.8:6380/3', redis_timeout: 2ms, shared: false,\n"
      "        max_bytes: 1MiB, max_entries: 50, redis_connections: 2}\n",
      "orchestra.yaml", env.Lookup());
  EXPECT_EQ(c.cache.redis_url, "redis://:pw@10.0.0.8:6380/3");
  EXPECT_EQ(c.cache.redis_timeout, 2ms);
  EXPECT_FALSE(c.cache.shared);
  EXPECT_EQ(c.cache.max_bytes, 1u << 20);
  EXPECT_EQ(c.cache.max_entries, 50);
  EXPECT_EQ(c.cache.redis_connections, 2);
}

TEST(ParseConfig, ReadsTheDesignShape) {
  FakeEnv env;
  Config c = ParseConfig(R"(
server: {listen: 127.0.0.1:9000, max_inflight: 50, drain_timeout: 5s}
auth:
  keys:
    - {name: app, key_env: ORCHESTRA_KEY_APP, scopes: [user, admin]}
providers:
  - {name: openai, type: openai, api_key_env: OPENAI_API_KEY}
models:
  - name: gpt-4o-mini
    strategy: least_inflight
    targets: [{provider: openai, model: gpt-4o-mini, weight: 3}]
    fallbacks: [local-extractive]
    allow_local_fallback: true
    retry: {attempts: 3, backoff: 50ms, on: [429, 503, connect]}
    circuit_breaker: {failures: 4, cooldown: 10s}
    price: {input_per_mtok: 0.15, output_per_mtok: 0.6}
storage: {backend: redis, url: "redis://127.0.0.1:6379/0"}
)",
                         "orchestra.yaml", env.Lookup());
  EXPECT_EQ(c.server.max_inflight, 50);
  ASSERT_EQ(c.auth.keys.size(), 1u);
  EXPECT_EQ(c.auth.keys[0].scopes.size(), 2u);
  ASSERT_EQ(c.models.size(), 1u);
  const ModelConfig& m = c.models[0];
  EXPECT_EQ(m.strategy, Strategy::kLeastInflight);
  EXPECT_EQ(m.targets[0].weight, 3);
  EXPECT_TRUE(m.allow_local_fallback);
  EXPECT_EQ(m.retry.attempts, 3);
  EXPECT_EQ(m.retry.statuses, (std::vector<int>{429, 503}));
  EXPECT_TRUE(m.retry.on_connect);
  EXPECT_FALSE(m.retry.on_timeout);
  EXPECT_EQ(m.circuit_breaker.cooldown, 10s);
  EXPECT_DOUBLE_EQ(m.price.output_per_mtok, 0.6);
  EXPECT_EQ(c.providers[0].base_url, "https://api.openai.com/v1");
  EXPECT_EQ(c.storage.backend, StorageBackend::kRedis);
}

struct BadCase {
  const char* yaml;
  const char* expected;  // a substring of the message
};

class ParseConfigRejects : public testing::TestWithParam<BadCase> {};

TEST_P(ParseConfigRejects, WithAPreciseMessage) {
  std::string message = ErrorOf(GetParam().yaml);
  EXPECT_NE(message.find(GetParam().expected), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseConfigRejects,
    testing::Values(
        BadCase{"server:\n  listn: 1.2.3.4:80\n",
                "orchestra.yaml:2:3: server.listn: unknown key (did you mean 'listen'?)"},
        BadCase{"servr: {}\n", "servr: unknown key (did you mean 'server'?)"},
        BadCase{"server: {max_inflight: lots}\n",
                "server.max_inflight: expected an integer, got 'lots'"},
        BadCase{"server: {threads: -1}\n", "server.threads: must be between 0 and 1024"},
        BadCase{"server: {drain_timeout: 8}\n", "server.drain_timeout: expected a duration"},
        BadCase{"server: {max_body_bytes: huge}\n", "server.max_body_bytes: expected a size"},
        BadCase{"server: [1, 2]\n", "server: expected a mapping"},
        BadCase{"storage: {backend: mysql}\n",
                "storage.backend: expected one of sqlite, redis, postgres, firestore; got 'mysql'"},
        BadCase{"storage: {backend: redis}\n", "storage.url: backend redis needs a url"},
        BadCase{"storage: {backend: sqlit}\n", "(did you mean 'sqlite'?)"},
        BadCase{"storage: {backend: redis, url: 'rediss://h:6378'}\n",
                "storage.url: TLS to Redis (rediss://) is not supported"},
        BadCase{"cache: {redis_url: 'rediss://h:6378'}\n",
                "cache.redis_url: TLS to Redis (rediss://) is not supported"},
        BadCase{"cache: {redis_url: 'h:6379'}\n",
                "cache.redis_url: expected redis://host:port[/db]"},
        BadCase{"cache: {redis_timeout: 0s}\n", "cache.redis_timeout: between 1ms and 10s"},
        BadCase{"cache: {redis_connections: 0}\n", "cache.redis_connections: must be between"},
        BadCase{"cache: {redis_tiemout: 5ms}\n", "(did you mean 'redis_timeout'?)"},
        BadCase{"storage: {backend: redis, url: 'h:6379'}\n",
                "storage.url: expected redis://host:port[/db], got 'h:6379'"},
        BadCase{"observability: {log_format: xml}\n", "observability.log_format: expected one of"},
        BadCase{"auth: {keys: [{name: a}]}\n",
                "auth.keys[0].key_env: set exactly one of key_env, key_file or sha256"},
        BadCase{"auth: {keys: [{name: a, sha256: abc}]}\n",
                "auth.keys[0].sha256: expected 64 hexadecimal digits"},
        BadCase{"auth: {keys: [{name: a, key_env: K, scopes: [root]}]}\n", "unknown scope 'root'"},
        BadCase{"auth: {keys: [{name: a, key_env: K, budget: {usd: 5}}]}\n",
                "auth.keys[0].budget.period: a budget needs a period: day, week or month"},
        BadCase{"auth: {keys: [{name: a, key_env: K, budget: {usd: 5, period: year}}]}\n",
                "auth.keys[0].budget.period: expected day, week or month, got 'year'"},
        BadCase{"auth: {keys: [{name: a, key_env: K, budget: {period: day}}]}\n",
                "auth.keys[0].budget.usd: a budget needs usd greater than 0"},
        BadCase{"auth: {keys: [{name: a, key_env: K, limits: {rpm: -1}}]}\n",
                "auth.keys[0].limits.rpm: must be between 0 and 1000000000"},
        BadCase{"auth: {keys: [{name: a, key_env: K, limits: {rmp: 1}}]}\n",
                "auth.keys[0].limits.rmp: unknown key (did you mean 'rpm'?)"},
        BadCase{"auth: {keys: [{name: a, key_env: K, limits: {per_model: [{rpm: 1}]}}]}\n",
                "auth.keys[0].limits.per_model[0].model: every per_model entry needs the model"},
        BadCase{"auth: {keys_refresh_interval: 5s}\n",
                "auth.keys_refresh_interval: must be from 10ms to 1s"},
        BadCase{"providers: [{name: x, type: opnai}]\n", "(did you mean 'openai'?)"},
        BadCase{"providers: [{name: x, type: openai, base_url: ftp://h}]\n",
                "providers[0].base_url: expected an http:// or https:// URL"},
        BadCase{"models: [{name: m}]\n", "models[0].targets: a model needs at least one target"},
        BadCase{"models: [{name: m, targets: [{provider: p, model: x}], retry: {on: [200]}}]\n",
                "models[0].retry.on: expected HTTP statuses 400-599"},
        BadCase{"server: {listen: [\n", "orchestra.yaml:"}),
    [](const testing::TestParamInfo<BadCase>& param) {
      return "Case" + std::to_string(param.index);
    });

TEST(ParseConfig, KeysCarryModelsLimitsAndBudget) {
  FakeEnv env;
  auto cfg = ParseConfig(R"(
auth:
  keys:
    - name: app
      key_env: K
      models: [gpt-4o-mini, "local-*"]
      limits:
        rpm: 600
        tpm: 1000
        max_parallel: 3
        per_model:
          - {model: gpt-4o-mini, rpm: 60, tpm: 100}
      budget: {usd: 12.5, period: week}
    - name: plain
      key_env: K
  rotation_grace: 10m
)",
                         "orchestra.yaml", env.Lookup());
  const limits::KeyPolicy& p = cfg.auth.keys[0].policy;
  EXPECT_EQ(p.models, (std::vector<std::string>{"gpt-4o-mini", "local-*"}));
  EXPECT_EQ(p.limits.rpm, 600);
  EXPECT_EQ(p.limits.tpm, 1000);
  EXPECT_EQ(p.limits.max_parallel, 3);
  ASSERT_EQ(p.per_model.size(), 1u);
  EXPECT_EQ(p.per_model[0].model, "gpt-4o-mini");
  EXPECT_EQ(p.per_model[0].limits.rpm, 60);
  EXPECT_EQ(p.per_model[0].limits.tpm, 100);
  ASSERT_TRUE(p.budget);
  EXPECT_EQ(p.budget->usd, 12.5);
  EXPECT_EQ(p.budget->period, limits::BudgetPeriod::kWeek);
  EXPECT_TRUE(cfg.auth.keys[1].policy.unrestricted());
  EXPECT_EQ(cfg.auth.rotation_grace, std::chrono::minutes(10));
  EXPECT_EQ(cfg.auth.keys_refresh_interval, std::chrono::milliseconds(250));
}

TEST(ParseConfig, EnvironmentOverridesTheFile) {
  FakeEnv env;
  env.vars["ORCHESTRA_SERVER_MAX_INFLIGHT"] = "7";
  env.vars["ORCHESTRA_STORAGE_BACKEND"] = "postgres";
  env.vars["ORCHESTRA_STORAGE_URL"] = "postgresql://u@h/db";
  Config c = ParseConfig("server: {max_inflight: 3}\n", "orchestra.yaml", env.Lookup());
  EXPECT_EQ(c.server.max_inflight, 7);
  EXPECT_EQ(c.storage.backend, StorageBackend::kPostgres);
}

TEST(ParseConfig, FirestoreReadsItsBlockAndGooglesVariables) {
  FakeEnv env;
  env.vars["GOOGLE_CLOUD_PROJECT"] = "proj-1";
  Config c = ParseConfig("storage: {backend: firestore}\n", "orchestra.yaml", env.Lookup());
  EXPECT_EQ(c.storage.backend, StorageBackend::kFirestore);
  EXPECT_EQ(c.storage.firestore.project, "proj-1");
  EXPECT_EQ(c.storage.firestore.database, "(default)");
  EXPECT_EQ(c.storage.firestore.root, "orchestra");
  EXPECT_EQ(c.storage.firestore.endpoint, "");
  EXPECT_EQ(c.storage.firestore.emulator_host, "");
  EXPECT_EQ(c.storage.firestore.metadata_host, "metadata.google.internal");
  EXPECT_EQ(c.storage.max_value_bytes, 1'000'000U);  // a document holds 1 MiB

  env.vars["ORCHESTRA_STORAGE_FIRESTORE_PROJECT"] = "proj-2";
  env.vars["ORCHESTRA_STORAGE_FIRESTORE_DATABASE"] = "memory-db";
  env.vars["ORCHESTRA_STORAGE_SECONDARY_FIRESTORE_ROOT"] = "backup";
  env.vars["FIRESTORE_EMULATOR_HOST"] = "127.0.0.1:8681";
  env.vars["GCE_METADATA_HOST"] = "127.0.0.1:9";
  c = ParseConfig(R"(
storage:
  backend: firestore
  firestore: {project: in-file, root: mem}
  max_value_bytes: 512KiB
  secondary:
    backend: firestore
)",
                  "orchestra.yaml", env.Lookup());
  EXPECT_EQ(c.storage.firestore.project, "proj-2");
  EXPECT_EQ(c.storage.firestore.database, "memory-db");
  EXPECT_EQ(c.storage.firestore.root, "mem");
  EXPECT_EQ(c.storage.firestore.emulator_host, "127.0.0.1:8681");
  EXPECT_EQ(c.storage.firestore.metadata_host, "127.0.0.1:9");
  EXPECT_EQ(c.storage.max_value_bytes, 512U * 1024);
  ASSERT_TRUE(c.storage.secondary);
  EXPECT_EQ(c.storage.secondary->backend, StorageBackend::kFirestore);
  EXPECT_EQ(c.storage.secondary->firestore.project, "proj-1");  // $GOOGLE_CLOUD_PROJECT
  EXPECT_EQ(c.storage.secondary->firestore.root, "backup");
}

TEST(ParseConfig, FirestoreMistakesNameTheKey) {
  FakeEnv none;
  EXPECT_NE(ErrorOf("storage: {backend: firestore}\n", none)
                .find("storage.firestore.project: backend firestore needs a Google Cloud project"),
            std::string::npos);
  FakeEnv env;
  env.vars["GOOGLE_CLOUD_PROJECT"] = "p";
  for (const auto& [yaml, message] : std::vector<std::pair<std::string, std::string>>{
           {"storage: {backend: firestore, firestore: {root: a/b}}\n", "storage.firestore.root"},
           {"storage: {backend: firestore, firestore: {root: __x__}}\n", "storage.firestore.root"},
           {"storage: {backend: firestore, firestore: {database: 'my db'}}\n",
            "storage.firestore.database"},
           {"storage: {backend: firestore, firestore: {project: 'a/b'}}\n",
            "storage.firestore.project"},
           {"storage: {backend: firestore, firestore: {endpoint: firestore.googleapis.com}}\n",
            "storage.firestore.endpoint"},
           {"storage: {backend: firestore, firestore: {projct: p}}\n",
            "storage.firestore.projct: unknown key (did you mean 'project'?)"},
           {"storage: {backend: firestore, max_value_bytes: 2MiB}\n",
            "storage.max_value_bytes: at most 1000000 with backend firestore"}}) {
    EXPECT_NE(ErrorOf(yaml, env).find(message), std::string::npos) << yaml << ErrorOf(yaml, env);
  }
}

TEST(ParseConfig, BadEnvironmentValueNamesTheKey) {
  FakeEnv env;
  env.vars["ORCHESTRA_SERVER_THREADS"] = "many";
  EXPECT_NE(ErrorOf("", env).find("server.threads: expected an integer, got 'many'"),
            std::string::npos);
}

LoadOptions Options(const FakeEnv& env) {
  LoadOptions o;
  o.path = "/nonexistent-is-not-read";
  o.env = env.Lookup();
  return o;
}

TEST(LoadConfig, RefusesNonLoopbackWithoutKeys) {
  FakeEnv env;
  LoadOptions o;
  o.env = env.Lookup();
  o.listen = "0.0.0.0:8080";
  try {
    LoadConfig(o);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("refusing to listen on 0.0.0.0:8080 without API keys"),
              std::string::npos)
        << e.what();
  }
}

TEST(LoadConfig, AllowsNonLoopbackWhenAuthIsExplicitlyDisabled) {
  FakeEnv env;
  env.vars["ORCHESTRA_AUTH_DISABLED"] = "true";
  LoadOptions o;
  o.env = env.Lookup();
  o.listen = "0.0.0.0:8080";
  auto c = LoadConfig(o);
  EXPECT_EQ(c->server.host, "0.0.0.0");
}

TEST(LoadConfig, PortReplacesThePortAndFlagsBeatEnvironment) {
  FakeEnv env;
  env.vars["PORT"] = "9999";
  env.vars["ORCHESTRA_OBSERVABILITY_LOG_FORMAT"] = "json";
  LoadOptions o;
  o.env = env.Lookup();
  o.log_format = "text";
  auto c = LoadConfig(o);
  EXPECT_EQ(c->server.port, 9999);
  EXPECT_EQ(c->server.host, "127.0.0.1");
  EXPECT_EQ(c->observability.log_format, LogFormat::kText);
  EXPECT_GE(c->server.threads, 1);
  EXPECT_GE(c->server.max_inflight, 64);  // resolved from the descriptor limit
  EXPECT_NE(c->FindProvider("local"), nullptr);
}

TEST(LoadConfig, MissingFileIsAPreciseError) {
  FakeEnv env;
  try {
    LoadConfig(Options(env));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read the config file"), std::string::npos);
  }
}

TEST(LoadConfig, ConfiguresWellKnownProvidersFromTheirKeysWithoutAFile) {
  FakeEnv env;
  env.vars["OPENAI_API_KEY"] = "sk-test";
  env.vars["ANTHROPIC_API_KEY"] = "sk-ant";
  LoadOptions o;
  o.env = env.Lookup();
  auto c = LoadConfig(o);
  ASSERT_NE(c->FindProvider("openai"), nullptr);
  EXPECT_EQ(c->FindProvider("openai")->api_key_env, "OPENAI_API_KEY");
  ASSERT_NE(c->FindProvider("anthropic"), nullptr);
  EXPECT_EQ(c->FindProvider("gemini"), nullptr);
}

TEST(LoadConfig, UnknownProviderInATargetSuggestsTheClosest) {
  FakeEnv env;
  Config c = ParseConfig(
      "providers: [{name: openai, type: openai}]\n"
      "models: [{name: m, targets: [{provider: opena, model: x}]}]\n",
      "f.yaml", env.Lookup());
  (void)c;
  LoadOptions o;
  o.env = env.Lookup();
  // Cross-references are checked by LoadConfig; use a temp file.
  std::string path = testing::TempDir() + "/orchestra_xref.yaml";
  {
    std::ofstream out(path);
    out << "providers: [{name: openai, type: openai}]\n"
           "models: [{name: m, targets: [{provider: opena, model: x}]}]\n";
  }
  o.path = path;
  try {
    LoadConfig(o);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(
        std::string(e.what()).find(
            "models[0].targets[0].provider: unknown provider 'opena' (did you mean 'openai'?)"),
        std::string::npos)
        << e.what();
  }
}

TEST(DumpConfig, RedactsSecretsButKeepsTheirSources) {
  FakeEnv env;
  Config c = ParseConfig(
      "auth: {keys: [{name: a, sha256: " + std::string(64, 'a') +
          "}]}\n"
          "providers: [{name: p, type: openai, api_key_env: P_KEY, headers: {X-Token: s3cr3t}}]\n"
          "storage: {backend: postgres, url: 'postgresql://user:hunter2@db/orchestra'}\n"
          "limits: {postgres_url: 'postgresql://lim:swordfish@pg/limits'}\n",
      "f.yaml", env.Lookup());
  std::string dump = DumpConfig(c);
  EXPECT_EQ(dump.find("swordfish"), std::string::npos);
  EXPECT_NE(dump.find("postgresql://<redacted>@pg/limits"), std::string::npos);
  EXPECT_EQ(dump.find(std::string(64, 'a')), std::string::npos);
  EXPECT_EQ(dump.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(dump.find("hunter2"), std::string::npos);
  EXPECT_NE(dump.find("P_KEY"), std::string::npos);
  EXPECT_NE(dump.find("postgresql://<redacted>@db/orchestra"), std::string::npos);
}

}  // namespace
}  // namespace orchestra::config

namespace orchestra::config {
namespace {

TEST(UnusedOrchestraVariables, NamesTheOnesThatConfigureNothing) {
  FakeEnv env;
  Config c = ParseConfig("auth: {keys: [{name: a, key_env: ORCHESTRA_KEY_APP}]}\n", "f.yaml",
                         env.Lookup());
  auto unused = UnusedOrchestraVariables(
      c, {"ORCHESTRA_SERVER_MAX_INFLIGHT=3", "ORCHESTRA_SERVER_LISTN=x", "ORCHESTRA_KEY_APP=k",
          "ORCHESTRA_CONFIG=/x", "HOME=/root", "ORCHESTRA_NOTHING_AT_ALL=1"});
  ASSERT_EQ(unused.size(), 2u);
  EXPECT_EQ(unused[0], "ORCHESTRA_SERVER_LISTN (did you mean ORCHESTRA_SERVER_LISTEN?)");
  EXPECT_EQ(unused[1], "ORCHESTRA_NOTHING_AT_ALL");
}

TEST(ParseConfig, RejectsAuthDisabledWithKeysAndFallbacksToUnknownProviders) {
  FakeEnv env;
  std::string path = ::testing::TempDir() + "/orchestra_more.yaml";
  auto load = [&](const std::string& yaml) -> std::string {
    std::ofstream(path) << yaml;
    LoadOptions o;
    o.env = env.Lookup();
    o.path = path;
    try {
      LoadConfig(o);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(load("auth: {disabled: true, keys: [{name: a, key_env: K}]}\n")
                .find("auth.disabled: true with auth.keys configured"),
            std::string::npos);
  EXPECT_NE(load("models: [{name: m, targets: [{provider: local, model: local-extractive}], "
                 "fallbacks: [nope/x]}]\n")
                .find("'nope/x' names no configured provider"),
            std::string::npos);
}

// A local model only quotes its context: as the fallback of a generative model it turns an
// outage into 200s that are not answers, so it takes an explicit opt-in (issue 12).
TEST(LoadConfig, ALocalFallbackOfAGenerativeModelNeedsAllowLocalFallback) {
  FakeEnv env;
  const std::string path = ::testing::TempDir() + "/orchestra_local_fallback.yaml";
  auto load = [&](const std::string& yaml) -> std::string {
    std::ofstream(path) << yaml;
    LoadOptions o;
    o.env = env.Lookup();
    o.path = path;
    try {
      LoadConfig(o);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  const std::string providers =
      "providers: [{name: openai, type: openai, api_key_env: K}, {name: offline, type: local}]\n";
  for (std::string_view fallback :
       {"local-extractive", "local/local-extractive", "offline/local-extractive", "quotes"}) {
    SCOPED_TRACE(fallback);
    const std::string models =
        "models:\n"
        "  - {name: quotes, targets: [{provider: offline, model: local-extractive}]}\n"
        "  - {name: gpt, targets: [{provider: openai, model: gpt-4o}], fallbacks: [" +
        std::string(fallback) + "]";
    const std::string error = load(providers + models + "}\n");
    EXPECT_NE(
        error.find("models[1].fallbacks[0]: '" + std::string(fallback) + "' is a local model"),
        std::string::npos)
        << error;
    EXPECT_NE(error.find("model 'gpt'"), std::string::npos) << error;
    EXPECT_NE(error.find("allow_local_fallback: true"), std::string::npos) << error;
    EXPECT_EQ(load(providers + models + ", allow_local_fallback: true}\n"), "");
  }
  // Generative fallbacks, and local fallbacks of a local model, need nothing.
  EXPECT_EQ(
      load(providers + "models:\n"
                       "  - {name: a, targets: [{provider: openai, model: gpt-4o}]}\n"
                       "  - {name: b, targets: [{provider: openai, model: gpt-4o-mini}], "
                       "fallbacks: [a, openai/gpt-4.1]}\n"
                       "  - {name: c, targets: [{provider: offline, model: local-extractive}], "
                       "fallbacks: [local-extractive]}\n"),
      "");
}

TEST(ParseConfig, VertexGetsItsOwnAddress) {
  FakeEnv env;
  Config c = ParseConfig(
      "providers: [{name: v, type: gemini, vertex: true, project: p1, location: europe-west4}]\n",
      "f.yaml", env.Lookup());
  EXPECT_EQ(c.providers[0].base_url,
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4/"
            "publishers/google");
}

// documents (issue 14): defaults resolved on load, and what is refused.
TEST(LoadConfig, LimitsAreFleetWideOnRedisUnlessSaidOtherwise) {
  FakeEnv env;
  LoadOptions o;
  o.env = env.Lookup();
  // In process by default (SQLite).
  EXPECT_TRUE(LoadConfig(o)->limits.effective_redis_url.empty());
  // The storage's Redis when the storage is Redis...
  env.vars["ORCHESTRA_STORAGE_BACKEND"] = "redis";
  env.vars["ORCHESTRA_STORAGE_URL"] = "redis://10.0.0.1:6380/2";
  auto on_redis = LoadConfig(o);
  EXPECT_EQ(on_redis->limits.effective_redis_url, "redis://10.0.0.1:6380/2");
  EXPECT_EQ(on_redis->limits.on_backend_error, OnBackendError::kAllow);
  EXPECT_EQ(on_redis->limits.backend_timeout, std::chrono::milliseconds(5));
  // ... unless local is asked for.
  env.vars["ORCHESTRA_LIMITS_BACKEND"] = "local";
  EXPECT_TRUE(LoadConfig(o)->limits.effective_redis_url.empty());
  // Its own Redis, with PostgreSQL storage.
  env.vars["ORCHESTRA_STORAGE_BACKEND"] = "postgres";
  env.vars["ORCHESTRA_STORAGE_URL"] = "postgresql://u@h/db";
  env.vars["ORCHESTRA_LIMITS_BACKEND"] = "redis";
  try {
    LoadConfig(o);
    ADD_FAILURE() << "limits.backend: redis without a Redis was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("limits.backend: redis needs limits.redis_url"),
              std::string::npos)
        << e.what();
  }
  env.vars["ORCHESTRA_LIMITS_REDIS_URL"] = "redis://lim:6379";
  env.vars["ORCHESTRA_LIMITS_ON_BACKEND_ERROR"] = "deny";
  auto own = LoadConfig(o);
  EXPECT_EQ(own->limits.effective_redis_url, "redis://lim:6379");
  EXPECT_EQ(own->limits.on_backend_error, OnBackendError::kDeny);
  // Mistakes name the key.
  EXPECT_NE(ErrorOf("limits: {backend: redus}\n").find("limits.backend"), std::string::npos);
  EXPECT_NE(ErrorOf("limits: {on_backend_error: maybe}\n").find("limits.on_backend_error"),
            std::string::npos);
  EXPECT_NE(ErrorOf("limits: {backend_timeout: 5s}\n").find("limits.backend_timeout"),
            std::string::npos);
  EXPECT_NE(ErrorOf("limits: {redis_url: 'http://x'}\n").find("limits.redis_url"),
            std::string::npos);
}

// With PostgreSQL storage and no Redis for limits, limits are fleet-wide in PostgreSQL.
TEST(LoadConfig, LimitsAreFleetWideOnPostgresWithoutARedis) {
  FakeEnv env;
  LoadOptions o;
  o.env = env.Lookup();
  env.vars["ORCHESTRA_STORAGE_BACKEND"] = "postgres";
  env.vars["ORCHESTRA_STORAGE_URL"] = "postgresql://u:pw@h/db";
  auto on_pg = LoadConfig(o);
  EXPECT_EQ(on_pg->limits.effective_postgres_url, "postgresql://u:pw@h/db");
  EXPECT_TRUE(on_pg->limits.effective_redis_url.empty());
  // A Redis for limits wins under auto.
  env.vars["ORCHESTRA_LIMITS_REDIS_URL"] = "redis://lim:6379";
  auto on_redis = LoadConfig(o);
  EXPECT_EQ(on_redis->limits.effective_redis_url, "redis://lim:6379");
  EXPECT_TRUE(on_redis->limits.effective_postgres_url.empty());
  // Asked for by name: its own database, whatever else is configured.
  env.vars["ORCHESTRA_LIMITS_BACKEND"] = "postgres";
  env.vars["ORCHESTRA_LIMITS_POSTGRES_URL"] = "postgresql://lim@pg/limits";
  auto own = LoadConfig(o);
  EXPECT_EQ(own->limits.effective_postgres_url, "postgresql://lim@pg/limits");
  EXPECT_TRUE(own->limits.effective_redis_url.empty());
  env.vars.erase("ORCHESTRA_LIMITS_REDIS_URL");
  // local stays local.
  env.vars["ORCHESTRA_LIMITS_BACKEND"] = "local";
  EXPECT_TRUE(LoadConfig(o)->limits.effective_postgres_url.empty());
  // postgres without any URL is a start-up error.
  env.vars.erase("ORCHESTRA_LIMITS_POSTGRES_URL");
  env.vars["ORCHESTRA_STORAGE_BACKEND"] = "sqlite";
  env.vars.erase("ORCHESTRA_STORAGE_URL");
  env.vars["ORCHESTRA_LIMITS_BACKEND"] = "postgres";
  try {
    LoadConfig(o);
    ADD_FAILURE() << "limits.backend: postgres without a database was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("limits.backend: postgres needs limits.postgres_url"),
              std::string::npos)
        << e.what();
  }
  EXPECT_NE(ErrorOf("limits: {postgres_url: 'redis://x'}\n").find("limits.postgres_url"),
            std::string::npos);
}

TEST(LoadConfig, DocumentsDefaultsAndChecks) {
  FakeEnv env;
  LoadOptions o;
  o.env = env.Lookup();
  auto c = LoadConfig(o);
  EXPECT_EQ(c->documents.embedding_model, "local-embed");
  EXPECT_EQ(c->documents.snapshot_dir, "./data/vectors");
  EXPECT_TRUE(c->documents.import_dir.empty());
  EXPECT_EQ(c->documents.chunking.strategy, ChunkingStrategy::kParagraph);
  env.vars["ORCHESTRA_TASKS_EMBEDDINGS_MODEL"] = "openai/text-embedding-3-small";
  env.vars["ORCHESTRA_DOCUMENTS_SNAPSHOTS"] = "false";
  env.vars["ORCHESTRA_DOCUMENTS_IMPORT_DIR"] = "/tmp/../tmp";
  env.vars["ORCHESTRA_DOCUMENTS_CHUNKING_STRATEGY"] = "markdown_headings";
  auto t = LoadConfig(o);
  EXPECT_EQ(t->documents.embedding_model, "openai/text-embedding-3-small");
  EXPECT_TRUE(t->documents.snapshot_dir.empty());
  EXPECT_EQ(t->documents.chunking.strategy, ChunkingStrategy::kMarkdownHeadings);
  EXPECT_EQ(t->documents.import_dir, "/tmp");  // made canonical
  EXPECT_NE(ErrorOf("documents: {import_dir: /no/such/dir}\n").find("documents.import_dir"),
            std::string::npos);
  EXPECT_NE(ErrorOf("documents: {chunking: {size: 100, overlap: 100}}\n")
                .find("documents.chunking.overlap: must be below size"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf("documents: {chunking: {strategy: words}}\n").find("documents.chunking.strategy"),
      std::string::npos);
  EXPECT_NE(ErrorOf("documents: {poll_interval: 1ms}\n").find("documents.poll_interval"),
            std::string::npos);
}

}  // namespace
}  // namespace orchestra::config

namespace orchestra::config {
namespace {

TEST(ParseTracing, OffUntilAnEndpointIsKnown) {
  FakeEnv env;
  Config c = ParseConfig("", "orchestra.yaml", env.Lookup());
  EXPECT_FALSE(c.tracing.enabled);
  c = ParseConfig("tracing: {endpoint: 'http://collector:4318'}\n", "orchestra.yaml", env.Lookup());
  EXPECT_TRUE(c.tracing.enabled);
  EXPECT_EQ(c.tracing.traces_url, "http://collector:4318/v1/traces");
  EXPECT_EQ(c.tracing.protocol, OtlpProtocol::kHttpProtobuf);
  EXPECT_EQ(c.tracing.sampler, TraceSampler::kParentBasedTraceIdRatio);
  EXPECT_EQ(c.tracing.sampling_ratio, 1.0);
  EXPECT_FALSE(c.tracing.use_gcp_token);
}

TEST(ParseTracing, ReadsTheStandardOpenTelemetryVariables) {
  FakeEnv env;
  env.vars["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://collector:4318/";
  env.vars["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/json";
  env.vars["OTEL_EXPORTER_OTLP_HEADERS"] = "Api-Key=a%2Cb, x-team = blue";
  env.vars["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio";
  env.vars["OTEL_TRACES_SAMPLER_ARG"] = "0.01";
  env.vars["OTEL_SERVICE_NAME"] = "gateway";
  env.vars["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment.name=prod,service.name=x";
  Config c = ParseConfig("", "orchestra.yaml", env.Lookup());
  EXPECT_TRUE(c.tracing.enabled);
  EXPECT_EQ(c.tracing.traces_url, "http://collector:4318/v1/traces");
  EXPECT_EQ(c.tracing.protocol, OtlpProtocol::kHttpJson);
  EXPECT_EQ(c.tracing.headers.at("api-key"), "a,b");
  EXPECT_EQ(c.tracing.headers.at("x-team"), "blue");
  EXPECT_DOUBLE_EQ(c.tracing.sampling_ratio, 0.01);
  EXPECT_EQ(c.tracing.service_name, "gateway");
  EXPECT_EQ(c.tracing.resource_attributes.at("deployment.environment.name"), "prod");
  EXPECT_FALSE(c.tracing.resource_attributes.contains("service.name"));

  // The per-signal endpoint is used as it is; the file's keys beat the variables.
  env.vars["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "https://traces.example/otlp";
  c = ParseConfig("tracing: {sampling_ratio: 0.5}\n", "orchestra.yaml", env.Lookup());
  EXPECT_EQ(c.tracing.traces_url, "https://traces.example/otlp");
  EXPECT_DOUBLE_EQ(c.tracing.sampling_ratio, 0.5);

  env.vars["OTEL_SDK_DISABLED"] = "true";
  EXPECT_FALSE(ParseConfig("", "orchestra.yaml", env.Lookup()).tracing.enabled);
}

TEST(ParseTracing, GooglesEndpointGetsTheMetadataServersToken) {
  FakeEnv env;
  env.vars["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://telemetry.googleapis.com";
  env.vars["GOOGLE_CLOUD_PROJECT"] = "proj-1";
  Config c = ParseConfig("", "orchestra.yaml", env.Lookup());
  EXPECT_EQ(c.tracing.traces_url, "https://telemetry.googleapis.com/v1/traces");
  EXPECT_TRUE(c.tracing.use_gcp_token);
  EXPECT_EQ(c.tracing.resource_attributes.at("gcp.project_id"), "proj-1");
  // An Authorization header of its own: no token.
  env.vars["OTEL_EXPORTER_OTLP_HEADERS"] = "authorization=Bearer%20x";
  EXPECT_FALSE(ParseConfig("", "orchestra.yaml", env.Lookup()).tracing.use_gcp_token);
  // Forced on for a collector that forwards it.
  FakeEnv plain;
  c = ParseConfig("tracing: {endpoint: 'http://c:4318', gcp_auth: on}\n", "orchestra.yaml",
                  plain.Lookup());
  EXPECT_TRUE(c.tracing.use_gcp_token);
}

TEST(ParseTracing, MistakesNameTheKeyOrTheVariable) {
  EXPECT_NE(ErrorOf("tracing: {endpoint: 'collector:4317'}\n").find("tracing.endpoint"),
            std::string::npos);
  EXPECT_NE(ErrorOf("tracing: {sampling_ratio: 2}\n").find("tracing.sampling_ratio"),
            std::string::npos);
  EXPECT_NE(ErrorOf("tracing: {sampler: sometimes}\n").find("tracing.sampler"), std::string::npos);
  EXPECT_NE(ErrorOf("tracing: {queue_size: 10, batch_size: 20}\n").find("tracing.batch_size"),
            std::string::npos);
  FakeEnv env;
  env.vars["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc";
  EXPECT_NE(ErrorOf("", env).find("OTEL_EXPORTER_OTLP_PROTOCOL"), std::string::npos);
  FakeEnv ratio;
  ratio.vars["OTEL_TRACES_SAMPLER_ARG"] = "lots";
  EXPECT_NE(ErrorOf("", ratio).find("OTEL_TRACES_SAMPLER_ARG"), std::string::npos);
  // A header's value may be a secret: a malformed list names the key only.
  FakeEnv headers;
  headers.vars["OTEL_EXPORTER_OTLP_HEADERS"] = "api-key=%zzsecret";
  const std::string error = ErrorOf("", headers);
  EXPECT_NE(error.find("api-key"), std::string::npos) << error;
  EXPECT_EQ(error.find("secret"), std::string::npos) << error;
}

}  // namespace
}  // namespace orchestra::config
