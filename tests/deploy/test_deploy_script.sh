#!/usr/bin/env bash
# deploy/scripts/apply_performance_optimizations.sh against stand-in gcloud, terraform,
# docker, gh and curl placed first on PATH (fakes/fake_tool.sh records every call).
#
#   test_deploy_script.sh dry_run | bad_arguments | missing_tools | normal_run | failures
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
script="$root/deploy/scripts/apply_performance_optimizations.sh"
bash_bin=$(command -v bash)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fakebin="$work/bin"
mkdir -p "$fakebin"
for tool in gcloud terraform docker gh curl; do
  ln -s "$here/fakes/fake_tool.sh" "$fakebin/$tool"
done
export FAKE_LOG="$work/calls.log"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() { echo "ok: $*"; }

# Runs the script with the stand-ins first on PATH; fills $out, $err, $status.
invoke() {
  : >"$FAKE_LOG"
  status=0
  env PATH="$fakebin:$PATH" GITHUB_REPOSITORY= "$bash_bin" "$script" "$@" \
    >"$work/out" 2>"$work/err" || status=$?
  out=$(cat "$work/out")
  err=$(cat "$work/err")
}

calls() { cat "$FAKE_LOG"; }

# The recorded calls as "tool subcommand ..." prefixes, one per line, for order checks.
call_kinds() {
  awk '{
    if ($1 == "terraform") { print $1, $3 (($3 == "apply" && $0 ~ /-target=/) ? " -target" : "") }
    else if ($1 == "curl" || $1 == "docker") { print $1, ($1 == "docker" ? $2 " " $3 : "") }
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
  if [[ $haystack != *"$needle"* ]]; then pass "$what"; else fail "$what: '$needle' found"; fi
}

expect_no_calls() {
  if [[ ! -s $FAKE_LOG ]]; then pass "$1: no tool was invoked"; else
    fail "$1: tools were invoked:"
    sed 's/^/    /' "$FAKE_LOG" >&2
  fi
}

image="us-central1-docker.pkg.dev/my-proj-1/orchestra-dev/orchestra:abc123def456"
common=(--project my-proj-1 --region us-central1 --env dev --service-account orchestra-dev-run
  --github-repo example-org/orchestra --image "$image")

test_dry_run() {
  invoke "${common[@]}" --configure-github --dry-run
  expect_status 0 "dry run"
  expect_no_calls "dry run"
  # Every step is printed, in order.
  local order=(
    "gcloud storage buckets describe gs://my-proj-1-orchestra-tfstate"
    "terraform -chdir=$root/deploy/terraform init -input=false -reconfigure"
    "gcloud artifacts repositories describe orchestra-dev"
    "-target=google_artifact_registry_repository.orchestra -target=google_secret_manager_secret.env"
    "gcloud secrets list --project my-proj-1 --filter labels.app=orchestra\\ AND\\ labels.env=dev"
    "gcloud auth configure-docker us-central1-docker.pkg.dev --quiet"
    "docker buildx build --file $root/deploy/Dockerfile --platform linux/amd64"
    "apply -input=false -auto-approve -var-file=envs/dev.tfvars"
    "output -raw service_url"
    "gcloud run services describe orchestra-dev --region us-central1 --project my-proj-1"
    "curl -fsS"
    "gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER --env dev --repo example-org/orchestra"
  )
  local rest=$out item
  for item in "${order[@]}"; do
    if [[ $rest == *"$item"* ]]; then
      rest=${rest#*"$item"}
    else
      fail "dry run: '$item' not printed after the previous step"
      printf '%s\n' "$out" | sed 's/^/    /' >&2
      return
    fi
  done
  pass "dry run prints every step in the documented order"
  expect_in "$out" "[dry-run]" "dry run marks its commands"
}

test_bad_arguments() {
  invoke --project my-proj-1 --region us-central1 --env qa --service-account orchestra-dev-run \
    --github-repo example-org/orchestra
  expect_status 2 "bad --env"
  expect_in "$err" "invalid --env 'qa': expected dev, staging or prod" "bad --env message"
  expect_no_calls "bad --env"

  local bad
  for bad in Bad_Name ab 1orchestra orchestra-run- "orchestra-dev-run@other-proj.iam.gserviceaccount.com" \
    "this-account-id-is-far-too-long-for-gcp"; do
    invoke --project my-proj-1 --region us-central1 --env dev --service-account "$bad" \
      --github-repo example-org/orchestra
    expect_status 2 "bad --service-account '$bad'"
    expect_in "$err" "invalid --service-account '$bad'" "bad --service-account '$bad' message"
    expect_no_calls "bad --service-account '$bad'"
  done

  invoke --project my-proj-1 --region us-central1 --env dev --service-account orchestra-dev-run
  expect_status 2 "no --github-repo"
  expect_in "$err" "--github-repo is required" "no --github-repo message"
  expect_no_calls "no --github-repo"

  invoke "${common[@]}" --image "not an image"
  expect_status 2 "bad --image"
  expect_no_calls "bad --image"

  invoke "${common[@]}" --frobnicate
  expect_status 2 "unknown flag"
  expect_in "$err" "unknown argument '--frobnicate'" "unknown flag message"
  expect_no_calls "unknown flag"

  invoke --help
  expect_status 0 "--help"
  expect_in "$out" "--service-account" "--help lists the flags"
  expect_no_calls "--help"
}

test_missing_tools() {
  # Only gcloud, terraform and curl stand-ins, plus the two utilities the script calls
  # before it checks its tools: docker and gh are missing.
  local sparse="$work/sparse"
  mkdir -p "$sparse"
  local tool
  for tool in gcloud terraform curl; do ln -sf "$here/fakes/fake_tool.sh" "$sparse/$tool"; done
  for tool in basename dirname; do ln -sf "$(command -v "$tool")" "$sparse/$tool"; done
  : >"$FAKE_LOG"
  status=0
  env PATH="$sparse" GITHUB_REPOSITORY= "$bash_bin" "$script" "${common[@]}" --configure-github \
    >"$work/out" 2>"$work/err" || status=$?
  out=$(cat "$work/out")
  err=$(cat "$work/err")
  expect_status 3 "missing tools"
  expect_in "$err" "missing required tools: docker gh" "missing tools are named together"
  expect_no_calls "missing tools"
}

test_normal_run() {
  invoke "${common[@]}" --configure-github
  expect_status 0 "normal run"
  local want got
  want=$(
    cat <<'EOF'
gcloud storage buckets describe
terraform init
gcloud artifacts repositories describe
gcloud secrets list --project
gcloud secrets versions list
gcloud secrets versions list
gcloud auth configure-docker us-central1-docker.pkg.dev
docker buildx build
terraform apply
terraform output
terraform output
terraform output
gcloud run services describe
curl
terraform output
terraform output
gh variable set GCP_PROJECT
gh variable set GCP_REGION
gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER
gh variable set GCP_DEPLOYER_SERVICE_ACCOUNT
gh variable set ORCHESTRA_RUNTIME_SERVICE_ACCOUNT
EOF
  )
  got=$(call_kinds)
  if [[ $got == "$want" ]]; then pass "normal run calls the tools in the documented order"; else
    fail "normal run order differs"
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/    /' >&2
  fi

  local log
  log=$(calls)
  expect_in "$log" "terraform -chdir=$root/deploy/terraform init -input=false -reconfigure -backend-config=bucket=my-proj-1-orchestra-tfstate -backend-config=prefix=orchestra/dev" "init: backend per environment"
  expect_in "$log" "docker buildx build --file $root/deploy/Dockerfile --platform linux/amd64 --build-arg ORCHESTRA_GIT_COMMIT=abc123def456 --build-arg ORCHESTRA_TUNING=baseline --tag $image --push $root" "build: amd64, commit, tag, push"
  local apply
  apply=$(grep '^terraform .* apply ' "$FAKE_LOG" || true)
  expect_in "$apply" "-input=false -auto-approve -var-file=envs/dev.tfvars" "apply: non-interactive, dev tfvars"
  expect_in "$apply" "-var project_id=my-proj-1 -var region=us-central1 -var image=$image -var runtime_service_account_id=orchestra-dev-run -var github_repository=example-org/orchestra -var state_bucket=my-proj-1-orchestra-tfstate" "apply: project, region, image, account, repository, bucket"
  expect_not_in "$apply" "-target" "apply: no -target when the repository exists"
  expect_in "$log" "gcloud run services describe orchestra-dev --region us-central1 --project my-proj-1 --format value(status.latestReadyRevisionName,status.latestCreatedRevisionName)" "wait: reads ready and created revisions"
  expect_in "$log" "curl -fsS --max-time 10 --retry 6 --retry-delay 5 --retry-all-errors https://orchestra-dev-abc123-uc.a.run.app/readyz" "smoke test: GET /readyz"
  expect_in "$log" "gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER --env dev --repo example-org/orchestra --body projects/123/locations/global/workloadIdentityPools/orchestra-dev-gh/providers/github" "gh: WIF provider variable"
  expect_in "$out" "dev deployed: https://orchestra-dev-abc123-uc.a.run.app" "reports the URL"

  # A full e-mail in the same project is accepted and reduced to its account id.
  invoke "${common[@]}" --service-account orchestra-dev-run@my-proj-1.iam.gserviceaccount.com --env staging
  expect_status 0 "e-mail service account"
  expect_in "$(calls)" "-var-file=envs/staging.tfvars" "staging tfvars"
  expect_in "$(calls)" "-var runtime_service_account_id=orchestra-dev-run " "e-mail reduced to the account id"

  # First deployment: the repository does not exist yet, so it is created before the push.
  FAKE_REPO_EXISTS=0 invoke "${common[@]}"
  expect_status 0 "first deployment"
  got=$(call_kinds | tr '\n' '|')
  expect_in "$got" "gcloud artifacts repositories describe|terraform apply -target|gcloud secrets list --project|" "first deployment: targeted apply, then the secrets check"
  expect_in "$(calls)" "apply -input=false -auto-approve -target=google_artifact_registry_repository.orchestra -target=google_secret_manager_secret.env -var-file=envs/dev.tfvars" "first deployment: creates the repository and the secrets"

  # CI deploys an image it built and promoted: no build, no docker.
  invoke "${common[@]}" --skip-build
  expect_status 0 "--skip-build"
  expect_not_in "$(calls)" "docker " "--skip-build runs no docker"
  expect_not_in "$(calls)" "configure-docker" "--skip-build configures no docker credentials"
  expect_not_in "$(calls)" "gh " "gh runs only with --configure-github"

  # Behind Cloud Run IAM: the smoke test sends an identity token and never prints it.
  FAKE_PUBLIC=false invoke "${common[@]}" --skip-build
  expect_status 0 "private service"
  expect_in "$(calls)" "gcloud auth print-identity-token" "private service: identity token"
  expect_in "$(calls)" "-H Authorization: Bearer fake-identity-token" "private service: token sent"
  expect_not_in "$out$err" "fake-identity-token" "private service: token not printed"
}

test_failures() {
  FAKE_BUCKET_EXISTS=0 invoke "${common[@]}"
  expect_status 1 "missing state bucket"
  expect_in "$err" "gcloud storage buckets create gs://my-proj-1-orchestra-tfstate" "missing bucket: says how to create it"
  expect_not_in "$(calls)" "terraform" "missing bucket: terraform never ran"

  FAKE_READY=rev-00001 FAKE_CREATED=rev-00002 invoke "${common[@]}" --timeout 1
  expect_status 1 "revision never ready"
  expect_in "$err" "revision rev-00002 not ready" "not ready: names the revision"
  expect_not_in "$(calls)" "curl" "not ready: no smoke test"

  FAKE_FAIL="curl" invoke "${common[@]}"
  expect_status 1 "smoke test fails"
  expect_in "$err" "step failed: smoke test" "smoke test failure is reported as such"

  FAKE_EMPTY_SECRET=orchestra-dev-openai-api-key invoke "${common[@]}"
  expect_status 1 "secret without a value"
  expect_in "$err" "gcloud secrets versions add orchestra-dev-openai-api-key --project my-proj-1 --data-file=-" "empty secret: says how to add the value"
  expect_not_in "$err" "versions add orchestra-dev-api-key" "empty secret: names only the empty one"
  expect_not_in "$(calls)" "docker " "empty secret: nothing is built"
  expect_not_in "$(calls)" "-auto-approve -var-file" "empty secret: nothing is applied"

  FAKE_FAIL="docker buildx" invoke "${common[@]}"
  expect_status 1 "build fails"
  expect_not_in "$(calls)" "-auto-approve -var-file" "build failure: nothing is applied"
}

case ${1:-} in
  dry_run) test_dry_run ;;
  bad_arguments) test_bad_arguments ;;
  missing_tools) test_missing_tools ;;
  normal_run) test_normal_run ;;
  failures) test_failures ;;
  *)
    echo "usage: $0 dry_run|bad_arguments|missing_tools|normal_run|failures" >&2
    exit 2
    ;;
esac

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
