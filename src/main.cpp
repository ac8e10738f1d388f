// Wiring only: command line → config → services → server (DESIGN.md §2).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "api/admin_keys.hpp"
#include "api/checkpoints.hpp"
#include "api/documents.hpp"
#include "api/errors.hpp"
#include "api/memory.hpp"
#include "api/model_versions.hpp"
#include "api/openai.hpp"
#include "api/openapi.hpp"
#include "api/ops.hpp"
#include "api/pipeline.hpp"
#include "api/router.hpp"
#include "api/spend.hpp"
#include "api/tasks.hpp"
#include "api/token_counter.hpp"
#include "auth/api_keys.hpp"
#include "auth/key_record.hpp"
#include "auth/key_service.hpp"
#include "auth/model_access.hpp"
#include "build_info.hpp"
#include "common/random.hpp"
#include "common/redis_url.hpp"
#include "config/loader.hpp"
#include "documents/service.hpp"
#include "limits/fleet_limiter.hpp"
#include "limits/load_shedder.hpp"
#include "limits/postgres_fleet_store.hpp"
#include "limits/rate_limiter.hpp"
#include "limits/redis_fleet_store.hpp"
#include "limits/spend.hpp"
#include "limits/usage_recorder.hpp"
#include "net/client.hpp"
#include "net/redis_client.hpp"
#include "net/server.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include "observability/otlp_http_sink.hpp"
#include "observability/tracer.hpp"
#include "orchestration/call_trace.hpp"
#include "orchestration/orchestrator.hpp"
#include "orchestration/redis_cache_tier.hpp"
#include "providers/factory.hpp"
#include "providers/local/local_provider.hpp"
#include "storage/redis/redis_pipe.hpp"
#include "storage/storage.hpp"
#include "versions/service.hpp"
#include <signal.h>

namespace {

using namespace orchestra;
using observability::Severity;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kUsage = R"(Usage:
  orchestra serve [--config FILE] [--listen HOST:PORT] [--log-format json|text] [--log-level LEVEL]
  orchestra check-config [--config FILE] [--listen HOST:PORT] [--keys]
  orchestra version

The config file defaults to $ORCHESTRA_CONFIG, else ./orchestra.yaml when present, else built-in
defaults. Any scalar key can be overridden with ORCHESTRA_<SECTION>_<KEY> (for example
ORCHESTRA_SERVER_MAX_INFLIGHT=200); $PORT replaces the listen port. See docs/CONFIG.md.
)";

struct Command {
  std::string name;
  config::LoadOptions load;
  bool list_keys = false;  // check-config --keys: every configuration key's path
};

// Parses argv; prints usage and exits on --help or a mistake.
Command ParseCommandLine(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage.data(), args.empty() ? stderr : stdout);
    std::exit(args.empty() ? 2 : 0);
  }
  Command cmd;
  cmd.name = std::string(args[0]);
  if (cmd.name != "serve" && cmd.name != "check-config" && cmd.name != "version") {
    std::fprintf(stderr, "orchestra: unknown command '%s'\n\n%s", cmd.name.c_str(), kUsage.data());
    std::exit(2);
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::optional<std::string> value;
    if (auto eq = arg.find('='); eq != std::string_view::npos && arg.rfind("--", 0) == 0) {
      value = std::string(arg.substr(eq + 1));
      arg = arg.substr(0, eq);
    }
    auto take = [&]() -> std::string {
      if (value) return *value;
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "orchestra: %.*s needs a value\n", static_cast<int>(arg.size()),
                     arg.data());
        std::exit(2);
      }
      return std::string(args[++i]);
    };
    if (arg == "--config" || arg == "-c") {
      cmd.load.path = take();
    } else if (arg == "--listen") {
      cmd.load.listen = take();
    } else if (arg == "--log-format") {
      cmd.load.log_format = take();
    } else if (arg == "--log-level") {
      cmd.load.log_level = take();
    } else if (arg == "--keys" && cmd.name == "check-config") {
      cmd.list_keys = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage.data(), stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "orchestra: unknown option '%.*s'\n\n%s", static_cast<int>(arg.size()),
                   arg.data(), kUsage.data());
      std::exit(2);
    }
  }
  return cmd;
}

// The Redis of the response cache's shared tier: cache.redis_url, else the storage's Redis;
// none when cache.shared is off or no model is cached.
std::string SharedCacheUrl(const config::Config& cfg) {
  const bool any_cached = std::any_of(cfg.models.begin(), cfg.models.end(), [](const auto& m) {
    return m.cache_ttl > config::Duration{0};
  });
  if (!cfg.cache.shared || !any_cached) return {};
  if (!cfg.cache.redis_url.empty()) return cfg.cache.redis_url;
  if (cfg.storage.backend == config::StorageBackend::kRedis) return cfg.storage.url;
  return {};
}

orchestration::ResponseCache::Options CacheOptionsFor(const config::CacheConfig& c) {
  orchestration::ResponseCache::Options o;
  o.max_bytes = c.max_bytes;
  o.max_entries = static_cast<std::size_t>(c.max_entries);
  return o;
}

// The gateway's services, built from the configuration the same way for `serve` and
// `check-config` (which builds them to prove every route resolves, and opens no connection):
// the providers and their origins in the connection pools, the route table, the orchestrator
// with its response cache, and the task service. Members are declared in dependency order, so
// they are destroyed in reverse.
struct Gateway {
  Gateway(const config::Config& cfg, const config::EnvLookup& env,
          observability::Registry& registry, int workers)
      : upstreams(workers),
        metrics(registry),
        cache(CacheOptionsFor(cfg.cache), orchestration::RealClock()) {
    for (const config::ProviderConfig& p : cfg.providers) {
      providers.push_back(providers::MakeProvider(p, upstreams, env));
      provider_map[p.name] = providers.back().get();
    }
    orchestration::RouteTable::Options route_options;
    for (std::string_view m : providers::LocalProvider::Models())
      route_options.local_models.emplace_back(m);
    routes = std::make_unique<orchestration::RouteTable>(cfg, provider_map, metrics,
                                                         orchestration::RealClock(), route_options);
    // The response cache's shared tier (docs/CONFIG.md#response-cache): only when some model is
    // cached. Connections open lazily (and at start-up on each worker: WarmSharedCache).
    if (const std::string url = SharedCacheUrl(cfg); !url.empty()) {
      net::RedisClient::Options o;
      o.address = ParseRedisUrl(url, "cache.redis_url");
      o.workers = workers;
      o.max_connections = cfg.cache.redis_connections;
      // No entry is larger than a shard's budget (the in-process tier's 16th): nor is a reply.
      o.max_reply_bytes = cfg.cache.max_bytes / 16 + 4096;
      cache_redis = std::make_unique<net::RedisClient>(std::move(o));
      orchestration::RedisCacheTier::Options t;
      t.lookup_timeout = cfg.cache.redis_timeout;
      t.write_timeout = cfg.cache.redis_write_timeout;
      cache_tier = std::make_unique<orchestration::RedisCacheTier>(*cache_redis, metrics, t);
    }
    orchestrator = std::make_unique<orchestration::Orchestrator>(
        *routes, metrics, &cache, orchestration::RealClock(), cache_tier.get());
    tasks = std::make_unique<tasks::Service>(*orchestrator, cfg.tasks);
  }

  net::Upstreams upstreams;
  std::vector<std::unique_ptr<providers::Provider>> providers;
  orchestration::ProviderMap provider_map;
  orchestration::Metrics metrics;
  std::unique_ptr<orchestration::RouteTable> routes;
  orchestration::ResponseCache cache;
  std::unique_ptr<net::RedisClient> cache_redis;  // null: no shared tier
  std::unique_ptr<orchestration::RedisCacheTier> cache_tier;
  std::unique_ptr<orchestration::Orchestrator> orchestrator;
  std::unique_ptr<tasks::Service> tasks;
};

// Virtual keys (issue 13): the public model names a key's `models` and `limits.per_model` may
// name, and the config-file keys' policies checked against them (fail fast, like any config
// error).
std::vector<std::string> PublicModelNames(const orchestration::RouteTable& routes) {
  std::vector<std::string> names;
  for (const orchestration::ModelRoute* r : routes.public_routes())
    names.push_back(r->name);
  for (std::string_view m : providers::LocalProvider::Models()) {
    if (std::find(names.begin(), names.end(), m) == names.end()) names.emplace_back(m);
  }
  return names;
}

void CheckKeyPolicies(const config::Config& cfg, const std::vector<std::string>& models) {
  for (std::size_t i = 0; i < cfg.auth.keys.size(); ++i) {
    const config::ApiKeyConfig& k = cfg.auth.keys[i];
    auto ok = auth::CheckPolicy(k.policy, models, "auth.keys[" + std::to_string(i) + "]");
    if (!ok) throw std::runtime_error(ok.error().message + " (" + ok.error().param + ")");
  }
}

int CheckConfig(const Command& cmd) {
  if (cmd.list_keys) {
    for (const std::string& key : config::ConfigKeys())
      std::printf("%s\n", key.c_str());
    return 0;
  }
  try {
    auto cfg = config::LoadConfig(cmd.load);
    auth::ApiKeys::FromConfig(cfg->auth, cmd.load.env);  // key sources must be readable
    observability::Registry registry;
    Gateway gateway(*cfg, cmd.load.env, registry, 1);  // every route must resolve
    CheckKeyPolicies(*cfg, PublicModelNames(*gateway.routes));
    std::fputs(config::DumpConfig(*cfg).c_str(), stdout);
    for (const api::ModelStatus& m :
         api::ListModels(*gateway.routes, providers::LocalProvider::Models())) {
      if (!m.unusable.empty()) {
        std::fprintf(stderr, "orchestra: warning: model '%s' is unusable: %s\n", m.id.c_str(),
                     m.unusable.c_str());
      }
    }
    std::fprintf(stderr, "orchestra: configuration OK (%s)\n", cfg->source.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "orchestra: invalid configuration: %s\n", e.what());
    return 1;
  }
}

// A warmer per HTTP provider for POST /warmup: a connection on every worker (each has its own
// pool). `server` and `provider` outlive the health checks that hold the warmer.
api::NamedCheck ProviderWarmer(providers::Provider& provider, net::Server& server) {
  return {"provider " + provider.name(),
          [&provider, &server]() -> boost::asio::awaitable<Result<std::string>> {
            std::string detail;
            for (int w = 0; w < server.threads(); ++w) {
              auto r = co_await boost::asio::co_spawn(server.context(w), provider.Warmup(w),
                                                      boost::asio::use_awaitable);
              if (!r) co_return r.error();
              detail = *r;
            }
            co_return detail + " (" + std::to_string(server.threads()) + " workers)";
          }};
}

// Opens a connection to the shared cache's Redis on one worker; a failure is logged (the
// cache then misses; requests are served all the same). `client` outlives the event loops.
boost::asio::awaitable<void> WarmSharedCache(net::RedisClient& client, int worker) {
  auto warmed = co_await client.Warm(worker, std::chrono::seconds(2));
  if (!warmed && worker == 0) {
    observability::Log(Severity::kWarning, "response cache: Redis unreachable",
                       {{"error", warmed.error().message}});
  }
}

// POST /warmup's check of the shared cache: a connection on every worker. `server` and `client`
// outlive the health checks that hold the warmer.
api::NamedCheck SharedCacheWarmer(net::RedisClient& client, net::Server& server) {
  return {"response cache redis",
          [&client, &server]() -> boost::asio::awaitable<Result<std::string>> {
            for (int w = 0; w < server.threads(); ++w) {
              auto r = co_await boost::asio::co_spawn(server.context(w),
                                                      client.Warm(w, std::chrono::seconds(2)),
                                                      boost::asio::use_awaitable);
              if (!r) co_return r.error();
            }
            co_return std::to_string(server.threads()) + " workers connected";
          }};
}

net::ServerOptions ServerOptionsFor(const config::ServerConfig& s,
                                    observability::Counter* fd_exhausted, LoopLoad* loop_load) {
  net::ServerOptions o;
  o.host = s.host;
  o.port = s.port;
  o.threads = s.threads;
  o.max_header_bytes = s.max_header_bytes;
  o.max_body_bytes = s.max_body_bytes;
  o.header_timeout = s.header_timeout;
  o.body_timeout = s.body_timeout;
  o.idle_timeout = s.idle_timeout;
  o.request_timeout = s.request_timeout;
  o.fd_exhausted = fd_exhausted;
  o.loop_load = loop_load;
  return o;
}

// The tracer's settings (docs/CONFIG.md#tracing): the sampler, and the Resource every span is
// filed under (service.name and OTEL_RESOURCE_ATTRIBUTES, plus what Cloud Run tells the
// container about itself).
observability::TracerOptions TracerOptionsFor(const config::Config& cfg,
                                              const config::EnvLookup& env) {
  const config::TracingConfig& t = cfg.tracing;
  observability::TracerOptions o;
  o.protocol = t.protocol == config::OtlpProtocol::kHttpJson
                   ? observability::otlp::Protocol::kJson
                   : observability::otlp::Protocol::kProtobuf;
  using Root = observability::Sampler::Root;
  using S = config::TraceSampler;
  const bool parent_based = t.sampler == S::kParentBasedAlwaysOn ||
                            t.sampler == S::kParentBasedAlwaysOff ||
                            t.sampler == S::kParentBasedTraceIdRatio;
  const Root root =
      (t.sampler == S::kAlwaysOn || t.sampler == S::kParentBasedAlwaysOn)     ? Root::kAlwaysOn
      : (t.sampler == S::kAlwaysOff || t.sampler == S::kParentBasedAlwaysOff) ? Root::kAlwaysOff
                                                                              : Root::kTraceIdRatio;
  o.sampler = observability::Sampler(parent_based, root, t.sampling_ratio);
  o.resource = {{"service.name", t.service_name},       {"service.version", build::kVersion},
                {"service.instance.id", RandomHex(16)}, {"telemetry.sdk.name", "orchestra"},
                {"telemetry.sdk.language", "cpp"},      {"telemetry.sdk.version", build::kVersion}};
  std::map<std::string, std::string> extra = t.resource_attributes;
  if (auto service = env("K_SERVICE"); service && !service->empty()) {
    extra.try_emplace("cloud.provider", "gcp");
    extra.try_emplace("cloud.platform", "gcp_cloud_run");
    extra.try_emplace("faas.name", *service);
    if (auto revision = env("K_REVISION"); revision && !revision->empty()) {
      extra.try_emplace("faas.version", *revision);
    }
  }
  for (auto& entry : extra) {
    // Not a structured binding: clang (the fuzz build) cannot capture one in a lambda.
    const std::string& key = entry.first;
    const bool known = std::any_of(o.resource.begin(), o.resource.end(),
                                   [&](const auto& kv) { return kv.first == key; });
    if (!known) o.resource.emplace_back(key, entry.second);
  }
  o.scope_version = build::kVersion;
  o.queue_size = static_cast<std::size_t>(t.queue_size);
  o.batch_size = static_cast<std::size_t>(t.batch_size);
  o.export_interval = t.export_interval;
  o.export_timeout = t.export_timeout;
  o.capture_content = t.capture_content;
  for (const config::ProviderConfig& p : cfg.providers)
    o.gen_ai_provider_names.emplace_back(p.name, orchestration::GenAiProviderName(p));
  return o;
}

// scheme://host[:port]/path of a URL, without userinfo (for the start-up line).
std::string WithoutUserinfo(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.find('@');
  const auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme == std::string::npos || at == std::string::npos || at > slash) return url;
  return url.substr(0, scheme + 3) + url.substr(at + 1);
}

// Blocks until SIGTERM or SIGINT; returns the signal.
int WaitForSignal(const sigset_t& set) {
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

int Serve(const Command& cmd, Clock::time_point exec_time) {
  std::shared_ptr<const config::Config> cfg;
  try {
    cfg = config::LoadConfig(cmd.load);
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "orchestra: invalid configuration: %s\n", e.what());
    return 1;
  }

  // Signals are taken by sigwait in this thread only; every thread started below inherits the
  // blocked mask, so no worker is interrupted by them. Before the logger, whose writer thread
  // is the first: with SIGTERM open there, a SIGTERM that came before this thread reached
  // sigwait killed the process (exit 143) instead of draining it.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  observability::LoggerOptions log_options;
  log_options.format = cfg->observability.log_format;
  log_options.level = cfg->observability.log_level;
  if (auto project = cmd.load.env("GOOGLE_CLOUD_PROJECT")) log_options.gcp_project = *project;
  observability::Logger logger(log_options);
  observability::InstallLogger(&logger);

  try {
    observability::Registry registry;
    observability::RegisterProcessMetrics(registry, build::kVersion, build::kCommit);
    registry.AddCallback("orchestra_log_dropped_lines_total",
                         "Log lines dropped because stdout could not keep up.",
                         observability::MetricType::kCounter,
                         [&logger] { return static_cast<double>(logger.dropped()); });
    auth::ApiKeys keys = auth::ApiKeys::FromConfig(cfg->auth, cmd.load.env);

    // Spans, exported over OTLP/HTTP from a thread of their own (observability/tracer.hpp).
    std::unique_ptr<observability::OtlpHttpSink> trace_sink;
    std::unique_ptr<observability::Tracer> tracer;
    if (cfg->tracing.enabled) {
      const config::TracingConfig& t = cfg->tracing;
      observability::OtlpHttpSinkOptions sink_options;
      sink_options.url = t.traces_url;
      sink_options.headers.assign(t.headers.begin(), t.headers.end());
      sink_options.gcp_token = t.use_gcp_token;
      sink_options.metadata_host = t.metadata_host;
      trace_sink = std::make_unique<observability::OtlpHttpSink>(std::move(sink_options));
      tracer = std::make_unique<observability::Tracer>(TracerOptionsFor(*cfg, cmd.load.env),
                                                       *trace_sink, registry);
      observability::InstallTracer(tracer.get());
      observability::Log(
          Severity::kInfo, "tracing",
          {{"endpoint", WithoutUserinfo(t.traces_url)},
           {"protocol",
            t.protocol == config::OtlpProtocol::kHttpJson ? "http/json" : "http/protobuf"},
           {"sampling_ratio", t.sampling_ratio},
           {"google_token", t.use_gcp_token},
           {"capture_content", t.capture_content}});
    }

    storage::StorageOptions storage_options;
    storage_options.on_event = [](std::string_view event) {
      observability::Log(Severity::kWarning, "storage", {{"event", event}});
    };
    std::unique_ptr<storage::Storage> storage =
        storage::OpenStorage(cfg->storage, registry, storage_options);

    api::Health health;
    api::NamedCheck storage_check{"storage",
                                  [&storage]() -> boost::asio::awaitable<Result<std::string>> {
                                    storage::StorageHealth h = co_await storage->CheckHealth();
                                    if (!h.ready)
                                      co_return Error(ErrorCode::kUnavailable, h.detail);
                                    co_return h.detail;
                                  }};
    health.AddReadinessCheck(storage_check);
    health.AddWarmer(storage_check);
    api::Router router;
    api::AddOperationsRoutes(router, health, registry, {build::kVersion, build::kCommit});
    Gateway gateway(*cfg, cmd.load.env, registry, cfg->server.threads);
    auto& fd_exhausted = registry.AddCounter(
        "orchestra_fd_exhausted_total",
        "Times a file descriptor was needed and none was left: accepting a connection, or "
        "connecting to an upstream.",
        {"where"});
    gateway.upstreams.set_fd_exhausted_counter(&fd_exhausted.With({"upstream"}));
    // Documents (issue 14): the indexes load on the service's own thread; /startupz answers
    // "started" once they are loaded and the server listens, whichever comes last.
    std::atomic<bool> serving{false};
    documents::Service::Options document_options;
    document_options.config = cfg->documents;
    document_options.max_value_bytes = cfg->storage.max_value_bytes;
    document_options.build_threads = static_cast<std::size_t>(std::max(1, cfg->server.threads));
    document_options.on_ready = [&serving, &health] {
      if (serving.load()) health.MarkStarted();
    };
    documents::Service document_service(storage->records(), *gateway.orchestrator,
                                        std::move(document_options), &registry);
    // On every backend (Firestore too: its record batches take turns on the change log's head,
    // a few a second fleet-wide, which bounds ingestion there; docs/OPERATIONS.md).
    document_service.Start();
    health.AddWarmer(
        {"documents", [&document_service]() -> boost::asio::awaitable<Result<std::string>> {
           if (!document_service.ready())
             co_return Error(ErrorCode::kUnavailable, document_service.LoadStatus());
           co_return document_service.LoadStatus();
         }});
    api::AddDocumentRoutes(router, document_service);
    api::AddOpenAIRoutes(router, *gateway.orchestrator, providers::LocalProvider::Models(),
                         &document_service);
    api::AddTaskRoutes(router, *gateway.tasks, *gateway.orchestrator,
                       providers::LocalProvider::Models(), &document_service);
    api::AddTokenCounterRoute(router, *gateway.routes);
    for (const api::ModelStatus& m :
         api::ListModels(*gateway.routes, providers::LocalProvider::Models())) {
      if (!m.unusable.empty()) {
        observability::Log(Severity::kWarning, "model unusable until restarted",
                           {{"model", m.id}, {"reason", m.unusable}});
      }
    }
    api::AddMemoryRoutes(router, storage->kv());
    api::AddCheckpointRoutes(router, storage->checkpoints());
    // Model versions: the stored deployments are applied before the first request, and followed
    // from the change log afterwards (docs/OPERATIONS.md "Model versions across instances").
    versions::Service model_versions(storage->records(), *gateway.routes);
    if (auto loaded = model_versions.Start(); !loaded) {
      observability::Log(Severity::kWarning,
                         "model versions: cannot load deployments from storage; configured "
                         "targets serve until they can be read",
                         {{"error", loaded.error().message}});
    }
    api::AddModelVersionRoutes(router, model_versions);
    // Virtual API keys (issue 13): stored keys join the config keys in `keys` before the first
    // request, and follow the change log afterwards (docs/OPERATIONS.md "API keys across
    // instances"); ModelAccess holds every key to its `models`.
    const std::vector<std::string> model_names = PublicModelNames(*gateway.routes);
    CheckKeyPolicies(*cfg, model_names);
    auth::KeyServiceOptions key_options;
    key_options.models = model_names;
    key_options.poll_interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(cfg->auth.keys_refresh_interval);
    key_options.rotation_grace_s = std::chrono::duration<double>(cfg->auth.rotation_grace).count();
    auth::KeyService key_service(storage->records(), keys, key_options);
    if (auto loaded = key_service.Start(); !loaded) {
      observability::Log(Severity::kWarning,
                         "api keys: cannot load stored keys; only config keys are accepted until "
                         "they can be read",
                         {{"error", loaded.error().message}});
    }
    api::AddAdminKeyRoutes(router, key_service);
    auth::ModelAccess model_access;
    // --- Spend and budgets (issue 13): settled spend is batched to the records' counters. ---
    limits::SpendLedger::Options spend_options;
    spend_options.flush_interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(cfg->limits.spend_flush_interval);
    limits::SpendLedger spend(&storage->records(), spend_options);
    spend.Start();
    api::AddSpendRoutes(router, &storage->records(), spend);
    // --- end spend ---
    api::AddOpenApiRoute(router, build::kVersion);  // describes every route, whenever added

    // Admission stages, in order: load shedding first (it refuses cheapest), the key's models,
    // then accounting.
    LoopLoad loop_load(cfg->server.threads);
    limits::LoadShedder shedder({cfg->server.max_inflight, cfg->server.retry_after_s,
                                 cfg->server.max_loop_delay, cfg->server.max_memory_bytes},
                                &loop_load, registry);
    limits::UsageRecorder usage(registry);
    // --- Per-key limits (issue 13): rate limits before accounting. ---
    limits::RateLimiter rate_limiter;
    // Fleet-wide in Redis or PostgreSQL when configured (limits.backend; docs/OPERATIONS.md
    // "Limits across instances"): one connection per worker, opened by the server's worker init
    // below.
    std::unique_ptr<limits::FleetLimiter> fleet_limiter;
    if (!cfg->limits.effective_redis_url.empty() || !cfg->limits.effective_postgres_url.empty()) {
      limits::FleetLimiter::Options fleet;
      if (!cfg->limits.effective_redis_url.empty()) {
        fleet.store = limits::RedisFleetStore::Factory(
            ParseRedisUrl(cfg->limits.effective_redis_url, "limits.redis_url"));
      } else {
        limits::PostgresFleetStore::Options pg;
        pg.url = cfg->limits.effective_postgres_url;
        fleet.store = limits::PostgresFleetStore::Factory(std::move(pg));
      }
      fleet.timeout =
          std::chrono::duration_cast<std::chrono::microseconds>(cfg->limits.backend_timeout);
      fleet.on_error = cfg->limits.on_backend_error == config::OnBackendError::kDeny
                           ? limits::FleetLimiter::OnError::kDeny
                           : limits::FleetLimiter::OnError::kAllow;
      fleet.inflight_lease =
          std::chrono::duration_cast<std::chrono::milliseconds>(cfg->limits.inflight_lease);
      fleet.period_spend = [&spend](std::string_view key, limits::BudgetPeriod period) {
        return spend.PeriodSpend(key, period);
      };
      fleet_limiter =
          std::make_unique<limits::FleetLimiter>(cfg->server.threads, std::move(fleet), &registry);
    }
    limits::Stage* rate_stage = fleet_limiter != nullptr
                                    ? static_cast<limits::Stage*>(fleet_limiter.get())
                                    : static_cast<limits::Stage*>(&rate_limiter);
    // Order: the cheapest refusal first (load), then who may call what, then limits and budget.
    std::vector<limits::Stage*> stages{&shedder, &model_access, rate_stage, &spend, &usage};
    // --- end per-key limits ---
    api::PipelineOptions pipeline_options;
    pipeline_options.access_log = cfg->observability.access_log;
    pipeline_options.log_probes = cfg->observability.log_probes;
    api::Pipeline pipeline(router, keys, std::move(stages), registry, logger, pipeline_options);

    const config::ServerConfig& s = cfg->server;
    const int retry_after = s.retry_after_s;
    auto render_error = [retry_after](const Error& e, net::Response& r) {
      api::RenderError(e, r, retry_after);
    };
    net::Server server(
        ServerOptionsFor(s, &fd_exhausted.With({"accept"}), &loop_load),
        [&pipeline](net::Exchange& ex) { return pipeline.Handle(ex); }, render_error,
        [&gateway, &fleet_limiter](int worker, boost::asio::io_context& context) {
          gateway.upstreams.CreateClient(worker, context);
          if (fleet_limiter != nullptr) fleet_limiter->StartWorker(worker, context.get_executor());
          // The shared cache's first lookups find a connection open (a lookup that must
          // connect first may not fit in cache.redis_timeout on a distant Redis).
          if (gateway.cache_redis) {
            boost::asio::co_spawn(context, WarmSharedCache(*gateway.cache_redis, worker),
                                  boost::asio::detached);
          }
        });
    health.SetLiveness([&server] { return server.LoopsResponsive(std::chrono::seconds(5)); });
    for (const auto& provider : gateway.providers) {
      if (provider->type() != config::ProviderType::kLocal) {
        health.AddWarmer(ProviderWarmer(*provider, server));
      }
    }
    if (gateway.cache_redis) {
      health.AddWarmer(SharedCacheWarmer(*gateway.cache_redis, server));
      const RedisAddress& a = gateway.cache_redis->address();
      observability::Log(
          Severity::kInfo, "response cache: shared tier on Redis",
          {{"redis", a.host + ":" + std::to_string(a.port)},
           {"db", a.db},
           {"timeout_ms",
            std::chrono::duration<double, std::milli>(cfg->cache.redis_timeout).count()}});
    }

    std::uint16_t port = 0;
    try {
      port = server.Listen();
    } catch (const std::system_error& e) {
      observability::Log(Severity::kError, "cannot listen", {{"error", e.what()}});
      logger.Stop();
      return 1;
    }
    // Optional: /metrics alone on a second address, without an API key, for a scraper that cannot
    // send one (Cloud Run's Prometheus sidecar). One thread, its own router and pipeline; it
    // renders the same registry.
    std::unique_ptr<net::Server> metrics_server;
    api::Router metrics_router;
    auth::ApiKeys no_keys;
    api::AddMetricsRoute(metrics_router, registry, api::Access::kPublic);
    api::PipelineOptions metrics_options;
    metrics_options.access_log = false;
    observability::Registry scrape_metrics;  // the scrapes themselves are not exported
    api::Pipeline metrics_pipeline(metrics_router, no_keys, {}, scrape_metrics, logger,
                                   metrics_options);
    if (!cfg->observability.metrics_listen.empty()) {
      net::ServerOptions mo;
      mo.host = cfg->observability.metrics_host;
      mo.port = cfg->observability.metrics_port;
      mo.threads = 1;
      metrics_server = std::make_unique<net::Server>(
          mo, [&metrics_pipeline](net::Exchange& ex) { return metrics_pipeline.Handle(ex); },
          render_error);
      try {
        metrics_server->Listen();
      } catch (const std::system_error& e) {
        observability::Log(Severity::kError, "cannot listen for metrics", {{"error", e.what()}});
        logger.Stop();
        return 1;
      }
      metrics_server->Start();
    }
    server.Start();
    serving.store(true);
    if (document_service.ready()) health.MarkStarted();
    const std::string address =
        (s.host.find(':') != std::string::npos ? "[" + s.host + "]" : s.host) + ":" +
        std::to_string(port);
    const double startup_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - exec_time).count();
    observability::Log(Severity::kInfo, "listening",
                       {{"address", address},
                        {"threads", s.threads},
                        {"max_inflight", s.max_inflight},
                        {"auth", keys.enabled() ? "api_keys" : "disabled"},
                        {"config", cfg->source},
                        {"version", build::kVersion},
                        {"startup_ms", startup_ms}});
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e)
      environment.emplace_back(*e);
    for (const std::string& unused : config::UnusedOrchestraVariables(*cfg, environment)) {
      observability::Log(Severity::kWarning, "environment variable configures nothing",
                         {{"variable", unused}});
    }
    if (!keys.enabled()) {
      observability::Log(Severity::kWarning,
                         "no API keys configured: every request is served as tenant 'default'");
    }
    // The tokenizer ranks and word vectors load on first use; load them now, off the event
    // loops, so that the first request does not pay for it. Readiness does not wait for it.
    // Joined on the way out (a jthread), also when start-up fails after this.
    std::jthread preload([&cfg] {
      const providers::PreloadReport r = providers::PreloadModelFiles(*cfg);
      observability::Log(r.tokenizer_ok ? Severity::kInfo : Severity::kWarning,
                         "model files loaded",
                         {{"ms", r.ms},
                          {"tokenizer", r.tokenizer_ok ? std::string("ok") : r.tokenizer_error},
                          {"word_vectors", r.word_vectors}});
    });

    const int sig = WaitForSignal(signals);
    const auto drain_deadline = Clock::now() + s.drain_timeout;
    // Graceful shutdown (DESIGN.md §6): readiness off, listeners closed, in-flight requests
    // finish within the drain timeout, logs flushed, exit 0.
    health.MarkDraining();
    observability::Log(
        Severity::kInfo, "draining",
        {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
         {"in_flight", server.active_requests()},
         {"drain_timeout_ms",
          static_cast<std::int64_t>(
              std::chrono::duration_cast<std::chrono::milliseconds>(s.drain_timeout).count())}});
    server.StopAccepting();
    const bool drained = server.WaitIdle(s.drain_timeout);
    const int abandoned = server.active_requests();
    server.Stop();
    gateway.upstreams.ReleaseClients();  // before the workers' io_contexts go with the server
    if (fleet_limiter != nullptr) fleet_limiter->StopWorkers();          // likewise
    if (gateway.cache_redis) gateway.cache_redis->ReleaseConnections();  // likewise
    if (metrics_server) metrics_server->Stop();
    model_versions.Stop();    // its watcher calls the storage
    document_service.Stop();  // its poller calls the storage (and saves the snapshots)
    key_service.Stop();       // so does this one
    spend.Stop();             // its flusher writes to the storage: the last spend is written
    // Joins the storage threads while the workers' io_contexts still exist: a call abandoned
    // by the drain (a backend that stopped answering) still posts its completion to one when
    // it returns, bounded by storage.operation_timeout.
    storage.reset();
    if (tracer) {
      // The spans of the requests that drained: what is left of the drain, at least a second.
      const auto budget = std::min<Clock::duration>(
          cfg->tracing.export_timeout,
          std::max<Clock::duration>(drain_deadline - Clock::now(), std::chrono::seconds(1)));
      tracer->Shutdown(budget);
      observability::InstallTracer(nullptr);
      observability::Log(
          Severity::kInfo, "traces flushed",
          {{"exported_spans", tracer->exported()},
           {"dropped_spans", tracer->dropped_queue_full() + tracer->dropped_export_failed()}});
    }
    observability::Log(drained ? Severity::kInfo : Severity::kWarning, "stopped",
                       {{"drained", drained}, {"abandoned_requests", abandoned}});
  } catch (const std::exception& e) {
    observability::Log(Severity::kError, "start-up failed", {{"error", e.what()}});
    logger.Stop();
    observability::InstallLogger(nullptr);
    return 1;
  }
  logger.Stop();
  observability::InstallLogger(nullptr);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto exec_time = Clock::now();
  Command cmd = ParseCommandLine(argc, argv);
  if (cmd.name == "version") {
    std::printf("orchestra %s (commit %s)\n", build::kVersion, build::kCommit);
    return 0;
  }
  if (cmd.name == "check-config") return CheckConfig(cmd);
  return Serve(cmd, exec_time);
}
