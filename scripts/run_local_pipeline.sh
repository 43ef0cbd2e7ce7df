#!/usr/bin/env bash
# The README's main command: from a fresh clone, run GraphStorm end to end from Airflow on this
# machine (no AWS account, no Docker) and print the test accuracy and where the outputs are.
#
#   bash scripts/run_local_pipeline.sh [--base-uri URI] [--conf '{"num_epochs": 5, ...}']
#
#   1. creates (or reuses) both environments: the Airflow venv (.venv) and the GraphStorm
#      runtime (.venv-runtime); each is skipped in about a second when already up to date;
#   2. makes a throwaway AIRFLOW_HOME (sqlite) and runs `airflow db migrate`;
#   3. runs the example DAG dags/graphstorm_local_e2e.py with `airflow dags test`: synthetic ACM
#      graph -> GConstruct -> train -> infer, all through the same entry points SageMaker runs;
#   4. prints the test accuracy and the model, embeddings and predictions locations.
#
# Outputs go under <base-uri>/<run id>/ (default file:///tmp/graphstorm-airflow/runs, or
# $GRAPHSTORM_E2E_BASE_URI). --conf takes any of the DAG's params as JSON (see the DAG's docs).
# KEEP_AIRFLOW_HOME=1 keeps the Airflow home (logs, metadata DB) instead of deleting it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

base_uri="${GRAPHSTORM_E2E_BASE_URI:-file:///tmp/graphstorm-airflow/runs}"
extra_conf='{}'
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base-uri) base_uri="${2:?--base-uri needs a value}"; shift 2 ;;
    --conf) extra_conf="${2:?--conf needs a JSON object}"; shift 2 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_local_pipeline.sh: error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

start=$SECONDS
step() { printf '\n==> [%3ds] %s\n' "$((SECONDS - start))" "$*"; }

step "Environments"
bash scripts/setup_airflow_env.sh
bash scripts/setup_runtime.sh
export GRAPHSTORM_RUNTIME_PYTHON="$root/.venv-runtime/bin/python"
export PATH="$root/.venv/bin:$PATH"

# The run's conf: the base URI plus anything given with --conf (validated here, before Airflow).
conf="$("$root/.venv/bin/python" - "$base_uri" "$extra_conf" <<'EOF'
import json, sys
base, extra = sys.argv[1], sys.argv[2]
try:
    conf = json.loads(extra)
except json.JSONDecodeError as err:
    sys.exit(f"run_local_pipeline.sh: error: --conf is not valid JSON ({err})")
if not isinstance(conf, dict):
    sys.exit("run_local_pipeline.sh: error: --conf must be a JSON object of DAG params")
conf.setdefault("base_uri", base)
print(json.dumps(conf))
EOF
)"

step "Throwaway Airflow home"
airflow_home="$(mktemp -d -t graphstorm-airflow-home-XXXXXX)"
cleanup() { [[ "${KEEP_AIRFLOW_HOME:-0}" == 1 ]] || rm -rf "$airflow_home"; }
trap cleanup EXIT
export AIRFLOW_HOME="$airflow_home"
export AIRFLOW__CORE__DAGS_FOLDER="$root/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$airflow_home/airflow.db"
echo "AIRFLOW_HOME=$airflow_home"
airflow db migrate >"$airflow_home/db-migrate.log" 2>&1 || { cat "$airflow_home/db-migrate.log"; exit 1; }

step "airflow dags test graphstorm_local_e2e  (conf: $conf)"
run_log="$airflow_home/dags-test.log"
marker="$(date -u +%s)"
set +e
airflow dags test graphstorm_local_e2e -c "$conf" 2>&1 | tee "$run_log"
status=${PIPESTATUS[0]}
set -e

step "Result"
# The report task writes <base>/<run id>/summary.json; pick the one this run wrote.
"$root/.venv/bin/python" - "$conf" "$marker" "$status" "$run_log" <<'EOF'
import json, sys
from graphstorm_provider.data import storage

conf, marker, status, run_log = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
base = conf["base_uri"].rstrip("/")
summaries = [f for f in storage.list_files(base) if f.endswith("/summary.json")]
fresh = []
for uri in summaries:
    data = json.loads(storage.read_bytes(uri))
    fresh.append((uri, data))
# The run id holds the run's start time; the newest summary under the base is this run's.
fresh.sort(key=lambda item: item[0])
mine = [item for item in fresh if item[1].get("run_prefix", "").startswith(base)]
if status != 0 or not mine:
    print(f"The pipeline FAILED (airflow dags test exit code {status}); see the log above.")
    sys.exit(status or 1)
uri, s = max(mine, key=lambda item: item[1].get("run_prefix", ""))
print(f"Test accuracy: {s['test_accuracy']:.4f} on {s['num_test']} test papers "
      f"(chance {s['chance']:.2f}; predictions for {s['num_test_predicted']}, embeddings for {s['num_test_embedded']})")
print(f"Model:        {s['model']}")
print(f"Embeddings:   {s['embeddings']}")
print(f"Predictions:  {s['predictions']}")
print(f"Summary:      {uri}")
EOF
printf '\nDone in %ds.\n' "$((SECONDS - start))"
