# Three identities, none with a key:
#   runtime   what the service runs as: its own secrets, its Firestore database, metrics,
#             logs, traces; nothing else
#   deployer  what GitHub Actions becomes through Workload Identity Federation: rolls a new
#             image onto the existing service, nothing more
#   warmup    what Cloud Scheduler signs its OIDC token as; may invoke this service only
#
# What changes at every deploy (an image, hence a revision) is all the deployer can do:
# run.developer on this one service, actAs on the runtime account only, and writing to this
# environment's registry. Everything that changes rarely (data services, network,
# monitoring, IAM, secrets, the service's configuration) is applied by a person with their
# own credentials (apply_performance_optimizations.sh --infra; docs/DEPLOY.md, "Who may
# change what"). The deployer holds no project-level role at all.

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

# secretAccessor is granted per secret in cloud_run.tf, never project-wide; datastore.user
# on the Firestore database only, in data_services.tf.

# GKE (deploy/kubernetes): the pods' Kubernetes ServiceAccount `orchestra` in
# var.gke_namespace acts as this same account through Workload Identity.
resource "google_service_account_iam_member" "runtime_gke" {
  count = var.gke_namespace != "" ? 1 : 0

  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.gke_namespace}/orchestra]"
}

# --- keep-warm invoker -----------------------------------------------------------------

resource "google_service_account" "warmup" {
  account_id   = "${local.name}-warmup"
  display_name = "Orchestra ${var.env} keep-warm"
  description  = "Cloud Scheduler signs its OIDC token for POST /warmup as this account."
  depends_on   = [google_project_service.enabled]
}

# run.invoker on the service only: see google_cloud_run_v2_service_iam_member.warmup.

# --- deployer (GitHub Actions) ---------------------------------------------------------
# Only with var.github_repository; everything below is created by a person's --infra run.

resource "google_iam_workload_identity_pool" "github" {
  count = local.github ? 1 : 0

  workload_identity_pool_id = "${local.name}-gh"
  display_name              = "GitHub Actions (${var.env})"
  description               = "GitHub Actions of ${var.github_repository} deploying Orchestra ${var.env}."
  depends_on                = [google_project_service.enabled]
}

resource "google_iam_workload_identity_pool_provider" "github" {
  count = local.github ? 1 : 0

  workload_identity_pool_id          = google_iam_workload_identity_pool.github[0].workload_identity_pool_id
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
  count = local.github ? 1 : 0

  account_id   = "${local.name}-deploy"
  display_name = "Orchestra ${var.env} deployer"
  description  = "GitHub Actions of ${var.github_repository} (environment ${var.env}) through Workload Identity Federation: pushes images, rolls them onto ${local.name}."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account_iam_member" "deployer_federation" {
  count = local.github ? 1 : 0

  service_account_id = google_service_account.deployer[0].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github[0].name}/attribute.repository/${var.github_repository}"
}

# A new revision runs as the runtime account, so deploying one needs actAs on it; on no
# other account (the keep-warm job and its account are infrastructure).
resource "google_service_account_iam_member" "deployer_acts_as_runtime" {
  count = local.github ? 1 : 0

  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer[0].member
}

# run.developer on this service only (cloud_run.tf): update it with a new image, read its
# status, call it for the smoke test. Artifact Registry writer on this environment's
# repository only (cloud_run.tf).
