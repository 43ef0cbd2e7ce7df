#!/usr/bin/env bash
# Static checks, the first step of scripts/run_tests.sh (a lint or type error fails CI in seconds):
#   ruff format --check and ruff check (graphstorm_provider/, entrypoints/, tests/, bench/, dags/),
#   mypy --strict (graphstorm_provider/ and entrypoints/; configured in pyproject.toml),
#   the shell and Docker linters (scripts/*.sh and docker/*.sh; docker/Dockerfile).
# Every tool is pinned by constraints/lint.txt and installed into the Airflow venv by
# scripts/setup_airflow_env.sh; the GraphStorm runtime venv is not needed.
# Usage: scripts/lint.sh            check (exit 1 on any finding)
#        scripts/lint.sh --fix      apply ruff's formatter and safe fixes first, then check
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup_airflow_env.sh  # one line when up to date; creates the venv on a fresh clone
bin="${GRAPHSTORM_LINT_BIN:-$root/.venv/bin}"
status=0

python_dirs=(graphstorm_provider entrypoints tests bench dags)
if [[ "${1:-}" == "--fix" ]]; then
  "$bin/ruff" format --force-exclude "${python_dirs[@]}"
  "$bin/ruff" check --fix --force-exclude "${python_dirs[@]}" || true
fi

echo "== ruff format --check"
"$bin/ruff" format --check --force-exclude "${python_dirs[@]}" || status=1
echo "== ruff check"
"$bin/ruff" check --force-exclude "${python_dirs[@]}" || status=1

echo "== mypy (strict: graphstorm_provider, entrypoints)"
"$bin/mypy" || status=1

echo "== shellcheck"
"$bin/shellcheck" scripts/*.sh docker/*.sh || status=1
echo "== hadolint"
"$bin/hadolint" docker/Dockerfile || status=1

if [[ $status -ne 0 ]]; then
  echo "lint: FAILED" >&2
else
  echo "lint: ok"
fi
exit "$status"
