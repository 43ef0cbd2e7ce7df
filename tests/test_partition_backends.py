"""Distributed partitioning through the project's front doors, run here (``instance_type="local"``):
``DistPartitionOperator`` in a DAG run by ``dag.test()``, ``gs-sagemaker partition``, and the
train entry point training on the result (real GraphStorm)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from graphstorm_provider.config import runtime_python

TESTS = Path(__file__).resolve().parent
ENTRYPOINTS = TESTS.parent / "entrypoints"
GS_SAGEMAKER = str(Path(os.environ.get("VIRTUAL_ENV", TESTS.parent / ".venv")) / "bin" / "gs-sagemaker")
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
TIMEOUT = 600


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chunked-backends") / "graph"
    subprocess.run(
        [runtime_python(), str(TESTS / "chunked_graphs.py"), str(root), "--name", "chunkyb", "--scale", "5"],
        check=True,
        timeout=TIMEOUT,
    )
    return root


def check(graph: Path, config: Path) -> dict:
    proc = subprocess.run(
        [runtime_python(), str(TESTS / "partition_checks.py"), str(graph), "metadata.json", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


DAG_TEXT = """
from datetime import datetime
from airflow.sdk import DAG
from graphstorm_provider.operators.partition import DistPartitionOperator

with DAG(dag_id="partition_local", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    DistPartitionOperator(task_id="partition", instance_type="local", image_url="graphstorm:local",
                          role="{role}", region="us-east-1", aws_conn_id=None,
                          graph_data_s3="file://{graph}", num_parts=2, output_data_s3="file://{out}",
                          metadata_filename="metadata.json")
"""


def test_dist_partition_operator_runs_locally_in_a_dag(graph, tmp_path, load_dag, monkeypatch):
    from airflow.utils.state import DagRunState

    for name in ("AWS_ENDPOINT_URL", "AIRFLOW_CONN_AWS_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "parted"
    dag = load_dag(DAG_TEXT.format(role=ROLE, graph=graph, out=out), "partition_local")
    run = dag.test()
    assert run.state == DagRunState.SUCCESS, f"DAG run ended {run.state}"
    assert check(graph, out / "chunkyb.json")["num_parts"] == 2


def test_gs_sagemaker_partition_runs_locally(graph, tmp_path):
    out = tmp_path / "parted"
    proc = subprocess.run(
        [
            GS_SAGEMAKER,
            "partition",
            "--instance-type",
            "local",
            "--image-url",
            "graphstorm:local",
            "--role",
            ROLE,
            "--region",
            "us-east-1",
            "--graph-data-s3",
            f"file://{graph}",
            "--num-parts",
            "2",
            "--output-data-s3",
            f"file://{out}",
            "--metadata-filename",
            "metadata.json",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert check(graph, out / "chunkyb.json")["num_parts"] == 2


def _nc_yaml() -> str:
    return "---\n" + yaml.safe_dump(
        {
            "version": 1.0,
            "gsf": {
                "basic": {"model_encoder_type": "rgcn", "backend": "gloo", "verbose": False},
                "gnn": {"use_mini_batch_infer": False},
                "input": {"restore_model_path": None, "node_feat_name": ["author:feat", "paper:feat", "venue:feat"]},
                "output": {"save_model_path": None, "save_embed_path": None},
                "hyperparam": {"dropout": 0.0, "wd_l2norm": 0, "eval_batch_size": 1024},
                "rgcn": {"num_bases": -1, "use_self_loop": True, "use_node_embeddings": False},
                "node_classification": {
                    "target_ntype": "paper",
                    "label_field": "label",
                    "multilabel": False,
                    "num_classes": 3,
                },
            },
        },
        sort_keys=False,
    )


def test_graphstorm_trains_node_classification_on_a_one_partition_output(graph, tmp_path):
    out, model = tmp_path / "parted", tmp_path / "model"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "GSENTRY_"))}
    env["GRAPHSTORM_OPT_ML"] = str(tmp_path / "partition" / "opt" / "ml")
    subprocess.run(
        [
            runtime_python(),
            str(ENTRYPOINTS / "partition_entry.py"),
            "--graph-data-s3",
            f"file://{graph}",
            "--num-parts",
            "1",
            "--output-data-s3",
            f"file://{out}",
            "--metadata-filename",
            "metadata.json",
            "--partition-algorithm",
            "random",
            "--log-level",
            "INFO",
            "--",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    (tmp_path / "nc.yaml").write_text(_nc_yaml())
    env["GRAPHSTORM_OPT_ML"] = str(tmp_path / "train" / "opt" / "ml")
    proc = subprocess.run(
        [
            runtime_python(),
            str(ENTRYPOINTS / "train_entry.py"),
            "--graph-data-s3",
            f"file://{out}",
            "--train-yaml-s3",
            f"file://{tmp_path / 'nc.yaml'}",
            "--model-artifact-s3",
            f"file://{model}",
            "--graph-name",
            "chunkyb",
            "--task-type",
            "node_classification",
            "--log-level",
            "INFO",
            "--",
            "--num-epochs",
            "2",
            "--hidden-size",
            "8",
            "--num-layers",
            "1",
            "--fanout",
            "5",
            "--batch-size",
            "32",
            "--lr",
            "0.01",
        ],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in model.iterdir() if p.is_dir()) == ["epoch-0", "epoch-1"]
    assert (model / "epoch-1" / "model.bin").is_file()
