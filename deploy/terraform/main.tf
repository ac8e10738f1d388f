# Orchestra on Cloud Run, one environment per state (envs/<env>.tfvars).
#   main.tf           provider, required APIs, names shared by the other files
#   iam.tf            runtime, deployer (GitHub Actions via Workload Identity Federation) and
#                     keep-warm service accounts
#   cloud_run.tf      registry, secrets, the service, its invokers, the keep-warm job
#   monitoring.tf     dashboard and alert policies
#   data_services.tf  optional Memorystore Redis or Cloud SQL PostgreSQL over Direct VPC egress
#   outputs.tf        what CI and people need afterwards

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
