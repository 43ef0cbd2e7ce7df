"""The example DAG's structure and helpers, without running GraphStorm (fast)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from graphstorm_provider.data.evaluate import evaluate_node_classification
from graphstorm_provider.data.synthetic_acm import SyntheticAcmSpec, generate_synthetic_acm
from graphstorm_provider.data.train_config import hyperparameter_args, node_classification_yaml

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "graphstorm_local_e2e.py"


@pytest.fixture(scope="module")
def dag_module():
    spec = importlib.util.spec_from_file_location("graphstorm_local_e2e_under_test", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dag_wires_the_steps_in_order(dag_module):
    dag = dag_module.dag
    assert dag.dag_id == "graphstorm_local_e2e"
    order = ["prepare", "gconstruct", "train", "infer", "report"]
    assert {t.task_id for t in dag.tasks} == set(order)
    for upstream, downstream in zip(order, order[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    # Inference loads the model the training task reports, through XCom.
    assert "train" in dag.get_task("infer").upstream_task_ids
    assert dag.params["instance_type"] == "local"
    assert dag.params["base_uri"].startswith(("file:///", "s3://"))


@pytest.mark.parametrize("dag_file", [DAG_FILE, DAG_FILE.with_name("graphstorm_chunked_e2e.py")], ids=lambda p: p.stem)
def test_parsing_the_dag_imports_nothing_heavy(dag_file):
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(dag_file)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "heavy = [n for n in ('boto3', 'botocore', 'torch', 'dgl', 'graphstorm', 'pandas', 'pyarrow') if n in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out.splitlines()[-1:] in ([""], []), out


def test_run_prefix_is_one_safe_path_segment(dag_module):
    # Runs without a logical date are named by their run id, made one safe segment (more cases:
    # tests/test_example_dags.py).
    prefix = dag_module.run_prefix("s3://b/runs/", None, "my run/../x")
    assert prefix == "s3://b/runs/my-run-..-x"


def test_hyperparameters_repeat_the_fanout_per_layer():
    args = hyperparameter_args(num_epochs=2, hidden_size=16, num_layers=3, fanout=5, batch_size=64, lr=0.02)
    assert args[args.index("--fanout") + 1] == "5,5,5"
    assert args[args.index("--num-layers") + 1] == "3"


def test_yaml_describes_the_node_classification_task():
    config = yaml.safe_load(node_classification_yaml(7))["gsf"]
    assert config["node_classification"] == {
        "target_ntype": "paper",
        "label_field": "label",
        "multilabel": False,
        "num_classes": 7,
    }
    assert config["input"]["node_feat_name"] == ["paper:feat", "author:feat", "subject:feat"]
    assert config["gnn"]["use_mini_batch_infer"] is False  # needed to save embeddings


def test_evaluation_joins_on_raw_ids_and_counts_missing_as_wrong(tmp_path):
    generate_synthetic_acm(str(tmp_path / "raw"), SyntheticAcmSpec(num_papers=200, num_classes=4, seed=2))
    papers = pq.read_table(tmp_path / "raw/nodes/paper.parquet").to_pydict()
    label_of = dict(zip(papers["nid"], papers["label"]))
    test_ids = pq.read_table(tmp_path / "raw/splits/test.parquet").column("nid").to_pylist()
    half = len(test_ids) // 2
    # Right for the first half, wrong for the rest but the last, which has no prediction at all.
    rows = [(nid, label_of[nid] if i < half else (label_of[nid] + 1) % 4) for i, nid in enumerate(test_ids[:-1])]
    probs = [np.eye(4)[cls].tolist() for _, cls in rows]
    (tmp_path / "pred/paper").mkdir(parents=True)
    pq.write_table(
        pa.table({"pred": probs, "nid": [nid for nid, _ in rows]}),
        tmp_path / "pred/paper/pred.predict-00000_00000.parquet",
    )
    (tmp_path / "emb/paper").mkdir(parents=True)
    pq.write_table(
        pa.table({"emb": [[0.0, 1.0]] * len(test_ids), "nid": test_ids}),
        tmp_path / "emb/paper/embed-00000_00000.parquet",
    )

    result = evaluate_node_classification(str(tmp_path / "raw"), f"file://{tmp_path}/pred", str(tmp_path / "emb"))
    assert result.num_test == len(test_ids)
    assert result.test_accuracy == pytest.approx(half / len(test_ids))
    assert result.num_test_predicted == len(test_ids) - 1
    assert result.missing_predictions == [test_ids[-1]]
    assert result.num_test_embedded == len(test_ids)
    assert result.embedding_dim == 2
    assert result.chance == 0.25
