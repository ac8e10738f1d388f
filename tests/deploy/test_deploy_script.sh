#!/usr/bin/env bash
# deploy/scripts/apply_performance_optimizations.sh against stand-in gcloud, terraform,
# docker, gh, curl and git placed first on PATH (fakes/fake_tool.sh records every call).
#
#   test_deploy_script.sh seed_lines | seed_lines_no_login | seed_lines_no_tools | dry_run |
#                         infra | rollout | github_repo | bad_arguments | missing_tools |
#                         failures
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
scripts="$root/deploy/scripts"
bash_bin=$(command -v bash)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fakebin="$work/bin"
mkdir -p "$fakebin"
for tool in gcloud terraform docker gh curl git; do
  ln -s "$here/fakes/fake_tool.sh" "$fakebin/$tool"
done
export FAKE_LOG="$work/calls.log"

# A PATH with the utilities the script needs but none of the cloud tools, plus the fakes
# named in $1 (space-separated).
sparse_path() {
  local dir="$work/sparse-${1// /-}" tool
  rm -rf "$dir"
  mkdir -p "$dir"
  for tool in bash sed grep tr mktemp rm cat head sleep env; do ln -s "$(command -v "$tool")" "$dir/$tool"; done
  for tool in $1; do ln -s "$here/fakes/fake_tool.sh" "$dir/$tool"; done
  printf '%s' "$dir"
}

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() { echo "ok: $*"; }

# Runs the script as `./apply_performance_optimizations.sh ARGS` from deploy/scripts (as the
# seed's usage lines are written), with $path first (default: the stand-ins on the real
# PATH); fills $out, $err, $status. GITHUB_REPOSITORY is cleared unless the caller sets it.
invoke_with_path() {
  local path=$1
  shift
  : >"$FAKE_LOG"
  status=0
  (cd "$scripts" && env PATH="$path" GITHUB_REPOSITORY="${GH_REPO:-}" "$bash_bin" ./apply_performance_optimizations.sh "$@") \
    >"$work/out" 2>"$work/err" || status=$?
  out=$(cat "$work/out")
  err=$(cat "$work/err")
}
invoke() { invoke_with_path "$fakebin:$PATH" "$@"; }

calls() { cat "$FAKE_LOG"; }

# The recorded calls as "tool subcommand ..." prefixes, one per line, for order checks.
call_kinds() {
  awk '{
    if ($1 == "terraform") { print $1, $3 (($3 == "apply" && $0 ~ /-target=/) ? " -target" : "") }
    else if ($1 == "curl") { print $1 ($0 ~ /Authorization/ ? " authorized" : "") }
    else if ($1 == "docker") { print $1, $2, $3 }
    else if ($1 == "gcloud" && $2 == "run") { print $1, $2, $3, $4, $5 }
    else { print $1, $2, $3, $4 }
  }' "$FAKE_LOG" | sed 's/ *$//'
}

expect_status() {
  local want=$1 what=$2
  if [[ $status == "$want" ]]; then pass "$what: exit $status"; else
    fail "$what: exit $status, wanted $want"
    printf '  stdout: %s\n  stderr: %s\n' "$out" "$err" >&2
  fi
}

expect_in() {
  local haystack=$1 needle=$2 what=$3
  if [[ $haystack == *"$needle"* ]]; then pass "$what"; else
    fail "$what: '$needle' not found in:"
    printf '%s\n' "$haystack" | sed 's/^/    /' >&2
  fi
}

expect_not_in() {
  local haystack=$1 needle=$2 what=$3
  if [[ $haystack != *"$needle"* ]]; then pass "$what"; else
    fail "$what: '$needle' found in:"
    printf '%s\n' "$haystack" | sed 's/^/    /' >&2
  fi
}

expect_no_calls() {
  if [[ ! -s $FAKE_LOG ]]; then pass "$1: no tool was invoked"; else
    fail "$1: tools were invoked:"
    sed 's/^/    /' "$FAKE_LOG" >&2
  fi
}

expect_order() {
  local what=$1 want=$2 got
  got=$(call_kinds)
  if [[ $got == "$want" ]]; then pass "$what: the tools are called in the documented order"; else
    fail "$what: call order differs (- wanted, + got)"
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/    /' >&2
  fi
}

# Nothing that changes anything ran: no build, push, apply, update or gh.
expect_nothing_changed() {
  local log
  log=$(calls)
  expect_not_in "$log" "docker " "$1: nothing built"
  expect_not_in "$log" "configure-docker" "$1: no docker credentials written"
  expect_not_in "$log" " apply " "$1: nothing applied"
  expect_not_in "$log" "run services update" "$1: no revision rolled"
  expect_not_in "$log" "gh " "$1: no GitHub variable set"
}

# Items printed in this order in $out.
expect_printed_in_order() {
  local what=$1 rest=$out item
  shift
  for item in "$@"; do
    if [[ $rest == *"$item"* ]]; then
      rest=${rest#*"$item"}
    else
      fail "$what: '$item' not printed after the previous step"
      printf '%s\n' "$out" | sed 's/^/    /' >&2
      return
    fi
  done
  pass "$what: every step printed in the documented order"
}

image="us-central1-docker.pkg.dev/my-proj-1/orchestra-dev/orchestra:abc123def456"
digest_image="us-central1-docker.pkg.dev/my-proj-1/orchestra-dev/orchestra@sha256:$(printf 'a%.0s' {1..64})"
common=(--project my-proj-1 --region us-central1 --env dev --github-repo example-org/orchestra --image "$image")

# The three usage lines of the seed, with every tool and a login: each deploys.
test_seed_lines() {
  # 1. No option at all: gcloud's project and region, env dev, the current commit.
  invoke
  expect_status 0 "seed line 1 (no options)"
  expect_order "seed line 1" "gcloud auth list --filter=status:ACTIVE
gcloud config get-value project
gcloud config get-value run/region
git -C $root rev-parse
gcloud run services describe orchestra-dev
gcloud auth configure-docker us-central1-docker.pkg.dev
docker buildx build
gcloud run services update orchestra-dev
gcloud run services describe orchestra-dev
curl"
  expect_in "$(calls)" "gcloud run services update orchestra-dev --region us-central1 --project my-proj-1 --container orchestra --image $image --quiet" "seed line 1: rolls the commit's image onto orchestra-dev"
  expect_in "$(calls)" "--tag $image --push" "seed line 1: image tagged with the commit in gcloud's project"
  expect_in "$out" "dev deployed: https://orchestra-dev-abc123-uc.a.run.app" "seed line 1: reports the URL"

  # gcloud's run/region wins over us-central1.
  FAKE_RUN_REGION=europe-west4 invoke
  expect_status 0 "seed line 1 with a gcloud run/region"
  expect_in "$(calls)" "--region europe-west4" "region from gcloud config run/region"

  # 2. Project, region and env given: no gcloud config lookup for the project.
  invoke --project your-project-id --region us-central1 --env prod
  expect_status 0 "seed line 2 (--project --region --env prod)"
  expect_not_in "$(calls)" "config get-value project" "seed line 2: --project is not looked up"
  expect_in "$(calls)" "gcloud run services update orchestra-prod --region us-central1 --project your-project-id --container orchestra --image us-central1-docker.pkg.dev/your-project-id/orchestra-prod/orchestra:abc123def456" "seed line 2: prod in your-project-id"

  # 3. --dry-run: the read-only calls run for real, nothing that changes anything does.
  invoke --dry-run
  expect_status 0 "seed line 3 (--dry-run)"
  expect_order "seed line 3" "gcloud auth list --filter=status:ACTIVE
gcloud config get-value project
gcloud config get-value run/region
git -C $root rev-parse
gcloud run services describe orchestra-dev"
  expect_nothing_changed "seed line 3"
  expect_printed_in_order "seed line 3" \
    "+ gcloud run services describe orchestra-dev" \
    "[dry-run] gcloud auth configure-docker" \
    "[dry-run] docker buildx build" \
    "[dry-run] gcloud run services update orchestra-dev --region us-central1 --project my-proj-1 --container orchestra --image $image" \
    "[dry-run] curl"
  expect_in "$out" "dry run complete: nothing was changed" "seed line 3: says nothing changed"

  # First deployment: no service yet, so the plain line applies the infrastructure too.
  FAKE_SERVICE=missing invoke
  expect_status 0 "seed line 1, first deployment"
  expect_in "$out" "first deployment of dev, so the infrastructure is applied too" "first deployment: says so"
  expect_in "$(call_kinds | tr '\n' '|')" "terraform init|" "first deployment: terraform runs"
  expect_in "$(calls)" "apply -input=false -auto-approve -var-file=envs/dev.tfvars" "first deployment: full apply"
  expect_not_in "$(calls)" "run services update" "first deployment: the new service already runs the image"

  # The same first deployment, dry: terraform plan runs for real with the same variables.
  FAKE_SERVICE=missing invoke --dry-run
  expect_status 0 "seed line 3, first deployment"
  expect_in "$(calls)" "terraform -chdir=$root/deploy/terraform plan -input=false -lock=false -var-file=envs/dev.tfvars -var project_id=my-proj-1 -var region=us-central1 -var image=$image -var runtime_service_account_id=orchestra-dev-run" "first deployment dry: terraform plan with the apply's variables"
  expect_in "$out" "Plan: 0 to add, 1 to change, 0 to destroy." "first deployment dry: shows the plan's diff"
  expect_nothing_changed "seed line 3, first deployment"
}

# No active gcloud account: a real run stops with the real cause, a dry run still plans.
test_seed_lines_no_login() {
  local line
  for line in "" "--project your-project-id --region us-central1 --env prod"; do
    # shellcheck disable=SC2086 # the seed line's words
    FAKE_ACCOUNT="" invoke $line
    expect_status 1 "no login, seed line '${line:-(no options)}'"
    expect_in "$err" "not logged in: run gcloud auth login" "no login: says so"
    expect_not_in "$err" "buckets create" "no login: no advice to create the state bucket"
    expect_not_in "$(calls)" "describe" "no login: nothing read from the project"
    expect_nothing_changed "no login"
  done

  FAKE_ACCOUNT="" invoke --dry-run
  expect_status 0 "no login, seed line 3 (--dry-run)"
  expect_in "$out" "not logged in: run gcloud auth login" "no login dry: says what it could not check"
  expect_not_in "$(calls)" "describe" "no login dry: nothing read from the project"
  expect_nothing_changed "no login dry"
  # The whole plan is printed, a first deployment's included, since nothing could be read.
  expect_printed_in_order "no login dry" \
    "[not checked] gcloud run services describe orchestra-dev" \
    "[not checked] gcloud storage buckets describe gs://my-proj-1-orchestra-tfstate" \
    "[not checked] terraform -chdir=$root/deploy/terraform init" \
    "[dry-run] terraform -chdir=$root/deploy/terraform apply -input=false -auto-approve -target=google_artifact_registry_repository.orchestra" \
    "[not checked] gcloud secrets versions list orchestra-dev-api-key" \
    "[dry-run] docker buildx build" \
    "[not checked] terraform -chdir=$root/deploy/terraform plan" \
    "[dry-run] terraform -chdir=$root/deploy/terraform apply -input=false -auto-approve -var-file=envs/dev.tfvars" \
    "[dry-run] gcloud run services update orchestra-dev" \
    "[dry-run] curl"
}

# Without the tools: a real run names them all (exit 3), a dry run still prints the plan.
test_seed_lines_no_tools() {
  local path line
  path=$(sparse_path "")
  for line in "" "--project your-project-id --region us-central1 --env prod"; do
    # shellcheck disable=SC2086 # the seed line's words
    invoke_with_path "$path" $line
    expect_status 3 "no tools, seed line '${line:-(no options)}'"
    expect_in "$err" "missing required tools: gcloud curl docker git" "no tools: named together"
    expect_no_calls "no tools"
  done

  invoke_with_path "$path" --dry-run
  expect_status 0 "no tools, seed line 3 (--dry-run)"
  expect_no_calls "no tools dry"
  expect_in "$out" "missing tools: gcloud curl terraform docker git" "no tools dry: says which tools are missing"
  expect_in "$out" "no project: pass --project ID" "no tools dry: says the project is unknown"
  expect_printed_in_order "no tools dry" \
    "[not checked] gcloud run services describe orchestra-dev --region us-central1 --project PROJECT_ID" \
    "[dry-run] docker buildx build" \
    "[dry-run] terraform -chdir=$root/deploy/terraform apply" \
    "[dry-run] gcloud run services update orchestra-dev" \
    "us-central1-docker.pkg.dev/PROJECT_ID/orchestra-dev/orchestra:COMMIT"

  # gcloud and a login, but no terraform and no docker: what can be read is read.
  path=$(sparse_path "gcloud curl git")
  FAKE_SERVICE=missing invoke_with_path "$path" --dry-run
  expect_status 0 "gcloud only, dry run"
  expect_in "$(calls)" "gcloud run services describe orchestra-dev" "gcloud only dry: the service is read"
  expect_in "$(calls)" "gcloud storage buckets describe gs://my-proj-1-orchestra-tfstate" "gcloud only dry: the bucket is read"
  expect_in "$out" "missing tools: terraform docker" "gcloud only dry: names what is missing"
  expect_in "$out" "[not checked] terraform -chdir=$root/deploy/terraform plan" "gcloud only dry: no plan without terraform"
}

test_dry_run() {
  invoke "${common[@]}" --infra --configure-github --dry-run
  expect_status 0 "--infra dry run"
  expect_nothing_changed "--infra dry run"
  expect_order "--infra dry run" "gcloud auth list --filter=status:ACTIVE
gcloud run services describe orchestra-dev
gcloud auth application-default print-access-token
gcloud storage buckets describe
terraform init
gcloud artifacts repositories describe
gcloud secrets describe orchestra-dev-api-key
gcloud secrets versions list
terraform plan"
  expect_printed_in_order "--infra dry run" \
    "+ gcloud run services describe orchestra-dev" \
    "+ gcloud storage buckets describe gs://my-proj-1-orchestra-tfstate" \
    "+ terraform -chdir=$root/deploy/terraform init -input=false -reconfigure" \
    "+ gcloud artifacts repositories describe orchestra-dev" \
    "+ gcloud secrets versions list orchestra-dev-api-key" \
    "[dry-run] gcloud auth configure-docker us-central1-docker.pkg.dev --quiet" \
    "[dry-run] docker buildx build --file $root/deploy/Dockerfile --platform linux/amd64" \
    "+ terraform -chdir=$root/deploy/terraform plan -input=false -lock=false -var-file=envs/dev.tfvars" \
    "[dry-run] terraform -chdir=$root/deploy/terraform apply -input=false -auto-approve -var-file=envs/dev.tfvars" \
    "[dry-run] gcloud run services update orchestra-dev" \
    "[dry-run] gcloud run services describe orchestra-dev" \
    "[dry-run] curl" \
    "[dry-run] gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER --env dev --repo example-org/orchestra"
  expect_in "$out" "every secret has a value" "dry run: the secrets were checked for real"

  # A problem a real run would stop at is reported, and the dry run fails.
  FAKE_BUCKET=missing invoke "${common[@]}" --infra --dry-run
  expect_status 1 "dry run, missing bucket"
  expect_in "$err" "state bucket gs://my-proj-1-orchestra-tfstate does not exist" "dry run: names the missing bucket"
  expect_in "$err" "gcloud storage buckets create gs://my-proj-1-orchestra-tfstate" "dry run: says how to create it"
  expect_nothing_changed "dry run, missing bucket"

  # Without application-default credentials terraform cannot plan: said, not failed.
  FAKE_ADC=0 invoke "${common[@]}" --infra --dry-run
  expect_status 0 "dry run without ADC"
  expect_in "$out" "run gcloud auth application-default login" "dry run without ADC: says so"
  expect_not_in "$(calls)" "terraform " "dry run without ADC: terraform not run"
}

test_infra() {
  invoke "${common[@]}" --infra --configure-github --env staging
  expect_status 0 "--infra run"
  expect_order "--infra run" "gcloud auth list --filter=status:ACTIVE
gcloud run services describe orchestra-staging
gcloud auth application-default print-access-token
gcloud storage buckets describe
terraform init
gcloud artifacts repositories describe
gcloud secrets describe orchestra-staging-api-key
gcloud secrets describe orchestra-staging-openai-api-key
gcloud secrets versions list
gcloud secrets versions list
gcloud auth configure-docker us-central1-docker.pkg.dev
docker buildx build
terraform apply
gcloud run services describe orchestra-staging
gcloud run services update orchestra-staging
gcloud run services describe orchestra-staging
curl
terraform output
terraform output
gh variable set GCP_PROJECT
gh variable set GCP_REGION
gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER
gh variable set GCP_DEPLOYER_SERVICE_ACCOUNT"

  local log apply
  log=$(calls)
  expect_in "$log" "terraform -chdir=$root/deploy/terraform init -input=false -reconfigure -backend-config=bucket=my-proj-1-orchestra-tfstate -backend-config=prefix=orchestra/staging" "init: backend per environment"
  expect_in "$log" "gcloud secrets versions list orchestra-staging-openai-api-key" "secrets: the provider key staging.tfvars wires is checked"
  expect_in "$log" "docker buildx build --file $root/deploy/Dockerfile --platform linux/amd64 --build-arg ORCHESTRA_GIT_COMMIT=abc123def456 --build-arg ORCHESTRA_TUNING=baseline --tag $image --push $root" "build: amd64, commit, tag, push"
  apply=$(grep '^terraform .* apply ' "$FAKE_LOG" || true)
  expect_in "$apply" "-input=false -auto-approve -var-file=envs/staging.tfvars -var project_id=my-proj-1 -var region=us-central1 -var image=$image -var runtime_service_account_id=orchestra-staging-run -var github_repository=example-org/orchestra" "apply: tfvars, project, region, image, account, repository"
  expect_not_in "$apply" "-target" "apply: no -target when the repository and secrets exist"
  expect_in "$log" "gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER --env staging --repo example-org/orchestra --body projects/123/locations/global/workloadIdentityPools/orchestra-dev-gh/providers/github" "gh: WIF provider variable"

  # A full e-mail in the same project is accepted and reduced to its account id.
  invoke "${common[@]}" --infra --service-account orchestra-dev-run@my-proj-1.iam.gserviceaccount.com
  expect_status 0 "e-mail service account"
  expect_in "$(calls)" "-var runtime_service_account_id=orchestra-dev-run " "e-mail reduced to the account id"

  # First deployment: no registry, so it and the secrets are created before the push.
  FAKE_REPO_EXISTS=0 invoke "${common[@]}" --infra
  expect_status 0 "registry missing"
  expect_in "$(call_kinds | tr '\n' '|')" "gcloud artifacts repositories describe|gcloud secrets describe orchestra-dev-api-key|terraform apply -target|gcloud secrets versions list" "registry missing: targeted apply, then the values check"
  expect_in "$(calls)" "apply -input=false -auto-approve -target=google_artifact_registry_repository.orchestra -target=google_secret_manager_secret.env -var-file=envs/dev.tfvars" "registry missing: creates the repository and the secrets"

  # A provider key newly added to the tfvars: its secret is created, then its value asked for.
  FAKE_MISSING_SECRETS=orchestra-staging-openai-api-key invoke "${common[@]}" --infra --env staging
  expect_status 1 "new provider key without a secret"
  expect_in "$(calls)" "-target=google_secret_manager_secret.env" "new provider key: its secret is created"
  expect_in "$err" "gcloud secrets versions add orchestra-staging-openai-api-key --project my-proj-1 --data-file=-" "new provider key: says how to add its value"
  expect_not_in "$(calls)" "docker " "new provider key: nothing built before it has a value"
}

# What CI's deployer does at every deploy: no Terraform, no secrets, no state.
test_rollout() {
  invoke --project my-proj-1 --region us-central1 --env staging --image "$digest_image" --skip-build
  expect_status 0 "CI rollout"
  expect_order "CI rollout" "gcloud auth list --filter=status:ACTIVE
gcloud run services describe orchestra-staging
gcloud run services update orchestra-staging
gcloud run services describe orchestra-staging
curl"
  expect_in "$(calls)" "gcloud run services update orchestra-staging --region us-central1 --project my-proj-1 --container orchestra --image $digest_image --quiet" "CI rollout: the image by digest"
  expect_not_in "$(calls)" "terraform" "CI rollout: no terraform"
  expect_not_in "$(calls)" "secrets" "CI rollout: no secrets read"
  expect_not_in "$(calls)" "storage" "CI rollout: no state bucket"

  # The service already runs the image: no new revision.
  FAKE_LIVE_IMAGE=$digest_image invoke --project my-proj-1 --region us-central1 --image "$digest_image" --skip-build
  expect_status 0 "same image"
  expect_not_in "$(calls)" "run services update" "same image: no revision"
  expect_in "$out" "already runs $digest_image" "same image: says so"

  # Behind Cloud Run IAM: the smoke test retries with an identity token, never printed.
  FAKE_PUBLIC=false invoke "${common[@]}" --skip-build
  expect_status 0 "private service"
  expect_order "private service" "gcloud auth list --filter=status:ACTIVE
gcloud run services describe orchestra-dev
gcloud run services update orchestra-dev
gcloud run services describe orchestra-dev
curl
gcloud auth print-identity-token
curl authorized"
  expect_in "$(calls)" "-H Authorization: Bearer fake-identity-token" "private service: token sent"
  expect_not_in "$out$err" "fake-identity-token" "private service: token not printed"
}

test_github_repo() {
  local apply
  # The origin remote, when it is on GitHub.
  FAKE_ORIGIN=git@github.com:acme/orchestra.git invoke --project my-proj-1 --image "$image" --infra
  expect_status 0 "origin remote"
  expect_in "$(calls)" "-var github_repository=acme/orchestra" "repository from the origin remote"
  # $GITHUB_REPOSITORY wins over the remote.
  GH_REPO=ci-org/orchestra FAKE_ORIGIN=git@github.com:acme/orchestra.git invoke --project my-proj-1 --image "$image" --infra
  expect_in "$(calls)" "-var github_repository=ci-org/orchestra" "repository from \$GITHUB_REPOSITORY"
  # Neither: the state's, so an --infra run from a bare checkout keeps the federation.
  FAKE_TF_GITHUB_REPO=state-org/orchestra invoke --project my-proj-1 --image "$image" --infra
  expect_in "$(calls)" "-var github_repository=state-org/orchestra" "repository from the Terraform state"
  # None at all: the federation is skipped with a notice, everything else deploys.
  FAKE_ORIGIN=https://gitlab.com/acme/orchestra.git invoke --project my-proj-1 --image "$image" --infra
  expect_status 0 "no GitHub repository"
  expect_in "$out" "Workload Identity Federation for GitHub Actions is skipped; everything else deploys" "no repository: one-line notice"
  apply=$(grep '^terraform .* apply ' "$FAKE_LOG" || true)
  expect_in "$apply " "-var github_repository= " "no repository: empty variable"
  expect_in "$(calls)" "run services update" "no repository: the rest deploys"
}

test_bad_arguments() {
  invoke --env qa
  expect_status 2 "bad --env"
  expect_in "$err" "invalid --env 'qa': expected dev, staging or prod" "bad --env message"
  expect_no_calls "bad --env"

  local bad
  for bad in Bad_Name ab 1orchestra orchestra-run- "orchestra-dev-run@other-proj.iam.gserviceaccount.com" \
    "this-account-id-is-far-too-long-for-gcp"; do
    invoke --project my-proj-1 --service-account "$bad"
    expect_status 2 "bad --service-account '$bad'"
    expect_in "$err" "invalid --service-account '$bad'" "bad --service-account '$bad' message"
    expect_no_calls "bad --service-account '$bad'"
  done

  invoke --project My_Project
  expect_status 2 "bad --project"
  expect_no_calls "bad --project"

  invoke --github-repo not-a-repo
  expect_status 2 "bad --github-repo"
  expect_in "$err" "invalid --github-repo 'not-a-repo'" "bad --github-repo message"

  invoke "${common[@]}" --image "not an image"
  expect_status 2 "bad --image"
  expect_no_calls "bad --image"

  invoke --skip-build
  expect_status 2 "--skip-build without --image"
  expect_in "$err" "--skip-build needs --image" "--skip-build message"

  invoke --configure-github
  expect_status 2 "--configure-github without --infra"
  expect_in "$err" "--configure-github needs --infra" "--configure-github message"

  invoke "${common[@]}" --frobnicate
  expect_status 2 "unknown flag"
  expect_in "$err" "unknown argument '--frobnicate'" "unknown flag message"
  expect_no_calls "unknown flag"

  invoke --project
  expect_status 2 "--project without a value"
  expect_in "$err" "--project needs a value" "--project without a value message"

  # No --project and none in gcloud's configuration: a clear error.
  FAKE_PROJECT="" invoke
  expect_status 2 "no project anywhere"
  expect_in "$err" "no project: pass --project ID or set one with: gcloud config set project ID" "no project message"
  expect_nothing_changed "no project anywhere"

  invoke --help
  expect_status 0 "--help"
  expect_in "$out" "--infra" "--help lists the flags"
  expect_in "$out" "./apply_performance_optimizations.sh --dry-run" "--help shows the seed's usage lines"
  expect_no_calls "--help"
}

test_missing_tools() {
  local path
  # gcloud, terraform and curl: docker and gh are missing for a --configure-github build.
  path=$(sparse_path "gcloud terraform curl git")
  invoke_with_path "$path" "${common[@]}" --infra --configure-github
  expect_status 3 "missing tools"
  expect_in "$err" "missing required tools: docker gh" "missing tools are named together"
  expect_no_calls "missing tools"

  # A first deployment found without terraform: exit 3 before anything changes.
  path=$(sparse_path "gcloud curl git")
  FAKE_SERVICE=missing invoke_with_path "$path" "${common[@]}" --skip-build
  expect_status 3 "first deployment without terraform"
  expect_in "$err" "missing required tools: terraform" "first deployment without terraform: says so"
  expect_nothing_changed "first deployment without terraform"
}

test_failures() {
  FAKE_BUCKET=missing invoke "${common[@]}" --infra
  expect_status 1 "missing state bucket"
  expect_in "$err" "gcloud storage buckets create gs://my-proj-1-orchestra-tfstate" "missing bucket: says how to create it"
  expect_not_in "$(calls)" "terraform" "missing bucket: terraform never ran"

  FAKE_BUCKET=denied invoke "${common[@]}" --infra
  expect_status 1 "unreadable state bucket"
  expect_in "$err" "dev@example.com may not read gs://my-proj-1-orchestra-tfstate" "denied bucket: says it is a permission"
  expect_not_in "$err" "buckets create" "denied bucket: no advice to create it"

  FAKE_ACCOUNT="" invoke "${common[@]}" --infra
  expect_status 1 "not logged in, --infra"
  expect_in "$err" "not logged in: run gcloud auth login" "not logged in: the real cause"
  expect_not_in "$err" "bucket" "not logged in: nothing about the bucket"

  FAKE_ADC=0 invoke "${common[@]}" --infra
  expect_status 1 "no application-default credentials"
  expect_in "$err" "terraform has no Google credentials: run gcloud auth application-default login" "no ADC: says so"
  expect_not_in "$(calls)" "terraform " "no ADC: terraform never ran"

  FAKE_SERVICE=denied invoke "${common[@]}" --skip-build
  expect_status 1 "service not readable"
  expect_in "$err" "may not read service orchestra-dev" "service denied: says so"
  expect_in "$err" "--infra" "service denied: says who can fix it"
  expect_nothing_changed "service denied"

  FAKE_READY=rev-00001 FAKE_CREATED=rev-00002 invoke "${common[@]}" --skip-build --timeout 1
  expect_status 1 "revision never ready"
  expect_in "$err" "revision rev-00002 not ready" "not ready: names the revision"
  expect_not_in "$(calls)" "curl" "not ready: no smoke test"

  FAKE_READYZ_CODE=503 invoke "${common[@]}" --skip-build
  expect_status 1 "smoke test answers 503"
  expect_in "$err" "readyz answered 503" "smoke test: the status"
  expect_in "$err" "step failed: smoke test" "smoke test failure is reported as such"

  FAKE_FAIL="curl" invoke "${common[@]}" --skip-build
  expect_status 1 "smoke test gets no answer"
  expect_in "$err" "step failed: smoke test" "smoke test without answer is reported as such"

  FAKE_EMPTY_SECRET=orchestra-prod-openai-api-key invoke "${common[@]}" --infra --env prod
  expect_status 1 "secret without a value"
  expect_in "$err" "gcloud secrets versions add orchestra-prod-openai-api-key --project my-proj-1 --data-file=-" "empty secret: says how to add the value"
  expect_not_in "$err" "versions add orchestra-prod-api-key" "empty secret: names only the empty one"
  expect_not_in "$(calls)" "docker " "empty secret: nothing is built"
  expect_not_in "$(calls)" "-auto-approve -var-file" "empty secret: nothing is applied"

  FAKE_FAIL="docker buildx" invoke "${common[@]}" --infra
  expect_status 1 "build fails"
  expect_not_in "$(calls)" "-auto-approve -var-file" "build failure: nothing is applied"

  FAKE_FAIL="gcloud run services update" invoke "${common[@]}"
  expect_status 1 "rollout fails"
  expect_in "$err" "step failed: roll out" "rollout failure is reported as such"
}

case ${1:-} in
  seed_lines) test_seed_lines ;;
  seed_lines_no_login) test_seed_lines_no_login ;;
  seed_lines_no_tools) test_seed_lines_no_tools ;;
  dry_run) test_dry_run ;;
  infra) test_infra ;;
  rollout) test_rollout ;;
  github_repo) test_github_repo ;;
  bad_arguments) test_bad_arguments ;;
  missing_tools) test_missing_tools ;;
  failures) test_failures ;;
  *)
    echo "usage: $0 seed_lines|seed_lines_no_login|seed_lines_no_tools|dry_run|infra|rollout|github_repo|bad_arguments|missing_tools|failures" >&2
    exit 2
    ;;
esac

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
