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
constexpr std::array kLogFormats{std::pair<std::string_view, LogFormat>{"json", LogFormat::kJson},
                                 std::pair<std::string_view, LogFormat>{"text", LogFormat::kText}};
constexpr std::array kLogLevels{
    std::pair<std::string_view, LogLevel>{"debug", LogLevel::kDebug},
    std::pair<std::string_view, LogLevel>{"info", LogLevel::kInfo},
    std::pair<std::string_view, LogLevel>{"warning", LogLevel::kWarning},
    std::pair<std::string_view, LogLevel>{"error", LogLevel::kError}};

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

void ReadServer(Section s, ServerConfig& c) {
  c.listen = s.String("listen", c.listen);
  c.threads = static_cast<int>(s.Int("threads", c.threads, 0, 1024));
  c.max_inflight = static_cast<int>(s.Int("max_inflight", c.max_inflight, 0, 10'000'000));
  c.max_body_bytes = s.Size("max_body_bytes", c.max_body_bytes, 1024);
  c.max_header_bytes = s.Size("max_header_bytes", c.max_header_bytes, 1024);
  c.header_timeout = s.Dur("header_timeout", c.header_timeout);
  c.body_timeout = s.Dur("body_timeout", c.body_timeout);
  c.idle_timeout = s.Dur("idle_timeout", c.idle_timeout);
  c.request_timeout = s.Dur("request_timeout", c.request_timeout);
  c.drain_timeout = s.Dur("drain_timeout", c.drain_timeout);
  c.retry_after_s = static_cast<int>(s.Int("retry_after", c.retry_after_s, 1, 3600));
  s.Finish();
}

void ReadAuth(Section s, AuthConfig& c) {
  c.disabled = s.Bool("disabled", c.disabled);
  std::set<std::string> names;
  for (Section& k : s.List("keys")) {
    ApiKeyConfig key;
    key.name = k.String("name", "");
    key.key_env = k.String("key_env", "");
    key.key_file = k.String("key_file", "");
    key.sha256 = k.String("sha256", "");
    if (k.Has("scopes")) {
      key.scopes.clear();
      for (const std::string& name : k.StringList("scopes")) {
        auto it = std::find_if(kScopes.begin(), kScopes.end(),
                               [&](const auto& p) { return p.first == name; });
        if (it == kScopes.end())
          k.FailKey("scopes", "unknown scope '" + name + "' (user or admin)");
        key.scopes.push_back(it->second);
      }
    }
    if (key.name.empty()) k.FailKey("name", "every key needs a name (its tenant namespace)");
    if (!names.insert(key.name).second) k.FailKey("name", "duplicate key name '" + key.name + "'");
    int sources = !key.key_env.empty() + !key.key_file.empty() + !key.sha256.empty();
    if (sources != 1) k.FailKey("key_env", "set exactly one of key_env, key_file or sha256");
    if (!key.sha256.empty() && (key.sha256.size() != 64 || !IsHex(key.sha256))) {
      k.FailKey("sha256", "expected 64 hexadecimal digits (the SHA-256 of the key)");
    }
    k.Finish();
    c.keys.push_back(std::move(key));
  }
  s.Finish();
}

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

void ReadProviders(Section& root, std::vector<ProviderConfig>& out) {
  std::set<std::string> names;
  for (Section& p : root.List("providers")) {
    ProviderConfig c;
    c.name = p.String("name", "");
    c.type = p.Choice("type", c.type, kProviderTypes);
    c.base_url = p.String("base_url", "");
    c.api_key_env = p.String("api_key_env", "");
    c.api_key_file = p.String("api_key_file", "");
    c.headers = p.StringMap("headers");
    c.connect_timeout = p.Dur("connect_timeout", c.connect_timeout);
    c.first_byte_timeout = p.Dur("first_byte_timeout", c.first_byte_timeout);
    c.idle_timeout = p.Dur("idle_timeout", c.idle_timeout);
    c.max_connections = static_cast<int>(p.Int("max_connections", c.max_connections, 1, 100'000));
    c.max_response_bytes = p.Size("max_response_bytes", c.max_response_bytes, 1024);
    c.tls_verify = p.Bool("tls_verify", c.tls_verify);
    c.ca_file = p.String("ca_file", "");
    c.vertex = p.Bool("vertex", c.vertex);
    c.project = p.String("project", "");
    c.location = p.String("location", c.location);
    c.anthropic_version = p.String("anthropic_version", c.anthropic_version);
    c.default_max_tokens =
        static_cast<int>(p.Int("default_max_tokens", c.default_max_tokens, 1, 10'000'000));
    if (c.name.empty()) p.FailKey("name", "every provider needs a name");
    if (c.name.find('/') != std::string::npos)
      p.FailKey("name", "a provider name cannot contain '/'");
    if (!names.insert(c.name).second) p.FailKey("name", "duplicate provider name '" + c.name + "'");
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
    p.Finish();
    out.push_back(std::move(c));
  }
}

void ReadRetry(Section s, RetryConfig& c) {
  c.attempts = static_cast<int>(s.Int("attempts", c.attempts, 1, 20));
  c.backoff = s.Dur("backoff", c.backoff);
  c.max_backoff = s.Dur("max_backoff", c.max_backoff);
  c.retry_after_cap = s.Dur("retry_after_cap", c.retry_after_cap);
  if (s.Has("on")) {
    c.statuses.clear();
    c.on_connect = false;
    c.on_timeout = false;
    for (const std::string& item : s.StringList("on")) {
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
  s.Finish();
}

void ReadBreaker(Section s, CircuitBreakerConfig& c) {
  c.failures = static_cast<int>(s.Int("failures", c.failures, 1, 1'000'000));
  c.failure_rate = s.Double("failure_rate", c.failure_rate, 0.01, 1.0);
  c.min_requests = static_cast<int>(s.Int("min_requests", c.min_requests, 1, 1'000'000));
  c.window = s.Dur("window", c.window);
  c.cooldown = s.Dur("cooldown", c.cooldown);
  s.Finish();
}

void ReadModels(Section& root, std::vector<ModelConfig>& out) {
  std::set<std::string> names;
  for (Section& m : root.List("models")) {
    ModelConfig c;
    c.name = m.String("name", "");
    c.strategy = m.Choice("strategy", c.strategy, kStrategies);
    for (Section& t : m.List("targets")) {
      TargetConfig target;
      target.provider = t.String("provider", "");
      target.model = t.String("model", "");
      target.weight = t.Double("weight", target.weight, 0.0, 1e6);
      if (target.provider.empty()) t.FailKey("provider", "every target needs a provider");
      if (target.model.empty()) t.FailKey("model", "every target needs an upstream model");
      t.Finish();
      c.targets.push_back(std::move(target));
    }
    c.fallbacks = m.StringList("fallbacks");
    ReadRetry(m.Child("retry"), c.retry);
    c.timeout = m.Dur("timeout", c.timeout);
    c.deadline = m.Dur("deadline", std::max(c.deadline, c.timeout * 2));
    ReadBreaker(m.Child("circuit_breaker"), c.circuit_breaker);
    Section price = m.Child("price");
    c.price.input_per_mtok = price.Double("input_per_mtok", 0, 0, 1e9);
    c.price.output_per_mtok = price.Double("output_per_mtok", 0, 0, 1e9);
    price.Finish();
    c.cache_ttl = m.Dur("cache_ttl", c.cache_ttl);
    if (c.name.empty()) m.FailKey("name", "every model needs a name");
    if (!names.insert(c.name).second) m.FailKey("name", "duplicate model name '" + c.name + "'");
    if (c.targets.empty()) m.FailKey("targets", "a model needs at least one target");
    m.Finish();
    out.push_back(std::move(c));
  }
}

void ReadTasks(Section s, TasksConfig& c) {
  c.default_model = s.String("default_model", c.default_model);
  c.generate_model = s.String("generate_model", c.generate_model);
  c.embeddings_model = s.String("embeddings_model", c.embeddings_model);
  c.classify_model = s.String("classify_model", c.classify_model);
  c.answer_model = s.String("answer_model", c.answer_model);
  c.summarize_model = s.String("summarize_model", c.summarize_model);
  s.Finish();
}

// A Firestore document holds at most 1 MiB, its name and field names included.
constexpr std::uint64_t kFirestoreMaxValueBytes = 1'000'000;

bool AllOf(std::string_view text, std::string_view allowed_punctuation) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [&](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           allowed_punctuation.find(ch) != std::string_view::npos;
  });
}

// storage.firestore, and the variables Google's client libraries read.
void ReadFirestore(Section s, StorageConfig& c, const EnvLookup& env) {
  FirestoreConfig& f = c.firestore;
  f.project = s.String("project", f.project);
  f.database = s.String("database", f.database);
  f.root = s.String("root", f.root);
  f.endpoint = s.String("endpoint", f.endpoint);
  f.emulator_host = env("FIRESTORE_EMULATOR_HOST").value_or("");
  f.metadata_host = gce::MetadataHost(env("GCE_METADATA_HOST"));
  if (c.backend == StorageBackend::kFirestore) {
    if (f.project.empty()) f.project = env("GOOGLE_CLOUD_PROJECT").value_or("");
    if (f.project.empty()) {
      s.FailKey("project",
                "backend firestore needs a Google Cloud project: set it here or in "
                "$GOOGLE_CLOUD_PROJECT");
    }
    // Ids that appear as they are in request paths.
    if (!AllOf(f.project, "-.:")) {
      s.FailKey("project", "expected a Google Cloud project id, got '" + f.project + "'");
    }
    if (f.database != "(default)" && !AllOf(f.database, "-")) {
      s.FailKey("database", "expected (default) or a database id (letters, digits and -), got '" +
                                f.database + "'");
    }
    if (!AllOf(f.root, "-_") || f.root.size() > 100 ||
        (f.root.size() >= 4 && f.root.starts_with("__") && f.root.ends_with("__"))) {
      s.FailKey("root",
                "expected a collection id of letters, digits, - and _ (at most 100), got '" +
                    f.root + "'");
    }
    if (!f.endpoint.empty() && !f.endpoint.starts_with("https://") &&
        !f.endpoint.starts_with("http://")) {
      s.FailKey("endpoint", "expected https://host[:port], got '" + f.endpoint + "'");
    }
  }
  s.Finish();
}

void ReadStorage(Section s, StorageConfig& c, int depth, const EnvLookup& env) {
  c.backend = s.Choice("backend", c.backend, kBackends);
  c.path = s.String("path", c.path);
  c.url = s.String("url", c.url);
  ReadFirestore(s.Child("firestore"), c, env);
  c.pool_size = static_cast<int>(s.Int("pool_size", c.pool_size, 1, 256));
  const bool firestore = c.backend == StorageBackend::kFirestore;
  c.max_value_bytes =
      s.Size("max_value_bytes", firestore ? kFirestoreMaxValueBytes : c.max_value_bytes, 1);
  if (firestore && c.max_value_bytes > kFirestoreMaxValueBytes) {
    s.FailKey("max_value_bytes", "at most " + std::to_string(kFirestoreMaxValueBytes) +
                                     " with backend firestore (a document holds at most 1 MiB)");
  }
  Section checkpoints = s.Child("checkpoints");
  c.checkpoints_keep_last =
      static_cast<int>(checkpoints.Int("keep_last", c.checkpoints_keep_last, 1, 1'000'000));
  checkpoints.Finish();
  c.sweep_interval = s.Dur("sweep_interval", c.sweep_interval);
  c.operation_timeout = s.Dur("operation_timeout", c.operation_timeout);
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
  if (s.Has("secondary")) {
    if (depth > 0) s.FailKey("secondary", "a secondary cannot have its own secondary");
    c.secondary = std::make_shared<StorageConfig>();
    ReadStorage(s.Child("secondary"), *c.secondary, depth + 1, env);
  }
  s.Finish();
}

void ParseListen(ServerConfig& s, const std::string& source);

void ReadObservability(Section s, ObservabilityConfig& c) {
  c.log_format = s.Choice("log_format", c.log_format, kLogFormats);
  c.log_level = s.Choice("log_level", c.log_level, kLogLevels);
  c.access_log = s.Bool("access_log", c.access_log);
  c.log_probes = s.Bool("log_probes", c.log_probes);
  c.metrics_listen = s.String("metrics_listen", c.metrics_listen);
  if (!c.metrics_listen.empty()) {
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
  s.Finish();
}

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

// Validation that spans sections.
void Validate(Config& c, const std::string& source) {
  ParseListen(c.server, source);
  if (c.server.threads == 0) c.server.threads = UsableCpuCount();
  if (c.server.max_inflight == 0) c.server.max_inflight = 80 * c.server.threads;
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
  ReadServer(top.Child("server"), c.server);
  ReadAuth(top.Child("auth"), c.auth);
  ReadProviders(top, c.providers);
  ReadModels(top, c.models);
  ReadTasks(top.Child("tasks"), c.tasks);
  ReadStorage(top.Child("storage"), c.storage, 0, env);
  ReadObservability(top.Child("observability"), c.observability);
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
  auto dur = [](Duration d) { return FormatDuration(d); };
  out << YAML::BeginMap;
  out << YAML::Key << "server" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "listen" << YAML::Value << c.server.listen;
  out << YAML::Key << "threads" << YAML::Value << c.server.threads;
  out << YAML::Key << "max_inflight" << YAML::Value << c.server.max_inflight;
  out << YAML::Key << "max_body_bytes" << YAML::Value << c.server.max_body_bytes;
  out << YAML::Key << "max_header_bytes" << YAML::Value << c.server.max_header_bytes;
  out << YAML::Key << "header_timeout" << YAML::Value << dur(c.server.header_timeout);
  out << YAML::Key << "body_timeout" << YAML::Value << dur(c.server.body_timeout);
  out << YAML::Key << "idle_timeout" << YAML::Value << dur(c.server.idle_timeout);
  out << YAML::Key << "request_timeout" << YAML::Value << dur(c.server.request_timeout);
  out << YAML::Key << "drain_timeout" << YAML::Value << dur(c.server.drain_timeout);
  out << YAML::Key << "retry_after" << YAML::Value << c.server.retry_after_s;
  out << YAML::EndMap;

  out << YAML::Key << "auth" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "disabled" << YAML::Value << c.auth.disabled;
  out << YAML::Key << "keys" << YAML::Value << YAML::BeginSeq;
  for (const auto& k : c.auth.keys) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << k.name;
    if (!k.key_env.empty()) out << YAML::Key << "key_env" << YAML::Value << k.key_env;
    if (!k.key_file.empty()) out << YAML::Key << "key_file" << YAML::Value << k.key_file;
    if (!k.sha256.empty()) out << YAML::Key << "sha256" << YAML::Value << "<redacted>";
    out << YAML::Key << "scopes" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (Scope s : k.scopes)
      out << std::string(ToString(s));
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;

  out << YAML::Key << "providers" << YAML::Value << YAML::BeginSeq;
  for (const auto& p : c.providers) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << p.name;
    out << YAML::Key << "type" << YAML::Value << std::string(ToString(p.type));
    if (p.type != ProviderType::kLocal) {
      out << YAML::Key << "base_url" << YAML::Value << p.base_url;
      if (!p.api_key_env.empty()) out << YAML::Key << "api_key_env" << YAML::Value << p.api_key_env;
      if (!p.api_key_file.empty())
        out << YAML::Key << "api_key_file" << YAML::Value << p.api_key_file;
      if (!p.headers.empty()) {
        out << YAML::Key << "headers" << YAML::Value << YAML::BeginMap;
        for (const auto& [name, value] : p.headers) {
          out << YAML::Key << name << YAML::Value << "<redacted>";
        }
        out << YAML::EndMap;
      }
      out << YAML::Key << "connect_timeout" << YAML::Value << dur(p.connect_timeout);
      out << YAML::Key << "first_byte_timeout" << YAML::Value << dur(p.first_byte_timeout);
      out << YAML::Key << "idle_timeout" << YAML::Value << dur(p.idle_timeout);
      out << YAML::Key << "max_connections" << YAML::Value << p.max_connections;
      out << YAML::Key << "max_response_bytes" << YAML::Value << p.max_response_bytes;
      out << YAML::Key << "tls_verify" << YAML::Value << p.tls_verify;
      if (!p.ca_file.empty()) out << YAML::Key << "ca_file" << YAML::Value << p.ca_file;
      if (p.type == ProviderType::kGemini) {
        out << YAML::Key << "vertex" << YAML::Value << p.vertex;
        if (p.vertex) {
          out << YAML::Key << "project" << YAML::Value << p.project;
          out << YAML::Key << "location" << YAML::Value << p.location;
        }
      }
      if (p.type == ProviderType::kAnthropic) {
        out << YAML::Key << "anthropic_version" << YAML::Value << p.anthropic_version;
        out << YAML::Key << "default_max_tokens" << YAML::Value << p.default_max_tokens;
      }
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  out << YAML::Key << "models" << YAML::Value << YAML::BeginSeq;
  for (const auto& m : c.models) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << m.name;
    out << YAML::Key << "strategy" << YAML::Value << std::string(ToString(m.strategy));
    out << YAML::Key << "targets" << YAML::Value << YAML::BeginSeq;
    for (const auto& t : m.targets) {
      out << YAML::Flow << YAML::BeginMap << YAML::Key << "provider" << YAML::Value << t.provider
          << YAML::Key << "model" << YAML::Value << t.model << YAML::Key << "weight" << YAML::Value
          << t.weight << YAML::EndMap;
    }
    out << YAML::EndSeq;
    out << YAML::Key << "fallbacks" << YAML::Value << YAML::Flow << m.fallbacks;
    out << YAML::Key << "retry" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "attempts" << YAML::Value << m.retry.attempts;
    out << YAML::Key << "backoff" << YAML::Value << dur(m.retry.backoff);
    out << YAML::Key << "max_backoff" << YAML::Value << dur(m.retry.max_backoff);
    out << YAML::Key << "retry_after_cap" << YAML::Value << dur(m.retry.retry_after_cap);
    std::vector<std::string> on;
    for (int s : m.retry.statuses)
      on.push_back(std::to_string(s));
    if (m.retry.on_connect) on.emplace_back("connect");
    if (m.retry.on_timeout) on.emplace_back("timeout");
    out << YAML::Key << "on" << YAML::Value << YAML::Flow << on;
    out << YAML::EndMap;
    out << YAML::Key << "timeout" << YAML::Value << dur(m.timeout);
    out << YAML::Key << "deadline" << YAML::Value << dur(m.deadline);
    out << YAML::Key << "circuit_breaker" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "failures" << YAML::Value << m.circuit_breaker.failures;
    out << YAML::Key << "failure_rate" << YAML::Value << m.circuit_breaker.failure_rate;
    out << YAML::Key << "min_requests" << YAML::Value << m.circuit_breaker.min_requests;
    out << YAML::Key << "window" << YAML::Value << dur(m.circuit_breaker.window);
    out << YAML::Key << "cooldown" << YAML::Value << dur(m.circuit_breaker.cooldown);
    out << YAML::EndMap;
    out << YAML::Key << "price" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "input_per_mtok" << YAML::Value << m.price.input_per_mtok;
    out << YAML::Key << "output_per_mtok" << YAML::Value << m.price.output_per_mtok;
    out << YAML::EndMap;
    out << YAML::Key << "cache_ttl" << YAML::Value << dur(m.cache_ttl);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  out << YAML::Key << "tasks" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "default_model" << YAML::Value << c.tasks.default_model;
  auto task = [&](const char* key, const std::string& v) {
    if (!v.empty()) out << YAML::Key << key << YAML::Value << v;
  };
  task("generate_model", c.tasks.generate_model);
  task("embeddings_model", c.tasks.embeddings_model);
  task("classify_model", c.tasks.classify_model);
  task("answer_model", c.tasks.answer_model);
  task("summarize_model", c.tasks.summarize_model);
  out << YAML::EndMap;

  auto storage = [&](const StorageConfig& s, auto& self) -> void {
    out << YAML::BeginMap;
    out << YAML::Key << "backend" << YAML::Value << std::string(ToString(s.backend));
    if (s.backend == StorageBackend::kSqlite) {
      out << YAML::Key << "path" << YAML::Value << s.path;
    } else if (s.backend == StorageBackend::kFirestore) {
      out << YAML::Key << "firestore" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "project" << YAML::Value << s.firestore.project;
      out << YAML::Key << "database" << YAML::Value << s.firestore.database;
      out << YAML::Key << "root" << YAML::Value << s.firestore.root;
      if (!s.firestore.endpoint.empty()) {
        out << YAML::Key << "endpoint" << YAML::Value << s.firestore.endpoint;
      }
      out << YAML::EndMap;
    } else {
      // A URL may carry a password: keep scheme, host and path only.
      std::string url = s.url;
      auto scheme_end = url.find("://");
      auto at = url.rfind('@');
      if (scheme_end != std::string::npos && at != std::string::npos && at > scheme_end) {
        url = url.substr(0, scheme_end + 3) + "<redacted>@" + url.substr(at + 1);
      }
      out << YAML::Key << "url" << YAML::Value << url;
    }
    out << YAML::Key << "pool_size" << YAML::Value << s.pool_size;
    out << YAML::Key << "max_value_bytes" << YAML::Value << s.max_value_bytes;
    out << YAML::Key << "checkpoints" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key
        << "keep_last" << YAML::Value << s.checkpoints_keep_last << YAML::EndMap;
    out << YAML::Key << "sweep_interval" << YAML::Value << dur(s.sweep_interval);
    out << YAML::Key << "operation_timeout" << YAML::Value << dur(s.operation_timeout);
    if (s.secondary) {
      out << YAML::Key << "secondary" << YAML::Value;
      self(*s.secondary, self);
    }
    out << YAML::EndMap;
  };
  out << YAML::Key << "storage" << YAML::Value;
  storage(c.storage, storage);

  out << YAML::Key << "observability" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "log_format" << YAML::Value
      << std::string(ToString(c.observability.log_format));
  out << YAML::Key << "log_level" << YAML::Value
      << std::string(ToString(c.observability.log_level));
  out << YAML::Key << "access_log" << YAML::Value << c.observability.access_log;
  out << YAML::Key << "log_probes" << YAML::Value << c.observability.log_probes;
  if (!c.observability.metrics_listen.empty()) {
    out << YAML::Key << "metrics_listen" << YAML::Value << c.observability.metrics_listen;
  }
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
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
