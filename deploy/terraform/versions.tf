terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5, < 4.0"
    }
  }

  # One state per environment in a GCS bucket; the bucket and prefix are given at init:
  #   terraform init -backend-config=bucket=PROJECT-orchestra-tfstate -backend-config=prefix=orchestra/ENV
  # deploy/scripts/apply_performance_optimizations.sh does this.
  backend "gcs" {}
}
