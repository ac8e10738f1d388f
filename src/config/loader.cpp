#include "config/loader.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/cpu.hpp"
#include "common/gce_metadata.hpp"
#include "common/text.hpp"
#include <arpa/inet.h>

namespace orchestra::config {
namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c == '.' || c == '-') c = '_';
  }
  return out;
}

// One YAML mapping being read, with its dotted path. Every key the program asks for is
// remembered; Finish() reports any other key as unknown, with the closest known one.
class Section {
 public:
  Section(YAML::Node node, std::string path, std::string_view source, const EnvLookup* env,
          bool env_overrides, std::vector<std::string>* env_names = nullptr)
      : node_(std::move(node)),
        path_(std::move(path)),
        source_(source),
        env_(env),
        env_overrides_(env_overrides),
        env_names_(env_names) {
    if (node_ && !node_.IsNull() && !node_.IsMap()) {
      Fail(node_, path_, "expected a mapping of keys to values");
    }
  }

  std::string String(std::string_view key, std::string value) {
    if (auto text = Scalar(key)) value = *text;
    return value;
  }

  bool Bool(std::string_view key, bool value) {
    auto text = Scalar(key);
    if (!text) return value;
    static const std::set<std::string, std::less<>> kTrue{"true", "yes", "on", "1"};
    static const std::set<std::string, std::less<>> kFalse{"false", "no", "off", "0"};
    if (kTrue.contains(*text)) return true;
    if (kFalse.contains(*text)) return false;
    FailKey(key, "expected true or false, got '" + *text + "'");
  }

  std::int64_t Int(std::string_view key, std::int64_t value, std::int64_t min, std::int64_t max) {
    auto text = Scalar(key);
    if (!text) return value;
    std::int64_t parsed = 0;
    std::istringstream in(*text);
    if (!(in >> parsed) || !in.eof()) FailKey(key, "expected an integer, got '" + *text + "'");
    if (parsed < min || parsed > max) {
      FailKey(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                       ", got " + *text);
    }
    return parsed;
  }

  double Double(std::string_view key, double value, double min, double max) {
    auto text = Scalar(key);
    if (!text) return value;
    double parsed = 0;
    std::istringstream in(*text);
    if (!(in >> parsed) || !in.eof()) FailKey(key, "expected a number, got '" + *text + "'");
    if (parsed < min || parsed > max) {
      std::ostringstream msg;
      msg << "must be between " << min << " and " << max << ", got " << *text;
      FailKey(key, msg.str());
    }
    return parsed;
  }

  Duration Dur(std::string_view key, Duration value) {
    auto text = Scalar(key);
    if (!text) return value;
    auto parsed = ParseDuration(*text);
    if (!parsed) {
      FailKey(key, "expected a duration with a unit such as 250ms, 8s or 5m, got '" + *text + "'");
    }
    return *parsed;
  }

  std::uint64_t Size(std::string_view key, std::uint64_t value, std::uint64_t min) {
    auto text = Scalar(key);
    if (!text) return value;
    auto parsed = ParseSize(*text);
    if (!parsed)
      FailKey(key, "expected a size in bytes (or with KiB/MiB/GiB), got '" + *text + "'");
    if (*parsed < min) FailKey(key, "must be at least " + std::to_string(min) + " bytes");
    return *parsed;
  }

  template <class Enum, std::size_t N>
  Enum Choice(std::string_view key, Enum value,
              const std::array<std::pair<std::string_view, Enum>, N>& choices) {
    auto text = Scalar(key);
    if (!text) return value;
    for (const auto& [name, e] : choices) {
      if (name == *text) return e;
    }
    std::string msg = "expected one of";
    std::vector<std::string_view> names;
    for (const auto& [name, e] : choices) {
      msg += names.empty() ? " " : ", ";
      msg += name;
      names.push_back(name);
    }
    msg += "; got '" + *text + "'";
    if (auto near = ClosestMatch(*text, names))
      msg += " (did you mean '" + std::string(*near) + "'?)";
    FailKey(key, msg);
  }

  std::vector<std::string> StringList(std::string_view key) {
    YAML::Node n = Get(key);
    std::vector<std::string> out;
    if (!n || n.IsNull()) return out;
    if (!n.IsSequence()) Fail(n, Path(key), "expected a list");
    for (std::size_t i = 0; i < n.size(); ++i) {
      if (!n[i].IsScalar())
        Fail(n[i], Path(key) + "[" + std::to_string(i) + "]", "expected a string");
      out.push_back(n[i].Scalar());
    }
    return out;
  }

  std::map<std::string, std::string> StringMap(std::string_view key) {
    YAML::Node n = Get(key);
    std::map<std::string, std::string> out;
    if (!n || n.IsNull()) return out;
    if (!n.IsMap()) Fail(n, Path(key), "expected a mapping");
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->second.IsScalar()) {
        Fail(it->second, Path(key) + "." + it->first.Scalar(), "expected a string");
      }
      out[it->first.Scalar()] = it->second.Scalar();
    }
    return out;
  }

  Section Child(std::string_view key) {
    return Section(Get(key), Path(key), source_, env_, env_overrides_, env_names_);
  }

  // Whether the file or an environment override gives `key` (without reading it).
  bool Present(std::string_view key) const {
    YAML::Node n = node_ && node_.IsMap() ? node_[std::string(key)] : YAML::Node();
    if (n && !n.IsNull()) return true;
    if (!env_overrides_ || env_ == nullptr || !*env_) return false;
    return (*env_)("ORCHESTRA_" + Upper(Path(key))).has_value();
  }

  const EnvLookup& env() const { return *env_; }

  bool Has(std::string_view key) {
    known_.emplace_back(key);
    YAML::Node n = node_ && node_.IsMap() ? node_[std::string(key)] : YAML::Node();
    return n && !n.IsNull();
  }

  // A list of mappings; list items take no environment overrides (their paths are not stable).
  std::vector<Section> List(std::string_view key) {
    YAML::Node n = Get(key);
    std::vector<Section> out;
    if (!n || n.IsNull()) return out;
    if (!n.IsSequence()) Fail(n, Path(key), "expected a list");
    for (std::size_t i = 0; i < n.size(); ++i) {
      out.emplace_back(n[i], Path(key) + "[" + std::to_string(i) + "]", source_, env_, false);
      if (!n[i].IsMap()) Fail(n[i], out.back().path_, "expected a mapping");
    }
    return out;
  }

  void Finish() const {
    if (!node_ || !node_.IsMap()) return;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      std::string msg = "unknown key";
      if (auto near = ClosestMatch(key, known_))
        msg += " (did you mean '" + std::string(*near) + "'?)";
      Fail(it->first, Path(key), msg);
    }
  }

  [[noreturn]] void FailKey(std::string_view key, const std::string& message) const {
    YAML::Node n = node_ && node_.IsMap() ? node_[std::string(key)] : YAML::Node();
    Fail(n, Path(key), message);
  }

  const std::string& path() const { return path_; }

 private:
  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  YAML::Node Get(std::string_view key) {
    known_.emplace_back(key);
    if (!node_ || !node_.IsMap()) return YAML::Node();
    return node_[std::string(key)];
  }

  // The scalar at key: the environment override when set, else the file's value.
  std::optional<std::string> Scalar(std::string_view key) {
    YAML::Node n = Get(key);
    if (env_overrides_ && env_ != nullptr && *env_) {
      std::string name = "ORCHESTRA_" + Upper(Path(key));
      auto v = (*env_)(name);
      if (env_names_ != nullptr) env_names_->push_back(std::move(name));
      if (v) return v;
    }
    if (!n || n.IsNull()) return std::nullopt;
    if (!n.IsScalar()) Fail(n, Path(key), "expected a single value, not a list or mapping");
    return n.Scalar();
  }

  [[noreturn]] void Fail(const YAML::Node& at, const std::string& path,
                         const std::string& message) const {
    std::string where(source_);
    if (at && at.Mark().line >= 0 && !at.Mark().is_null()) {
      where +=
          ":" + std::to_string(at.Mark().line + 1) + ":" + std::to_string(at.Mark().column + 1);
    }
    throw ConfigError(where + ": " + path + ": " + message);
  }

  YAML::Node node_;
  std::string path_;
  std::string_view source_;
  const EnvLookup* env_;
  bool env_overrides_;
  std::vector<std::string>* env_names_;  // every ORCHESTRA_* variable a key listens to
  std::vector<std::string_view> known_;
};

constexpr std::array kScopes{std::pair<std::string_view, Scope>{"user", Scope::kUser},
                             std::pair<std::string_view, Scope>{"admin", Scope::kAdmin}};
constexpr std::array kProviderTypes{
    std::pair<std::string_view, ProviderType>{"openai", ProviderType::kOpenAI},
    std::pair<std::string_view, ProviderType>{"gemini", ProviderType::kGemini},
    std::pair<std::string_view, ProviderType>{"anthropic", ProviderType::kAnthropic},
    std::pair<std::string_view, ProviderType>{"local", ProviderType::kLocal}};
constexpr std::array kStrategies{
    std::pair<std::string_view, Strategy>{"weighted", Strategy::kWeighted},
    std::pair<std::string_view, Strategy>{"least_inflight", Strategy::kLeastInflight},
    std::pair<std::string_view, Strategy>{"latency_ewma", Strategy::kLatencyEwma}};
constexpr std::array kBackends{
    std::pair<std::string_view, StorageBackend>{"sqlite", StorageBackend::kSqlite},
    std::pair<std::string_view, StorageBackend>{"redis", StorageBackend::kRedis},
    std::pair<std::string_view, StorageBackend>{"postgres", StorageBackend::kPostgres},
    std::pair<std::string_view, StorageBackend>{"firestore", StorageBackend::kFirestore}};
constexpr std::array kChunkingStrategies{
    std::pair<std::string_view, ChunkingStrategy>{"paragraph", ChunkingStrategy::kParagraph},
    std::pair<std::string_view, ChunkingStrategy>{"sentence", ChunkingStrategy::kSentence},
    std::pair<std::string_view, ChunkingStrategy>{"tokens", ChunkingStrategy::kTokens},
    std::pair<std::string_view, ChunkingStrategy>{"markdown_headings",
                                                  ChunkingStrategy::kMarkdownHeadings}};
constexpr std::array kLimitsBackends{
    std::pair<std::string_view, LimitsBackend>{"auto", LimitsBackend::kAuto},
    std::pair<std::string_view, LimitsBackend>{"local", LimitsBackend::kLocal},
    std::pair<std::string_view, LimitsBackend>{"redis", LimitsBackend::kRedis},
    std::pair<std::string_view, LimitsBackend>{"postgres", LimitsBackend::kPostgres}};
constexpr std::array kOnBackendErrors{
    std::pair<std::string_view, OnBackendError>{"allow", OnBackendError::kAllow},
    std::pair<std::string_view, OnBackendError>{"deny", OnBackendError::kDeny}};
constexpr std::array kLogFormats{std::pair<std::string_view, LogFormat>{"json", LogFormat::kJson},
                                 std::pair<std::string_view, LogFormat>{"text", LogFormat::kText}};
constexpr std::array kLogLevels{
    std::pair<std::string_view, LogLevel>{"debug", LogLevel::kDebug},
    std::pair<std::string_view, LogLevel>{"info", LogLevel::kInfo},
    std::pair<std::string_view, LogLevel>{"warning", LogLevel::kWarning},
    std::pair<std::string_view, LogLevel>{"error", LogLevel::kError}};

constexpr std::array kOtlpProtocols{
    std::pair<std::string_view, OtlpProtocol>{"http/protobuf", OtlpProtocol::kHttpProtobuf},
    std::pair<std::string_view, OtlpProtocol>{"http/json", OtlpProtocol::kHttpJson}};
constexpr std::array kTraceSamplers{
    std::pair<std::string_view, TraceSampler>{"always_on", TraceSampler::kAlwaysOn},
    std::pair<std::string_view, TraceSampler>{"always_off", TraceSampler::kAlwaysOff},
    std::pair<std::string_view, TraceSampler>{"traceidratio", TraceSampler::kTraceIdRatio},
    std::pair<std::string_view, TraceSampler>{"parentbased_always_on",
                                              TraceSampler::kParentBasedAlwaysOn},
    std::pair<std::string_view, TraceSampler>{"parentbased_always_off",
                                              TraceSampler::kParentBasedAlwaysOff},
    std::pair<std::string_view, TraceSampler>{"parentbased_traceidratio",
                                              TraceSampler::kParentBasedTraceIdRatio}};
constexpr std::array kGcpAuths{std::pair<std::string_view, GcpAuth>{"auto", GcpAuth::kAuto},
                               std::pair<std::string_view, GcpAuth>{"on", GcpAuth::kOn},
                               std::pair<std::string_view, GcpAuth>{"off", GcpAuth::kOff}};

template <class E, std::size_t N>
std::string_view NameOf(E value, const std::array<std::pair<std::string_view, E>, N>& choices) {
  for (const auto& [name, e] : choices) {
    if (e == value) return name;
  }
  return "?";
}

template <class E, std::size_t N>
E FlagChoice(std::string_view flag, const std::string& value,
             const std::array<std::pair<std::string_view, E>, N>& choices) {
  std::string names;
  for (const auto& [name, e] : choices) {
    if (name == value) return e;
    names += names.empty() ? "" : ", ";
    names += name;
  }
  throw ConfigError(std::string(flag) + ": expected one of " + names + ", got '" + value + "'");
}

// ---------------------------------------------------------------------------------------------
// The schema: every key is declared once, in a Describe() per section, as a call on a visitor.
// Three visitors walk it: Reader (YAML + ORCHESTRA_* overrides into the structs, then each
// section's Check), Dumper (`check-config`'s YAML, secrets redacted) and Lister (every key's
// dotted path, which tests/docs/check_config_docs.sh requires docs/CONFIG.md to document).
// A visitor offers: Text, Secret, Url (its userinfo is a secret), Flag, Integer, Real, Time, Bytes,
// Choice, Choices, Texts, TextMap, Group (a nested mapping), List and Optional (a section that may
// be absent).
// ---------------------------------------------------------------------------------------------

struct Context;

template <class V>
void Describe(V& v, ServerConfig& c) {
  v.Text("listen", c.listen);
  v.Integer("threads", c.threads, 0, 1024);
  v.Integer("max_inflight", c.max_inflight, 0, 10'000'000);
  v.Time("max_loop_delay", c.max_loop_delay);
  v.Bytes("max_memory_bytes", c.max_memory_bytes, 0);
  v.Bytes("max_body_bytes", c.max_body_bytes, 1024);
  v.Bytes("max_header_bytes", c.max_header_bytes, 1024);
  v.Time("header_timeout", c.header_timeout);
  v.Time("body_timeout", c.body_timeout);
  v.Time("idle_timeout", c.idle_timeout);
  v.Time("request_timeout", c.request_timeout);
  v.Time("drain_timeout", c.drain_timeout);
  v.Integer("retry_after", c.retry_after_s, 1, 3600);
}

// A key's limits and budget: the same fields as the body of POST /admin/keys, except that
// per_model is a list of {model, rpm, tpm, max_parallel} (a YAML key cannot hold every model
// name a glob-free list would need quoting for).
template <class V>
void Describe(V& v, limits::ModelLimits& c) {
  v.Text("model", c.model);
  v.Integer("rpm", c.limits.rpm, 0, 1'000'000'000);
  v.Integer("tpm", c.limits.tpm, 0, 1'000'000'000);
  v.Integer("max_parallel", c.limits.max_parallel, 0, 1'000'000'000);
}

struct KeyLimitsFields {
  limits::RateLimits& limits;
  std::vector<limits::ModelLimits>& per_model;
};

template <class V>
void Describe(V& v, KeyLimitsFields& c) {
  v.Integer("rpm", c.limits.rpm, 0, 1'000'000'000);
  v.Integer("tpm", c.limits.tpm, 0, 1'000'000'000);
  v.Integer("max_parallel", c.limits.max_parallel, 0, 1'000'000'000);
  v.List("per_model", c.per_model);
}

struct BudgetFields {
  double& usd;
  std::string& period;
};

template <class V>
void Describe(V& v, BudgetFields& c) {
  v.Real("usd", c.usd, 0, 1e9);
  v.Text("period", c.period);
}

template <class V>
void Describe(V& v, ApiKeyConfig& c) {
  v.Text("name", c.name);
  v.Text("key_env", c.key_env);
  v.Text("key_file", c.key_file);
  v.Secret("sha256", c.sha256);
  v.Choices("scopes", c.scopes, kScopes);
  v.Texts("models", c.policy.models);
  KeyLimitsFields limits{c.policy.limits, c.policy.per_model};
  v.Group("limits", limits);
  BudgetFields budget{c.budget_usd, c.budget_period};
  v.Group("budget", budget);
}

template <class V>
void Describe(V& v, AuthConfig& c) {
  v.Flag("disabled", c.disabled);
  v.List("keys", c.keys);
  v.Time("keys_refresh_interval", c.keys_refresh_interval);
  v.Time("rotation_grace", c.rotation_grace);
}

template <class V>
void Describe(V& v, ProviderConfig& c) {
  v.Text("name", c.name);
  v.Choice("type", c.type, kProviderTypes);
  v.Text("base_url", c.base_url);
  v.Text("api_key_env", c.api_key_env);
  v.Text("api_key_file", c.api_key_file);
  v.TextMap("headers", c.headers, /*secret_values=*/true);
  v.Time("connect_timeout", c.connect_timeout);
  v.Time("first_byte_timeout", c.first_byte_timeout);
  v.Time("idle_timeout", c.idle_timeout);
  v.Integer("max_connections", c.max_connections, 1, 100'000);
  v.Bytes("max_response_bytes", c.max_response_bytes, 1024);
  v.Flag("tls_verify", c.tls_verify);
  v.Text("ca_file", c.ca_file);
  v.Flag("vertex", c.vertex);
  v.Text("project", c.project);
  v.Text("location", c.location);
  v.Text("anthropic_version", c.anthropic_version);
  v.Integer("default_max_tokens", c.default_max_tokens, 1, 10'000'000);
}

template <class V>
void Describe(V& v, TargetConfig& c) {
  v.Text("provider", c.provider);
  v.Text("model", c.model);
  v.Real("weight", c.weight, 0.0, 1e6);
}

template <class V>
void Describe(V& v, RetryConfig& c) {
  v.Integer("attempts", c.attempts, 1, 20);
  v.Time("backoff", c.backoff);
  v.Time("max_backoff", c.max_backoff);
  v.Time("retry_after_cap", c.retry_after_cap);
  v.Texts("on", c.on);
}

template <class V>
void Describe(V& v, CircuitBreakerConfig& c) {
  v.Integer("failures", c.failures, 1, 1'000'000);
  v.Real("failure_rate", c.failure_rate, 0.01, 1.0);
  v.Integer("min_requests", c.min_requests, 1, 1'000'000);
  v.Time("window", c.window);
  v.Time("cooldown", c.cooldown);
}

template <class V>
void Describe(V& v, PriceConfig& c) {
  v.Real("input_per_mtok", c.input_per_mtok, 0, 1e9);
  v.Real("output_per_mtok", c.output_per_mtok, 0, 1e9);
}

template <class V>
void Describe(V& v, ModelConfig& c) {
  v.Text("name", c.name);
  v.Choice("strategy", c.strategy, kStrategies);
  v.List("targets", c.targets);
  v.Texts("fallbacks", c.fallbacks);
  v.Flag("allow_local_fallback", c.allow_local_fallback);
  v.Group("retry", c.retry);
  v.Time("timeout", c.timeout);
  v.Time("deadline", c.deadline);
  v.Group("circuit_breaker", c.circuit_breaker);
  v.Group("price", c.price);
  v.Time("cache_ttl", c.cache_ttl);
}

template <class V>
void Describe(V& v, TasksConfig& c) {
  v.Text("default_model", c.default_model);
  v.Text("generate_model", c.generate_model);
  v.Text("embeddings_model", c.embeddings_model);
  v.Text("classify_model", c.classify_model);
  v.Text("answer_model", c.answer_model);
  v.Text("summarize_model", c.summarize_model);
}

template <class V>
void Describe(V& v, FirestoreConfig& c) {
  v.Text("project", c.project);
  v.Text("database", c.database);
  v.Text("root", c.root);
  v.Text("endpoint", c.endpoint);
}

struct CheckpointsConfig {
  int& keep_last;
};

template <class V>
void Describe(V& v, CheckpointsConfig& c) {
  v.Integer("keep_last", c.keep_last, 1, 1'000'000);
}

template <class V>
void Describe(V& v, StorageConfig& c) {
  v.Choice("backend", c.backend, kBackends);
  v.Text("path", c.path);
  v.Url("url", c.url);
  v.Group("firestore", c.firestore);
  v.Integer("pool_size", c.pool_size, 1, 256);
  v.Bytes("max_value_bytes", c.max_value_bytes, 1);
  CheckpointsConfig checkpoints{c.checkpoints_keep_last};
  v.Group("checkpoints", checkpoints);
  v.Time("sweep_interval", c.sweep_interval);
  v.Time("operation_timeout", c.operation_timeout);
  v.Time("change_log_retention", c.change_log_retention);
  v.Optional("secondary", c.secondary);
}

template <class V>
void Describe(V& v, DocumentChunkingConfig& c) {
  v.Choice("strategy", c.strategy, kChunkingStrategies);
  v.Integer("size", c.size, 0, 65'536);
  v.Integer("overlap", c.overlap, -1, 65'535);
}

template <class V>
void Describe(V& v, DocumentsConfig& c) {
  v.Bytes("max_bytes", c.max_bytes, 1);
  v.Integer("max_chunks", c.max_chunks, 1, 1'000'000);
  v.Integer("max_documents", c.max_documents, 1, 100'000'000);
  v.Text("import_dir", c.import_dir);
  v.Group("chunking", c.chunking);
  v.Text("embedding_model", c.embedding_model);
  v.Integer("embedding_dimensions", c.embedding_dimensions, 0, 65'536);
  v.Integer("embedding_batch", c.embedding_batch, 1, 2048);
  v.Real("score_threshold", c.score_threshold, -1.0, 1.0);
  v.Time("poll_interval", c.poll_interval);
  v.Flag("snapshots", c.snapshots);
  v.Text("snapshot_dir", c.snapshot_dir);
  v.Time("snapshot_interval", c.snapshot_interval);
  v.Integer("exact_search_below", c.exact_search_below, 0, 100'000'000);
}

template <class V>
void Describe(V& v, ObservabilityConfig& c) {
  v.Choice("log_format", c.log_format, kLogFormats);
  v.Choice("log_level", c.log_level, kLogLevels);
  v.Flag("access_log", c.access_log);
  v.Flag("log_probes", c.log_probes);
  v.Text("metrics_listen", c.metrics_listen);
}

template <class V>
void Describe(V& v, TracingConfig& c) {
  v.Flag("disabled", c.disabled);
  v.Url("endpoint", c.endpoint);
  v.Choice("protocol", c.protocol, kOtlpProtocols);
  v.TextMap("headers", c.headers, /*secret_values=*/true);
  v.Choice("sampler", c.sampler, kTraceSamplers);
  v.Real("sampling_ratio", c.sampling_ratio, 0.0, 1.0);
  v.Text("service_name", c.service_name);
  v.TextMap("resource_attributes", c.resource_attributes, /*secret_values=*/false);
  v.Flag("capture_content", c.capture_content);
  v.Integer("queue_size", c.queue_size, 1, 1'000'000);
  v.Integer("batch_size", c.batch_size, 1, 100'000);
  v.Time("export_interval", c.export_interval);
  v.Time("export_timeout", c.export_timeout);
  v.Choice("gcp_auth", c.gcp_auth, kGcpAuths);
}

template <class V>
void Describe(V& v, CacheConfig& c) {
  v.Bytes("max_bytes", c.max_bytes, 0);
  v.Integer("max_entries", c.max_entries, 1, 100'000'000);
  v.Url("redis_url", c.redis_url);
  v.Flag("shared", c.shared);
  v.Time("redis_timeout", c.redis_timeout);
  v.Time("redis_write_timeout", c.redis_write_timeout);
  v.Integer("redis_connections", c.redis_connections, 1, 256);
}

template <class V>
void Describe(V& v, LimitsConfig& c) {
  v.Time("spend_flush_interval", c.spend_flush_interval);
  v.Choice("backend", c.backend, kLimitsBackends);
  v.Url("redis_url", c.redis_url);
  v.Url("postgres_url", c.postgres_url);
  v.Choice("on_backend_error", c.on_backend_error, kOnBackendErrors);
  v.Time("backend_timeout", c.backend_timeout);
  v.Time("inflight_lease", c.inflight_lease);
}

template <class V>
void Describe(V& v, Config& c) {
  v.Group("server", c.server);
  v.Group("auth", c.auth);
  v.List("providers", c.providers);
  v.List("models", c.models);
  v.Group("tasks", c.tasks);
  v.Group("storage", c.storage);
  v.Group("cache", c.cache);
  v.Group("documents", c.documents);
  v.Group("observability", c.observability);
  v.Group("tracing", c.tracing);
  v.Group("limits", c.limits);
}

// --- The checks the Reader runs on each section once its keys are read. ----------------------

std::string DefaultBaseUrl(ProviderType t) {
  switch (t) {
    case ProviderType::kOpenAI:
      return "https://api.openai.com/v1";
    case ProviderType::kGemini:
      return "https://generativelanguage.googleapis.com/v1beta";
    case ProviderType::kAnthropic:
      return "https://api.anthropic.com/v1";
    case ProviderType::kLocal:
      return "";
  }
  return "";
}

// A Firestore document holds at most 1 MiB, its name and field names included.
constexpr std::uint64_t kFirestoreMaxValueBytes = 1'000'000;

bool AllOf(std::string_view text, std::string_view allowed_punctuation) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [&](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           allowed_punctuation.find(ch) != std::string_view::npos;
  });
}

void ParseListen(ServerConfig& s, const std::string& source);

template <class T>
void Check(Section& /*s*/, T& /*c*/) {}
template <class T>
void Check(Section& /*s*/, std::vector<T>& /*values*/) {}

void Check(Section& m, limits::ModelLimits& c) {
  if (c.model.empty()) m.FailKey("model", "every per_model entry needs the model it limits");
}

void Check(Section& b, BudgetFields& c) {
  if (c.usd == 0 && c.period.empty()) return;  // no budget
  if (c.usd <= 0) b.FailKey("usd", "a budget needs usd greater than 0");
  if (c.period != "day" && c.period != "week" && c.period != "month") {
    b.FailKey("period", c.period.empty() ? "a budget needs a period: day, week or month"
                                         : "expected day, week or month, got '" + c.period + "'");
  }
}

void Check(Section& k, ApiKeyConfig& key) {
  if (key.name.empty()) k.FailKey("name", "every key needs a name (its tenant namespace)");
  if (key.budget_usd > 0) {
    limits::Budget budget;
    budget.usd = key.budget_usd;
    budget.period = key.budget_period == "day"    ? limits::BudgetPeriod::kDay
                    : key.budget_period == "week" ? limits::BudgetPeriod::kWeek
                                                  : limits::BudgetPeriod::kMonth;
    key.policy.budget = budget;
  } else {
    key.policy.budget.reset();
  }
  int sources = !key.key_env.empty() + !key.key_file.empty() + !key.sha256.empty();
  if (sources != 1) k.FailKey("key_env", "set exactly one of key_env, key_file or sha256");
  if (!key.sha256.empty() && (key.sha256.size() != 64 || !IsHex(key.sha256))) {
    k.FailKey("sha256", "expected 64 hexadecimal digits (the SHA-256 of the key)");
  }
}

void Check(Section& s, std::vector<limits::ModelLimits>& per_model) {
  std::set<std::string> names;
  for (const limits::ModelLimits& m : per_model) {
    if (!names.insert(m.model).second)
      s.FailKey("per_model", "model '" + m.model + "' is listed twice");
  }
}

void Check(Section& s, LimitsConfig& c) {
  if (c.spend_flush_interval < 10ms || c.spend_flush_interval > 1h)
    s.FailKey("spend_flush_interval", "must be between 10ms and 1h");
  if (c.backend_timeout < 100us || c.backend_timeout > 1s)
    s.FailKey("backend_timeout", "must be between 100us and 1s (admission waits this long)");
  if (c.inflight_lease < 1s || c.inflight_lease > 24h)
    s.FailKey("inflight_lease", "must be between 1s and 24h");
  if (!c.redis_url.empty() && c.redis_url.rfind("redis://", 0) != 0)
    s.FailKey("redis_url", "must start with redis://");
  if (!c.postgres_url.empty() && c.postgres_url.rfind("postgresql://", 0) != 0 &&
      c.postgres_url.rfind("postgres://", 0) != 0) {
    s.FailKey("postgres_url", "must start with postgresql://");
  }
}

void Check(Section& s, AuthConfig& c) {
  if (c.keys_refresh_interval < std::chrono::milliseconds(10) ||
      c.keys_refresh_interval > std::chrono::seconds(1)) {
    s.FailKey("keys_refresh_interval",
              "must be from 10ms to 1s (a revoked key must be refused everywhere within 1s)");
  }
  if (c.rotation_grace > std::chrono::hours(24 * 30)) {
    s.FailKey("rotation_grace", "must be at most 30 days");
  }
  std::set<std::string> names;
  for (const ApiKeyConfig& key : c.keys) {
    if (!names.insert(key.name).second) {
      s.FailKey("keys", "duplicate key name '" + key.name + "'");
    }
  }
}

void Check(Section& p, ProviderConfig& c) {
  if (c.name.empty()) p.FailKey("name", "every provider needs a name");
  if (c.name.find('/') != std::string::npos)
    p.FailKey("name", "a provider name cannot contain '/'");
  if (!c.api_key_env.empty() && !c.api_key_file.empty()) {
    p.FailKey("api_key_env", "set at most one of api_key_env and api_key_file");
  }
  if (c.base_url.empty()) c.base_url = DefaultBaseUrl(c.type);
  while (!c.base_url.empty() && c.base_url.back() == '/')
    c.base_url.pop_back();
  if (c.type != ProviderType::kLocal && c.base_url.rfind("http://", 0) != 0 &&
      c.base_url.rfind("https://", 0) != 0) {
    p.FailKey("base_url", "expected an http:// or https:// URL, got '" + c.base_url + "'");
  }
  if (c.vertex && c.type != ProviderType::kGemini) p.FailKey("vertex", "only for type: gemini");
  if (c.vertex && c.project.empty()) p.FailKey("project", "vertex: true needs the GCP project");
  // Vertex AI speaks Gemini's JSON at its own address, authorised by the metadata server.
  if (c.vertex && c.base_url == DefaultBaseUrl(ProviderType::kGemini)) {
    c.base_url = "https://" + c.location + "-aiplatform.googleapis.com/v1/projects/" + c.project +
                 "/locations/" + c.location + "/publishers/google";
  }
}

void Check(Section& t, TargetConfig& c) {
  if (c.provider.empty()) t.FailKey("provider", "every target needs a provider");
  if (c.model.empty()) t.FailKey("model", "every target needs an upstream model");
}

void Check(Section& s, RetryConfig& c) {
  c.statuses.clear();
  c.on_connect = false;
  c.on_timeout = false;
  for (const std::string& item : c.on) {
    if (item == "connect") {
      c.on_connect = true;
    } else if (item == "timeout") {
      c.on_timeout = true;
    } else {
      int status = 0;
      std::istringstream in(item);
      if (!(in >> status) || !in.eof() || status < 400 || status > 599) {
        s.FailKey("on",
                  "expected HTTP statuses 400-599, 'connect' or 'timeout', got '" + item + "'");
      }
      c.statuses.push_back(status);
    }
  }
}

void Check(Section& m, ModelConfig& c) {
  if (c.name.empty()) m.FailKey("name", "every model needs a name");
  if (c.targets.empty()) m.FailKey("targets", "a model needs at least one target");
  // An unset deadline leaves room for a retry after a full attempt timeout.
  if (!m.Present("deadline")) c.deadline = std::max(c.deadline, c.timeout * 2);
}

void Check(Section& s, std::vector<ProviderConfig>& providers) {
  std::set<std::string> names;
  for (const ProviderConfig& p : providers) {
    if (!names.insert(p.name).second) {
      s.FailKey("providers", "duplicate provider name '" + p.name + "'");
    }
  }
}

void Check(Section& s, std::vector<ModelConfig>& models) {
  std::set<std::string> names;
  for (const ModelConfig& m : models) {
    if (!names.insert(m.name).second) s.FailKey("models", "duplicate model name '" + m.name + "'");
  }
}

// storage.firestore, and the variables Google's client libraries read. `s` is the storage
// section; errors name storage.firestore.<key>.
void CheckFirestore(Section& s, StorageConfig& c) {
  FirestoreConfig& f = c.firestore;
  const EnvLookup& env = s.env();
  f.emulator_host = env("FIRESTORE_EMULATOR_HOST").value_or("");
  f.metadata_host = gce::MetadataHost(env("GCE_METADATA_HOST"));
  if (c.backend != StorageBackend::kFirestore) return;
  Section fs = s.Child("firestore");
  if (f.project.empty()) f.project = env("GOOGLE_CLOUD_PROJECT").value_or("");
  if (f.project.empty()) {
    fs.FailKey("project",
               "backend firestore needs a Google Cloud project: set it here or in "
               "$GOOGLE_CLOUD_PROJECT");
  }
  // Ids that appear as they are in request paths.
  if (!AllOf(f.project, "-.:")) {
    fs.FailKey("project", "expected a Google Cloud project id, got '" + f.project + "'");
  }
  if (f.database != "(default)" && !AllOf(f.database, "-")) {
    fs.FailKey("database", "expected (default) or a database id (letters, digits and -), got '" +
                               f.database + "'");
  }
  if (!AllOf(f.root, "-_") || f.root.size() > 100 ||
      (f.root.size() >= 4 && f.root.starts_with("__") && f.root.ends_with("__"))) {
    fs.FailKey("root", "expected a collection id of letters, digits, - and _ (at most 100), got '" +
                           f.root + "'");
  }
  if (!f.endpoint.empty() && !f.endpoint.starts_with("https://") &&
      !f.endpoint.starts_with("http://")) {
    fs.FailKey("endpoint", "expected https://host[:port], got '" + f.endpoint + "'");
  }
}

void Check(Section& s, CacheConfig& c) {
  if (c.redis_url.rfind("rediss://", 0) == 0) {
    s.FailKey("redis_url",
              "TLS to Redis (rediss://) is not supported; reach Redis over a private network "
              "with redis://host:port[/db]");
  } else if (!c.redis_url.empty() && c.redis_url.rfind("redis://", 0) != 0) {
    s.FailKey("redis_url", "expected redis://host:port[/db]");
  }
  if (c.redis_timeout < 1ms || c.redis_timeout > 10s) {
    s.FailKey("redis_timeout", "between 1ms and 10s (a lookup waits at most this long)");
  }
  if (c.redis_write_timeout < 1ms || c.redis_write_timeout > 60s) {
    s.FailKey("redis_write_timeout", "between 1ms and 60s");
  }
}

void Check(Section& s, StorageConfig& c) {
  CheckFirestore(s, c);
  if (c.backend == StorageBackend::kFirestore) {
    if (!s.Present("max_value_bytes")) c.max_value_bytes = kFirestoreMaxValueBytes;
    if (c.max_value_bytes > kFirestoreMaxValueBytes) {
      s.FailKey("max_value_bytes", "at most " + std::to_string(kFirestoreMaxValueBytes) +
                                       " with backend firestore (a document holds at most 1 MiB)");
    }
  }
  if ((c.backend == StorageBackend::kRedis || c.backend == StorageBackend::kPostgres) &&
      c.url.empty()) {
    s.FailKey("url",
              std::string("backend ") + std::string(NameOf(c.backend, kBackends)) + " needs a url");
  }
  if (c.backend == StorageBackend::kRedis && c.url.rfind("rediss://", 0) == 0) {
    // Debian 12's hiredis (0.14) has no TLS client.
    s.FailKey("url",
              "TLS to Redis (rediss://) is not supported; reach Redis over a private "
              "network with redis://host:port[/db]");
  } else if (c.backend == StorageBackend::kRedis && c.url.rfind("redis://", 0) != 0) {
    s.FailKey("url", "expected redis://host:port[/db], got '" + c.url + "'");
  }
  if (c.backend == StorageBackend::kPostgres && c.url.rfind("postgresql://", 0) != 0 &&
      c.url.rfind("postgres://", 0) != 0) {
    s.FailKey("url", "expected postgresql://user@host:port/db, got '" + c.url + "'");
  }
  if (c.secondary && c.secondary->secondary) {
    s.FailKey("secondary", "a secondary cannot have its own secondary");
  }
  if (c.change_log_retention < std::chrono::seconds(1)) {
    // Readers poll every second or so: a shorter log would make every one of them reload.
    s.FailKey("change_log_retention", "must be at least 1s");
  }
}

void Check(Section& s, DocumentChunkingConfig& c) {
  if (c.overlap >= 0 && c.size > 0 && c.overlap >= c.size) {
    s.FailKey("overlap", "must be below size (" + std::to_string(c.size) + ")");
  }
}

void Check(Section& s, DocumentsConfig& c) {
  if (c.poll_interval < 10ms || c.poll_interval > 1h) {
    s.FailKey("poll_interval", "must be between 10ms and 1h");
  }
  if (c.snapshot_interval < 1s) s.FailKey("snapshot_interval", "must be at least 1s");
  if (!c.import_dir.empty()) {
    std::error_code ec;
    const auto dir = std::filesystem::canonical(c.import_dir, ec);
    if (ec || !std::filesystem::is_directory(dir, ec)) {
      s.FailKey("import_dir", "'" + c.import_dir + "' is not a directory");
    }
    c.import_dir = dir.string();
  }
}

void Check(Section& s, ObservabilityConfig& c) {
  if (c.metrics_listen.empty()) return;
  ServerConfig probe;
  probe.listen = c.metrics_listen;
  try {
    ParseListen(probe, "");
    c.metrics_host = probe.host;
    c.metrics_port = probe.port;
  } catch (const ConfigError&) {
    s.FailKey("metrics_listen", "expected host:port, got '" + c.metrics_listen + "'");
  }
}

// --- tracing: the file's keys, else the standard OpenTelemetry variables. -------------------

// The W3C Baggage-like lists of OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES:
// key=value pairs separated by commas, values percent-encoded. Empty on a malformed entry
// (`bad` names it without its value, which may be a secret).
std::map<std::string, std::string> ParseKeyValueList(std::string_view text, std::string& bad) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string_view item = TrimOws(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    std::string_view key = TrimOws(item.substr(0, eq));
    if (eq == std::string_view::npos || key.empty()) {
      bad = "expected key=value pairs separated by commas; '" +
            std::string(key.empty() ? std::string_view("(empty key)") : key) + "' has no value";
      return {};
    }
    auto value = PercentDecode(TrimOws(item.substr(eq + 1)), PlusSign::kLiteral);
    if (!value) {
      bad = "malformed percent-encoding in the value of '" + std::string(key) + "'";
      return {};
    }
    out[std::string(key)] = std::move(*value);
  }
  return out;
}

// base + "/v1/traces", as the OpenTelemetry exporters do with OTEL_EXPORTER_OTLP_ENDPOINT.
std::string TracesUrlOf(std::string_view base) {
  std::string url(base);
  if (url.empty() || url.back() != '/') url += '/';
  return url + "v1/traces";
}

// A per-signal URL is used as it is, with "/" for an empty path.
std::string WithPath(std::string_view url) {
  const auto scheme = url.find("://");
  const auto path = url.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
  return path == std::string_view::npos ? std::string(url) + "/" : std::string(url);
}

bool IsHttpUrl(std::string_view url) {
  return (url.starts_with("http://") && url.size() > 7) ||
         (url.starts_with("https://") && url.size() > 8);
}

std::string HostOf(std::string_view url) {
  const auto scheme = url.find("://");
  std::string_view rest = url.substr(scheme == std::string_view::npos ? 0 : scheme + 3);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest.front() == '[') return std::string(rest.substr(0, rest.find(']') + 1));
  return AsciiLower(rest.substr(0, rest.find(':')));
}

void Check(Section& s, TracingConfig& c) {
  const EnvLookup& env = s.env();
  // An OpenTelemetry variable counts when set and not empty (the specification's rule), and
  // only for a key that neither the file nor ORCHESTRA_TRACING_* sets.
  struct FromEnv {
    std::string name;
    std::string value;
  };
  const auto otel = [&](std::string_view key,
                        std::initializer_list<std::string_view> names) -> std::optional<FromEnv> {
    if (s.Present(key)) return std::nullopt;
    for (std::string_view name : names) {
      if (auto v = env(name); v && !TrimOws(*v).empty()) {
        return FromEnv{std::string(name), std::string(TrimOws(*v))};
      }
    }
    return std::nullopt;
  };
  const auto fail = [&](std::string_view key, const FromEnv& from, const std::string& why) {
    s.FailKey(key, "from " + from.name + ": " + why);
  };
  const auto env_bool = [&](std::string_view key, const FromEnv& from) {
    const std::string v = AsciiLower(from.value);
    if (v == "true") return true;
    if (v == "false") return false;
    fail(key, from, "expected true or false, got '" + from.value + "'");
    return false;
  };
  const auto env_int = [&](std::string_view key, const FromEnv& from, std::int64_t min,
                           std::int64_t max) {
    std::int64_t n = 0;
    std::istringstream in(from.value);
    if (!(in >> n) || !in.eof() || n < min || n > max) {
      fail(key, from,
           "expected an integer between " + std::to_string(min) + " and " + std::to_string(max) +
               ", got '" + from.value + "'");
    }
    return n;
  };
  const auto env_choice = [&](std::string_view key, const FromEnv& from, const auto& choices) {
    for (const auto& [name, e] : choices) {
      if (name == AsciiLower(from.value)) return e;
    }
    std::string names;
    for (const auto& [name, e] : choices)
      names += (names.empty() ? "" : ", ") + std::string(name);
    fail(key, from, "expected one of " + names + "; got '" + from.value + "'");
    return choices[0].second;
  };

  if (auto v = otel("disabled", {"OTEL_SDK_DISABLED"})) c.disabled = env_bool("disabled", *v);
  if (auto v = otel("disabled", {"OTEL_TRACES_EXPORTER"}); v && !c.disabled) {
    const std::string exporter = AsciiLower(v->value);
    if (exporter == "none") {
      c.disabled = true;
    } else if (exporter != "otlp") {
      fail("disabled", *v, "only otlp (or none) is supported, got '" + v->value + "'");
    }
  }
  if (auto v = otel("endpoint", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"})) {
    c.endpoint = v->value;
    c.traces_url = WithPath(v->value);
  } else if (auto base = otel("endpoint", {"OTEL_EXPORTER_OTLP_ENDPOINT"})) {
    c.endpoint = base->value;
    c.traces_url = TracesUrlOf(base->value);
  } else if (!c.endpoint.empty()) {
    c.traces_url = TracesUrlOf(c.endpoint);
  }
  if (!c.endpoint.empty() && !IsHttpUrl(c.endpoint)) {
    s.FailKey("endpoint",
              "expected an http:// or https:// URL (OTLP/HTTP; gRPC is not "
              "supported), got '" +
                  c.endpoint + "'");
  }
  if (auto v =
          otel("protocol", {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"})) {
    if (AsciiLower(v->value) == "grpc") {
      fail("protocol", *v, "grpc is not supported; use http/protobuf (the OTLP/HTTP port, 4318)");
    }
    c.protocol = env_choice("protocol", *v, kOtlpProtocols);
  }
  if (!s.Present("headers")) {
    for (std::string_view name :
         {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}) {
      auto text = env(name);
      if (!text || TrimOws(*text).empty()) continue;
      std::string bad;
      auto parsed = ParseKeyValueList(*text, bad);
      if (!bad.empty()) s.FailKey("headers", "from " + std::string(name) + ": " + bad);
      for (auto& [key, value] : parsed)
        c.headers[AsciiLower(key)] = std::move(value);  // the per-signal variable wins
    }
  }
  if (auto v = otel("sampler", {"OTEL_TRACES_SAMPLER"})) {
    c.sampler = env_choice("sampler", *v, kTraceSamplers);
  }
  if (auto v = otel("sampling_ratio", {"OTEL_TRACES_SAMPLER_ARG"});
      v && (c.sampler == TraceSampler::kTraceIdRatio ||
            c.sampler == TraceSampler::kParentBasedTraceIdRatio)) {
    double ratio = -1;
    std::istringstream in(v->value);
    if (!(in >> ratio) || !in.eof() || ratio < 0 || ratio > 1) {
      fail("sampling_ratio", *v, "expected a number between 0 and 1, got '" + v->value + "'");
    }
    c.sampling_ratio = ratio;
  }
  if (!s.Present("resource_attributes")) {
    if (auto text = env("OTEL_RESOURCE_ATTRIBUTES"); text && !TrimOws(*text).empty()) {
      std::string bad;
      c.resource_attributes = ParseKeyValueList(*text, bad);
      if (!bad.empty()) s.FailKey("resource_attributes", "from OTEL_RESOURCE_ATTRIBUTES: " + bad);
    }
  }
  if (auto v = otel("service_name", {"OTEL_SERVICE_NAME"})) {
    c.service_name = v->value;
  } else if (auto it = c.resource_attributes.find("service.name");
             !s.Present("service_name") && it != c.resource_attributes.end()) {
    c.service_name = it->second;
  }
  c.resource_attributes.erase("service.name");  // service_name is the one place it lives
  if (c.service_name.empty()) s.FailKey("service_name", "must not be empty");
  if (auto v = otel("capture_content", {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"})) {
    c.capture_content = env_bool("capture_content", *v);
  }
  if (auto v = otel("queue_size", {"OTEL_BSP_MAX_QUEUE_SIZE"})) {
    c.queue_size = static_cast<int>(env_int("queue_size", *v, 1, 1'000'000));
  }
  if (auto v = otel("batch_size", {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE"})) {
    c.batch_size = static_cast<int>(env_int("batch_size", *v, 1, 100'000));
  }
  if (auto v = otel("export_interval", {"OTEL_BSP_SCHEDULE_DELAY"})) {
    c.export_interval = std::chrono::milliseconds(env_int("export_interval", *v, 1, 3'600'000));
  }
  if (auto v = otel("export_timeout",
                    {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"})) {
    c.export_timeout = std::chrono::milliseconds(env_int("export_timeout", *v, 1, 3'600'000));
  }
  if (c.batch_size > c.queue_size) {
    s.FailKey("batch_size", "must not exceed queue_size (" + std::to_string(c.queue_size) + ")");
  }
  if (c.export_interval <= Duration::zero()) s.FailKey("export_interval", "must be positive");
  if (c.export_timeout <= Duration::zero()) s.FailKey("export_timeout", "must be positive");

  c.enabled = !c.disabled && !c.traces_url.empty();
  c.metadata_host = gce::MetadataHost(env("GCE_METADATA_HOST"));
  const bool has_authorization =
      std::any_of(c.headers.begin(), c.headers.end(),
                  [](const auto& header) { return AsciiLower(header.first) == "authorization"; });
  c.use_gcp_token =
      c.gcp_auth == GcpAuth::kOn || (c.gcp_auth == GcpAuth::kAuto && !has_authorization &&
                                     HostOf(c.traces_url).ends_with(".googleapis.com"));
  // Google's OTLP endpoint files spans under the project in gcp.project_id.
  if (c.use_gcp_token && !c.resource_attributes.contains("gcp.project_id")) {
    if (auto project = env("GOOGLE_CLOUD_PROJECT"); project && !project->empty()) {
      c.resource_attributes["gcp.project_id"] = *project;
    }
  }
}

// --- The visitors. -----------------------------------------------------------------------------

// Reads a Section into the structs; unknown keys are errors (Section::Finish).
class Reader {
 public:
  explicit Reader(Section& section) : s_(section) {}

  void Text(std::string_view key, std::string& value) { value = s_.String(key, value); }
  void Secret(std::string_view key, std::string& value) { value = s_.String(key, value); }
  void Url(std::string_view key, std::string& value) { value = s_.String(key, value); }
  void Flag(std::string_view key, bool& value) { value = s_.Bool(key, value); }
  template <class Int>
  void Integer(std::string_view key, Int& value, std::int64_t min, std::int64_t max) {
    value = static_cast<Int>(s_.Int(key, value, min, max));
  }
  void Real(std::string_view key, double& value, double min, double max) {
    value = s_.Double(key, value, min, max);
  }
  void Time(std::string_view key, Duration& value) { value = s_.Dur(key, value); }
  void Bytes(std::string_view key, std::uint64_t& value, std::uint64_t min) {
    value = s_.Size(key, value, min);
  }
  template <class Enum, std::size_t N>
  void Choice(std::string_view key, Enum& value,
              const std::array<std::pair<std::string_view, Enum>, N>& choices) {
    value = s_.Choice(key, value, choices);
  }
  template <class Enum, std::size_t N>
  void Choices(std::string_view key, std::vector<Enum>& values,
               const std::array<std::pair<std::string_view, Enum>, N>& choices) {
    if (!s_.Has(key)) return;
    values.clear();
    for (const std::string& name : s_.StringList(key)) {
      auto it = std::find_if(choices.begin(), choices.end(),
                             [&](const auto& p) { return p.first == name; });
      if (it == choices.end()) {
        std::string known;
        for (const auto& [n, e] : choices)
          known += (known.empty() ? "" : ", ") + std::string(n);
        std::string noun(key);
        if (noun.ends_with('s')) noun.pop_back();  // "scopes" → "unknown scope 'root'"
        s_.FailKey(key, "unknown " + noun + " '" + name + "' (" + known + ")");
      }
      values.push_back(it->second);
    }
  }
  void Texts(std::string_view key, std::vector<std::string>& values) {
    if (s_.Has(key)) values = s_.StringList(key);
  }
  void TextMap(std::string_view key, std::map<std::string, std::string>& values,
               bool /*secret_values*/) {
    if (s_.Has(key)) values = s_.StringMap(key);
  }
  template <class T>
  void Group(std::string_view key, T& value) {
    Section child = s_.Child(key);
    Reader reader(child);
    Describe(reader, value);
    Check(child, value);
    child.Finish();
  }
  template <class T>
  void List(std::string_view key, std::vector<T>& values) {
    std::vector<Section> items = s_.List(key);
    if (items.empty() && !s_.Present(key)) return;
    values.clear();
    for (Section& item : items) {
      T value;
      Reader reader(item);
      Describe(reader, value);
      Check(item, value);
      item.Finish();
      values.push_back(std::move(value));
    }
    Check(s_, values);
  }
  template <class T>
  void Optional(std::string_view key, std::shared_ptr<T>& value) {
    if (!s_.Has(key)) return;
    value = std::make_shared<T>();
    Group(key, *value);
  }

 private:
  Section& s_;
};

// Writes the effective configuration as YAML, secrets redacted.
class Dumper {
 public:
  explicit Dumper(YAML::Emitter& out) : out_(out) {}

  void Text(std::string_view key, const std::string& value) { Key(key) << value; }
  void Secret(std::string_view key, const std::string& value) {
    Key(key) << (value.empty() ? std::string() : std::string("<redacted>"));
  }
  void Url(std::string_view key, const std::string& value) {
    // A URL may carry a password: keep scheme, host and path only.
    std::string url = value;
    const auto scheme_end = url.find("://");
    const auto at = url.rfind('@');
    if (scheme_end != std::string::npos && at != std::string::npos && at > scheme_end) {
      url = url.substr(0, scheme_end + 3) + "<redacted>@" + url.substr(at + 1);
    }
    Key(key) << url;
  }
  void Flag(std::string_view key, bool value) { Key(key) << value; }
  template <class Int>
  void Integer(std::string_view key, Int value, std::int64_t, std::int64_t) {
    Key(key) << static_cast<std::int64_t>(value);
  }
  void Real(std::string_view key, double value, double, double) { Key(key) << value; }
  void Time(std::string_view key, Duration value) { Key(key) << FormatDuration(value); }
  void Bytes(std::string_view key, std::uint64_t value, std::uint64_t) { Key(key) << value; }
  template <class Enum, std::size_t N>
  void Choice(std::string_view key, Enum value,
              const std::array<std::pair<std::string_view, Enum>, N>& choices) {
    Key(key) << std::string(NameOf(value, choices));
  }
  template <class Enum, std::size_t N>
  void Choices(std::string_view key, const std::vector<Enum>& values,
               const std::array<std::pair<std::string_view, Enum>, N>& choices) {
    Key(key) << YAML::Flow << YAML::BeginSeq;
    for (Enum e : values)
      out_ << std::string(NameOf(e, choices));
    out_ << YAML::EndSeq;
  }
  void Texts(std::string_view key, const std::vector<std::string>& values) {
    Key(key) << YAML::Flow << values;
  }
  void TextMap(std::string_view key, const std::map<std::string, std::string>& values,
               bool secret_values) {
    Key(key) << YAML::BeginMap;
    for (const auto& [name, value] : values)
      out_ << YAML::Key << name << YAML::Value << (secret_values ? "<redacted>" : value);
    out_ << YAML::EndMap;
  }
  template <class T>
  void Group(std::string_view key, T& value) {
    Key(key) << YAML::BeginMap;
    Describe(*this, value);
    out_ << YAML::EndMap;
  }
  template <class T>
  void List(std::string_view key, std::vector<T>& values) {
    Key(key) << YAML::BeginSeq;
    for (T& value : values) {
      out_ << YAML::BeginMap;
      Describe(*this, value);
      out_ << YAML::EndMap;
    }
    out_ << YAML::EndSeq;
  }
  template <class T>
  void Optional(std::string_view key, std::shared_ptr<T>& value) {
    if (value) Group(key, *value);
  }

 private:
  YAML::Emitter& Key(std::string_view key) {
    return out_ << YAML::Key << std::string(key) << YAML::Value;
  }
  YAML::Emitter& out_;
};

// Every key's dotted path; list items are "[]" (`models[].retry.attempts`).
class Lister {
 public:
  std::vector<std::string> paths;

  template <class... Rest>
  void Text(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void Secret(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void Url(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void Flag(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void Integer(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void Real(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void Time(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void Bytes(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void Choice(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void Choices(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void Texts(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class... Rest>
  void TextMap(std::string_view key, Rest&&...) {
    Add(key);
  }
  template <class T>
  void Group(std::string_view key, T& value) {
    Nested(std::string(key), value);
  }
  template <class T>
  void List(std::string_view key, std::vector<T>&) {
    T item;
    Nested(std::string(key) + "[]", item);
  }
  template <class T>
  void Optional(std::string_view key, std::shared_ptr<T>&) {
    if (optional_depth_ > 0) return;  // a secondary has no secondary
    ++optional_depth_;
    T value;
    Nested(std::string(key), value);
    --optional_depth_;
  }

 private:
  void Add(std::string_view key) { paths.push_back(Prefixed(key)); }
  std::string Prefixed(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }
  template <class T>
  void Nested(const std::string& key, T& value) {
    const std::string saved = prefix_;
    prefix_ = Prefixed(key);
    Describe(*this, value);
    prefix_ = saved;
  }
  std::string prefix_;
  int optional_depth_ = 0;
};

bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

void ParseListen(ServerConfig& s, const std::string& source) {
  const std::string& l = s.listen;
  std::string host;
  std::string port;
  if (!l.empty() && l.front() == '[') {
    auto close = l.find(']');
    if (close == std::string::npos || close + 1 >= l.size() || l[close + 1] != ':') {
      throw ConfigError(source + ": server.listen: expected [ipv6]:port, got '" + l + "'");
    }
    host = l.substr(1, close - 1);
    port = l.substr(close + 2);
  } else {
    auto colon = l.rfind(':');
    if (colon == std::string::npos) {
      throw ConfigError(source + ": server.listen: expected host:port, got '" + l + "'");
    }
    host = l.substr(0, colon);
    port = l.substr(colon + 1);
  }
  if (host == "localhost") host = "127.0.0.1";
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, host.c_str(), &v4) != 1 && inet_pton(AF_INET6, host.c_str(), &v6) != 1) {
    throw ConfigError(source + ": server.listen: '" + host +
                      "' is not an IP address (use 0.0.0.0, :: or 127.0.0.1)");
  }
  int p = -1;
  std::istringstream in(port);
  if (!(in >> p) || !in.eof() || p < 0 || p > 65535) {
    throw ConfigError(source + ": server.listen: bad port '" + port + "'");
  }
  s.host = host;
  s.port = static_cast<std::uint16_t>(p);
}

// Whether a provider name is one of type local (the built-in offline models).
bool IsLocalProvider(const Config& c, std::string_view name) {
  const ProviderConfig* p = c.FindProvider(name);
  return p != nullptr && p->type == ProviderType::kLocal;
}

// A model all of whose targets are local.
bool IsLocalModel(const Config& c, const ModelConfig& m) {
  return !m.targets.empty() &&
         std::all_of(m.targets.begin(), m.targets.end(),
                     [&](const TargetConfig& t) { return IsLocalProvider(c, t.provider); });
}

// A local model only extracts from the context it is given: as the fallback of a generative
// model it would turn an outage into 200s that quote the prompt (or 422s). Allowed only when the
// model says so (issue 12).
void CheckLocalFallbacks(const Config& c, const ModelConfig& m, const std::string& at) {
  if (m.allow_local_fallback || IsLocalModel(c, m)) return;
  for (std::size_t f = 0; f < m.fallbacks.size(); ++f) {
    const std::string& name = m.fallbacks[f];
    bool local = false;
    if (const ModelConfig* named = c.FindModel(name)) {
      local = IsLocalModel(c, *named);
    } else if (auto slash = name.find('/'); slash != std::string::npos) {
      local = IsLocalProvider(c, name.substr(0, slash));
    } else {
      local = IsLocalModelName(name) && IsLocalProvider(c, "local");
    }
    if (!local) continue;
    throw ConfigError(at + ".fallbacks[" + std::to_string(f) + "]: '" + name +
                      "' is a local model, which cannot generate text: as a fallback of model '" +
                      m.name +
                      "' it would answer an outage with quotes of the prompt. Give it a "
                      "generative fallback, or set allow_local_fallback: true on this model if "
                      "that is really wanted");
  }
}

// Validation that spans sections.
void Validate(Config& c, const std::string& source) {
  ParseListen(c.server, source);
  if (c.server.threads == 0) c.server.threads = UsableCpuCount();
  // Each proxied request holds two descriptors (client and upstream); the rest is headroom.
  if (c.server.max_inflight == 0) {
    c.server.max_inflight =
        static_cast<int>(std::clamp<std::uint64_t>(FileDescriptorLimit() / 2, 64, 1'000'000));
  }
  if (c.server.max_memory_bytes == 0) c.server.max_memory_bytes = CgroupMemoryLimit() / 10 * 9;
  if (c.auth.disabled && !c.auth.keys.empty()) {
    throw ConfigError(source +
                      ": auth.disabled: true with auth.keys configured; remove one of "
                      "them (disabled would ignore the keys)");
  }
  if (c.auth.keys.empty() && !c.auth.disabled && !IsLoopback(c.server.host)) {
    throw ConfigError(source + ": server.listen: refusing to listen on " + c.server.listen +
                      " without API keys; configure auth.keys, or set auth.disabled: true to "
                      "serve without authentication");
  }
  // Fleet-wide limits live in Redis (the one limits name, else the storage's), or in
  // PostgreSQL (likewise) when no Redis is configured for them.
  LimitsConfig& l = c.limits;
  l.effective_redis_url.clear();
  l.effective_postgres_url.clear();
  if (l.backend == LimitsBackend::kRedis || l.backend == LimitsBackend::kAuto) {
    if (!l.redis_url.empty()) {
      l.effective_redis_url = l.redis_url;
    } else if (c.storage.backend == StorageBackend::kRedis) {
      l.effective_redis_url = c.storage.url;
    } else if (l.backend == LimitsBackend::kRedis) {
      throw ConfigError(source +
                        ": limits.backend: redis needs limits.redis_url (storage.backend is " +
                        std::string(ToString(c.storage.backend)) + ", not redis)");
    }
  }
  if (l.effective_redis_url.empty() &&
      (l.backend == LimitsBackend::kPostgres || l.backend == LimitsBackend::kAuto)) {
    if (!l.postgres_url.empty()) {
      l.effective_postgres_url = l.postgres_url;
    } else if (c.storage.backend == StorageBackend::kPostgres) {
      l.effective_postgres_url = c.storage.url;
    } else if (l.backend == LimitsBackend::kPostgres) {
      throw ConfigError(
          source + ": limits.backend: postgres needs limits.postgres_url (storage.backend is " +
          std::string(ToString(c.storage.backend)) + ", not postgres)");
    }
  }
  DocumentsConfig& d = c.documents;
  if (d.embedding_model.empty()) {
    d.embedding_model =
        c.tasks.embeddings_model.empty() ? std::string(kLocalEmbedModel) : c.tasks.embeddings_model;
  }
  // Snapshots of the document indexes live next to an embedded database by default; a shared
  // backend's instances have no common disk, so there they are kept only where configured.
  if (!d.snapshots) {
    d.snapshot_dir.clear();
  } else if (d.snapshot_dir.empty() && c.storage.backend == StorageBackend::kSqlite) {
    std::filesystem::path db(c.storage.path);
    d.snapshot_dir = (db.has_parent_path() ? db.parent_path() : std::filesystem::path("."))
                         .append("vectors")
                         .string();
  }
  if (c.FindProvider("local") == nullptr) {
    ProviderConfig local;
    local.name = "local";
    local.type = ProviderType::kLocal;
    c.providers.push_back(std::move(local));
  }
  std::vector<std::string_view> provider_names;
  for (const auto& p : c.providers)
    provider_names.push_back(p.name);
  std::vector<std::string_view> model_names;
  for (const auto& m : c.models)
    model_names.push_back(m.name);
  for (std::size_t i = 0; i < c.models.size(); ++i) {
    const ModelConfig& m = c.models[i];
    std::string at = source + ": models[" + std::to_string(i) + "]";
    for (std::size_t t = 0; t < m.targets.size(); ++t) {
      const std::string& p = m.targets[t].provider;
      if (c.FindProvider(p) != nullptr) continue;
      std::string msg =
          at + ".targets[" + std::to_string(t) + "].provider: unknown provider '" + p + "'";
      if (auto near = ClosestMatch(p, provider_names))
        msg += " (did you mean '" + std::string(*near) + "'?)";
      throw ConfigError(msg);
    }
    if (m.targets.size() > 64) {
      throw ConfigError(at + ".targets: at most 64 targets per model, got " +
                        std::to_string(m.targets.size()));
    }
    double total_weight = 0;
    for (const auto& t : m.targets)
      total_weight += t.weight;
    if (total_weight <= 0) throw ConfigError(at + ".targets: the weights add up to zero");
    for (std::size_t f = 0; f < m.fallbacks.size(); ++f) {
      const std::string& name = m.fallbacks[f];
      std::string fat = at + ".fallbacks[" + std::to_string(f) + "]";
      if (name == m.name) throw ConfigError(fat + ": a model cannot fall back to itself");
      if (c.FindModel(name) != nullptr) continue;
      // provider/model and the local provider's built-in models are resolved by the router.
      if (auto slash = name.find('/'); slash != std::string::npos) {
        if (c.FindProvider(name.substr(0, slash)) != nullptr && slash + 1 < name.size()) continue;
        throw ConfigError(fat + ": '" + name + "' names no configured provider");
      }
      if (IsLocalModelName(name)) continue;
      std::string msg = fat + ": unknown model '" + name + "'";
      if (auto near = ClosestMatch(name, model_names))
        msg += " (did you mean '" + std::string(*near) + "'?)";
      throw ConfigError(msg);
    }
    CheckLocalFallbacks(c, m, at);
  }
}

// Providers configured from well-known environment variables when there is no config file.
void AutoProviders(Config& c, const EnvLookup& env) {
  struct Known {
    const char* name;
    ProviderType type;
    const char* env;
  };
  static constexpr Known kKnown[] = {{"openai", ProviderType::kOpenAI, "OPENAI_API_KEY"},
                                     {"gemini", ProviderType::kGemini, "GEMINI_API_KEY"},
                                     {"anthropic", ProviderType::kAnthropic, "ANTHROPIC_API_KEY"}};
  for (const Known& k : kKnown) {
    auto value = env(k.env);
    if (!value || value->empty() || c.FindProvider(k.name) != nullptr) continue;
    ProviderConfig p;
    p.name = k.name;
    p.type = k.type;
    p.base_url = DefaultBaseUrl(k.type);
    p.api_key_env = k.env;
    c.providers.push_back(std::move(p));
  }
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

const ProviderConfig* Config::FindProvider(std::string_view name) const {
  for (const auto& p : providers) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const ModelConfig* Config::FindModel(std::string_view name) const {
  for (const auto& m : models) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

Config ParseConfig(std::string_view yaml, std::string_view source, const EnvLookup& env) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string(source) + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  Config c;
  c.source = std::string(source);
  Section top(root, "", c.source, &env, true, &c.env_names);
  Reader reader(top);
  Describe(reader, c);
  top.Finish();
  return c;
}

std::shared_ptr<const Config> LoadConfig(const LoadOptions& options) {
  std::string path = options.path;
  if (path.empty()) {
    if (auto p = options.env("ORCHESTRA_CONFIG"); p && !p->empty()) path = *p;
  }
  bool from_file = !path.empty();
  if (!from_file && std::filesystem::exists("orchestra.yaml")) {
    path = "orchestra.yaml";
    from_file = true;
  }
  std::string text;
  if (from_file) {
    std::ifstream in(path);
    if (!in) throw ConfigError(path + ": cannot read the config file");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  auto c = std::make_shared<Config>(ParseConfig(text, from_file ? path : "defaults", options.env));
  if (!from_file) AutoProviders(*c, options.env);
  if (options.listen) c->server.listen = *options.listen;
  if (options.log_format) {
    c->observability.log_format = FlagChoice("--log-format", *options.log_format, kLogFormats);
  }
  if (options.log_level) {
    c->observability.log_level = FlagChoice("--log-level", *options.log_level, kLogLevels);
  }
  if (auto port = options.env("PORT"); port && !port->empty()) {
    ParseListen(c->server, c->source);
    std::string host =
        c->server.host.find(':') != std::string::npos ? "[" + c->server.host + "]" : c->server.host;
    c->server.listen = host + ":" + *port;
  }
  Validate(*c, c->source);
  return c;
}

std::vector<std::string> UnusedOrchestraVariables(const Config& c,
                                                  const std::vector<std::string>& environment) {
  std::vector<std::string_view> known(c.env_names.begin(), c.env_names.end());
  known.emplace_back("ORCHESTRA_CONFIG");
  for (const auto& k : c.auth.keys)
    known.emplace_back(k.key_env);
  for (const auto& p : c.providers)
    known.emplace_back(p.api_key_env);
  std::vector<std::string> unused;
  for (const std::string& entry : environment) {
    std::string_view name(entry);
    name = name.substr(0, name.find('='));
    if (name.rfind("ORCHESTRA_", 0) != 0) continue;
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string message(name);
    if (auto near = ClosestMatch(name, known))
      message += " (did you mean " + std::string(*near) + "?)";
    unused.push_back(std::move(message));
  }
  return unused;
}

std::string DumpConfig(const Config& c) {
  YAML::Emitter out;
  out.SetDoublePrecision(12);  // 0.15, not 0.14999999999999999
  out << YAML::BeginMap;
  Dumper dumper(out);
  // The dumper only reads; Describe takes the sections by reference for the reader's sake.
  Describe(dumper, const_cast<Config&>(c));
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> ConfigKeys() {
  Lister lister;
  Config c;
  Describe(lister, c);
  return std::move(lister.paths);
}

std::string_view ToString(Scope s) {
  return NameOf(s, kScopes);
}
std::string_view ToString(ProviderType t) {
  return NameOf(t, kProviderTypes);
}
std::string_view ToString(Strategy s) {
  return NameOf(s, kStrategies);
}
std::string_view ToString(StorageBackend b) {
  return NameOf(b, kBackends);
}
std::string_view ToString(LogFormat f) {
  return NameOf(f, kLogFormats);
}
std::string_view ToString(LogLevel l) {
  return NameOf(l, kLogLevels);
}

}  // namespace orchestra::config
