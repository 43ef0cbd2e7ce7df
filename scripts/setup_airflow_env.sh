#!/usr/bin/env bash
# Creates (or reuses) the Airflow-side virtual environment: Airflow, the Amazon provider, this
# provider (editable) and the test tools, all pinned by constraints/airflow-py3.11.txt, and the lint
# tools (ruff, mypy and stubs, shellcheck, hadolint) pinned by constraints/lint.txt.
# Usage: scripts/setup_airflow_env.sh [VENV_DIR]   (default: <checkout>/.venv)
# Idempotent: a stamp holding the hash of the pins and setup.cfg makes a second run take ~1 s.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

constraints="$root/constraints/airflow-py3.11.txt"
lint_pins="$root/constraints/lint.txt"
stamp="$venv/.graphstorm-airflow-stamp"
want="$(cat "$constraints" "$lint_pins" "$root/setup.cfg" | sha256sum | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "Airflow environment up to date: $venv"
  exit 0
fi

echo "Creating the Airflow environment in $venv (pinned by $constraints) ..."
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade "pip>=24"
"$venv/bin/pip" install --quiet --disable-pip-version-check -c "$constraints" \
  -e "${root}[test]" "apache-airflow-providers-amazon[aiobotocore]" pyarrow numpy -r "$lint_pins"
echo "$want" > "$stamp"
echo "Airflow environment ready: $venv"
