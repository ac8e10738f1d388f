#!/usr/bin/env bash
# Deploys Orchestra to Cloud Run with its performance settings, one environment at a time.
#
#   ./apply_performance_optimizations.sh
#   ./apply_performance_optimizations.sh --project your-project-id --region us-central1 --env prod
#   ./apply_performance_optimizations.sh --dry-run
#
# The first deploys the current commit to dev in gcloud's project and region; the second,
# prod in the project and region given; the third shows what would happen and changes
# nothing.
#
# Options (every one has a default):
#   --project ID        GCP project; default: gcloud config get-value project
#   --region REGION     Cloud Run region; default: gcloud config get-value run/region, else
#                       us-central1
#   --env ENV           dev, staging or prod: selects deploy/terraform/envs/ENV.tfvars;
#                       default dev
#   --infra             also apply deploy/terraform (data services, network, monitoring, IAM,
#                       secrets, the service's settings): what changes rarely, applied by a
#                       person with their own credentials. Without it the script only builds
#                       the image and rolls it onto the existing service, which is all CI's
#                       deployer account may do. A first deployment (no service yet) does
#                       --infra by itself.
#   --service-account NAME  account id (or e-mail in --project) the service runs as;
#                       default orchestra-ENV-run (used with --infra)
#   --github-repo OWNER/NAME  repository whose GitHub Actions may deploy through Workload
#                       Identity Federation; default $GITHUB_REPOSITORY, else the origin
#                       remote if it is on GitHub, else what the Terraform state has; with
#                       none of them that part is skipped and everything else deploys
#   --image REF         image to deploy; default REGION-docker.pkg.dev/PROJECT/orchestra-ENV/
#                       orchestra:<git commit>
#   --skip-build        deploy --image as it is (CI builds and promotes images itself)
#   --configure-github  with --infra, store the GitHub environment variables deploy.yml reads
#                       (gh variable set; needs a gh login with admin on the repository)
#   --state-bucket BUCKET  GCS bucket of the Terraform state; default PROJECT-orchestra-tfstate
#   --tuning baseline|tuned  compiler tuning of the image build (default baseline)
#   --timeout SECONDS   how long to wait for the new revision (default 300)
#   --dry-run           run the read-only steps for real where gcloud, a login and terraform
#                       are there (describe calls, terraform plan with the same variables)
#                       and print every command that would change something without running
#                       it; what it cannot check without them it says, and still prints the
#                       whole plan
#
# Steps (docs/DEPLOY.md): check the login and the service; with --infra: the state bucket,
# terraform init, the registry and secret containers if missing (targeted apply), a value in
# every secret the tfvars need, then build and push the image (docker buildx, linux/amd64),
# terraform apply; then roll the image onto the service (gcloud run services update), wait
# until the latest revision is the ready one, GET /readyz; with --configure-github, set the
# GitHub variables. Never prompts; every step is safe to repeat. Exit status: 0 deployed (or
# dry run printed), 1 a step failed (its cause on stderr), 2 bad arguments, 3 a required
# tool is missing.
set -euo pipefail
# Written for bash 3.2 too (macOS's /bin/bash): no ${x,,}, no mapfile, empty arrays guarded.

prog=${0##*/}
src=${BASH_SOURCE[0]}
[[ $src == */* ]] || src=./$src
repo_root=$(cd "${src%/*}/../.." && pwd)
tf_dir="$repo_root/deploy/terraform"

usage() {
  sed -n '2,/^set -euo pipefail$/p' "$src" | sed '$d' | sed 's/^# \{0,1\}//'
}

bad_usage() {
  echo "$prog: $*" >&2
  echo "$prog: see --help" >&2
  exit 2
}

# --- arguments -------------------------------------------------------------------------

project=""
region=""
env=dev
infra=false
service_account=""
image=""
skip_build=false
github_repo=""
configure_github=false
state_bucket=""
tuning=baseline
timeout=300
dry_run=false

while (($# > 0)); do
  arg=$1
  value=""
  has_value=false
  case $arg in
    --*=*)
      value=${arg#*=}
      arg=${arg%%=*}
      has_value=true
      ;;
  esac
  case $arg in
    --project | --region | --env | --service-account | --image | --github-repo | \
      --state-bucket | --tuning | --timeout)
      if ! $has_value; then
        (($# >= 2)) || bad_usage "$arg needs a value"
        value=$2
        shift
      fi
      [[ -n $value ]] || bad_usage "$arg needs a value"
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
    --infra) infra=true ;;
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

# --- what can be checked before any tool runs ------------------------------------------

case $env in
  dev | staging | prod) ;;
  *) bad_usage "invalid --env '$env': expected dev, staging or prod" ;;
esac
case $tuning in
  baseline | tuned) ;;
  *) bad_usage "invalid --tuning '$tuning': expected baseline or tuned" ;;
esac
[[ $timeout =~ ^[1-9][0-9]*$ ]] || bad_usage "invalid --timeout '$timeout': expected whole seconds"

project_re='^[a-z][a-z0-9-]{4,28}[a-z0-9]$'
region_re='^[a-z]+-[a-z]+[0-9]+$'
repo_re='^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$'
image_re='^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$'

[[ -z $project || $project =~ $project_re ]] ||
  bad_usage "invalid --project '$project': a GCP project id is 6-30 lower-case letters, digits and hyphens, starting with a letter"
[[ -z $region || $region =~ $region_re ]] ||
  bad_usage "invalid --region '$region': expected a region such as us-central1"
[[ -z $github_repo || $github_repo =~ $repo_re ]] ||
  bad_usage "invalid --github-repo '$github_repo': expected OWNER/NAME"
if [[ -n $image ]]; then
  [[ $image =~ $image_re ]] ||
    bad_usage "invalid --image '$image': expected REGISTRY/PATH:TAG or REGISTRY/PATH@sha256:DIGEST"
elif $skip_build; then
  bad_usage "--skip-build needs --image"
fi
if [[ -n $state_bucket && ! $state_bucket =~ ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ ]]; then
  bad_usage "invalid --state-bucket '$state_bucket'"
fi
if $configure_github && ! $infra; then
  bad_usage "--configure-github needs --infra (it reads the Terraform outputs a person's run creates)"
fi

[[ -n $service_account ]] || service_account="orchestra-$env-run"
sa_id=$service_account
if [[ $service_account == *@* ]]; then
  sa_id=${service_account%%@*}
  if [[ -n $project && ${service_account#*@} != "$project.iam.gserviceaccount.com" ]]; then
    bad_usage "invalid --service-account '$service_account': an e-mail must end in @$project.iam.gserviceaccount.com"
  fi
fi
[[ $sa_id =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
  bad_usage "invalid --service-account '$service_account': an account id is 6-30 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen"

image_given=false
[[ -z $image ]] || image_given=true

tfvars="envs/$env.tfvars"
[[ -f $tf_dir/$tfvars ]] || {
  echo "$prog: missing $tf_dir/$tfvars" >&2
  exit 1
}

# Secrets the service reads (cloud_run.tf): the API key, and one per provider key the tfvars
# wire (provider_key_envs), named orchestra-ENV-<variable, lower-case, _ as ->.
provider_keys=$(sed 's/#.*//' "$tf_dir/$tfvars" | tr '\n' ' ' |
  grep -o 'provider_key_envs *= *\[[^]]*\]' | grep -o '"[^"]*"' | tr -d '"' || true)
secrets=("orchestra-$env-api-key")
for key in $provider_keys; do
  case $key in
    OPENAI_API_KEY | GEMINI_API_KEY | ANTHROPIC_API_KEY) ;;
    *)
      echo "$prog: $tfvars: provider_key_envs has '$key'; expected OPENAI_API_KEY, GEMINI_API_KEY or ANTHROPIC_API_KEY" >&2
      exit 1
      ;;
  esac
  lower=$(tr 'A-Z_' 'a-z-' <<<"$key")
  secrets+=("orchestra-$env-$lower")
done

# --- output, and the commands that are run, printed, or neither -------------------------

tmp=$(mktemp -d)
step=""
problems=()  # dry run: what a real run would stop at
unchecked=() # dry run: what could not be checked, and why

on_exit() {
  local status=$?
  rm -rf "$tmp"
  if ((status != 0)) && [[ -n $step ]]; then
    echo "$prog: step failed: $step (exit $status)" >&2
  fi
}
trap on_exit EXIT

# Commands are echoed on fd 3, the script's stdout, even from inside $(...).
exec 3>&1
show() {
  local prefix=$1
  shift
  {
    printf '%s' "$prefix"
    printf ' %q' "$@"
    printf '\n'
  } >&3
}

# A step that failed: a real run stops with the cause; a dry run notes it and goes on.
fail() {
  if $dry_run; then
    problems+=("$step: $1")
    printf '%s: a real run would stop here: %s\n' "$prog" "$1" >&2
  else
    printf '%s: %s\n' "$prog" "$1" >&2
    exit 1
  fi
}

begin() {
  step=$1
  echo >&3
  echo "== $step" >&3
}

# A command that changes something: run, or with --dry-run only printed.
run() {
  if $dry_run; then
    show "[dry-run]" "$@"
  else
    show "+" "$@"
    "$@"
  fi
}

# A read-only command whose output the script needs, run for real (dry run too) when
# $can_query; fills $out and $err, returns its status. Without $can_query: printed as not
# checked, returns 2.
out=""
err=""
query() {
  out=""
  err=""
  if ! $can_query; then
    show "[not checked]" "$@"
    return 2
  fi
  show "+" "$@"
  local status=0
  out=$("$@" 2>"$tmp/err") || status=$?
  err=$(<"$tmp/err")
  [[ -z $err ]] || printf '%s\n' "$err" | sed 's/^/  | /' >&2
  return "$status"
}

# What a failed gcloud call said, as one of: denied, missing, auth, other.
classify() {
  local e
  e=$(tr '[:upper:]' '[:lower:]' <<<"$1")
  case $e in
    *"reauthentication"* | *"refresh"*"token"* | *"gcloud auth login"* | *"not logged in"* | \
      *"no credentialed accounts"* | *"401"*) echo auth ;;
    *"permission"* | *"403"* | *"forbidden"* | *"does not have"*) echo denied ;;
    *"not found"* | *"404"* | *"cannot find"* | *"could not be found"* | *"does not exist"*) echo missing ;;
    *) echo other ;;
  esac
}

first_line() { printf '%s\n' "$1" | sed -n '/[^[:space:]]/{p;q;}'; }

# --- tools and login --------------------------------------------------------------------

has() { command -v "$1" >/dev/null 2>&1; }

# Infra mode may also be entered later, on a first deployment: its tools are checked then.
needed_tools() {
  local t=(gcloud curl)
  $infra && t+=(terraform)
  $skip_build || t+=(docker)
  $configure_github && t+=(gh)
  $image_given || t+=(git)
  printf '%s\n' "${t[@]}"
}
check_tools() {
  local missing=() tool
  for tool in $(needed_tools); do has "$tool" || missing+=("$tool"); done
  ((${#missing[@]} == 0)) && return 0
  if $dry_run; then
    unchecked+=("missing tools: ${missing[*]} (docs/DEPLOY.md, Prerequisites)")
    return 0
  fi
  echo "$prog: missing required tools: ${missing[*]}" >&2
  echo "$prog: install them (docs/DEPLOY.md, Prerequisites) and run again" >&2
  exit 3
}
# A real run checks before it runs anything; a dry run notes what is missing once it knows
# the mode (below).
$dry_run || check_tools

account=""
can_query=false
if has gcloud; then
  account=$(gcloud auth list --filter=status:ACTIVE --format="value(account)" 2>/dev/null | sed -n 1p || true)
  if [[ -z $account ]]; then
    $dry_run || {
      echo "$prog: not logged in: run gcloud auth login (no active gcloud account)" >&2
      exit 1
    }
    unchecked+=("not logged in: run gcloud auth login; nothing in the project was read")
  fi
fi

# --- defaults that come from gcloud, git and the environment ----------------------------

if [[ -z $project ]] && has gcloud; then
  project=$(gcloud config get-value project 2>/dev/null || true)
  if [[ -n $project && ! $project =~ $project_re ]]; then
    bad_usage "gcloud's project '$project' is not a valid project id; pass --project"
  fi
fi
if [[ -z $project ]]; then
  if ! $dry_run; then
    bad_usage "no project: pass --project ID or set one with: gcloud config set project ID"
  fi
  unchecked+=("no project: pass --project ID or run gcloud config set project ID; PROJECT_ID stands for it above")
  project=PROJECT_ID
fi
if [[ $service_account == *@* && ${service_account#*@} != "$project.iam.gserviceaccount.com" ]]; then
  bad_usage "invalid --service-account '$service_account': an e-mail must end in @$project.iam.gserviceaccount.com"
fi
[[ -n $account && $project != PROJECT_ID ]] && can_query=true

if [[ -z $region ]]; then
  has gcloud && region=$(gcloud config get-value run/region 2>/dev/null || true)
  [[ -n $region ]] || region=us-central1
  [[ $region =~ $region_re ]] || bad_usage "gcloud's run/region '$region' is not a region; pass --region"
fi
if [[ -z $state_bucket ]]; then
  state_bucket="$project-orchestra-tfstate"
  [[ $project == PROJECT_ID || $state_bucket =~ ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ ]] ||
    bad_usage "the state bucket name '$state_bucket' is not valid; pass --state-bucket"
fi

registry_host="$region-docker.pkg.dev"
repository="orchestra-$env"
service="orchestra-$env"
commit=unknown
if [[ -z $image ]]; then
  if has git && commit=$(git -C "$repo_root" rev-parse --short=12 HEAD 2>/dev/null); then
    :
  elif $dry_run; then
    commit=COMMIT
    unchecked+=("no git commit to tag the image with (git missing or not a checkout); COMMIT stands for it above")
  else
    echo "$prog: cannot read the git commit for the default image tag; pass --image" >&2
    exit 1
  fi
  image="$registry_host/$project/$repository/orchestra:$commit"
elif [[ $image == *:* && $image != *@sha256:* ]]; then
  commit=${image##*:}
fi

echo "$prog: $env in $project ($region), image $image${account:+, as $account}"
$dry_run && echo "$prog: dry run: read-only steps run (+), changes are printed ([dry-run]), nothing is changed"
$infra || echo "$prog: rolls the image onto the existing service; deploy/terraform is applied with --infra (a person's credentials)"

# --- the service: does it exist? ----------------------------------------------------------

begin "Cloud Run service $service"
service_url=""
live_image=""
svc_format="value(status.url,spec.template.spec.containers[0].image)"
if query gcloud run services describe "$service" --region "$region" --project "$project" --format "$svc_format"; then
  IFS=$'\t' read -r service_url live_image <<<"$out" || true
  echo "exists: $service_url, running ${live_image:-?}" >&3
else
  status=$?
  if ((status == 2)); then
    if ! $infra; then
      unchecked+=("whether $service exists: the plan above is a first deployment's (--infra); on an existing service only the build, rollout, wait and smoke test run")
      infra=true
    fi
  else
    case $(classify "$err") in
      missing)
        if ! $infra; then
          echo "missing: this is the first deployment of $env, so the infrastructure is applied too (as with --infra); that needs a person's credentials (docs/DEPLOY.md, Who may change what)" >&3
          infra=true
        else
          echo "missing: terraform apply creates it" >&3
        fi
        ;;
      denied)
        fail "$account may not read service $service in $project: a person must run this once with --infra (it grants CI's deployer run.developer on the service), or use an account that may. gcloud said: $(first_line "$err")"
        ;;
      auth)
        fail "gcloud's login for $account no longer works: run gcloud auth login. gcloud said: $(first_line "$err")"
        ;;
      *)
        fail "cannot read service $service: $(first_line "$err")"
        ;;
    esac
  fi
fi

# A first deployment needs terraform too; a dry run lists every missing tool here.
check_tools

# --- infrastructure (--infra): Terraform with a person's credentials ---------------------

tf_vars=(
  -var-file="$tfvars"
  -var "project_id=$project"
  -var "region=$region"
  -var "image=$image"
  -var "runtime_service_account_id=$sa_id"
)
bootstrap_targets=(
  -target=google_artifact_registry_repository.orchestra
  -target=google_secret_manager_secret.env
)

can_plan=false
if $infra; then
  # Terraform reads Application Default Credentials, which gcloud's login does not set.
  if $can_query && has terraform; then
    if [[ -n ${GOOGLE_APPLICATION_CREDENTIALS:-}${GOOGLE_CREDENTIALS:-}${GOOGLE_OAUTH_ACCESS_TOKEN:-} ]] ||
      gcloud auth application-default print-access-token >/dev/null 2>&1; then
      can_plan=true
    elif $dry_run; then
      unchecked+=("terraform has no credentials (run gcloud auth application-default login): terraform init and plan did not run")
    else
      echo "$prog: terraform has no Google credentials: run gcloud auth application-default login" >&2
      exit 1
    fi
  fi

  begin "Terraform state bucket gs://$state_bucket"
  if query gcloud storage buckets describe "gs://$state_bucket" --project "$project" --format "value(name)"; then
    echo "exists" >&3
  else
    status=$?
    if ((status != 2)); then
      can_plan=false
      case $(classify "$err") in
        missing)
          fail "state bucket gs://$state_bucket does not exist; create it once with:
  gcloud storage buckets create gs://$state_bucket --project $project --location $region --uniform-bucket-level-access --public-access-prevention
  gcloud storage buckets update gs://$state_bucket --versioning"
          ;;
        denied)
          fail "$account may not read gs://$state_bucket (storage.buckets.get): use an account with access to the state, or pass --state-bucket. gcloud said: $(first_line "$err")"
          ;;
        auth)
          fail "gcloud's login for $account no longer works: run gcloud auth login. gcloud said: $(first_line "$err")"
          ;;
        *)
          fail "cannot read gs://$state_bucket: $(first_line "$err")"
          ;;
      esac
    fi
  fi

  # init changes nothing in the project (it reads the state), so a dry run runs it too.
  begin "terraform init"
  init=(terraform -chdir="$tf_dir" init -input=false -reconfigure
    -backend-config="bucket=$state_bucket" -backend-config="prefix=orchestra/$env")
  if $can_plan; then
    show "+" "${init[@]}"
    "${init[@]}" >&3 || fail "terraform init failed (its output is above)"
  else
    show "[not checked]" "${init[@]}"
  fi

  # Which repository's GitHub Actions may deploy (Workload Identity Federation).
  github_from=""
  if [[ -n $github_repo ]]; then
    github_from="--github-repo"
  elif [[ -n ${GITHUB_REPOSITORY:-} ]]; then
    [[ $GITHUB_REPOSITORY =~ $repo_re ]] || bad_usage "invalid \$GITHUB_REPOSITORY '$GITHUB_REPOSITORY': expected OWNER/NAME"
    github_repo=$GITHUB_REPOSITORY
    github_from="\$GITHUB_REPOSITORY"
  elif has git; then
    origin=$(git -C "$repo_root" remote get-url origin 2>/dev/null || true)
    if [[ $origin =~ ^(https://|ssh://git@|git@)github\.com[:/]([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)$ ]]; then
      github_repo=${BASH_REMATCH[2]%.git}
      github_from="the origin remote"
    fi
  fi
  if [[ -z $github_repo ]] && $can_plan; then
    # Keep the federation that an earlier run set up rather than drop it.
    if query terraform -chdir="$tf_dir" output -raw github_repository && [[ $out =~ $repo_re ]]; then
      github_repo=$out
      github_from="the Terraform state"
    fi
  fi
  if [[ -n $github_repo ]]; then
    echo "GitHub Actions of $github_repo (from $github_from) may deploy $env" >&3
  else
    echo "$prog: no GitHub repository (no --github-repo, \$GITHUB_REPOSITORY, GitHub origin remote or earlier state): Workload Identity Federation for GitHub Actions is skipped; everything else deploys" >&3
    if $configure_github; then
      fail "--configure-github needs a GitHub repository: pass --github-repo OWNER/NAME"
    fi
  fi
  tf_vars+=(-var "github_repository=$github_repo")

  begin "Artifact Registry repository $repository and secrets"
  need_bootstrap=false
  if query gcloud artifacts repositories describe "$repository" --location "$region" --project "$project" --format "value(name)"; then
    echo "repository exists" >&3
  elif (($? == 2)); then
    need_bootstrap=unknown
  elif [[ $(classify "$err") == missing ]]; then
    echo "repository missing" >&3
    need_bootstrap=true
  else
    fail "cannot read repository $repository: $(first_line "$err")"
  fi
  missing_secrets=()
  for secret in "${secrets[@]}"; do
    if query gcloud secrets describe "$secret" --project "$project" --format "value(name)"; then
      :
    elif (($? == 2)); then
      need_bootstrap=unknown
    elif [[ $(classify "$err") == missing ]]; then
      missing_secrets+=("$secret")
      need_bootstrap=true
    else
      fail "cannot read secret $secret: $(first_line "$err")"
    fi
  done
  ((${#missing_secrets[@]} == 0)) || echo "secrets missing: ${missing_secrets[*]}" >&3
  case $need_bootstrap in
    true)
      echo "creating them (with the APIs they need) before the first push" >&3
      run terraform -chdir="$tf_dir" apply -input=false -auto-approve "${bootstrap_targets[@]}" "${tf_vars[@]}"
      ;;
    unknown)
      echo "if the repository or a secret is missing:" >&3
      show "[dry-run]" terraform -chdir="$tf_dir" apply -input=false -auto-approve "${bootstrap_targets[@]}" "${tf_vars[@]}"
      ;;
  esac

  # Cloud Run refuses a revision whose secret has no version: say which ones need a value
  # before anything is built or applied. The list comes from the tfvars, so a provider key
  # added there is checked before its first deployment.
  begin "secret values (${secrets[*]})"
  empty=()
  for secret in "${secrets[@]}"; do
    if [[ " ${missing_secrets[*]:-} " == *" $secret "* ]]; then
      empty+=("$secret")
    elif query gcloud secrets versions list "$secret" --project "$project" \
      --filter "state:ENABLED" --limit 1 --format "value(name.basename())"; then
      [[ -n $out ]] || empty+=("$secret")
    elif (($? != 2)); then
      fail "cannot list the versions of secret $secret: $(first_line "$err")"
    fi
  done
  if ((${#empty[@]} > 0)); then
    for secret in "${empty[@]}"; do
      echo "$prog: secret $secret has no enabled version; add its value with:" >&2
      echo "  printf %s \"\$VALUE\" | gcloud secrets versions add $secret --project $project --data-file=-" >&2
    done
    fail "add the secret values above, then run again"
  elif $can_query; then
    echo "every secret has a value" >&3
  fi
fi

# --- the image ----------------------------------------------------------------------------

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

if $infra; then
  if $dry_run; then
    begin "terraform plan ($tfvars): what --infra would change"
    plan=(terraform -chdir="$tf_dir" plan -input=false -lock=false "${tf_vars[@]}")
    if $can_plan; then
      show "+" "${plan[@]}"
      "${plan[@]}" >&3 || fail "terraform plan failed (its output is above)"
    else
      show "[not checked]" "${plan[@]}"
    fi
    echo "a real run applies it with:" >&3
  else
    begin "terraform apply ($tfvars)"
  fi
  run terraform -chdir="$tf_dir" apply -input=false -auto-approve "${tf_vars[@]}"
fi

# --- roll the image onto the service ------------------------------------------------------

# Terraform sets the image only when it creates the service (ignore_changes), so every
# deployment, CI's and a person's, rolls it the same way: one new revision.
begin "roll out $image"
if $can_query && ! $dry_run && $infra; then
  query gcloud run services describe "$service" --region "$region" --project "$project" --format "$svc_format" ||
    fail "cannot read service $service after terraform apply: $(first_line "$err")"
  IFS=$'\t' read -r service_url live_image <<<"$out" || true
fi
if [[ -n $live_image && $live_image == "$image" ]]; then
  echo "$service already runs $image: no new revision" >&3
else
  run gcloud run services update "$service" --region "$region" --project "$project" \
    --container orchestra --image "$image" --quiet
fi

begin "wait for the new revision"
wait_format="value(status.latestReadyRevisionName,status.latestCreatedRevisionName,status.url)"
if $dry_run; then
  show "[dry-run]" gcloud run services describe "$service" --region "$region" --project "$project" --format "$wait_format"
  echo "until the latest created revision is the ready one (at most ${timeout}s)" >&3
else
  deadline=$((SECONDS + timeout))
  while :; do
    query gcloud run services describe "$service" --region "$region" --project "$project" --format "$wait_format" ||
      fail "cannot read service $service: $(first_line "$err")"
    IFS=$'\t' read -r ready created service_url <<<"$out" || true
    if [[ -n ${ready:-} && ${ready:-} == "${created:-}" ]]; then
      echo "revision $ready is ready and serving" >&3
      break
    fi
    ((SECONDS < deadline)) || fail "revision ${created:-?} not ready after ${timeout}s (latest ready: ${ready:-none}); see: gcloud run revisions describe ${created:-REVISION} --region $region --project $project"
    sleep 5
  done
fi

begin "smoke test GET ${service_url:-https://$service-HASH.a.run.app}/readyz"
curl_args=(-sS --max-time 10 --retry 6 --retry-delay 5 --retry-all-errors -o "$tmp/readyz" -w "%{http_code}")
if $dry_run; then
  show "[dry-run]" curl "${curl_args[@]}" "${service_url:-https://$service-HASH.a.run.app}/readyz"
  echo "and, if Cloud Run answers 401 or 403 (allow_unauthenticated = false), again with a Google identity token" >&3
else
  show "+" curl "${curl_args[@]}" "$service_url/readyz"
  code=$(curl "${curl_args[@]}" "$service_url/readyz") || fail "GET $service_url/readyz: no answer"
  if [[ $code == 401 || $code == 403 ]]; then
    # Cloud Run's IAM check in front (the server's /readyz needs no key): a Google identity
    # token, never printed.
    show "+" curl "${curl_args[@]}" -H "Authorization: Bearer <identity token>" "$service_url/readyz"
    token=$(gcloud auth print-identity-token) || fail "gcloud auth print-identity-token failed"
    code=$(curl "${curl_args[@]}" -H "Authorization: Bearer $token" "$service_url/readyz") ||
      fail "GET $service_url/readyz: no answer"
  fi
  if [[ $code != 200 ]]; then
    fail "GET $service_url/readyz answered $code: $(head -c 500 "$tmp/readyz" 2>/dev/null)"
  fi
  cat "$tmp/readyz" >&3
  echo >&3
fi

if $configure_github && [[ -n $github_repo ]]; then
  begin "GitHub environment '$env' variables of $github_repo"
  wif_provider="projects/NUMBER/locations/global/workloadIdentityPools/orchestra-$env-gh/providers/github"
  deployer="orchestra-$env-deploy@$project.iam.gserviceaccount.com"
  if ! $dry_run; then
    query terraform -chdir="$tf_dir" output -raw workload_identity_provider || fail "terraform output workload_identity_provider: $(first_line "$err")"
    wif_provider=$out
    query terraform -chdir="$tf_dir" output -raw deployer_service_account_email || fail "terraform output deployer_service_account_email: $(first_line "$err")"
    deployer=$out
  fi
  run gh variable set GCP_PROJECT --env "$env" --repo "$github_repo" --body "$project"
  run gh variable set GCP_REGION --env "$env" --repo "$github_repo" --body "$region"
  run gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER --env "$env" --repo "$github_repo" --body "$wif_provider"
  run gh variable set GCP_DEPLOYER_SERVICE_ACCOUNT --env "$env" --repo "$github_repo" --body "$deployer"
fi

step=""
echo
if $dry_run; then
  if ((${#unchecked[@]} > 0)); then
    echo "$prog: not checked:"
    printf '  - %s\n' "${unchecked[@]}"
  fi
  if ((${#problems[@]} > 0)); then
    echo "$prog: dry run found what would stop a real run:" >&2
    printf '  - %s\n' "${problems[@]}" >&2
    exit 1
  fi
  echo "$prog: dry run complete: nothing was changed"
else
  echo "$prog: $env deployed: $service_url"
fi
