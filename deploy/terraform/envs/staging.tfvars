# staging: production's shape at a smaller size; scales to zero, and a keep-warm job on
# working hours keeps an instance with open upstream connections for test runs.
env = "staging"

cpu                  = "1"
memory               = "512Mi"
capacity_per_vcpu    = 250
min_instances        = 0
max_instances        = 5
cpu_always_allocated = false
keep_warm_schedule   = "*/10 7-19 * * 1-5"

prometheus_sidecar  = true
deletion_protection = false

# Memory and checkpoints in Firestore, shared by every instance and kept across scale-in.
data_backend                     = "firestore"
firestore_point_in_time_recovery = false

provider_key_envs = ["OPENAI_API_KEY"]

alert_latency_p95_ms       = 5000
alert_cpu_utilization      = 0.8
alert_memory_utilization   = 0.8
alert_error_rate           = 0.1
alert_spend_usd_per_hour   = 10
alert_upstream_error_share = 0.2
alert_duration_seconds     = 300

# registry_readers = ["serviceAccount:orchestra-prod-deploy@PROD_PROJECT.iam.gserviceaccount.com"]
