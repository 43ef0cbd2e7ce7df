"""LocalComposeOperator without an engine: which request it builds, templating, XCom, errors.

The runs themselves (real containers) are in test_compose_multihost.py.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.train import TrainSpec
from graphstorm_provider.operators.local_compose import LocalComposeOperator

TRAIN = dict(
    graph_data_s3="file:///tmp/gs/graph",
    yaml_s3="file:///tmp/gs/conf/train.yaml",
    model_artifact_s3="file:///tmp/gs/model",
    graph_name="acm",
    task_type="node_classification",
    image_url="graphstorm:sm",
    region="us-east-1",
)


def test_step_parameters_build_the_same_request_as_the_spec():
    op = LocalComposeOperator(task_id="t", step="train", graphstorm_args="--num-epochs 2", **TRAIN)
    job = op.build_job()
    direct = TrainSpec(
        **TRAIN, instance_type="local", instance_count=2, role="local", graphstorm_args=("--num-epochs", "2")
    ).build(job.job_name)
    assert job.request == direct.request
    assert job.instance_count == 2
    assert job.is_local
    assert job.xcom_value() == {"job_name": job.job_name, "model_artifact_s3": "file:///tmp/gs/model/"}


@pytest.mark.parametrize("step", ["train", "training", "TRAINING"])
def test_seed_action_names_are_accepted(step):
    op = LocalComposeOperator(task_id="t", step=step, instance_count=3, **TRAIN)
    job = op.build_job()
    assert job.step == "train"
    assert job.instance_count == 3


def test_a_spec_runs_locally_whatever_its_instance_type():
    spec = TrainSpec(
        **{
            **TRAIN,
            "graph_data_s3": "s3://bucket-a/g/",
            "yaml_s3": "s3://bucket-a/t.yaml",
            "model_artifact_s3": "s3://bucket-a/m/",
        },
        instance_type="ml.m5.xlarge",
        instance_count=4,
        role="arn:aws:iam::123456789012:role/R",
    )
    job = LocalComposeOperator(task_id="t", spec=spec).build_job()
    assert job.is_local
    assert job.instance_count == 4
    assert job.step == "train"


def test_step_parameters_are_templated_and_base_operator_arguments_are_kept():
    from airflow.sdk import DAG

    with DAG("gs_compose_templating", schedule=None, start_date=datetime(2024, 1, 1)):
        op = LocalComposeOperator(
            task_id="t",
            step="train",
            retries=2,
            **{**TRAIN, "model_artifact_s3": "file:///tmp/gs/{{ ds_nodash }}/model"},
        )
    assert op.retries == 2
    assert "job_params" in op.template_fields
    op.render_template_fields({"ds_nodash": "20240101"})
    assert op.build_job().outputs["model_artifact_s3"] == "file:///tmp/gs/20240101/model/"


def test_bad_parameters_fail_before_anything_runs():
    op = LocalComposeOperator(task_id="t", step="train", **{**TRAIN, "task_type": "guessing"})
    with pytest.raises(JobSpecError, match="--task-type"):
        op.build_job()
    from airflow.providers.common.compat.sdk import AirflowFailException

    with pytest.raises(AirflowFailException, match="--task-type"):  # at task start: no retries
        op.execute(context={})


def test_unknown_steps_are_refused_at_parse_time():
    with pytest.raises(ValueError, match="step must be one of"):
        LocalComposeOperator(task_id="t", step="gconstruct", **TRAIN)
    with pytest.raises(ValueError, match="needs step"):
        LocalComposeOperator(task_id="t")


def test_step_operators_send_multi_host_local_jobs_to_the_compose_backend(monkeypatch, tmp_path):
    # A compose tool that cannot exist: reaching the compose backend is then a clear error
    # naming the setting, before any container or process is started.
    from graphstorm_provider.execution.compose_tool import ComposeToolError
    from graphstorm_provider.operators.train import GSTrainOperator

    monkeypatch.setenv("GRAPHSTORM_COMPOSE_COMMAND", str(tmp_path / "no-such-compose"))
    op = GSTrainOperator(
        task_id="t",
        instance_type="local",
        instance_count=2,
        role="local",
        aws_conn_id=None,
        require_input_manifests=False,
        **TRAIN,
    )
    with pytest.raises(ComposeToolError, match="compose_command .*no-such-compose.* is not installed"):
        op.execute({})


def test_connection_credentials_go_to_the_compose_environment_only(monkeypatch):
    import json

    from graphstorm_provider.operators.connection import connection_env

    monkeypatch.setenv(
        "AIRFLOW_CONN_GS_COMPOSE_TEST",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIACONNECTIONKEY",
                "password": "connection-secret",
                "extra": {"endpoint_url": "http://127.0.0.1:5999"},
            }
        ),
    )
    env = connection_env("gs_compose_test", "us-east-1")
    assert env["AWS_ACCESS_KEY_ID"] == "AKIACONNECTIONKEY"
    assert env["AWS_SECRET_ACCESS_KEY"] == "connection-secret"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5999"
    assert connection_env(None, "us-east-1") == {}


class _TaskInstance:
    """What ``jobs.naming.task_identity`` reads from a context's ``ti``."""

    def __init__(self, try_number: int) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index = "d", "train", "manual__2024-01-01", -1
        self.try_number = try_number


def test_each_attempt_of_a_task_instance_builds_the_job_name_a_step_operator_would(tmp_path):
    # One name per task instance, as GSTrainOperator's (jobs/naming.py): a retry finds its own job
    # (the step cache announces a job as this task's own only under that name), and two task
    # instances never share one. Without a task instance (run by hand): the prefix and a timestamp.
    from graphstorm_provider.jobs import naming
    from graphstorm_provider.operators.train import GSTrainOperator

    kwargs = {**TRAIN, "model_artifact_s3": f"file://{tmp_path}/model/"}
    op = LocalComposeOperator(task_id="train", step="train", task_name="acm-train", **kwargs)
    first, retry = (op.build_job(context={"ti": _TaskInstance(n)}).job_name for n in (1, 2))
    step_operator = GSTrainOperator(task_id="train", instance_type="local", task_name="acm-train", role="r", **kwargs)
    assert first == retry == step_operator.build_job(context={"ti": _TaskInstance(1)}).job_name
    other = _TaskInstance(1)
    other.run_id = "manual__2024-01-02"
    assert op.build_job(context={"ti": other}).job_name != first
    assert naming.is_attempt_of(first, first)
    assert op.build_job().job_name.startswith("acm-train-20")
