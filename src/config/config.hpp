#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "limits/policy.hpp"

// Orchestra's typed configuration: the shape of orchestra.yaml (DESIGN.md §7). Loaded and
// validated once at start-up by config/loader.hpp; afterwards shared read-only as
// std::shared_ptr<const Config>. Every key is documented in docs/CONFIG.md.
namespace orchestra::config {

using Duration = std::chrono::nanoseconds;
using namespace std::chrono_literals;

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";  // host:port; $PORT replaces the port
  std::string host = "127.0.0.1";         // derived from listen
  std::uint16_t port = 8080;              // derived from listen (0 = any free port)
  int threads = 0;                        // resolved at load: 0 → usable CPUs
  int max_inflight = 0;  // resolved at load: 0 → half the file-descriptor limit (2 per request)
  // Load shedding by delay: a worker whose smoothed queueing delay exceeds this sheds requests
  // (with a probability rising to 1 at twice it). 0 disables it.
  Duration max_loop_delay = 25ms;
  // Above this resident memory every new request is shed. Resolved at load: 0 → 90 % of the
  // cgroup memory limit when there is one, else no bound.
  std::uint64_t max_memory_bytes = 0;
  std::uint64_t max_body_bytes = 8ULL << 20;
  std::uint64_t max_header_bytes = 16ULL << 10;
  Duration header_timeout = 10s;    // whole request head must arrive within this
  Duration body_timeout = 30s;      // whole body must arrive within this
  Duration idle_timeout = 75s;      // keep-alive connection with no request
  Duration request_timeout = 600s;  // handler deadline (streams included) → 504
  Duration drain_timeout = 8s;      // SIGTERM: in-flight requests get this long
  int retry_after_s = 1;            // Retry-After on load shedding
};

enum class Scope : std::uint8_t { kUser, kAdmin };

struct ApiKeyConfig {
  std::string name;      // tenant namespace for memory, checkpoints, documents
  std::string key_env;   // the key is in this environment variable ...
  std::string key_file;  // ... or in this file (Secret Manager mounts) ...
  std::string sha256;    // ... or only its SHA-256 (hex) is known
  std::vector<Scope> scopes{Scope::kUser};
  limits::KeyPolicy policy;  // models, limits, budget (the same fields as /admin/keys)
  // budget.usd and budget.period as read (policy.budget is set from them once checked).
  double budget_usd = 0;
  std::string budget_period;
};

struct AuthConfig {
  bool disabled = false;  // must be explicit to listen beyond loopback without keys
  std::vector<ApiKeyConfig> keys;
  // Virtual keys (/admin/keys): how often each instance reads the change log for keys revoked,
  // rotated or changed elsewhere, and how long a rotated-out secret keeps working.
  Duration keys_refresh_interval = std::chrono::milliseconds(250);
  Duration rotation_grace = std::chrono::hours(1);
};

enum class ProviderType : std::uint8_t { kOpenAI, kGemini, kAnthropic, kLocal };

struct ProviderConfig {
  std::string name;
  ProviderType type = ProviderType::kOpenAI;
  std::string base_url;                        // empty → the provider's public endpoint
  std::string api_key_env;                     // provider key from this environment variable ...
  std::string api_key_file;                    // ... or from this file
  std::map<std::string, std::string> headers;  // extra request headers (values are secret)
  Duration connect_timeout = 5s;
  Duration first_byte_timeout = 60s;
  Duration idle_timeout = 90s;  // pooled upstream connection unused this long is closed
  int max_connections = 256;    // per origin and per thread
  std::uint64_t max_response_bytes = 64ULL << 20;  // a response body (a stream: all of it)
  bool tls_verify = true;
  std::string ca_file;  // extra CA bundle (self-hosted upstreams)
  // Gemini on Vertex AI: bearer token from the metadata server instead of an API key.
  bool vertex = false;
  std::string project;
  std::string location = "us-central1";
  // Anthropic
  std::string anthropic_version = "2023-06-01";
  int default_max_tokens = 4096;
};

enum class Strategy : std::uint8_t { kWeighted, kLeastInflight, kLatencyEwma };

struct TargetConfig {
  std::string provider;
  std::string model;  // the upstream model name
  double weight = 1;
};

struct RetryConfig {
  int attempts = 2;  // total tries per target, including the first
  Duration backoff = 100ms;
  Duration max_backoff = 2s;
  Duration retry_after_cap = 5s;  // an upstream Retry-After longer than this is not waited
  // What is retried, as configured: HTTP statuses, "connect", "timeout". The loader derives
  // the three fields below from it.
  std::vector<std::string> on{"429", "500", "502", "503", "504", "connect", "timeout"};
  std::vector<int> statuses{429, 500, 502, 503, 504};
  bool on_connect = true;
  bool on_timeout = true;
};

struct CircuitBreakerConfig {
  int failures = 5;           // consecutive failures that open the circuit
  double failure_rate = 0.5;  // or this share of failures ...
  int min_requests = 20;      // ... over at least this many requests ...
  Duration window = 30s;      // ... within this window
  Duration cooldown = 30s;    // open → half-open after this
};

struct PriceConfig {
  double input_per_mtok = 0;
  double output_per_mtok = 0;
};

struct ModelConfig {
  std::string name;  // the name clients ask for
  Strategy strategy = Strategy::kWeighted;
  std::vector<TargetConfig> targets;
  std::vector<std::string> fallbacks;  // other public model names, tried in order
  // A local model (which only extracts from context) may be a fallback of this model although
  // the model itself is not local. Off: such a fallback is a configuration error.
  bool allow_local_fallback = false;
  RetryConfig retry;
  Duration timeout = 60s;    // per attempt
  Duration deadline = 120s;  // whole request, all attempts and fallbacks
  CircuitBreakerConfig circuit_breaker;
  PriceConfig price;
  Duration cache_ttl = 0s;  // > 0 caches identical requests (streamed ones too) this long
};

// The response cache (docs/CONFIG.md#response-cache): the in-process tier's bounds, and the
// tier shared by every instance, on Redis.
struct CacheConfig {
  std::uint64_t max_bytes = 64ULL << 20;  // in-process: bodies and chunks, plus per-entry overhead
  int max_entries = 10'000;
  // The shared tier: "" means storage.url when storage.backend is redis, else none.
  std::string redis_url;
  bool shared = true;                 // false: in-process only, even with Redis
  Duration redis_timeout = 5ms;       // a lookup slower than this is a miss
  Duration redis_write_timeout = 1s;  // writes are off the request's path
  int redis_connections = 8;          // per worker thread
};

// The built-in local provider's models are "local-<name>" (local-extractive, local-embed): a
// name with this prefix and no configured model of that name is served by the provider named
// "local". The one place that rule lives.
inline constexpr std::string_view kLocalModelPrefix = "local-";
inline bool IsLocalModelName(std::string_view name) {
  return name.starts_with(kLocalModelPrefix);
}
inline constexpr std::string_view kLocalEmbedModel = "local-embed";

struct TasksConfig {
  std::string default_model = "local-extractive";
  std::string generate_model;    // empty → default_model
  std::string embeddings_model;  // empty → "local-embed"
  std::string classify_model;
  std::string answer_model;
  std::string summarize_model;
};

enum class StorageBackend : std::uint8_t { kSqlite, kRedis, kPostgres, kFirestore };

// storage.firestore (issue 16). Documents live under
// projects/{project}/databases/{database}/documents/{root}/... (storage/firestore/).
struct FirestoreConfig {
  std::string project;  // default: $GOOGLE_CLOUD_PROJECT
  std::string database = "(default)";
  std::string root = "orchestra";  // the top-level collection
  std::string endpoint;            // empty: https://firestore.googleapis.com
  // From the environment, as Google's client libraries read them (not YAML keys):
  std::string emulator_host;  // $FIRESTORE_EMULATOR_HOST: plain HTTP there, no token
  std::string metadata_host;  // $GCE_METADATA_HOST, else metadata.google.internal
};

struct StorageConfig {
  StorageBackend backend = StorageBackend::kSqlite;
  std::string path = "./data/orchestra.db";  // sqlite
  std::string url;                           // redis://host:6379/0 or postgresql://...
  FirestoreConfig firestore;                 // firestore
  int pool_size = 4;                         // connections (and blocking threads) per backend
  std::uint64_t max_value_bytes = 1ULL << 20;
  int checkpoints_keep_last = 50;
  Duration sweep_interval = 60s;  // expired entries are removed this often (always invisible)
  Duration operation_timeout = 5s;
  // Record change-log entries older than this are pruned by the sweep (the newest is kept).
  Duration change_log_retention = 1h;
  std::shared_ptr<StorageConfig> secondary;  // failover target, same shape
};

// documents (issue 14): ingestion limits, chunking and embedding defaults, the in-memory
// indexes and how instances sharing a backend keep them current.
enum class ChunkingStrategy : std::uint8_t { kParagraph, kSentence, kTokens, kMarkdownHeadings };

struct DocumentChunkingConfig {
  ChunkingStrategy strategy = ChunkingStrategy::kParagraph;
  int size = 0;      // 0: the strategy's default (800 characters, 200 tokens)
  int overlap = -1;  // -1: the strategy's default (100 characters, 40 tokens)
};

struct DocumentsConfig {
  std::uint64_t max_bytes = 8ULL << 20;  // a document's content; 413 beyond
  int max_chunks = 10'000;               // chunks of one document; 413 beyond
  int max_documents = 100'000;           // documents of one tenant; 409 beyond
  std::string import_dir;  // POST /documents/process reads only under it; empty: no such route
  DocumentChunkingConfig chunking;
  std::string embedding_model;  // empty → tasks.embeddings_model → local-embed (resolved on load)
  int embedding_dimensions = 0;  // 0: the model's own; else asked of the model (`dimensions`)
  int embedding_batch = 64;      // texts per embeddings call while ingesting
  double score_threshold = 0.3;  // a search's default minimum cosine for vector hits
  Duration poll_interval = 1s;   // how often the change log is read (other instances' writes)
  bool snapshots = true;
  std::string snapshot_dir;  // empty: next to the SQLite file; other backends: no snapshots
  Duration snapshot_interval = 5min;
  int exact_search_below = 8192;  // vectors of a tenant and model searched exactly, not by HNSW
};

enum class LogFormat : std::uint8_t { kJson, kText };
enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarning, kError };

struct ObservabilityConfig {
  LogFormat log_format = LogFormat::kJson;
  LogLevel log_level = LogLevel::kInfo;
  bool access_log = true;   // one line per request (Cloud Logging's httpRequest)
  bool log_probes = false;  // access lines for /healthz, /readyz, /startupz, /metrics too
  // host:port of a second listener that serves only GET /metrics, without an API key (for a
  // Prometheus scraper or sidecar that cannot send one). Empty: none.
  std::string metrics_listen;
  std::string metrics_host;        // derived from metrics_listen
  std::uint16_t metrics_port = 0;  // derived from metrics_listen
};

enum class OtlpProtocol : std::uint8_t { kHttpProtobuf, kHttpJson };
// The OpenTelemetry sampler names (OTEL_TRACES_SAMPLER).
enum class TraceSampler : std::uint8_t {
  kAlwaysOn,
  kAlwaysOff,
  kTraceIdRatio,
  kParentBasedAlwaysOn,
  kParentBasedAlwaysOff,
  kParentBasedTraceIdRatio,
};
// Authorization for the OTLP endpoint with the metadata server's access token (Cloud Run, GCE,
// GKE): on, off, or auto (on for a *.googleapis.com endpoint without an Authorization header).
enum class GcpAuth : std::uint8_t { kAuto, kOn, kOff };

// tracing (docs/CONFIG.md#tracing): span export over OTLP/HTTP. Each key not set in the file
// (or by ORCHESTRA_TRACING_*) is taken from the standard OpenTelemetry variable when that is set
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER, ...).
struct TracingConfig {
  bool disabled = false;  // OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none
  std::string endpoint;   // base URL: /v1/traces is appended (OTEL_EXPORTER_OTLP_ENDPOINT)
  OtlpProtocol protocol = OtlpProtocol::kHttpProtobuf;
  std::map<std::string, std::string> headers;  // sent with every export (values are secret)
  TraceSampler sampler = TraceSampler::kParentBasedTraceIdRatio;
  double sampling_ratio = 1.0;  // for the *traceidratio samplers (OTEL_TRACES_SAMPLER_ARG)
  std::string service_name = "orchestra";
  std::map<std::string, std::string> resource_attributes;
  bool capture_content = false;  // prompts and completions in spans
  int queue_size = 2048;         // spans waiting for export, per event-loop thread
  int batch_size = 512;          // spans per export request
  Duration export_interval = 1s;
  Duration export_timeout = 10s;
  GcpAuth gcp_auth = GcpAuth::kAuto;
  // Derived at load:
  bool enabled = false;    // an endpoint is known and tracing is not disabled
  std::string traces_url;  // where batches are POSTed
  bool use_gcp_token = false;
  std::string metadata_host;  // $GCE_METADATA_HOST, else metadata.google.internal
};

// Per-key limits, budgets and spend (issue 13).
enum class LimitsBackend : std::uint8_t {
  kAuto,      // redis when Redis is configured for limits, else postgres when storage.backend
              // is postgres, else local
  kLocal,     // in process: limits per instance
  kRedis,     // fleet-wide, in redis_url (or storage.url)
  kPostgres,  // fleet-wide, in postgres_url (or storage.url)
};
enum class OnBackendError : std::uint8_t { kAllow, kDeny };

struct LimitsConfig {
  // How often settled spend is written to the storage backend and the fleet's spend read back
  // for budget checks.
  Duration spend_flush_interval = 1s;
  // Where rate limits and budget checks are kept (docs/OPERATIONS.md "Limits across instances").
  LimitsBackend backend = LimitsBackend::kAuto;
  std::string redis_url;     // "" = storage.url (storage.backend redis)
  std::string postgres_url;  // "" = storage.url (storage.backend postgres)
  // When the backend does not answer within backend_timeout: allow = admit under this instance's
  // own limits, deny = 503.
  OnBackendError on_backend_error = OnBackendError::kAllow;
  Duration backend_timeout = 5ms;
  // An in-flight request's hold on max_parallel in the backend expires after this (a dead
  // instance's).
  Duration inflight_lease = 10min;
  // Derived at load: the Redis URL limits use, else the PostgreSQL URL they use (both "": in
  // process).
  std::string effective_redis_url;
  std::string effective_postgres_url;
};

struct Config {
  ServerConfig server;
  AuthConfig auth;
  std::vector<ProviderConfig> providers;
  std::vector<ModelConfig> models;
  TasksConfig tasks;
  StorageConfig storage;
  CacheConfig cache;
  DocumentsConfig documents;
  ObservabilityConfig observability;
  TracingConfig tracing;
  LimitsConfig limits;
  std::string source;  // where it was loaded from ("defaults" or a path)
  // The ORCHESTRA_* environment variables that override a key of this configuration (for
  // warning about those that override nothing, such as a misspelt one).
  std::vector<std::string> env_names;

  const ProviderConfig* FindProvider(std::string_view name) const;
  const ModelConfig* FindModel(std::string_view name) const;
};

std::string_view ToString(Scope s);
std::string_view ToString(ProviderType t);
std::string_view ToString(Strategy s);
std::string_view ToString(StorageBackend b);
std::string_view ToString(LogFormat f);
std::string_view ToString(LogLevel l);

}  // namespace orchestra::config
