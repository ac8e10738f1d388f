output "service_name" {
  description = "Cloud Run service name."
  value       = google_cloud_run_v2_service.orchestra.name
}

output "service_url" {
  description = "HTTPS URL of the service."
  value       = google_cloud_run_v2_service.orchestra.uri
}

output "invoker_public" {
  description = "Whether anyone may reach the URL (Orchestra's API keys still apply); false = callers need a Google identity token."
  value       = var.allow_unauthenticated
}

output "runtime_service_account_email" {
  description = "Identity the service runs as."
  value       = google_service_account.runtime.email
}

output "deployer_service_account_email" {
  description = "Account GitHub Actions impersonates (the service_account input of google-github-actions/auth); null without github_repository."
  value       = one(google_service_account.deployer[*].email)
}

output "warmup_service_account_email" {
  description = "Account Cloud Scheduler signs its keep-warm OIDC token as."
  value       = google_service_account.warmup.email
}

output "workload_identity_provider" {
  description = "Full provider name (the workload_identity_provider input of google-github-actions/auth); null without github_repository."
  value       = one(google_iam_workload_identity_pool_provider.github[*].name)
}

output "github_repository" {
  description = "OWNER/NAME whose Actions may deploy; the deploy script reuses it when it cannot tell the repository itself, so that an --infra run never drops the federation by accident."
  value       = var.github_repository
}

output "concurrency" {
  description = "Requests one instance receives at once, and the server's max_inflight (capacity_per_vcpu x cpu unless overridden)."
  value       = local.concurrency
}

output "firestore_database" {
  description = "Firestore database the service uses, or null with another data backend."
  value       = one(google_firestore_database.orchestra[*].name)
}

output "artifact_registry_repository" {
  description = "Docker repository for Orchestra images."
  value       = "${google_artifact_registry_repository.orchestra.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.orchestra.repository_id}"
}

output "dashboard_id" {
  description = "Cloud Monitoring dashboard id."
  value       = google_monitoring_dashboard.orchestra.id
}

output "keep_warm_job" {
  description = "Cloud Scheduler job that POSTs /warmup, or null where none runs."
  value       = one(google_cloud_scheduler_job.keep_warm[*].name)
}

output "secret_ids" {
  description = "Secret Manager secrets the service reads, by environment variable; each needs a version before the first deploy."
  value       = { for e, s in google_secret_manager_secret.env : e => s.secret_id }
}
