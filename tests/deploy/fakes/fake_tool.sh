#!/usr/bin/env bash
# Stand-in for gcloud, terraform, docker, gh, curl and git in the deploy script's tests
# (test_deploy_script.sh links it under each name). Records its name and arguments, one
# line per call, arguments joined by single spaces, in $FAKE_LOG, and answers the queries
# the script reads the way the real tools do (values on stdout, errors on stderr, exit 1).
# Never touches the network or the cloud.
#   FAKE_ACCOUNT            active gcloud account (default dev@example.com; empty = none)
#   FAKE_PROJECT            gcloud config project (default my-proj-1; empty = unset)
#   FAKE_RUN_REGION         gcloud config run/region (default unset)
#   FAKE_ADC                1 (default) or 0: application-default credentials
#   FAKE_SERVICE            exists (default), missing (until a full terraform apply) or
#                           denied: `run services describe`
#   FAKE_LIVE_IMAGE         image the existing service runs
#   FAKE_READY, FAKE_CREATED  revision names `run services describe` prints
#   FAKE_BUCKET             exists (default), missing or denied
#   FAKE_REPO_EXISTS        1 (default) or 0
#   FAKE_MISSING_SECRETS    secrets `secrets describe` does not find (space-separated)
#   FAKE_EMPTY_SECRET       a secret whose `versions list` prints nothing
#   FAKE_TF_GITHUB_REPO     terraform output github_repository (default empty)
#   FAKE_PUBLIC             true (default) or false: curl gets 403 without an identity token
#   FAKE_READYZ_CODE        status /readyz answers (default 200)
#   FAKE_ORIGIN             git remote get-url origin (default none)
#   FAKE_FAIL               "tool subcommand" that exits 1, e.g. "terraform apply"
set -euo pipefail

tool=${0##*/}
: "${FAKE_LOG:?FAKE_LOG must name the call log}"
printf '%s %s\n' "$tool" "$*" >>"$FAKE_LOG"

args=" $* "
if [[ -n ${FAKE_FAIL:-} && " $tool$args" == *" $FAKE_FAIL "* ]]; then
  echo "$tool: failing as asked (FAKE_FAIL=$FAKE_FAIL)" >&2
  exit 1
fi

# The value of --format value(a,b,...) as a list of field names.
format_fields() {
  local prev="" a
  for a in "$@"; do
    if [[ $prev == --format ]]; then
      a=${a#value(}
      a=${a%)}
      tr ',' '\n' <<<"$a"
      return
    fi
    prev=$a
  done
}

service_field() {
  case $1 in
    status.url) printf '%s' "https://orchestra-dev-abc123-uc.a.run.app" ;;
    status.latestReadyRevisionName) printf '%s' "${FAKE_READY-rev-00002}" ;;
    status.latestCreatedRevisionName) printf '%s' "${FAKE_CREATED-rev-00002}" ;;
    "spec.template.spec.containers[0].image") printf '%s' "${FAKE_LIVE_IMAGE-us-central1-docker.pkg.dev/my-proj-1/orchestra-dev/orchestra:000000000000}" ;;
    *) printf '?' ;;
  esac
}

case $tool in
  gcloud)
    case $args in
      *" auth list "*) [[ -z ${FAKE_ACCOUNT-dev@example.com} ]] || echo "${FAKE_ACCOUNT-dev@example.com}" ;;
      *" config get-value project "*)
        if [[ -n ${FAKE_PROJECT-my-proj-1} ]]; then echo "${FAKE_PROJECT-my-proj-1}"; else echo "(unset)" >&2; fi
        ;;
      *" config get-value run/region "*)
        if [[ -n ${FAKE_RUN_REGION:-} ]]; then echo "$FAKE_RUN_REGION"; else echo "(unset)" >&2; fi
        ;;
      *" auth application-default print-access-token "*)
        if [[ ${FAKE_ADC:-1} == 1 ]]; then echo "fake-adc-token"; else
          echo "ERROR: (gcloud.auth.application-default.print-access-token) Your default credentials were not found." >&2
          exit 1
        fi
        ;;
      *" storage buckets describe "*)
        case ${FAKE_BUCKET:-exists} in
          exists) echo "fake-bucket" ;;
          missing)
            echo "ERROR: (gcloud.storage.buckets.describe) gs://x not found: 404." >&2
            exit 1
            ;;
          denied)
            echo "ERROR: (gcloud.storage.buckets.describe) HTTPError 403: dev@example.com does not have storage.buckets.get access to the Google Cloud Storage bucket. Permission 'storage.buckets.get' denied on resource (or it may not exist)." >&2
            exit 1
            ;;
        esac
        ;;
      *" artifacts repositories describe "*)
        if [[ ${FAKE_REPO_EXISTS:-1} == 1 ]]; then echo "fake-repo"; else
          echo "ERROR: (gcloud.artifacts.repositories.describe) NOT_FOUND: Requested entity was not found." >&2
          exit 1
        fi
        ;;
      *" run services describe "*)
        state=${FAKE_SERVICE:-exists}
        # A missing service exists once a full terraform apply (not a targeted one) ran, and
        # runs the image that apply was given.
        created=$(grep '^terraform .* apply .*-auto-approve -var-file' "$FAKE_LOG" | sed -n 's/.* -var image=\([^ ]*\) .*/\1/p' | tail -1 || true)
        if [[ $state == missing && -n $created ]]; then
          state=exists
          FAKE_LIVE_IMAGE=$created
        fi
        case $state in
          missing)
            echo "ERROR: (gcloud.run.services.describe) Cannot find service [orchestra-dev]" >&2
            exit 1
            ;;
          denied)
            echo "ERROR: (gcloud.run.services.describe) PERMISSION_DENIED: Permission 'run.services.get' denied on resource 'namespaces/my-proj-1/services/orchestra-dev' (or resource may not exist)." >&2
            exit 1
            ;;
        esac
        sep=""
        while read -r field; do
          printf '%s' "$sep"
          service_field "$field"
          sep=$'\t'
        done < <(format_fields "$@")
        printf '\n'
        ;;
      *" auth print-identity-token "*) echo "fake-identity-token" ;;
      *" secrets describe "*)
        for s in ${FAKE_MISSING_SECRETS:-}; do
          if [[ $args == *" secrets describe $s "* ]]; then
            echo "ERROR: (gcloud.secrets.describe) NOT_FOUND: Secret [projects/123/secrets/$s] not found or has no versions." >&2
            exit 1
          fi
        done
        echo "projects/123/secrets/x"
        ;;
      *" secrets versions list "*) [[ $args == *" ${FAKE_EMPTY_SECRET:-none} "* ]] || echo "1" ;;
    esac
    ;;
  terraform)
    if [[ $args == *" output -raw "* ]]; then
      name=${*: -1}
      case $name in
        github_repository) printf '%s' "${FAKE_TF_GITHUB_REPO:-}" ;;
        workload_identity_provider) printf 'projects/123/locations/global/workloadIdentityPools/orchestra-dev-gh/providers/github' ;;
        deployer_service_account_email) printf 'orchestra-dev-deploy@my-proj-1.iam.gserviceaccount.com' ;;
        *)
          echo "fake terraform: no output $name" >&2
          exit 1
          ;;
      esac
    elif [[ $args == *" plan "* ]]; then
      echo "Plan: 0 to add, 1 to change, 0 to destroy."
    fi
    ;;
  curl)
    body="" code=${FAKE_READYZ_CODE:-200} prev="" authorized=false
    for a in "$@"; do
      [[ $prev == -o ]] && body=$a
      [[ $prev == -H && $a == "Authorization: Bearer "* ]] && authorized=true
      prev=$a
    done
    if [[ ${FAKE_PUBLIC:-true} == false ]] && ! $authorized; then code=403; fi
    if [[ $code == 200 ]]; then text='{"status":"ready","checks":[]}'; else text="status $code"; fi
    if [[ -n $body ]]; then printf '%s' "$text" >"$body"; else printf '%s' "$text"; fi
    printf '%s' "$code"
    ;;
  git)
    case $args in
      *" rev-parse --short=12 HEAD "*) echo "abc123def456" ;;
      *" remote get-url origin "*)
        if [[ -n ${FAKE_ORIGIN:-} ]]; then echo "$FAKE_ORIGIN"; else
          echo "error: No such remote 'origin'" >&2
          exit 2
        fi
        ;;
    esac
    ;;
esac
exit 0
