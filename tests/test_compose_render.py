"""The compose document rendered from a job request: hosts, contract env, mounts, names."""

from __future__ import annotations

import json

import pytest
import yaml

from graphstorm_provider.execution.compose import (
    ComposeOptions,
    ComposeSpecError,
    Mount,
    dump_compose,
    plan_mounts,
    render_compose,
    shm_bytes,
)
from graphstorm_provider.jobs.request import JobRequest
from tests.compose_jobs import training_request


@pytest.mark.parametrize("count", [1, 2, 4])
def test_one_service_per_host_with_the_sagemaker_contract(count):
    job = training_request(instance_count=count)
    doc = render_compose(job)
    hosts = [f"algo-{i}" for i in range(1, count + 1)]
    assert list(doc["services"]) == hosts
    assert doc["networks"]["gsf"]["name"].endswith("gsf-network")
    for rank, host in enumerate(hosts):
        service = doc["services"][host]
        env = service["environment"]
        assert service["hostname"] == host
        assert service["container_name"] == f"gs-train-acm-20261128-120000-{host}"
        assert "gsf" in service["networks"]
        assert json.loads(env["SM_TRAINING_ENV"]) == {"hosts": hosts, "current_host": host}
        assert env["WORLD_SIZE"] == str(count)
        assert env["RANK"] == str(rank)
        assert env["MASTER_ADDR"] == "algo-1"
        assert env["AWS_REGION"] == "us-east-1"
        assert env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
        assert env["SM_NUM_GPUS"] == "0"
        assert service["working_dir"] == "/opt/ml/code"
        assert service["command"] == job.container_entrypoint + job.container_arguments
        assert service["image"] == "graphstorm:sm"
        assert "deploy" not in service
        shm = [v for v in service["volumes"] if v["target"] == "/dev/shm"]
        assert shm == [{"type": "tmpfs", "target": "/dev/shm", "tmpfs": {"size": shm_bytes("4gb")}}]
        assert service["shm_size"] == "4gb"


def test_gpu_reservation_only_when_asked():
    doc = render_compose(training_request(), ComposeOptions(gpus=2, shm_size="8g"))
    service = doc["services"]["algo-2"]
    assert service["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 2, "capabilities": ["gpu"]}
    ]
    assert service["environment"]["SM_NUM_GPUS"] == "2"
    assert service["shm_size"] == "8g"


def test_back_to_back_runs_do_not_share_names_but_keep_host_names():
    first = render_compose(training_request(job_name="gs-train-1"))
    second = render_compose(training_request(job_name="gs-train-2"))
    names = lambda doc: {s["container_name"] for s in doc["services"].values()}
    assert names(first).isdisjoint(names(second))
    assert first["networks"]["gsf"]["name"] != second["networks"]["gsf"]["name"]
    assert [s["hostname"] for s in second["services"].values()] == ["algo-1", "algo-2"]


def test_request_environment_is_kept_and_graphstorm_arguments_pass_through():
    job = training_request(environment={"GS_EXTRA": "1"}, extra_args=("--lr", "0.01", "--node-feat-name", "paper:feat"))
    service = render_compose(job)["services"]["algo-1"]
    assert service["environment"]["GS_EXTRA"] == "1"
    assert service["command"][-5:] == ["--", "--lr", "0.01", "--node-feat-name", "paper:feat"]


def test_file_uris_are_mounted_at_the_same_path(tmp_path):
    graph = tmp_path / "graph"
    graph.mkdir()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "train.yaml").write_text("gsf: {}\n")
    job = training_request(
        graph=f"file://{graph}",
        yaml_uri=f"file://{conf}/train.yaml",
        model=f"file://{tmp_path}/out/model",
    )
    assert plan_mounts(job) == [
        Mount(str(conf), read_only=True),
        Mount(str(graph), read_only=True),
        Mount(f"{tmp_path}/out/model", read_only=False),
    ]
    volumes = render_compose(job)["services"]["algo-1"]["volumes"]
    assert {"type": "bind", "source": str(graph), "target": str(graph), "read_only": True} in volumes


def test_nested_paths_collapse_into_one_writable_mount(tmp_path):
    (tmp_path / "graph").mkdir()
    job = training_request(
        graph=f"file://{tmp_path}/graph",
        yaml_uri=f"file://{tmp_path}/graph/train.yaml",
        model=f"file://{tmp_path}",
    )
    assert plan_mounts(job) == [Mount(str(tmp_path), read_only=False)]


def test_s3_uris_need_no_mounts():
    job = training_request(graph="s3://b/graph", yaml_uri="s3://b/train.yaml", model="s3://b/model")
    assert plan_mounts(job) == []
    volumes = render_compose(job)["services"]["algo-1"]["volumes"]
    assert [v["type"] for v in volumes] == ["tmpfs"]


@pytest.mark.parametrize("uri", ["file://relative/path", "file://otherhost/tmp/x"])
def test_non_absolute_file_uris_are_rejected(uri):
    with pytest.raises(ComposeSpecError, match="file URI"):
        render_compose(training_request(graph=uri))


def test_processing_jobs_do_not_run_on_compose():
    job = JobRequest(
        kind="processing",
        step="gconstruct",
        request={
            "ProcessingJobName": "gc",
            "AppSpecification": {"ImageUri": "graphstorm:sm", "ContainerEntrypoint": ["python3", "x.py"]},
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "local", "InstanceCount": 2}},
        },
    )
    with pytest.raises(ComposeSpecError, match="processing job"):
        render_compose(job)


@pytest.mark.parametrize(
    "bad", [{"gpus": -1}, {"shm_size": "lots"}, {"shm_size": "4"}, {"shm_size": "0m"}, {"credential_names": ("A B",)}]
)
def test_bad_options_name_the_parameter(bad):
    with pytest.raises(ComposeSpecError, match=next(iter(bad))):
        ComposeOptions(**bad)


def test_yaml_round_trips_and_has_no_anchors():
    text = dump_compose(render_compose(training_request(instance_count=3)))
    assert "&id" not in text
    assert "*id" not in text
    assert yaml.safe_load(text) == render_compose(training_request(instance_count=3))
