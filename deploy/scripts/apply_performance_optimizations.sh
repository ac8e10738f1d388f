#!/usr/bin/env bash
# Deploys Orchestra to Cloud Run with its performance settings, one environment at a time.
#
#   apply_performance_optimizations.sh --project ID --region REGION --env dev|staging|prod \
#       --service-account NAME [--image REF] [--skip-build] [--github-repo OWNER/NAME] \
#       [--configure-github] [--state-bucket BUCKET] [--tuning baseline|tuned] \
#       [--timeout SECONDS] [--dry-run] [--help]
#
#   --project           GCP project of the environment
#   --region            Cloud Run region (us-central1, europe-west4, ...)
#   --env               dev, staging or prod: selects deploy/terraform/envs/<env>.tfvars
#   --service-account   account id (or full e-mail in --project) the service runs as;
#                       Terraform creates it with only the roles it needs
#   --image             image to deploy; default REGION-docker.pkg.dev/PROJECT/orchestra-ENV/
#                       orchestra:<git commit>
#   --skip-build        deploy --image as it is (CI builds and promotes images itself)
#   --github-repo       OWNER/NAME allowed to deploy through Workload Identity Federation;
#                       default $GITHUB_REPOSITORY
#   --configure-github  afterwards, store the GitHub environment variables deploy.yml reads
#                       (gh variable set; needs a gh login with admin on the repository)
#   --state-bucket      GCS bucket with the Terraform state; default PROJECT-orchestra-tfstate
#   --tuning            compiler tuning of the image build: baseline (default) or tuned
#   --timeout           seconds to wait for the new revision to be ready (default 300)
#   --dry-run           print every command and run none of them
#
# Steps, in this order (docs/DEPLOY.md): check the state bucket; terraform init; create the
# Artifact Registry repository and the secrets if the repository is missing (targeted
# apply); check that every secret has a value; build and push the image (docker buildx,
# linux/amd64); terraform apply with envs/<env>.tfvars; wait until the latest revision is
# the ready one; GET /readyz; optionally set the GitHub variables.
# Never prompts; every step is safe to repeat. Exit status: 0 deployed, 1 a step failed,
# 2 bad arguments, 3 a required tool is missing.
set -euo pipefail

prog=$(basename "$0")
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tf_dir="$repo_root/deploy/terraform"

usage() {
  sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

die() {
  echo "$prog: $*" >&2
  exit 1
}

bad_usage() {
  echo "$prog: $*" >&2
  echo "$prog: see --help" >&2
  exit 2
}

# --- arguments -------------------------------------------------------------------------

project=""
region=""
env=""
service_account=""
image=""
skip_build=false
github_repo="${GITHUB_REPOSITORY:-}"
configure_github=false
state_bucket=""
tuning=baseline
timeout=300
dry_run=false

while (($# > 0)); do
  arg=$1
  value=""
  case $arg in
    --*=*)
      value=${arg#*=}
      arg=${arg%%=*}
      ;;
  esac
  case $arg in
    --project | --region | --env | --service-account | --image | --github-repo | \
      --state-bucket | --tuning | --timeout)
      if [[ -z $value ]]; then
        (($# >= 2)) || bad_usage "$arg needs a value"
        value=$2
        shift
      fi
      case $arg in
        --project) project=$value ;;
        --region) region=$value ;;
        --env) env=$value ;;
        --service-account) service_account=$value ;;
        --image) image=$value ;;
        --github-repo) github_repo=$value ;;
        --state-bucket) state_bucket=$value ;;
        --tuning) tuning=$value ;;
        --timeout) timeout=$value ;;
      esac
      ;;
    --skip-build) skip_build=true ;;
    --configure-github) configure_github=true ;;
    --dry-run) dry_run=true ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) bad_usage "unknown argument '$1'" ;;
  esac
  shift
done

# --- validation: everything is checked before anything runs ----------------------------

[[ -n $project ]] || bad_usage "--project is required"
[[ -n $region ]] || bad_usage "--region is required"
[[ -n $env ]] || bad_usage "--env is required (dev, staging or prod)"
[[ -n $service_account ]] || bad_usage "--service-account is required"

[[ $project =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
  bad_usage "invalid --project '$project': a GCP project id is 6-30 lower-case letters, digits and hyphens, starting with a letter"
[[ $region =~ ^[a-z]+-[a-z]+[0-9]+$ ]] ||
  bad_usage "invalid --region '$region': expected a region such as us-central1"
case $env in
  dev | staging | prod) ;;
  *) bad_usage "invalid --env '$env': expected dev, staging or prod" ;;
esac

sa_id=$service_account
if [[ $service_account == *@* ]]; then
  sa_id=${service_account%%@*}
  [[ ${service_account#*@} == "$project.iam.gserviceaccount.com" ]] ||
    bad_usage "invalid --service-account '$service_account': an e-mail must end in @$project.iam.gserviceaccount.com"
fi
[[ $sa_id =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
  bad_usage "invalid --service-account '$service_account': an account id is 6-30 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen"

[[ -n $github_repo ]] || bad_usage "--github-repo is required (OWNER/NAME) unless GITHUB_REPOSITORY is set"
[[ $github_repo =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] ||
  bad_usage "invalid --github-repo '$github_repo': expected OWNER/NAME"

[[ -n $state_bucket ]] || state_bucket="$project-orchestra-tfstate"
[[ $state_bucket =~ ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ ]] ||
  bad_usage "invalid --state-bucket '$state_bucket'"

case $tuning in
  baseline | tuned) ;;
  *) bad_usage "invalid --tuning '$tuning': expected baseline or tuned" ;;
esac
[[ $timeout =~ ^[1-9][0-9]*$ ]] || bad_usage "invalid --timeout '$timeout': expected whole seconds"

image_re='^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$'
if [[ -n $image ]]; then
  [[ $image =~ $image_re ]] ||
    bad_usage "invalid --image '$image': expected REGISTRY/PATH:TAG or REGISTRY/PATH@sha256:DIGEST"
elif $skip_build; then
  bad_usage "--skip-build needs --image"
fi

tfvars="envs/$env.tfvars"
[[ -f $tf_dir/$tfvars ]] || die "missing $tf_dir/$tfvars"

# --- tools -----------------------------------------------------------------------------

tools=(gcloud terraform curl)
$skip_build || tools+=(docker)
$configure_github && tools+=(gh)
[[ -n $image ]] || tools+=(git)
missing=()
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]} > 0)); then
  echo "$prog: missing required tools: ${missing[*]}" >&2
  echo "$prog: install them (docs/DEPLOY.md, Prerequisites) and run again" >&2
  exit 3
fi

registry_host="$region-docker.pkg.dev"
repository="orchestra-$env"
commit=unknown
if [[ -z $image ]]; then
  commit=$(git -C "$repo_root" rev-parse --short=12 HEAD 2>/dev/null) ||
    die "cannot read the git commit for the default image tag; pass --image"
  image="$registry_host/$project/$repository/orchestra:$commit"
elif [[ $image == *:* && $image != *@sha256:* ]]; then
  commit=${image##*:}
fi

# First deployment: what must exist before an image can be pushed and a revision created.
bootstrap_targets=(
  -target=google_artifact_registry_repository.orchestra
  -target=google_secret_manager_secret.env
)

tf_vars=(
  -var-file="$tfvars"
  -var "project_id=$project"
  -var "region=$region"
  -var "image=$image"
  -var "runtime_service_account_id=$sa_id"
  -var "github_repository=$github_repo"
  -var "state_bucket=$state_bucket"
)

# --- running commands ------------------------------------------------------------------

step=""
# Commands are echoed on fd 3, the script's stdout, even from inside $(...).
exec 3>&1
show() {
  local prefix="+"
  if $dry_run; then prefix="[dry-run]"; fi
  {
    printf '%s' "$prefix"
    printf ' %q' "$@"
    printf '\n'
  } >&3
}

# A command that changes something (or reaches the network): shown, and run unless --dry-run.
run() {
  show "$@"
  $dry_run || "$@"
}

# A read-only query whose output the script needs: shown, and run unless --dry-run, where
# it prints PLACEHOLDER instead.
query() {
  local placeholder=$1
  shift
  show "$@"
  if $dry_run; then
    echo "$placeholder"
  else
    "$@"
  fi
}

begin() {
  step=$1
  echo
  echo "== $step"
}

on_exit() {
  local status=$?
  if ((status != 0)) && [[ -n $step ]]; then
    echo "$prog: step failed: $step (exit $status)" >&2
  fi
}
trap on_exit EXIT

echo "$prog: $env in $project ($region), image $image"
$dry_run && echo "$prog: dry run: commands are printed, none is run"

begin "Terraform state bucket gs://$state_bucket"
if ! query "gs://$state_bucket" gcloud storage buckets describe "gs://$state_bucket" \
  --project "$project" --format "value(name)" >/dev/null; then
  die "state bucket gs://$state_bucket is missing or unreadable; create it once with:
  gcloud storage buckets create gs://$state_bucket --project $project --location $region --uniform-bucket-level-access --public-access-prevention
  gcloud storage buckets update gs://$state_bucket --versioning"
fi

begin "terraform init"
run terraform -chdir="$tf_dir" init -input=false -reconfigure \
  -backend-config="bucket=$state_bucket" -backend-config="prefix=orchestra/$env"

begin "Artifact Registry repository $repository"
if $dry_run; then
  show gcloud artifacts repositories describe "$repository" --location "$region" --project "$project" --format "value(name)"
  echo "[dry-run] and, if it is missing:"
  show terraform -chdir="$tf_dir" apply -input=false -auto-approve "${bootstrap_targets[@]}" "${tf_vars[@]}"
elif query "" gcloud artifacts repositories describe "$repository" --location "$region" \
  --project "$project" --format "value(name)" >/dev/null 2>&1; then
  echo "exists"
else
  echo "missing: creating it and the secrets (with the APIs they need) before the first push"
  run terraform -chdir="$tf_dir" apply -input=false -auto-approve "${bootstrap_targets[@]}" "${tf_vars[@]}"
fi

# Cloud Run refuses a revision whose secret has no version: say which ones need a value
# before anything is built or applied.
begin "secret values"
secrets=$(query "orchestra-$env-api-key" gcloud secrets list --project "$project" \
  --filter "labels.app=orchestra AND labels.env=$env" --format "value(name.basename())")
empty=()
for secret in $secrets; do
  version=$(query "1" gcloud secrets versions list "$secret" --project "$project" \
    --filter "state:ENABLED" --limit 1 --format "value(name.basename())")
  [[ -n $version ]] || empty+=("$secret")
done
if ((${#empty[@]} > 0)); then
  for secret in "${empty[@]}"; do
    echo "$prog: secret $secret has no enabled version; add its value with:" >&2
    echo "  printf %s \"\$VALUE\" | gcloud secrets versions add $secret --project $project --data-file=-" >&2
  done
  die "add the secret values above, then run again"
fi
$dry_run || echo "every secret has a value"

if $skip_build; then
  begin "image build skipped (--skip-build): deploying $image"
else
  begin "build and push $image"
  run gcloud auth configure-docker "$registry_host" --quiet
  # Cloud Run runs linux/amd64 only; deploy.yml builds the multi-arch image for CI.
  run docker buildx build --file "$repo_root/deploy/Dockerfile" --platform linux/amd64 \
    --build-arg "ORCHESTRA_GIT_COMMIT=$commit" --build-arg "ORCHESTRA_TUNING=$tuning" \
    --tag "$image" --push "$repo_root"
fi

begin "terraform apply ($tfvars)"
run terraform -chdir="$tf_dir" apply -input=false -auto-approve "${tf_vars[@]}"

begin "wait for the new revision"
service=$(query "orchestra-$env" terraform -chdir="$tf_dir" output -raw service_name)
url=$(query "https://orchestra-$env-HASH.a.run.app" terraform -chdir="$tf_dir" output -raw service_url)
public=$(query "true" terraform -chdir="$tf_dir" output -raw invoker_public)
deadline=$((SECONDS + timeout))
while :; do
  revisions=$(query $'ready\tready' gcloud run services describe "$service" --region "$region" \
    --project "$project" --format "value(status.latestReadyRevisionName,status.latestCreatedRevisionName)")
  read -r ready created <<<"$revisions" || true
  if [[ -n ${ready:-} && ${ready:-} == "${created:-}" ]]; then
    $dry_run || echo "revision ${ready} is ready and serving"
    break
  fi
  ((SECONDS < deadline)) || die "revision ${created:-?} not ready after ${timeout}s (latest ready: ${ready:-none}); see: gcloud run revisions describe ${created:-REVISION} --region $region --project $project"
  sleep 5
done

begin "smoke test GET $url/readyz"
curl_args=(-fsS --max-time 10 --retry 6 --retry-delay 5 --retry-all-errors)
if [[ $public == true ]]; then
  run curl "${curl_args[@]}" "$url/readyz"
else
  # Cloud Run's IAM check in front: a Google identity token, never printed.
  show curl "${curl_args[@]}" -H "Authorization: Bearer <identity token>" "$url/readyz"
  if ! $dry_run; then
    token=$(gcloud auth print-identity-token)
    curl "${curl_args[@]}" -H "Authorization: Bearer $token" "$url/readyz"
  fi
fi
echo

if $configure_github; then
  begin "GitHub environment '$env' variables of $github_repo"
  wif_provider=$(query "projects/NUMBER/locations/global/workloadIdentityPools/orchestra-$env-gh/providers/github" \
    terraform -chdir="$tf_dir" output -raw workload_identity_provider)
  deployer=$(query "orchestra-$env-deploy@$project.iam.gserviceaccount.com" \
    terraform -chdir="$tf_dir" output -raw deployer_service_account_email)
  run gh variable set GCP_PROJECT --env "$env" --repo "$github_repo" --body "$project"
  run gh variable set GCP_REGION --env "$env" --repo "$github_repo" --body "$region"
  run gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER --env "$env" --repo "$github_repo" --body "$wif_provider"
  run gh variable set GCP_DEPLOYER_SERVICE_ACCOUNT --env "$env" --repo "$github_repo" --body "$deployer"
  run gh variable set ORCHESTRA_RUNTIME_SERVICE_ACCOUNT --env "$env" --repo "$github_repo" --body "$sa_id"
fi

step=""
echo
if $dry_run; then
  echo "$prog: dry run complete: nothing was run or changed"
else
  echo "$prog: $env deployed: $url"
fi
