# The registry, the secrets, the Cloud Run service and the keep-warm job.
# docs/DEPLOY.md says why each setting is what it is.

# --- registry --------------------------------------------------------------------------

resource "google_artifact_registry_repository" "orchestra" {
  repository_id = local.name
  location      = var.region
  format        = "DOCKER"
  description   = "Orchestra images for ${var.env} (multi-arch; Cloud Run pulls linux/amd64)."
  depends_on    = [google_project_service.enabled]
}

# CI pushes the images it builds (or promotes) here, and nowhere else.
resource "google_artifact_registry_repository_iam_member" "deployer_writer" {
  count = local.github ? 1 : 0

  location   = google_artifact_registry_repository.orchestra.location
  repository = google_artifact_registry_repository.orchestra.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.deployer[0].member
}

# The next environment's deployer copies the image it promotes from here.
resource "google_artifact_registry_repository_iam_member" "readers" {
  for_each = toset(var.registry_readers)

  location   = google_artifact_registry_repository.orchestra.location
  repository = google_artifact_registry_repository.orchestra.name
  role       = "roles/artifactregistry.reader"
  member     = each.value
}

# --- secrets ---------------------------------------------------------------------------
# Terraform makes the secret containers and their IAM; people add the values, so no key
# ever passes through Terraform state:
#   printf %s "$KEY" | gcloud secrets versions add orchestra-dev-api-key --data-file=-

locals {
  secret_envs = concat(["ORCHESTRA_API_KEY"], var.provider_key_envs)
  # ORCHESTRA_API_KEY -> orchestra-dev-api-key, OPENAI_API_KEY -> orchestra-dev-openai-api-key
  secret_ids = { for e in local.secret_envs : e => "${local.name}-${lower(replace(trimprefix(e, "ORCHESTRA_"), "_", "-"))}" }
}

resource "google_secret_manager_secret" "env" {
  for_each = local.secret_ids

  secret_id = each.value
  replication {
    auto {}
  }
  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "runtime_env" {
  for_each = local.secret_ids

  secret_id = google_secret_manager_secret.env[each.key].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}

# The sidecar's scrape configuration (RunMonitoring). Not secret, but Secret Manager is how
# Cloud Run mounts a file into a container.
resource "google_secret_manager_secret" "run_gmp_config" {
  count = var.prometheus_sidecar ? 1 : 0

  secret_id = "${local.name}-run-gmp-config"
  replication {
    auto {}
  }
  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "run_gmp_config" {
  count = var.prometheus_sidecar ? 1 : 0

  secret = google_secret_manager_secret.run_gmp_config[0].id
  secret_data = yamlencode({
    apiVersion = "monitoring.googleapis.com/v1beta"
    kind       = "RunMonitoring"
    metadata   = { name = "orchestra" }
    spec = {
      endpoints = [{ port = tostring(var.metrics_port), path = "/metrics", interval = "30s" }]
    }
  })
}

resource "google_secret_manager_secret_iam_member" "run_gmp_config" {
  count = var.prometheus_sidecar ? 1 : 0

  secret_id = google_secret_manager_secret.run_gmp_config[0].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}

# --- the service -----------------------------------------------------------------------

locals {
  # OpenTelemetry's standard variables (the server reads them; docs/OPERATIONS.md). Google's
  # OTLP endpoint authenticates with the instance's metadata-server token and files spans
  # under the project named by the gcp.project_id resource attribute.
  tracing_env = var.otlp_endpoint == "" ? tomap({}) : tomap({
    OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint
    OTEL_TRACES_SAMPLER         = var.trace_sampler
    OTEL_TRACES_SAMPLER_ARG     = tostring(var.trace_sampling_ratio)
    OTEL_SERVICE_NAME           = local.name
    OTEL_RESOURCE_ATTRIBUTES    = "gcp.project_id=${var.project_id},deployment.environment.name=${var.env}"
  })

  plain_env = merge(
    {
      # Cloud Run never sends an instance more than local.concurrency requests at once; the
      # server sheds beyond max_inflight, so the two are the same number (main.tf).
      ORCHESTRA_SERVER_MAX_INFLIGHT      = tostring(local.concurrency)
      ORCHESTRA_OBSERVABILITY_LOG_FORMAT = "json"
      # Lets log lines carry logging.googleapis.com/trace, which Cloud Logging links to the
      # request's trace (Cloud Run does not set it in the container).
      GOOGLE_CLOUD_PROJECT = var.project_id
    },
    var.prometheus_sidecar ? {
      # A second listener on loopback that serves /metrics without an API key: only the
      # sidecar in the same instance can reach it.
      ORCHESTRA_OBSERVABILITY_METRICS_LISTEN = "127.0.0.1:${var.metrics_port}"
    } : {},
    local.storage_env,
    local.tracing_env,
  )
  secret_env = merge(
    { for e, id in local.secret_ids : e => google_secret_manager_secret.env[e].secret_id },
    local.storage_secret_env,
  )
}

resource "google_cloud_run_v2_service" "orchestra" {
  name                = local.name
  location            = var.region
  description         = "Orchestra AI orchestration server (${var.env})."
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account = google_service_account.runtime.email
    # gen2: full Linux compatibility and faster CPU and network than gen1. Its sandbox boots
    # more slowly than gen1's; a binary that is ready in milliseconds keeps that cost small.
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    max_instance_request_concurrency = local.concurrency
    # Streams: the whole response must finish within this.
    timeout = "${var.request_timeout_seconds}s"

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    dynamic "vpc_access" {
      for_each = local.vpc_enabled ? [1] : []
      content {
        network_interfaces {
          network    = one(google_compute_network.orchestra[*].id)
          subnetwork = one(google_compute_subnetwork.run[*].id)
        }
        egress = "PRIVATE_RANGES_ONLY"
      }
    }

    containers {
      name  = "orchestra"
      image = var.image

      ports {
        name           = "http1"
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = !var.cpu_always_allocated
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.plain_env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      # /startupz answers 200 once initialisation is done (milliseconds). Probing every
      # second lets the instance take traffic on the first tick instead of after a default
      # 10 s period; 30 failures leave room for a slow Redis or PostgreSQL connect.
      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 1
        timeout_seconds       = 1
        failure_threshold     = 30
        http_get {
          path = "/startupz"
        }
      }

      # /healthz fails only when an event loop has stopped turning; three misses restart it.
      liveness_probe {
        initial_delay_seconds = 0
        period_seconds        = 10
        timeout_seconds       = 2
        failure_threshold     = 3
        http_get {
          path = "/healthz"
        }
      }
    }

    dynamic "containers" {
      for_each = var.prometheus_sidecar ? [1] : []
      content {
        name       = "prometheus"
        image      = var.prometheus_sidecar_image
        depends_on = ["orchestra"]
        resources {
          limits = {
            cpu    = "1"
            memory = "256Mi"
          }
          cpu_idle = !var.cpu_always_allocated
        }
        volume_mounts {
          name       = "run-gmp-config"
          mount_path = "/etc/rungmp"
        }
      }
    }

    dynamic "volumes" {
      for_each = var.prometheus_sidecar ? [1] : []
      content {
        name = "run-gmp-config"
        secret {
          secret = one(google_secret_manager_secret.run_gmp_config[*].secret_id)
          items {
            version = "latest"
            path    = "config.yaml"
          }
        }
      }
    }
  }

  traffic {
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }

  lifecycle {
    precondition {
      condition     = var.min_instances <= var.max_instances
      error_message = "min_instances must not exceed max_instances."
    }
    # The image is rolled by `gcloud run services update --image` at every deploy (CI's
    # deployer has no Terraform state access); Terraform sets it only when it creates the
    # service. gcloud also stamps its name and version and a template annotation. The
    # revision name gcloud sets is deliberately not ignored: ignoring it would make the next
    # template change reuse an existing revision name (409); instead a person's --infra apply
    # after a CI deploy creates one extra revision with the same image.
    ignore_changes = [
      client,
      client_version,
      template[0].annotations,
      template[0].containers[0].image,
    ]
  }

  depends_on = [
    google_project_service.enabled,
    google_secret_manager_secret_iam_member.runtime_env,
    google_secret_manager_secret_iam_member.run_gmp_config,
    google_secret_manager_secret_version.run_gmp_config,
    google_secret_manager_secret_version.storage_url,
    google_secret_manager_secret_iam_member.runtime_storage_url,
    google_project_iam_member.runtime,
    google_project_iam_member.runtime_firestore,
  ]
}

# The deployer rolls images onto this service and nothing else: update it, read its status,
# invoke it for the smoke test. No setIamPolicy (that is run.admin).
resource "google_cloud_run_v2_service_iam_member" "deployer" {
  count = local.github ? 1 : 0

  location = google_cloud_run_v2_service.orchestra.location
  name     = google_cloud_run_v2_service.orchestra.name
  role     = "roles/run.developer"
  member   = google_service_account.deployer[0].member
}

# Orchestra authenticates callers itself (API keys); Cloud Run's IAM check in front of it
# would make every client send a Google identity token as well.
resource "google_cloud_run_v2_service_iam_member" "public" {
  count = var.allow_unauthenticated ? 1 : 0

  location = google_cloud_run_v2_service.orchestra.location
  name     = google_cloud_run_v2_service.orchestra.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- keep-warm -------------------------------------------------------------------------
# Only where min_instances is 0 and a schedule is set (staging): POST /warmup brings an
# instance up if none is, and opens its upstream TLS connections, so the next real request
# finds a warm pool. With min_instances > 0 the instances are already there.

resource "google_cloud_run_v2_service_iam_member" "warmup" {
  count = local.keep_warm ? 1 : 0

  location = google_cloud_run_v2_service.orchestra.location
  name     = google_cloud_run_v2_service.orchestra.name
  role     = "roles/run.invoker"
  member   = google_service_account.warmup.member
}

resource "google_cloud_scheduler_job" "keep_warm" {
  count = local.keep_warm ? 1 : 0

  name             = "${local.name}-keep-warm"
  region           = var.region
  description      = "POST /warmup on ${local.name} so that an instance with open upstream connections is ready."
  schedule         = var.keep_warm_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "30s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.orchestra.uri}/warmup"
    oidc_token {
      service_account_email = google_service_account.warmup.email
      audience              = google_cloud_run_v2_service.orchestra.uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.warmup]
}
