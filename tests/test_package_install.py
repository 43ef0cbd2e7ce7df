"""The package declares what it imports: a fresh venv from the package and its constraints alone.

``pip install -c constraints/airflow-py3.11.txt <repo>`` (not editable, nothing else) into a new
virtual environment, then, in that environment: parse every example DAG with ``DagBag`` (no import
error) and run the local DAG's ``prepare`` task code, which imports numpy and pyarrow. Uses pip's
cache, so it costs about a minute once the wheels are cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints" / "airflow-py3.11.txt"
INSTALL_TIMEOUT_S = 900
CHECK_TIMEOUT_S = 300

# Runs inside the fresh venv: parse the examples, then run `prepare` on a tiny graph.
CHECK = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag

    dags_folder, out_dir = sys.argv[1], sys.argv[2]
    bag = DagBag(dag_folder=dags_folder)
    result = {"import_errors": {k: str(v)[-500:] for k, v in bag.import_errors.items()},
              "dag_ids": sorted(bag.dag_ids)}
    prepare = bag.dags["graphstorm_local_e2e"].get_task("prepare")
    params = {name: p.value if hasattr(p, "value") else p for name, p in prepare.dag.params.items()}
    params.update({"base_uri": "file://" + out_dir, "num_papers": 60})
    from types import SimpleNamespace
    run = SimpleNamespace(conf={"num_papers": 60}, logical_date=None)  # what the task gets from its run
    result["prepare"] = prepare.python_callable(params=params, dag_run=run, dag=prepare.dag,
                                                run_id="manual__fresh-venv")
    print("RESULT " + json.dumps(result))
    """
)


def _fresh_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # pip's cache (default location) is used; nothing but the package and its constraints.
    proc = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(CONSTRAINTS),
            str(REPO),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


@pytest.mark.e2e
def test_fresh_venv_from_package_and_constraints_parses_dags_and_runs_prepare(tmp_path):
    venv = _fresh_venv(tmp_path)
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CHECK, str(REPO / "dags"), str(out)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=CHECK_TIMEOUT_S,
    )
    assert "ModuleNotFoundError" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["import_errors"] == {}
    example_files = sorted(p.stem for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
    assert "graphstorm_local_e2e" in result["dag_ids"]
    assert len(result["dag_ids"]) >= len(example_files)
    prepared = result["prepare"]
    raw = Path(prepared["raw_graph_s3"].removeprefix("file://"))
    assert any(raw.rglob("*.parquet")), sorted(raw.rglob("*"))
    assert (raw / prepared["graph_config_file"]).is_file()
    assert Path(prepared["train_yaml_s3"].removeprefix("file://")).is_file()
