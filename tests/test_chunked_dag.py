"""The chunked example DAG's structure, its shared helpers, and its SageMaker run (on moto), fast.

The GraphStorm runs of this DAG (two containers, one local process) are in
``tests/test_e2e_chunked.py``.
"""

from __future__ import annotations

import importlib.util
import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from graphstorm_provider.data import chunked

DAGS = Path(__file__).resolve().parents[1] / "dags"
DAG_FILE = DAGS / "graphstorm_chunked_e2e.py"
DAG_ID = "graphstorm_chunked_e2e"


@pytest.fixture(scope="module")
def dag_module():
    """The DAG file's namespace, executed as a DAG processor would (without a DAGs folder)."""
    return SimpleNamespace(**runpy.run_path(str(DAG_FILE), run_name="graphstorm_chunked_e2e_under_test"))


def test_dag_wires_chunked_partition_train_infer_report(dag_module):
    dag = dag_module.dag
    assert dag.dag_id == DAG_ID
    order = ["prepare", "partition", "train", "infer", "report"]
    assert {t.task_id for t in dag.tasks} == set(order)
    for upstream, downstream in zip(order, order[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    partition = dag.get_task("partition")
    assert type(partition).__name__ == "DistPartitionOperator"
    # The metadata file is named explicitly, and it is the one the chunked writer writes.
    assert partition.metadata_filename == chunked.METADATA_FILE
    # Two emulated hosts by default, the same count for partitions and every step's hosts.
    assert dag.params["instance_type"] == "local"
    assert dag.params["instance_count"] == 2
    for task_id in ("partition", "train", "infer"):
        assert dag.get_task(task_id).instance_count == "{{ params.instance_count }}"
    assert partition.num_parts == "{{ params.instance_count }}"
    assert dag.params["image_url"] == "graphstorm:sm"


# That parsing this DAG imports nothing heavy: tests/test_e2e_dag.py; its params' titles and
# ranges: tests/test_example_dags.py.


def test_both_dags_share_one_set_of_helpers(dag_module):
    from graphstorm_provider import dags_support

    spec = importlib.util.spec_from_file_location("graphstorm_local_e2e_shared", DAGS / "graphstorm_local_e2e.py")
    local = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(local)
    for dag in (dag_module.dag, local.dag):
        assert dag.user_defined_macros == {
            "gs_run_prefix": dags_support.run_prefix,
            "gs_hyperparameters": dags_support.hyperparameters,
            "gs_first_try": dags_support.first_try,
        }
    assert set(dag_module.dag.params) - set(local.dag.params) == {"instance_count", "num_chunks"}
    for name in ("instance_count", "num_chunks"):
        param = dag_module.dag.params.get_param(name)
        assert param.schema["title"]
        assert param.schema["exclusiveMinimum"] == 0
        assert "Integer, 1 to" in param.description


def test_unknown_conf_key_fails_prepare_naming_it(tmp_path, load_dag):
    dag = load_dag(DAG_FILE.read_text(), DAG_ID)
    run = dag.test(run_conf={"base_uri": tmp_path.as_uri(), "instance_count": 1, "num_chunk": 2})
    states = _task_states(run)
    assert states["prepare"] == "failed", states
    assert all(v != "success" for v in states.values()), states
    assert not any(tmp_path.iterdir())  # nothing written


def _task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_on_sagemaker_by_params(aws_env, load_dag, monkeypatch):
    """An ml.* instance type sends the three jobs to SageMaker (moto), wired as the DAG says.

    moto completes jobs at once without running them, so no predictions exist and the report
    fails; everything up to it is the real request sequence.
    """
    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS", "False")  # moto writes no manifests
    base = aws_env.bucket("gs-chunked-dag") + "/runs"
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu"
    role = "arn:aws:iam::123456789012:role/SageMakerRole"
    conf = {
        "base_uri": base,
        "instance_type": "ml.m5.4xlarge",
        "image_url": image,
        "role": role,
        "region": aws_env.region,
        "num_papers": 100,
        "graph_name": "acm_sm",
    }
    dag = load_dag(DAG_FILE.read_text(), DAG_ID)
    for task_id in ("partition", "train", "infer"):
        dag.get_task(task_id).check_interval = 1  # moto's jobs are done at once: no need to wait 30 s
    run = dag.test(run_conf=conf)
    states = _task_states(run)
    assert {k: v for k, v in states.items() if k != "report"} == {
        "prepare": "success",
        "partition": "success",
        "train": "success",
        "infer": "success",
    }, states
    assert states["report"] == "failed"  # nothing ran the jobs, so there is nothing to score

    sent = {
        req["AlgorithmSpecification"]["ContainerEntrypoint"][-1]: req
        for req in aws_env.received("SageMaker.CreateTrainingJob")
    }
    assert set(sent) == {
        "/opt/ml/code/partition_entry.py",
        "/opt/ml/code/train_entry.py",
        "/opt/ml/code/infer_entry.py",
    }
    for req in sent.values():
        assert req["ResourceConfig"]["InstanceType"] == "ml.m5.4xlarge"
        assert req["ResourceConfig"]["InstanceCount"] == 2
        assert req["AlgorithmSpecification"]["TrainingImage"] == image
        assert req["RoleArn"] == role

    def arg(entry: str, flag: str) -> str:
        args = sent[f"/opt/ml/code/{entry}_entry.py"]["AlgorithmSpecification"]["ContainerArguments"]
        return args[args.index(flag) + 1]

    raw = arg("partition", "--graph-data-s3")
    assert raw.startswith(base + "/")
    assert raw.rstrip("/").endswith("/raw")
    # Each step writes a folder of its own attempt (the first: 1).
    assert arg("partition", "--output-data-s3").rstrip("/").endswith("/graph/1")
    assert arg("train", "--model-artifact-s3").rstrip("/").endswith("/model/1")
    assert arg("partition", "--metadata-filename") == chunked.METADATA_FILE
    assert arg("partition", "--num-parts") == "2"
    graph = arg("partition", "--output-data-s3")
    assert arg("train", "--graph-data-s3") == arg("infer", "--graph-data-s3") == graph
    assert arg("train", "--graph-name") == arg("infer", "--graph-name") == "acm_sm"
    assert arg("infer", "--model-artifact-s3") == arg("train", "--model-artifact-s3")
    # The chunked input the partition job would read is in the bucket, named by the metadata.
    s3 = aws_env.client("s3")
    key = raw[len("s3://gs-chunked-dag/") :].rstrip("/") + "/" + chunked.METADATA_FILE
    metadata = json.loads(s3.get_object(Bucket="gs-chunked-dag", Key=key)["Body"].read())
    assert metadata["graph_name"] == "acm_sm"
    assert len(metadata["num_nodes_per_chunk"][0]) == 3
