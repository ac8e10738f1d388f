# Inputs. Per-environment values live in envs/<env>.tfvars; project, region, image and the
# GitHub repository are passed by deploy/scripts/apply_performance_optimizations.sh.

variable "project_id" {
  description = "GCP project that hosts this environment."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id: 6-30 characters, lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the Cloud Run service, the registry, the scheduler job and the optional data services."
  type        = string
  default     = "us-central1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like us-central1 or europe-west4."
  }
}

variable "env" {
  description = "Environment name: dev, staging or prod."
  type        = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.env)
    error_message = "env must be one of dev, staging, prod."
  }
}

variable "image" {
  description = "Container image to run, with a tag or a digest (REGION-docker.pkg.dev/PROJECT/REPO/orchestra:TAG)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$", var.image))
    error_message = "image must be a full reference with a tag or an @sha256 digest."
  }
}

variable "github_repository" {
  description = "OWNER/NAME of the GitHub repository whose Actions may deploy (Workload Identity Federation condition); empty = no federation and no deployer account."
  type        = string
  default     = ""
  validation {
    condition     = var.github_repository == "" || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be OWNER/NAME or empty."
  }
}

variable "runtime_service_account_id" {
  description = "Account id (the part before @) of the service account the service runs as; empty = orchestra-<env>-run."
  type        = string
  default     = ""
  validation {
    condition     = var.runtime_service_account_id == "" || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.runtime_service_account_id))
    error_message = "runtime_service_account_id must be 6-30 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

# --- Cloud Run sizing ------------------------------------------------------------------

variable "cpu" {
  description = "vCPUs per instance. Orchestra runs one event loop per vCPU."
  type        = string
  default     = "1"
  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.cpu)
    error_message = "cpu must be 1, 2, 4, 6 or 8 (gen2 and concurrency > 1 need at least one whole vCPU)."
  }
}

variable "memory" {
  description = "Memory per instance (Mi or Gi). Orchestra idles at about 15 MB; gen2 needs at least 512Mi."
  type        = string
  default     = "512Mi"
  validation {
    condition = can(regex("^[0-9]+(Mi|Gi)$", var.memory)) && (
      try(tonumber(trimsuffix(var.memory, "Mi")), tonumber(trimsuffix(var.memory, "Gi")) * 1024, 0) >= 512
    ) && try(tonumber(trimsuffix(var.memory, "Mi")), tonumber(trimsuffix(var.memory, "Gi")) * 1024, 0) <= 32768
    error_message = "memory must be between 512Mi and 32Gi, written as <n>Mi or <n>Gi."
  }
}

variable "capacity_per_vcpu" {
  description = "Requests in flight one vCPU of Orchestra serves at its target latency (measured: docs/OPERATIONS.md, benchmarks). Cloud Run's concurrency and the server's max_inflight are this times cpu."
  type        = number
  default     = 80
  validation {
    condition     = var.capacity_per_vcpu >= 1 && var.capacity_per_vcpu <= 1000 && floor(var.capacity_per_vcpu) == var.capacity_per_vcpu
    error_message = "capacity_per_vcpu must be a whole number from 1 to 1000."
  }
}

variable "concurrency" {
  description = "Overrides the derived concurrency (capacity_per_vcpu x cpu, at most 1000): requests one instance receives at once, and the server's max_inflight. null = derived."
  type        = number
  default     = null
  validation {
    condition     = var.concurrency == null ? true : (var.concurrency >= 1 && var.concurrency <= 1000 && floor(var.concurrency) == var.concurrency)
    error_message = "concurrency must be null or a whole number from 1 to 1000."
  }
}

variable "min_instances" {
  description = "Instances kept running even without traffic (0 = scale to zero)."
  type        = number
  default     = 0
  validation {
    condition     = var.min_instances >= 0 && var.min_instances <= 100 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be a whole number from 0 to 100."
  }
}

variable "max_instances" {
  description = "Upper bound on instances (a cost and blast-radius cap)."
  type        = number
  default     = 3
  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 1000 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number from 1 to 1000."
  }
}

variable "cpu_always_allocated" {
  description = "Instance-based billing: CPU stays allocated between requests (background flushes, metrics scrapes). false = request-based billing."
  type        = bool
  default     = false
}

variable "request_timeout_seconds" {
  description = "Longest request Cloud Run lets through, streams included (at most 3600)."
  type        = number
  default     = 3600
  validation {
    condition     = var.request_timeout_seconds >= 1 && var.request_timeout_seconds <= 3600
    error_message = "request_timeout_seconds must be between 1 and 3600."
  }
}

variable "keep_warm_schedule" {
  description = "Cron schedule (UTC) of the Cloud Scheduler job that POSTs /warmup; empty = no job. Ignored when min_instances > 0."
  type        = string
  default     = ""
  validation {
    condition     = var.keep_warm_schedule == "" || length(split(" ", trimspace(var.keep_warm_schedule))) == 5
    error_message = "keep_warm_schedule must be empty or a five-field cron expression."
  }
}

variable "allow_unauthenticated" {
  description = "Let anyone reach the service URL (allUsers run.invoker); Orchestra's own API keys still guard every non-probe route."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse terraform destroy of the Cloud Run service."
  type        = bool
  default     = false
}

# --- secrets and providers -------------------------------------------------------------

variable "provider_key_envs" {
  description = "Provider key variables to wire from Secret Manager (a secret per entry, orchestra-<env>-<name>). Each secret needs a version before the first deploy."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for v in var.provider_key_envs : contains(["OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY"], v)])
    error_message = "provider_key_envs entries must be OPENAI_API_KEY, GEMINI_API_KEY or ANTHROPIC_API_KEY."
  }
}

variable "vertex_ai" {
  description = "Grant the runtime account roles/aiplatform.user so a gemini provider with vertex: true can call Vertex AI with the instance's token."
  type        = bool
  default     = false
}

# --- metrics ---------------------------------------------------------------------------

variable "prometheus_sidecar" {
  description = "Run Google's Managed Service for Prometheus sidecar so Orchestra's own metrics (tokens, cost, time to first token, fallbacks, cache) reach Cloud Monitoring; the dashboard's Orchestra panels and the spend and upstream-error alerts need it. false = opt out (docs/DEPLOY.md has the cost)."
  type        = bool
  default     = true
}

variable "prometheus_sidecar_image" {
  description = "Image of the Managed Service for Prometheus sidecar for Cloud Run."
  type        = string
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0"
}

variable "metrics_port" {
  description = "Loopback port on which the server exposes /metrics without authentication for the sidecar (observability.metrics_listen)."
  type        = number
  default     = 9464
  validation {
    condition     = var.metrics_port > 1024 && var.metrics_port < 65536 && var.metrics_port != 8080
    error_message = "metrics_port must be an unprivileged port other than 8080."
  }
}

# --- traces ----------------------------------------------------------------------------

variable "otlp_endpoint" {
  description = "OTLP/HTTP endpoint the server exports spans to (OTEL_EXPORTER_OTLP_ENDPOINT). Google's endpoint takes the instance's metadata-server token; empty = no tracing variables, the server exports nothing."
  type        = string
  default     = "https://telemetry.googleapis.com"
  validation {
    condition     = var.otlp_endpoint == "" || can(regex("^https?://[^/\\s]+(/.*)?$", var.otlp_endpoint))
    error_message = "otlp_endpoint must be empty or an http(s) URL."
  }
}

variable "trace_sampler" {
  description = "OTEL_TRACES_SAMPLER: parentbased_traceidratio follows the caller's sampled flag and samples new traces at trace_sampling_ratio."
  type        = string
  default     = "parentbased_traceidratio"
  validation {
    condition     = contains(["parentbased_traceidratio", "traceidratio", "parentbased_always_on", "parentbased_always_off", "always_on", "always_off"], var.trace_sampler)
    error_message = "trace_sampler must be one of the OpenTelemetry sampler names (parentbased_traceidratio, traceidratio, parentbased_always_on, parentbased_always_off, always_on, always_off)."
  }
}

variable "trace_sampling_ratio" {
  description = "OTEL_TRACES_SAMPLER_ARG: the share of new traces sampled (0.01 = 1 %)."
  type        = number
  default     = 0.01
  validation {
    condition     = var.trace_sampling_ratio >= 0 && var.trace_sampling_ratio <= 1
    error_message = "trace_sampling_ratio must be between 0 and 1."
  }
}

# --- alerting --------------------------------------------------------------------------

variable "alert_latency_p95_ms" {
  description = "Alert when the 95th percentile request latency stays above this many milliseconds (streams count their whole duration)."
  type        = number
  default     = 2000
  validation {
    condition     = var.alert_latency_p95_ms > 0
    error_message = "alert_latency_p95_ms must be positive."
  }
}

variable "alert_cpu_utilization" {
  description = "Alert when container CPU utilisation (p95 across instances) stays above this fraction."
  type        = number
  default     = 0.8
  validation {
    condition     = var.alert_cpu_utilization > 0 && var.alert_cpu_utilization <= 1
    error_message = "alert_cpu_utilization must be a fraction in (0, 1]."
  }
}

variable "alert_memory_utilization" {
  description = "Alert when container memory utilisation (p95 across instances) stays above this fraction."
  type        = number
  default     = 0.8
  validation {
    condition     = var.alert_memory_utilization > 0 && var.alert_memory_utilization <= 1
    error_message = "alert_memory_utilization must be a fraction in (0, 1]."
  }
}

variable "alert_error_rate" {
  description = "Alert when the share of 5xx responses stays above this fraction."
  type        = number
  default     = 0.05
  validation {
    condition     = var.alert_error_rate > 0 && var.alert_error_rate <= 1
    error_message = "alert_error_rate must be a fraction in (0, 1]."
  }
}

variable "alert_duration_seconds" {
  description = "How long a condition must hold before an alert opens."
  type        = number
  default     = 300
  validation {
    condition     = var.alert_duration_seconds >= 0 && var.alert_duration_seconds <= 86400 && var.alert_duration_seconds % 60 == 0
    error_message = "alert_duration_seconds must be a multiple of 60 up to 86400."
  }
}

variable "alert_spend_usd_per_hour" {
  description = "Alert when the cost Orchestra accounted (orchestra_cost_usd_total, from models[].price) over the last hour exceeds this many USD. Needs prometheus_sidecar."
  type        = number
  default     = 10
  validation {
    condition     = var.alert_spend_usd_per_hour > 0
    error_message = "alert_spend_usd_per_hour must be positive."
  }
}

variable "alert_upstream_error_share" {
  description = "Alert when fallbacks plus retries exceed this share of upstream attempts (a provider failing or timing out). Needs prometheus_sidecar."
  type        = number
  default     = 0.1
  validation {
    condition     = var.alert_upstream_error_share > 0 && var.alert_upstream_error_share <= 1
    error_message = "alert_upstream_error_share must be a fraction in (0, 1]."
  }
}

variable "notification_channels" {
  description = "Existing Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) that every alert notifies."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", c))])
    error_message = "notification_channels entries must look like projects/PROJECT/notificationChannels/NUMBER."
  }
}

variable "notification_emails" {
  description = "E-mail addresses to create notification channels for (in addition to notification_channels)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for e in var.notification_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "notification_emails entries must be e-mail addresses."
  }
}

# --- CI/CD -----------------------------------------------------------------------------

variable "registry_readers" {
  description = "Members (e.g. the next environment's deployer, serviceAccount:...) that may read this environment's registry to promote images."
  type        = list(string)
  default     = []
}

# --- optional shared state (data_services.tf) ------------------------------------------

variable "data_backend" {
  description = "Where memory and checkpoints live: firestore (serverless, shared, no VPC; the default), none (embedded SQLite, per instance, lost on scale-in), redis (Memorystore) or postgres (Cloud SQL). docs/DEPLOY.md compares them."
  type        = string
  default     = "firestore"
  validation {
    condition     = contains(["none", "firestore", "redis", "postgres"], var.data_backend)
    error_message = "data_backend must be none, firestore, redis or postgres."
  }
}

variable "firestore_database" {
  description = "Firestore database id (Native mode) Orchestra uses; empty = orchestra-<env>. Terraform creates it."
  type        = string
  default     = ""
  validation {
    condition     = var.firestore_database == "" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database must be 4-63 lower-case letters, digits and hyphens, starting with a letter and ending with a letter or digit."
  }
}

variable "firestore_location" {
  description = "Firestore location (a region such as us-central1, or a multi-region such as nam5); empty = the service's region."
  type        = string
  default     = ""
}

variable "firestore_root" {
  description = "Top-level collection under which Orchestra keeps its documents (storage.firestore.root)."
  type        = string
  default     = "orchestra"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,100}$", var.firestore_root)) && !can(regex("^__.*__$", var.firestore_root))
    error_message = "firestore_root must be a collection id: letters, digits, _ and -, not __reserved__."
  }
}

variable "firestore_point_in_time_recovery" {
  description = "Keep 7 days of versions of the Firestore database (billed as storage)."
  type        = bool
  default     = false
}

variable "vpc_subnet_cidr" {
  description = "Subnet that Cloud Run's Direct VPC egress takes addresses from (at least /26)."
  type        = string
  default     = "10.8.0.0/24"
  validation {
    condition     = can(cidrhost(var.vpc_subnet_cidr, 0)) && tonumber(split("/", var.vpc_subnet_cidr)[1]) <= 26
    error_message = "vpc_subnet_cidr must be an IPv4 CIDR of /26 or larger."
  }
}

variable "redis_tier" {
  description = "Memorystore tier: BASIC (one node) or STANDARD_HA (replicated, failover)."
  type        = string
  default     = "BASIC"
  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_size_gb" {
  description = "Memorystore capacity in GB."
  type        = number
  default     = 1
}

variable "sql_tier" {
  description = "Cloud SQL machine tier for PostgreSQL."
  type        = string
  default     = "db-custom-1-3840"
}

variable "sql_high_availability" {
  description = "Cloud SQL regional (HA) instance instead of zonal."
  type        = bool
  default     = false
}

# --- GKE (deploy/kubernetes) -----------------------------------------------------------

variable "gke_namespace" {
  description = "Kubernetes namespace whose ServiceAccount `orchestra` may act as the runtime account through Workload Identity (deploy/kubernetes overlays use orchestra-<env>); empty = no binding. The cluster must be in this project."
  type        = string
  default     = ""
  validation {
    condition     = var.gke_namespace == "" || can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.gke_namespace))
    error_message = "gke_namespace must be empty or a Kubernetes namespace name."
  }
}

variable "labels" {
  description = "Extra labels on every resource that takes labels."
  type        = map(string)
  default     = {}
}
