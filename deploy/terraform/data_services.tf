# Where memory and checkpoints live (var.data_backend); docs/DEPLOY.md compares the four.
#
#   firestore (default)  a Firestore database in Native mode in the service's region,
#             serverless: no VPC, nothing to size, nothing billed at rest but storage. The
#             server reaches its REST API with the instance's metadata-server token; the
#             runtime account holds roles/datastore.user on that database only.
#   none      each instance keeps its own embedded SQLite file, which Cloud Run drops when
#             the instance goes away, and which no other instance sees
#   redis     Memorystore for Redis, reached over Direct VPC egress (no connector)
#   postgres  Cloud SQL for PostgreSQL on a private IP, reached the same way
# The service gets ORCHESTRA_STORAGE_BACKEND and the backend's settings (the PostgreSQL URL
# carries a password, so it comes from Secret Manager).

locals {
  vpc_enabled = contains(["redis", "postgres"], var.data_backend)

  firestore          = var.data_backend == "firestore"
  firestore_database = var.firestore_database != "" ? var.firestore_database : local.name

  storage_env = merge(
    local.firestore ? tomap({
      ORCHESTRA_STORAGE_BACKEND            = "firestore"
      ORCHESTRA_STORAGE_FIRESTORE_PROJECT  = var.project_id
      ORCHESTRA_STORAGE_FIRESTORE_DATABASE = local.firestore_database
      ORCHESTRA_STORAGE_FIRESTORE_ROOT     = var.firestore_root
    }) : tomap({}),
    var.data_backend == "redis" ? tomap({
      ORCHESTRA_STORAGE_BACKEND = "redis"
      ORCHESTRA_STORAGE_URL     = "redis://${one(google_redis_instance.orchestra[*].host)}:${one(google_redis_instance.orchestra[*].port)}/0"
    }) : tomap({}),
    var.data_backend == "postgres" ? tomap({ ORCHESTRA_STORAGE_BACKEND = "postgres" }) : tomap({}),
  )
  storage_secret_env = var.data_backend == "postgres" ? tomap({
    ORCHESTRA_STORAGE_URL = one(google_secret_manager_secret.storage_url[*].secret_id)
  }) : tomap({})

  data_apis = {
    none      = []
    firestore = ["firestore.googleapis.com"]
    redis     = ["compute.googleapis.com", "redis.googleapis.com"]
    postgres  = ["compute.googleapis.com", "servicenetworking.googleapis.com", "sqladmin.googleapis.com"]
  }
}

resource "google_project_service" "data" {
  for_each = toset(local.data_apis[var.data_backend])

  service            = each.value
  disable_on_destroy = false
}

# --- Firestore -------------------------------------------------------------------------

resource "google_firestore_database" "orchestra" {
  count = local.firestore ? 1 : 0

  name        = local.firestore_database
  location_id = var.firestore_location != "" ? var.firestore_location : var.region
  type        = "FIRESTORE_NATIVE"
  # Optimistic: the server writes with preconditions (commit with updateTime / exists), so
  # no document locks are held between a read and a write.
  concurrency_mode                  = "OPTIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = var.firestore_point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # Where deletion protection is on, `terraform destroy` forgets the database and keeps its
  # data; elsewhere (dev, staging) it deletes it.
  deletion_policy = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.data]
}

# Memory entries with a TTL carry their expiry as a timestamp in `expire_at`, in documents
# of the collection group `kv`; Firestore's TTL policy deletes them some time (typically
# within a day) after it passes. The server already treats an expired entry as absent on
# read, so the policy only reclaims storage.
resource "google_firestore_field" "kv_ttl" {
  count = local.firestore ? 1 : 0

  database   = google_firestore_database.orchestra[0].name
  collection = "kv"
  field      = "expire_at"

  ttl_config {}
}

# The runtime account may read and write documents of this database and of no other
# (an IAM condition on the database's resource name).
resource "google_project_iam_member" "runtime_firestore" {
  count = local.firestore ? 1 : 0

  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.runtime.member

  condition {
    title       = "${local.name}-firestore-only"
    description = "Only the Firestore database ${local.firestore_database}."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${local.firestore_database}\""
  }

  depends_on = [google_firestore_database.orchestra]
}

# --- network: Direct VPC egress --------------------------------------------------------

resource "google_compute_network" "orchestra" {
  count = local.vpc_enabled ? 1 : 0

  name                    = local.name
  auto_create_subnetworks = false
  depends_on              = [google_project_service.data]
}

# Cloud Run instances take their private addresses from this subnet; it must be /26 or
# larger, and a /24 leaves room for max_instances plus a rollout's overlap.
resource "google_compute_subnetwork" "run" {
  count = local.vpc_enabled ? 1 : 0

  name                     = "${local.name}-run"
  region                   = var.region
  network                  = google_compute_network.orchestra[0].id
  ip_cidr_range            = var.vpc_subnet_cidr
  private_ip_google_access = true
}

# --- Redis -----------------------------------------------------------------------------

resource "google_redis_instance" "orchestra" {
  count = var.data_backend == "redis" ? 1 : 0

  name               = local.name
  region             = var.region
  tier               = var.redis_tier
  memory_size_gb     = var.redis_memory_size_gb
  redis_version      = "REDIS_7_0"
  authorized_network = google_compute_network.orchestra[0].id
  connect_mode       = "DIRECT_PEERING"
  # Reachable only from this VPC. AUTH and in-transit TLS stay off until the server's
  # Redis client takes a password and a CA (docs/DEPLOY.md).
  depends_on = [google_project_service.data]
}

# --- PostgreSQL ------------------------------------------------------------------------

resource "google_compute_global_address" "private_services" {
  count = var.data_backend == "postgres" ? 1 : 0

  name          = "${local.name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = google_compute_network.orchestra[0].id
}

resource "google_service_networking_connection" "private_services" {
  count = var.data_backend == "postgres" ? 1 : 0

  network                 = google_compute_network.orchestra[0].id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services[0].name]
}

resource "google_sql_database_instance" "orchestra" {
  count = var.data_backend == "postgres" ? 1 : 0

  name                = "${local.name}-pg"
  region              = var.region
  database_version    = "POSTGRES_16"
  deletion_protection = var.deletion_protection

  settings {
    edition           = "ENTERPRISE"
    tier              = var.sql_tier
    availability_type = var.sql_high_availability ? "REGIONAL" : "ZONAL"
    user_labels       = local.labels

    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.orchestra[0].id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "orchestra" {
  count = var.data_backend == "postgres" ? 1 : 0

  name     = "orchestra"
  instance = google_sql_database_instance.orchestra[0].name
}

resource "random_password" "sql" {
  count = var.data_backend == "postgres" ? 1 : 0

  length  = 32
  special = false
}

resource "google_sql_user" "orchestra" {
  count = var.data_backend == "postgres" ? 1 : 0

  name     = "orchestra"
  instance = google_sql_database_instance.orchestra[0].name
  password = random_password.sql[0].result
}

resource "google_secret_manager_secret" "storage_url" {
  count = var.data_backend == "postgres" ? 1 : 0

  secret_id = "${local.name}-storage-url"
  replication {
    auto {}
  }
  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "storage_url" {
  count = var.data_backend == "postgres" ? 1 : 0

  secret      = google_secret_manager_secret.storage_url[0].id
  secret_data = "postgresql://${google_sql_user.orchestra[0].name}:${random_password.sql[0].result}@${google_sql_database_instance.orchestra[0].private_ip_address}:5432/${google_sql_database.orchestra[0].name}?sslmode=require"
}

resource "google_secret_manager_secret_iam_member" "runtime_storage_url" {
  count = var.data_backend == "postgres" ? 1 : 0

  secret_id = google_secret_manager_secret.storage_url[0].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}
