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
# Outputs go under <base-uri>/<logical date>/ (default file:///tmp/graphstorm-airflow/runs, or
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
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_local_pipeline.sh: error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

# The run's conf: the base URI plus anything given with --conf (checked before anything is installed).
conf="$(python3 - "$base_uri" "$extra_conf" <<'EOF'
import json, sys
base, extra = sys.argv[1], sys.argv[2]
try:
    conf = json.loads(extra)
except json.JSONDecodeError as err:
    print(f"run_local_pipeline.sh: error: --conf is not valid JSON ({err})", file=sys.stderr); sys.exit(2)
if not isinstance(conf, dict):
    print("run_local_pipeline.sh: error: --conf must be a JSON object of DAG params", file=sys.stderr); sys.exit(2)
conf.setdefault("base_uri", base)
print(json.dumps(conf))
EOF
)"

start=$SECONDS
step() { printf '\n==> [%3ds] %s\n' "$((SECONDS - start))" "$*"; }

step "Environments (Airflow: .venv, GraphStorm runtime: .venv-runtime)"
# Both at once: on a fresh clone they are mostly downloads, which overlap well.
env_logs="$(mktemp -d -t graphstorm-env-logs-XXXXXX)"
bash scripts/setup_airflow_env.sh >"$env_logs/airflow.log" 2>&1 & airflow_pid=$!
bash scripts/setup_runtime.sh >"$env_logs/runtime.log" 2>&1 & runtime_pid=$!
env_failed=0
wait "$airflow_pid" || env_failed=1
wait "$runtime_pid" || env_failed=1
cat "$env_logs/airflow.log" "$env_logs/runtime.log"
rm -rf "$env_logs"
if [[ $env_failed -ne 0 ]]; then
  echo "run_local_pipeline.sh: error: creating the environments failed (see above)" >&2
  exit 1
fi
export GRAPHSTORM_RUNTIME_PYTHON="$root/.venv-runtime/bin/python"
export PATH="$root/.venv/bin:$PATH"


step "Throwaway Airflow home"
airflow_home="$(mktemp -d -t graphstorm-airflow-home-XXXXXX)"
cleanup() { [[ "${KEEP_AIRFLOW_HOME:-0}" == 1 ]] || rm -rf "$airflow_home"; }
trap cleanup EXIT
export AIRFLOW_HOME="$airflow_home"
export AIRFLOW__CORE__DAGS_FOLDER="$root/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$airflow_home/airflow.db"
echo "AIRFLOW_HOME=$airflow_home"
# `airflow db migrate` costs ~30 s: do it once per Airflow version and keep the migrated (empty)
# database next to the Airflow environment; each run gets a fresh copy of it.
airflow_dists=("$root/.venv/lib"/python3*/site-packages/apache_airflow-[0-9]*.dist-info)
airflow_dist="$(basename "${airflow_dists[0]}")"
db_template="$root/.venv/.graphstorm-e2e-${airflow_dist%.dist-info}.sqlite"
if [[ -f "$db_template" ]]; then
  cp "$db_template" "$airflow_home/airflow.db"
  echo "metadata database: copy of $db_template (already migrated)"
else
  airflow db migrate >"$airflow_home/db-migrate.log" 2>&1 || { cat "$airflow_home/db-migrate.log"; exit 1; }
  cp "$airflow_home/airflow.db" "$db_template.tmp" && mv "$db_template.tmp" "$db_template"
fi

step "airflow dags test graphstorm_local_e2e  (conf: $conf)"
run_log="$airflow_home/dags-test.log"
set +e
airflow dags test graphstorm_local_e2e -c "$conf" 2>&1 | tee "$run_log"
status=${PIPESTATUS[0]}
set -e

step "Result"
# The report task logs "GraphStorm e2e summary: <uri>" (the summary.json of this run).
summary_uri="$(grep -o 'GraphStorm e2e summary: [^ ]*' "$run_log" | tail -1 | cut -d' ' -f4 || true)"
if [[ $status -ne 0 || -z "$summary_uri" ]]; then
  echo "The pipeline FAILED (airflow dags test exit code $status); see the log above."
  KEEP_AIRFLOW_HOME=1
  echo "Airflow home kept for inspection: $airflow_home"
  exit $(( status == 0 ? 1 : status ))
fi
"$root/.venv/bin/python" - "$summary_uri" <<'EOF'
import json, sys
from graphstorm_provider.data import storage

uri = sys.argv[1]
s = json.loads(storage.read_bytes(uri))
print(f"Test accuracy: {s['test_accuracy']:.4f} on {s['num_test']} test papers (chance {s['chance']:.2f}); "
      f"predictions for {s['num_test_predicted']}, embeddings for {s['num_test_embedded']} of them")
print(f"Model:        {s['model']}")
print(f"Embeddings:   {s['embeddings']}")
print(f"Predictions:  {s['predictions']}")
print(f"Summary:      {uri}")
EOF
printf '\nDone in %ds.\n' "$((SECONDS - start))"
