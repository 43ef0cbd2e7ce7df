#!/usr/bin/env bash
# The test command: sets up everything the suite needs on a clean machine, then runs it.
#   0. scripts/lint.sh: ruff, mypy, shellcheck, hadolint (seconds; needs only the Airflow environment),
#   1. the Airflow environment (.venv), 2. the GraphStorm runtime (.venv-runtime),
#   3. PostgreSQL 15 and headless Chromium for the real-deployment tests (Debian packages),
#   4. a container engine and the job image (podman + runc; skipped with the reason where none can run),
#   5. pytest over tests/ (moto server, real GraphStorm runs, real containers), in
#      GRAPHSTORM_TEST_WORKERS (default 2) pytest-xdist workers, grouped by module and containers
#      (--dist loadgroup picks tests/parallel_groups.py's scheduler, which says why).
# Extra arguments go to pytest, e.g. `bash scripts/run_tests.sh -k compose`; `-n 0` runs in one process.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/lint.sh   # first: it creates the Airflow environment (step 1) when missing
bash scripts/setup_airflow_env.sh
bash scripts/setup_runtime.sh
bash scripts/setup_test_services.sh

# The container engine is optional for the rest of the suite: only "unavailable here" (exit 3)
# skips the container tests, with the reason printed; any other setup failure fails the run.
engine_status=0
engine_out=$(bash scripts/setup_container_engine.sh) || engine_status=$?
echo "$engine_out"
case $engine_status in
  0) bash docker/build_image.sh ;;
  3) export GRAPHSTORM_CONTAINER_ENGINE_UNAVAILABLE="${engine_out##*$'\n'}"
     echo "NOTE: $GRAPHSTORM_CONTAINER_ENGINE_UNAVAILABLE; container tests will be skipped." ;;
  *) echo "container engine setup failed (exit $engine_status)" >&2; exit "$engine_status" ;;
esac

export GRAPHSTORM_RUNTIME_PYTHON="$root/.venv-runtime/bin/python"
exec .venv/bin/python -m pytest -ra --durations=20 -n "${GRAPHSTORM_TEST_WORKERS:-2}" --dist loadgroup "$@"
