# prod: one instance always up (no keep-warm job needed), CPU allocated between requests
# for background work and the metrics sidecar, deletion protection on.
env = "prod"

cpu                  = "2"
memory               = "1Gi"
capacity_per_vcpu    = 250
min_instances        = 1
max_instances        = 20
cpu_always_allocated = true
keep_warm_schedule   = ""

prometheus_sidecar  = true
deletion_protection = true

# Memory and checkpoints in Firestore, shared by every instance and kept across scale-in.
data_backend                     = "firestore"
firestore_point_in_time_recovery = true

provider_key_envs = ["OPENAI_API_KEY"]

alert_latency_p95_ms       = 3000
alert_cpu_utilization      = 0.8
alert_memory_utilization   = 0.8
alert_error_rate           = 0.05
alert_spend_usd_per_hour   = 50
alert_upstream_error_share = 0.1
alert_duration_seconds     = 300

# notification_emails   = ["oncall@example.com"]
# notification_channels = ["projects/PROD_PROJECT/notificationChannels/1234567890"]
