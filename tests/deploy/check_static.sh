#!/usr/bin/env bash
# Static checks of the deployment files.
#
#   check_static.sh shellcheck     every shell script: git ls-files '*.sh', .ci/run, and the
#                                  not yet committed *.sh under deploy/ and tests/deploy/
#   check_static.sh terraform_fmt  terraform fmt -check -recursive deploy/terraform
#                                  (exit 77 = skipped, when terraform is not installed)
#   check_static.sh yamllint       yamllint --strict on .github/workflows, the image config and
#                                  the Kubernetes manifests
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "FAIL: $1 is not installed (scripts/setup.sh installs it)" >&2
    exit 1
  }
}

case ${1:-} in
  shellcheck)
    need shellcheck
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      mapfile -t scripts < <({
        git ls-files '*.sh'
        git ls-files --others --exclude-standard -- 'deploy/*.sh' 'tests/deploy/*.sh'
      } | sort -u)
    else
      mapfile -t scripts < <(find . -name '*.sh' -not -path './build/*' -not -path '*/node_modules/*' | sort)
    fi
    [[ -f .ci/run ]] && scripts+=(.ci/run)
    for must in deploy/scripts/apply_performance_optimizations.sh deploy/scripts/stage_rootfs.sh \
      tests/deploy/test_deploy_script.sh; do
      printf '%s\n' "${scripts[@]}" | grep -qx "$must" || {
        echo "FAIL: $must was not found among the scripts to check" >&2
        exit 1
      }
    done
    echo "shellcheck on ${#scripts[@]} scripts:"
    printf '  %s\n' "${scripts[@]}"
    shellcheck --external-sources "${scripts[@]}"
    echo "shellcheck: clean"
    ;;
  terraform_fmt)
    if ! command -v terraform >/dev/null 2>&1; then
      echo "SKIPPED: terraform is not installed, so 'terraform fmt -check -recursive' did not run."
      echo "The structural checks (deploy.terraform_structure) run without it."
      exit 77
    fi
    # No provider or backend is needed for fmt; keep a machine-wide CLI config out of it.
    TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff deploy/terraform
    echo "terraform fmt: clean"
    ;;
  yamllint)
    need yamllint
    mapfile -t manifests < <(find deploy/kubernetes -name '*.yaml' | sort)
    files=(.github/workflows/*.yml deploy/orchestra.cloudrun.yaml "${manifests[@]}")
    yamllint --strict -c tests/deploy/yamllint.yaml "${files[@]}"
    echo "yamllint: clean (${files[*]})"
    ;;
  *)
    echo "usage: $0 shellcheck|terraform_fmt|yamllint" >&2
    exit 2
    ;;
esac
