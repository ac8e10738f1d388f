#!/usr/bin/env bash
# Stand-in for gcloud, terraform, docker, gh and curl in the deploy script's tests
# (test_deploy_script.sh links it under each name). Records its name and arguments, one
# line per call, arguments joined by single spaces, in $FAKE_LOG and answers the few queries the script reads. Never touches the
# network or the cloud.
#   FAKE_BUCKET_EXISTS, FAKE_REPO_EXISTS  1 (default) or 0
#   FAKE_READY, FAKE_CREATED              revision names `gcloud run services describe` prints
#   FAKE_PUBLIC                           terraform output invoker_public (default true)
#   FAKE_SECRETS                          secrets `gcloud secrets list` prints
#   FAKE_EMPTY_SECRET                     a secret whose `versions list` prints nothing
#   FAKE_FAIL                             "tool subcommand" that exits 1, e.g. "terraform apply"
set -euo pipefail

tool=$(basename "$0")
: "${FAKE_LOG:?FAKE_LOG must name the call log}"
printf '%s %s\n' "$tool" "$*" >>"$FAKE_LOG"

args=" $* "
if [[ -n ${FAKE_FAIL:-} && " $tool$args" == *" $FAKE_FAIL "* ]]; then
  echo "$tool: failing as asked (FAKE_FAIL=$FAKE_FAIL)" >&2
  exit 1
fi

case $tool in
  gcloud)
    case $args in
      *" storage buckets describe "*) [[ ${FAKE_BUCKET_EXISTS:-1} == 1 ]] && echo "fake-bucket" || exit 1 ;;
      *" artifacts repositories describe "*) [[ ${FAKE_REPO_EXISTS:-1} == 1 ]] && echo "fake-repo" || exit 1 ;;
      *" run services describe "*) printf '%s\t%s\n' "${FAKE_READY-rev-00002}" "${FAKE_CREATED-rev-00002}" ;;
      *" auth print-identity-token "*) echo "fake-identity-token" ;;
      *" secrets list "*)
        read -r -a names <<<"${FAKE_SECRETS-orchestra-dev-api-key orchestra-dev-openai-api-key}"
        printf '%s\n' "${names[@]}"
        ;;
      *" secrets versions list "*) [[ " $* " == *" ${FAKE_EMPTY_SECRET:-none} "* ]] || echo "1" ;;
    esac
    ;;
  terraform)
    if [[ $args == *" output -raw "* ]]; then
      name=${*: -1}
      case $name in
        service_name) printf 'orchestra-dev' ;;
        service_url) printf 'https://orchestra-dev-abc123-uc.a.run.app' ;;
        invoker_public) printf '%s' "${FAKE_PUBLIC:-true}" ;;
        workload_identity_provider) printf 'projects/123/locations/global/workloadIdentityPools/orchestra-dev-gh/providers/github' ;;
        deployer_service_account_email) printf 'orchestra-dev-deploy@my-proj-1.iam.gserviceaccount.com' ;;
        *) echo "fake terraform: no output $name" >&2; exit 1 ;;
      esac
    fi
    ;;
  curl) echo '{"status":"ready","checks":[]}' ;;
esac
exit 0
