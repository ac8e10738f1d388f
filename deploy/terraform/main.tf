# Orchestra on Cloud Run, one environment per state (envs/<env>.tfvars).
#   main.tf           provider, required APIs, names shared by the other files
#   iam.tf            runtime, deployer (GitHub Actions via Workload Identity Federation) and
#                     keep-warm service accounts; the GKE Workload Identity binding
#   cloud_run.tf      registry, secrets, the service, its invokers, the keep-warm job
#   monitoring.tf     dashboard and alert policies
#   data_services.tf  the data backend: Firestore (default), or Memorystore Redis or Cloud SQL
#                     PostgreSQL over Direct VPC egress
#   outputs.tf        what CI and people need afterwards
#
# People apply all of it with their own credentials (apply_performance_optimizations.sh
# --infra); CI's deployer account can only roll a new image onto the existing service.

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = local.labels
}

locals {
  name = "orchestra-${var.env}"

  labels = merge(var.labels, {
    app = "orchestra"
    env = var.env
  })

  runtime_account_id = var.runtime_service_account_id != "" ? var.runtime_service_account_id : "${local.name}-run"

  # The keep-warm job only makes sense while the service may scale to zero.
  keep_warm = var.keep_warm_schedule != "" && var.min_instances == 0

  # Cloud Run sends an instance at most this many requests at once, and the server sheds
  # beyond the same number (ORCHESTRA_SERVER_MAX_INFLIGHT): a measured capacity per vCPU
  # times the vCPUs, so that Cloud Run's concurrency signal is the load signal.
  concurrency = var.concurrency != null ? var.concurrency : min(1000, var.capacity_per_vcpu * tonumber(var.cpu))

  # GitHub Actions deploys through Workload Identity Federation only when a repository is
  # known; without one there is no pool, no provider and no deployer account.
  github = var.github_repository != ""

  required_apis = [
    "run.googleapis.com",
    "artifactregistry.googleapis.com",
    "secretmanager.googleapis.com",
    "monitoring.googleapis.com",
    "logging.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iamcredentials.googleapis.com",
    "sts.googleapis.com",
    "iam.googleapis.com",
    "cloudtrace.googleapis.com",
    # Google's OTLP endpoint (https://telemetry.googleapis.com) the server exports spans to;
    # it stores them in Cloud Trace, which must be enabled too.
    "telemetry.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "serviceusage.googleapis.com",
  ]
}

resource "google_project_service" "enabled" {
  for_each = toset(local.required_apis)

  service = each.value
  # Turning an API off on destroy would break anything else in the project that uses it.
  disable_on_destroy         = false
  disable_dependent_services = false
}
