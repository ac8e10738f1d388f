# Three identities, none with a key:
#   runtime   what the service runs as: its own secrets, metrics, logs, traces; nothing else
#   deployer  what GitHub Actions becomes through Workload Identity Federation
#   warmup    what Cloud Scheduler signs its OIDC token as; may invoke this service only
#
# The first apply is made by a person with Owner (docs/DEPLOY.md). The deployer can then
# change the service, the job, monitoring and the runtime account's three roles, but not
# its own roles, the federation or the secrets' IAM: those stay with people.

# --- runtime ---------------------------------------------------------------------------

resource "google_service_account" "runtime" {
  account_id   = local.runtime_account_id
  display_name = "Orchestra ${var.env} runtime"
  description  = "Identity of the Cloud Run service ${local.name}."
  depends_on   = [google_project_service.enabled]
}

locals {
  runtime_project_roles = concat(
    [
      "roles/monitoring.metricWriter",
      "roles/logging.logWriter",
      "roles/cloudtrace.agent",
    ],
    var.vertex_ai ? ["roles/aiplatform.user"] : [],
  )
}

resource "google_project_iam_member" "runtime" {
  for_each = toset(local.runtime_project_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.runtime.member
}

# secretAccessor is granted per secret in cloud_run.tf, never project-wide.

# --- keep-warm invoker -----------------------------------------------------------------

resource "google_service_account" "warmup" {
  account_id   = "${local.name}-warmup"
  display_name = "Orchestra ${var.env} keep-warm"
  description  = "Cloud Scheduler signs its OIDC token for POST /warmup as this account."
  depends_on   = [google_project_service.enabled]
}

# run.invoker on the service only: see google_cloud_run_v2_service_iam_member.warmup.

# --- deployer (GitHub Actions) ---------------------------------------------------------

resource "google_iam_workload_identity_pool" "github" {
  workload_identity_pool_id = "${local.name}-gh"
  display_name              = "GitHub Actions (${var.env})"
  description               = "GitHub Actions of ${var.github_repository} deploying Orchestra ${var.env}."
  depends_on                = [google_project_service.enabled]
}

resource "google_iam_workload_identity_pool_provider" "github" {
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  workload_identity_pool_provider_id = "github"
  display_name                       = "GitHub OIDC"

  attribute_mapping = {
    "google.subject"        = "assertion.sub"
    "attribute.repository"  = "assertion.repository"
    "attribute.environment" = "assertion.environment"
    "attribute.ref"         = "assertion.ref"
  }
  # Only this repository's jobs that run in this environment's GitHub environment (prod's
  # needs a reviewer's approval) can exchange their token. Pull requests never can.
  attribute_condition = "assertion.repository == '${var.github_repository}' && assertion.environment == '${var.env}'"

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

resource "google_service_account" "deployer" {
  account_id   = "${local.name}-deploy"
  display_name = "Orchestra ${var.env} deployer"
  description  = "GitHub Actions of ${var.github_repository} (environment ${var.env}) through Workload Identity Federation."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account_iam_member" "deployer_federation" {
  service_account_id = google_service_account.deployer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/attribute.repository/${var.github_repository}"
}

locals {
  deployer_project_roles = concat(
    [
      "roles/run.admin",
      "roles/cloudscheduler.admin",
      "roles/monitoring.editor",
      # Read-only on what people manage, so that plans refresh cleanly; securityReviewer
      # reads IAM policies (secrets, registry, accounts, bucket) and changes none.
      "roles/iam.securityReviewer",
      "roles/iam.serviceAccountViewer",
      "roles/iam.workloadIdentityPoolViewer",
      "roles/secretmanager.viewer",
      "roles/artifactregistry.reader",
      "roles/serviceusage.serviceUsageViewer",
    ],
    var.data_backend == "none" ? [] : [
      "roles/compute.networkAdmin",
      "roles/servicenetworking.networksAdmin",
      "roles/redis.admin",
      "roles/cloudsql.admin",
      "roles/secretmanager.admin",
    ],
  )
}

resource "google_project_iam_member" "deployer" {
  for_each = toset(local.deployer_project_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.deployer.member
}

# The deployer may grant and revoke the runtime account's project roles and nothing else
# (IAM delegated role grants): it cannot make itself or anyone an owner.
resource "google_project_iam_member" "deployer_grants_runtime_roles" {
  project = var.project_id
  role    = "roles/resourcemanager.projectIamAdmin"
  member  = google_service_account.deployer.member

  condition {
    title       = "only-runtime-roles"
    description = "Grant or revoke only the roles the Orchestra runtime account holds."
    expression  = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([${join(", ", [for r in local.runtime_project_roles : "'${r}'"])}])"
  }
}

# Deploying a revision or a scheduler job that runs as an account needs actAs on it.
resource "google_service_account_iam_member" "deployer_acts_as_runtime" {
  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer.member
}

resource "google_service_account_iam_member" "deployer_acts_as_warmup" {
  service_account_id = google_service_account.warmup.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer.member
}

resource "google_storage_bucket_iam_member" "deployer_state" {
  count = var.state_bucket != "" ? 1 : 0

  bucket = var.state_bucket
  role   = "roles/storage.objectAdmin"
  member = google_service_account.deployer.member
}
