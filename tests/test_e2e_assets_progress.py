"""The local example DAG with real GraphStorm (``file://``, no AWS): one readable log line per
epoch while training runs, the metrics and learning curve in the train XCom, and every output an
asset event with its job, graph and (for the model) metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_operator_assets import asset_events
from tests.test_operators_sagemaker import task_states, xcoms

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "graphstorm_local_e2e.py"
CONF = {"num_papers": 800, "num_epochs": 2, "hidden_size": 16, "seed": 2, "graph_name": "acm_assets_e2e"}


def test_local_run_shows_epochs_returns_metrics_and_records_assets(load_dag, tmp_path, monkeypatch, capfd):
    for name in ("AWS_ENDPOINT_URL", "AIRFLOW_CONN_AWS_DEFAULT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    base = f"file://{tmp_path}/runs"
    dag_run = load_dag(DAG_FILE.read_text(), "graphstorm_local_e2e").test(run_conf={**CONF, "base_uri": base})
    assert dag_run.state == "success", task_states(dag_run)
    output = capfd.readouterr().out

    train = xcoms(dag_run, "train")
    epochs = train["metrics"]["epochs"]
    assert [e["epoch"] for e in epochs] == [0, 1]
    assert train["metrics"]["seed"] == CONF["seed"]
    curve = Path(train["learning_curve_s3"].removeprefix("file://"))
    assert curve.parent == Path(train["model_artifact_s3"].removeprefix("file://"))
    assert curve.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    for record in epochs:  # logged as the epoch ended, in the train task's log
        assert f"epoch {record['epoch']}: loss " in output

    events = {e["aliases"][0]: e for e in asset_events() if e["run_id"] == dag_run.run_id}
    assert sorted(events) == ["graphstorm-embeddings", "graphstorm-graph", "graphstorm-model", "graphstorm-predictions"]
    model = events["graphstorm-model"]
    assert model["uri"] == train["model_artifact_s3"].rstrip("/")
    assert model["extra"]["job_name"] == train["job_name"]
    assert model["extra"]["graph_name"] == CONF["graph_name"]
    assert model["extra"]["metrics"]["epochs"] == 2
    assert model["extra"]["metrics"]["test"] == epochs[-1]["test"]
    assert events["graphstorm-predictions"]["uri"] == xcoms(dag_run, "infer")["output_prediction_s3"].rstrip("/")
