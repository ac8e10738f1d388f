# dev: scale to zero, no keep-warm job. A native binary that is ready in milliseconds
# makes a cold start cost Cloud Run's own instance start and little else.
env = "dev"

cpu                  = "1"
memory               = "512Mi"
capacity_per_vcpu    = 80
min_instances        = 0
max_instances        = 2
cpu_always_allocated = false
keep_warm_schedule   = ""

prometheus_sidecar  = true
deletion_protection = false

# Memory and checkpoints in Firestore, shared by every instance and kept across scale-in.
data_backend                     = "firestore"
firestore_point_in_time_recovery = false

# Wire provider keys from Secret Manager (add a version to each secret first):
# provider_key_envs = ["OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY"]
provider_key_envs = []

alert_latency_p95_ms       = 10000
alert_cpu_utilization      = 0.9
alert_memory_utilization   = 0.9
alert_error_rate           = 0.2
alert_spend_usd_per_hour   = 5
alert_upstream_error_share = 0.3
alert_duration_seconds     = 600

# The staging deployer copies images it promotes from this registry:
# registry_readers = ["serviceAccount:orchestra-staging-deploy@STAGING_PROJECT.iam.gserviceaccount.com"]
