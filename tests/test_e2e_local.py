"""The example DAG end to end with real GraphStorm: gconstruct -> train -> infer, locally.

Once with ``file://`` URIs (no AWS at all) and once with ``s3://`` URIs against the moto server,
where every step stages its inputs from and uploads its outputs to S3 over HTTP, signed with the
canary credentials of the AWS connection (``tests/test_canary_secret.py``), which must leave no
trace.
Each run trains a real model (about 1-3 minutes on 2 cores), so the ``file://`` run is also the
one that checks training progress and assets: one readable log line per epoch while training
runs, the metrics and learning curve in the train XCom, and every output an asset event with its
job, graph and (for the model) metrics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphstorm_provider.data import storage
from tests.test_canary_secret import canaries, connection, files_under, hits
from tests.test_operator_assets import asset_events
from tests.test_operators_sagemaker import task_states, xcoms

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "graphstorm_local_e2e.py"
DAG_ID = "graphstorm_local_e2e"
# Small and quick, still enough for the model to learn the classes.
# A graph name of its own: DistDGL shares graphs between processes by name (shared memory).
CONF = {"num_papers": 1500, "num_epochs": 3, "hidden_size": 32, "seed": 1, "graph_name": "acm_e2e_test"}


def _run_dag(load_dag, base_uri: str, s3_client=None):
    """Run the DAG with ``CONF``; return the DAG run and the report's ``summary.json``."""
    from airflow.utils.state import DagRunState

    dag = load_dag(DAG_FILE.read_text(), DAG_ID)
    run = dag.test(run_conf={**CONF, "base_uri": base_uri})
    assert run.state == DagRunState.SUCCESS, task_states(run)
    with storage.using_s3_client(s3_client):
        summaries = [uri for uri in storage.list_files(base_uri) if uri.endswith("/summary.json")]
        assert len(summaries) == 1, summaries
        return run, json.loads(storage.read_bytes(summaries[0]))


def _parquet_rows(prefix: str) -> pa.Table:
    files = [f for f in storage.list_files(prefix) if f.endswith(".parquet")]
    assert files, f"no parquet under {prefix}"
    return pa.concat_tables(pq.read_table(pa.BufferReader(storage.read_bytes(f))) for f in files)


def _check_manifests(summary: dict, s3_client=None) -> None:
    """Every step's output carries a complete manifest, and each names the manifests it read:
    gconstruct -> train -> infer (the Airflow side's reader, as a pre-flight check would use it)."""
    from graphstorm_provider.data import manifest

    graph = summary["graph"]  # the folder the run used (per attempt: graph/<try>/)
    found = {}
    for step, prefix in (
        ("gconstruct", graph),
        ("train", summary["model"]),
        ("infer", summary["embeddings"]),
        ("infer", summary["predictions"]),
    ):
        found[prefix] = m = manifest.read_manifest(prefix, s3_client)
        assert m is not None, prefix
        assert m.step == step, prefix
        assert manifest.verify_complete(prefix, m, s3_client).complete, prefix
    assert [(i.parameter, i.sha256) for i in found[summary["model"]].inputs] == [
        ("--graph-data-s3", found[graph].sha256)
    ]
    for out in (summary["embeddings"], summary["predictions"]):
        assert {(i.parameter, i.sha256) for i in found[out].inputs} == {
            ("--graph-data-s3", found[graph].sha256),
            ("--model-artifact-s3", found[summary["model"]].sha256),
        }


def _check_results(summary: dict, base_uri: str) -> None:
    run_prefix = summary["run_prefix"]
    # Everything the run wrote lives under one per-run prefix below the base.
    assert run_prefix.startswith(base_uri.rstrip("/") + "/")
    assert "/" not in run_prefix[len(base_uri.rstrip("/")) + 1 :]
    for key in ("raw_graph", "model", "embeddings", "predictions"):
        assert summary[key].startswith(run_prefix + "/"), (key, summary[key])
    assert any(uri.endswith("model.bin") for uri in storage.list_files(summary["model"]))

    # Read the outputs directly (not through the report task): raw string IDs, every test paper.
    test_ids = set(_parquet_rows(storage.join(summary["raw_graph"], "splits/test.parquet")).column("nid").to_pylist())
    papers = _parquet_rows(storage.join(summary["raw_graph"], "nodes/paper.parquet")).to_pydict()
    label_of = dict(zip(papers["nid"], papers["label"]))
    preds = _parquet_rows(storage.join(summary["predictions"], "paper")).to_pydict()
    embs = _parquet_rows(storage.join(summary["embeddings"], "paper")).to_pydict()
    assert all(isinstance(nid, str) and nid.startswith("p") for nid in preds["nid"] + embs["nid"])
    assert test_ids <= set(preds["nid"])
    assert test_ids <= set(embs["nid"])
    assert {len(e) for e in embs["emb"]} == {CONF["hidden_size"]}

    predicted = {
        nid: max(range(len(p)), key=p.__getitem__) if isinstance(p, list) else int(p)
        for nid, p in zip(preds["nid"], preds["pred"])
    }
    accuracy = sum(predicted[nid] == label_of[nid] for nid in test_ids) / len(test_ids)
    chance = 1 / len(set(label_of.values()))
    assert accuracy > 2 * chance, accuracy
    assert summary["test_accuracy"] == pytest.approx(accuracy)
    assert summary["num_test_predicted"] == summary["num_test_embedded"] == summary["num_test"] == len(test_ids)


def _check_progress_and_assets(dag_run, output: str) -> None:
    """Epoch lines in the log, metrics and learning curve in the train XCom, one asset event per output."""
    train = xcoms(dag_run, "train")
    epochs = train["metrics"]["epochs"]
    assert [e["epoch"] for e in epochs] == list(range(CONF["num_epochs"]))
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
    assert model["extra"]["metrics"]["epochs"] == CONF["num_epochs"]
    assert model["extra"]["metrics"]["test"] == epochs[-1]["test"]
    assert events["graphstorm-predictions"]["uri"] == xcoms(dag_run, "infer")["output_prediction_s3"].rstrip("/")


def test_pipeline_with_file_uris(load_dag, tmp_path, monkeypatch, capfd):
    # No AWS anywhere: a laptop without an account.
    for name in ("AWS_ENDPOINT_URL", "AIRFLOW_CONN_AWS_DEFAULT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    base_uri = f"file://{tmp_path}/runs"
    dag_run, summary = _run_dag(load_dag, base_uri)
    _check_results(summary, base_uri)
    _check_manifests(summary)
    output = capfd.readouterr().out
    _check_progress_and_assets(dag_run, output)
    # Nothing at ERROR in a run that succeeded (the links look no SageMaker job up, for one).
    assert re.findall(r"^.*\[error\s*\].*$", output, re.MULTILINE) == []


def test_pipeline_with_s3_uris_on_moto_and_a_canary_secret_that_leaves_no_trace(
    load_dag, airflow_home, aws_env, monkeypatch, capfd
):
    # Only the Airflow connection knows where S3 is and holds the credentials: every task must use
    # it. Its key, secret and session token are canaries (fault injection 6 of issue 9): afterwards
    # every S3 object of the run, every file under the Airflow home (the metadata database, with
    # the XComs and rendered template fields, included) and the captured task logs are searched.
    values = canaries()
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection(values, aws_env.endpoint_url, aws_env.region))
    bucket = "graphstorm-e2e"
    base_uri = aws_env.bucket(bucket) + "/runs"  # the test's own client: the fixture's credentials
    s3 = aws_env.client("s3")
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    _, summary = _run_dag(load_dag, base_uri, s3_client=s3)
    captured = capfd.readouterr()
    with storage.using_s3_client(s3):
        _check_results(summary, base_uri)
    _check_manifests(summary, s3)
    # The run really went through S3: the constructed graph and the model are objects in the bucket.
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page["Contents"]]
    run_key = summary["run_prefix"][len(f"s3://{bucket}/") :]
    assert any(k.startswith(f"{run_key}/graph/") and k.endswith(".json") for k in keys)
    assert any(k.startswith(f"{run_key}/model/") for k in keys)

    blobs = {f"s3://{bucket}/{k}": s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}
    blobs.update(files_under(airflow_home))
    assert any(where.endswith("airflow.db") for where in blobs)
    blobs["task log (stdout)"] = captured.out.encode()
    blobs["task log (stderr)"] = captured.err.encode()
    assert hits(values, blobs) == []
    # The jobs really ran with the connection's credentials: moto saw requests signed with the key
    # (the S3 objects are there), and the real manifests carry the request digest of the step cache.
    manifests = [json.loads(data) for where, data in blobs.items() if where.endswith("/_manifest.json")]
    assert {m["step"] for m in manifests} >= {"gconstruct", "train", "infer"}
    assert all(len(m.get("request_digest") or "") == 64 for m in manifests), manifests
