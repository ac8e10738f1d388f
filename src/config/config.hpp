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
  Duration max_loop_delay = 10ms;
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
  // Its rate limits and budget (`limits`, `budget`); see loader.cpp's key policy schema.
  limits::KeyPolicy policy;
};

struct AuthConfig {
  bool disabled = false;  // must be explicit to listen beyond loopback without keys
  std::vector<ApiKeyConfig> keys;
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
  RetryConfig retry;
  Duration timeout = 60s;    // per attempt
  Duration deadline = 120s;  // whole request, all attempts and fallbacks
  CircuitBreakerConfig circuit_breaker;
  PriceConfig price;
  Duration cache_ttl = 0s;  // > 0 caches identical non-streaming requests
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

// Per-key limits, budgets and spend (issue 13).
struct LimitsConfig {
  // How often settled spend is written to the storage backend and the fleet's spend read back
  // for budget checks.
  Duration spend_flush_interval = 1s;
};

struct Config {
  ServerConfig server;
  AuthConfig auth;
  std::vector<ProviderConfig> providers;
  std::vector<ModelConfig> models;
  TasksConfig tasks;
  StorageConfig storage;
  ObservabilityConfig observability;
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
