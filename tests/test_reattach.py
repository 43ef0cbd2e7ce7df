"""Nothing launched twice, nothing left running (issue 9, the SageMaker half).

Against a moto server over HTTP behind ``running_jobs_proxy`` (jobs stay ``InProgress`` until
stopped or ``proxy.finish(name, status)``; a second create of one name is ``ResourceInUse``, as on
SageMaker). Fault injection 1 kills a real ``airflow tasks test`` with SIGKILL while it waits.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.process_trees import airflow_tasks_test, end_tree

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
REGION = "us-east-1"
DATA = "s3://graphstorm-examples/acm"
TRAIN_KWARGS = dict(
    image_url=IMAGE,
    role=ROLE,
    region=REGION,
    graph_data_s3=f"{DATA}/g/",
    yaml_s3=f"{DATA}/t.yaml",
    model_artifact_s3=f"{DATA}/m/",
    graph_name="acm",
    task_type="node_classification",
)
GS_SAGEMAKER = os.path.join(os.path.dirname(sys.executable), "gs-sagemaker")
TRAIN_ARGV = [
    "--image-url",
    IMAGE,
    "--role",
    ROLE,
    "--region",
    REGION,
    "--graph-data-s3",
    f"{DATA}/g/",
    "--yaml-s3",
    f"{DATA}/t.yaml",
    "--model-artifact-s3",
    f"{DATA}/m/",
    "--graph-name",
    "acm",
    "--task-type",
    "node_classification",
]


@pytest.fixture(autouse=True)
def _no_input_manifests(monkeypatch):
    """moto runs no job, so the inputs these jobs name carry no manifest (operators/preflight.py);
    set in the environment, so the `airflow tasks test` subprocesses see it too."""
    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS", "False")


def _wait_for(condition, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def train_job(name: str, **changes):
    from graphstorm_provider.jobs import STEP_SPECS

    return STEP_SPECS["train"](**{**TRAIN_KWARGS, **changes}).build(name)


def backend_at(url: str, max_attempts: int | None = None):
    import boto3
    from botocore.config import Config

    from graphstorm_provider.execution.sagemaker import SageMakerBackend, botocore_config

    client = boto3.client(
        "sagemaker", region_name=REGION, endpoint_url=url, config=Config(**botocore_config(max_attempts))
    )
    return SageMakerBackend(client)


def created_names(aws_env) -> list[str]:
    return [r["TrainingJobName"] for r in aws_env.received("SageMaker.CreateTrainingJob")]


# --------------------------------------------------------------------------- names
def test_task_job_names_are_stable_per_task_instance_and_valid():
    from graphstorm_provider.jobs import naming
    from graphstorm_provider.jobs.validation import JOB_NAME_RE

    identity = naming.TaskIdentity("dag", "train", "manual__2024-01-01T00:00:00+00:00", -1)
    name = naming.task_job_name("gs-train-acm", identity)
    assert name == naming.task_job_name(
        "gs-train-acm", naming.TaskIdentity(*map(str, ("dag", "train")), identity.run_id, -1)
    )
    assert name.startswith("gs-train-acm-")
    assert len(name) == len("gs-train-acm-") + naming.HASH_CHARS
    others = {
        naming.task_job_name("gs-train-acm", naming.TaskIdentity("dag", "train", identity.run_id, 0)),
        naming.task_job_name("gs-train-acm", naming.TaskIdentity("dag", "train", "scheduled__x", -1)),
        naming.task_job_name("gs-train-acm", naming.TaskIdentity("dag", "infer", identity.run_id, -1)),
        naming.task_job_name("gs-train-acm", naming.TaskIdentity("dag2", "train", identity.run_id, -1)),
    }
    assert name not in others
    assert len(others) == 4
    long_name = naming.task_job_name("x_" * 100, identity)
    for candidate in (name, long_name, naming.attempt_name(long_name, 2), naming.attempt_name(long_name, 99)):
        assert len(candidate) <= 63, candidate
        assert JOB_NAME_RE.match(candidate), candidate
    assert naming.attempt_name(long_name, 99).startswith(long_name)  # room was kept for the suffix
    assert naming.attempt_name(name, 1) == name
    assert naming.attempt_name(name, 3) == f"{name}-a3"


# --------------------------------------------------------------------------- the backend's start
def test_a_create_whose_reply_was_lost_attaches_instead_of_failing(aws_env, running_jobs_proxy):
    """botocore retries a CreateTrainingJob whose reply was lost; SageMaker answers ResourceInUse."""
    running_jobs_proxy.drop_reply_of("SageMaker.CreateTrainingJob")
    started = backend_at(running_jobs_proxy.url).start(train_job("lost-reply-job"))
    assert (started.outcome, started.job.job_name) == ("attached", "lost-reply-job")
    assert running_jobs_proxy.targets.count("SageMaker.CreateTrainingJob") == 2  # botocore did retry
    assert created_names(aws_env) == ["lost-reply-job"]  # one job


def test_start_decides_from_the_status_of_the_name(aws_env, running_jobs_proxy):
    backend = backend_at(running_jobs_proxy.url)
    job = train_job("decide-job")
    assert backend.start(job).outcome == "created"
    assert backend.start(job).outcome == "attached"  # InProgress: no second job
    running_jobs_proxy.finish("decide-job", "Completed")
    assert backend.start(job).outcome == "completed"
    running_jobs_proxy.finish("decide-job", "Failed")
    again = backend.start(job)
    assert (again.outcome, again.job.job_name) == ("created", "decide-job-a2")
    running_jobs_proxy.finish("decide-job-a2", "Stopped")
    assert backend.start(job).job.job_name == "decide-job-a3"
    assert created_names(aws_env) == ["decide-job", "decide-job-a2", "decide-job-a3"]


def test_a_job_of_the_same_name_from_another_request_is_not_reused(aws_env, running_jobs_proxy):
    backend = backend_at(running_jobs_proxy.url)
    backend.start(train_job("changed-job"))
    changed = backend.start(train_job("changed-job", model_artifact_s3=f"{DATA}/other-model/"))
    assert (changed.outcome, changed.job.job_name) == ("created", "changed-job-a2")
    # The old one, still running with the old parameters, was stopped: one job per task.
    assert running_jobs_proxy.statuses["changed-job"] == "Stopped"


@pytest.mark.parametrize(
    ("step", "kwargs", "change"),
    [
        (
            "gconstruct",
            dict(input_graph_s3=f"{DATA}/raw/", output_graph_s3=f"{DATA}/out/", graph_name="acm",
                 graph_config_file="config.json", instance_type="ml.m5.4xlarge"),
            {"instance_type": "ml.r5.4xlarge"},
        ),
        (
            "partition",
            dict(graph_data_s3=f"{DATA}/chunked/", output_data_s3=f"{DATA}/parts/", num_parts=2, instance_count=1),
            {"instance_count": 2},
        ),
    ],
)  # fmt: skip
def test_a_processing_job_on_other_instances_is_not_reused_either(aws_env, running_jobs_proxy, step, kwargs, change):
    """Processing jobs were compared without their instances: a retry after the DAG moved the step
    to other instances re-attached to the job still running on the old ones."""
    from graphstorm_provider.jobs import STEP_SPECS

    def job(**changes):
        common = dict(image_url=IMAGE, role=ROLE, region=REGION)
        return STEP_SPECS[step](**{**common, **kwargs, **changes}).build(f"changed-{step}-job")

    backend = backend_at(running_jobs_proxy.url)
    backend.start(job())
    assert backend.start(job()).outcome == "attached"  # the same request: re-attached
    changed = backend.start(job(**change))
    assert (changed.outcome, changed.job.job_name) == ("created", f"changed-{step}-job-a2")
    assert running_jobs_proxy.statuses[f"changed-{step}-job"] == "Stopped"


def test_a_stopping_job_is_waited_for_then_the_next_attempt_launches(aws_env, running_jobs_proxy):
    import threading

    backend = backend_at(running_jobs_proxy.url)
    backend.start(train_job("stopping-job"))
    running_jobs_proxy.finish("stopping-job", "Stopping")
    threading.Timer(1.0, running_jobs_proxy.finish, ("stopping-job", "Stopped")).start()
    started = backend.start(train_job("stopping-job"), poll_seconds=0.2)
    assert (started.outcome, started.job.job_name) == ("created", "stopping-job-a2")


def test_a_stop_that_fails_raises_with_the_stop_command(aws_env):
    from graphstorm_provider.execution.sagemaker import SageMakerStopFailed

    backend = backend_at(_closed_port_url(), max_attempts=1)
    with pytest.raises(SageMakerStopFailed) as failure:
        backend.stop("training", "some-job", REGION)
    assert str(failure.value).endswith(
        f"stop it with: aws sagemaker stop-training-job --training-job-name some-job --region {REGION}"
    )


# --------------------------------------------------------------------------- the trigger
def test_the_trigger_stops_its_job_when_the_deferred_task_is_killed(aws_env, running_jobs_proxy, monkeypatch):
    """Airflow 3's triggerer awaits ``on_kill`` when a user fails, clears or marks a deferred task."""
    from graphstorm_provider.triggers.sagemaker import GraphStormSageMakerTrigger

    connection = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    connection["extra"]["endpoint_url"] = running_jobs_proxy.url
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    backend_at(running_jobs_proxy.url).start(train_job("deferred-job"))
    trigger = GraphStormSageMakerTrigger(
        job_name="deferred-job", job_type="Training", waiter_delay=1, region_name=REGION
    )
    # Serialized and rebuilt as the triggerer does.
    classpath, kwargs = trigger.serialize()
    assert classpath == "graphstorm_provider.triggers.sagemaker.GraphStormSageMakerTrigger"
    trigger = GraphStormSageMakerTrigger(**kwargs)

    async def wait_then_kill():
        # Airflow's own TriggerRunner runs the trigger and, as when a user clears the task,
        # cancels it with its user-action message; it then awaits the trigger's on_kill.
        from airflow.jobs.triggerer_job_runner import TriggerRunner

        runner = TriggerRunner()
        runner.triggers[1] = {"name": "deferred-job trigger", "events": 0}
        runner.triggers[1]["task"] = asyncio.create_task(runner.run_trigger(1, trigger))
        # Polled: the count grows in the proxy's HTTP server thread, so there is no asyncio.Event to await.
        while running_jobs_proxy.targets.count("SageMaker.DescribeTrainingJob") < 2:  # noqa: ASYNC110  see above
            await asyncio.sleep(0.1)
        runner.to_cancel.append(1)
        await runner.cancel_triggers()
        with pytest.raises(asyncio.CancelledError):
            await runner.triggers[1]["task"]
        assert not runner.events  # it fired nothing: the job never ended by itself

    asyncio.run(wait_then_kill())
    assert running_jobs_proxy.statuses["deferred-job"] == "Stopped"
    assert "SageMaker.StopTrainingJob" in running_jobs_proxy.targets


# --------------------------------------------------------------------------- fault injection 1
KILL_DAG = f"""
import pendulum
from datetime import timedelta
from airflow.sdk import DAG
from graphstorm_provider.operators.train import GSTrainOperator

with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    GSTrainOperator(task_id="train", check_interval=1, print_log=False, retries=3,
                    retry_delay=timedelta(seconds=0), **{TRAIN_KWARGS!r})
"""


def _dag_run_ids(dag_id: str) -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return [run.run_id for run in session.query(DagRun).filter(DagRun.dag_id == dag_id)]


def _xcom(dag_id: str, run_id: str) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id, task_ids="train")).all()
        return {row.key: XComModel.deserialize_value(row) for row in rows}


@pytest.mark.parametrize("meanwhile", ["InProgress", "Completed", "Failed"])
def test_a_retry_after_the_worker_was_killed_re_attaches(meanwhile, aws_env, running_jobs_proxy, airflow_home):
    """Fault injection 1: SIGKILL the worker while it waits on an InProgress job; the next attempt
    (same DAG run) re-attaches: one job; Completed meanwhile: no second job; Failed: one new, -a2."""
    dag_id = f"reattach_{meanwhile.lower()}_{uuid.uuid4().hex[:6]}"
    dag_file = airflow_home / "dags" / f"{dag_id}.py"
    dag_file.write_text(KILL_DAG.replace("DAG_ID", dag_id))
    connection = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    connection["extra"]["endpoint_url"] = running_jobs_proxy.url
    env = {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection), "AWS_ENDPOINT_URL": running_jobs_proxy.url}
    tasks = []
    try:
        first = airflow_tasks_test(dag_id, "train", watch_for=": InProgress", env=env)
        tasks.append(first)
        assert first.seen.wait(180), first.tail()
        first.proc.kill()  # the worker dies; nobody stops the job
        first.proc.wait(30)
        [name] = created_names(aws_env)
        assert running_jobs_proxy.statuses[name] == "InProgress"
        [run_id] = _dag_run_ids(dag_id)
        if meanwhile != "InProgress":
            running_jobs_proxy.finish(name, meanwhile)
        expected = {"InProgress": name, "Completed": name, "Failed": f"{name}-a2"}[meanwhile]
        second = airflow_tasks_test(dag_id, "train", watch_for=f"{expected}: InProgress", env=env, run_id=run_id)
        tasks.append(second)
        if meanwhile != "Completed":
            assert second.seen.wait(180), second.tail()
            running_jobs_proxy.finish(expected, "Completed")
        assert second.proc.wait(180) == 0, second.tail()
        second.reader.join(10)
        assert created_names(aws_env) == ([name] if meanwhile != "Failed" else [name, f"{name}-a2"])
        assert aws_env.received("SageMaker.StopTrainingJob") == []
        assert _xcom(dag_id, run_id)["return_value"] == {"job_name": expected, "model_artifact_s3": f"{DATA}/m/"}
        reason = {"InProgress": "attaching to it", "Completed": "already completed", "Failed": "ended Failed"}[
            meanwhile
        ]
        assert any(reason in line for line in second.lines), second.tail()
    finally:
        for task in tasks:
            end_tree(task.proc)
        dag_file.unlink(missing_ok=True)


# --------------------------------------------------------------------------- validation
RETRY_DAG = f"""
import pendulum
from datetime import timedelta
from airflow.sdk import DAG
from graphstorm_provider.operators.train import GSTrainOperator

with DAG("gs_bad_retried", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    GSTrainOperator(task_id="train", retries=3, retry_delay=timedelta(seconds=0),
                    **{{**{TRAIN_KWARGS!r}, "task_type": "node_clasification"}})
"""


def test_a_bad_parameter_fails_once_whatever_the_retries(aws_env, load_dag, caplog):
    dag_run = load_dag(RETRY_DAG, "gs_bad_retried").test()
    [ti] = dag_run.get_task_instances()
    assert (str(ti.state), ti.try_number) == ("failed", 1)  # not retried: the input would fail again
    assert aws_env.received("SageMaker.CreateTrainingJob") == []
    assert aws_env.received("SageMaker.DescribeTrainingJob") == []


# --------------------------------------------------------------------------- CLI
def _cli(*argv: str, url: str, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "AWS_ENDPOINT_URL": url, "GS_SAGEMAKER_POLL_SECONDS": "0.2", **(env or {})}
    return subprocess.Popen(
        [GS_SAGEMAKER, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env
    )


def test_cli_job_name_re_attaches(aws_env, running_jobs_proxy):
    first = _cli("train", *TRAIN_ARGV, "--job-name", "cli-named-job", "--async-execution", url=running_jobs_proxy.url)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "Created SageMaker training job cli-named-job." in out
    second = _cli("train", *TRAIN_ARGV, "--job-name", "cli-named-job", url=running_jobs_proxy.url)
    try:
        _wait_for(lambda: running_jobs_proxy.targets.count("SageMaker.DescribeTrainingJob") >= 3)
        running_jobs_proxy.finish("cli-named-job", "Completed")
        out, err = second.communicate(timeout=120)
    finally:
        end_tree(second)
    assert second.returncode == 0, err
    assert "Attached to running SageMaker training job cli-named-job." in out
    assert json.loads(out.strip().splitlines()[-1])["job_name"] == "cli-named-job"
    assert created_names(aws_env) == ["cli-named-job"]


def test_sigterm_while_waiting_says_how_to_stop_the_job(aws_env, running_jobs_proxy):
    proc = _cli("train", *TRAIN_ARGV, "--job-name", "cli-term-job", url=running_jobs_proxy.url)
    try:
        _wait_for(lambda: running_jobs_proxy.targets.count("SageMaker.DescribeTrainingJob") >= 3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        end_tree(proc)
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == (
        "gs-sagemaker train: terminated; SageMaker job cli-term-job keeps running. Stop it with: "
        f"aws sagemaker stop-training-job --training-job-name cli-term-job --region {REGION}"
    )


# --------------------------------------------------------------------------- fault injection 4
class SilentServer:
    """Accepts connections, reads what is sent and never answers."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self.connections: list = []
        self._closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.connections.append(conn)  # read by nobody; the client waits for an answer

    def close(self) -> None:
        self._closed.set()
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent_endpoint():
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def _closed_port_url() -> str:
    """A port nothing listens on (importing tests.conftest again would reset AIRFLOW_HOME)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("endpoint", ["closed port", "silent"])
def test_cli_an_unreachable_endpoint_fails_in_one_sentence_naming_it(endpoint, aws_env, request):
    url = _closed_port_url() if endpoint == "closed port" else request.getfixturevalue("silent_endpoint").url
    # The default bound (5 attempts) against the closed port; --aws-max-attempts against the silent
    # endpoint, where each attempt waits out the read timeout (5 attempts took 41 s).
    attempts = 5 if endpoint == "closed port" else 2
    own_flags = [] if endpoint == "closed port" else ["--aws-max-attempts", str(attempts)]
    began = time.monotonic()
    proc = _cli("train", *TRAIN_ARGV, *own_flags, url=url)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    took = time.monotonic() - began
    print(f"gs-sagemaker against a {endpoint} endpoint failed after {took:.1f} s")
    assert proc.returncode == 1
    [line] = err.strip().splitlines()
    assert line.startswith("gs-sagemaker train: error: could not start SageMaker training job ")
    assert f"The SageMaker endpoint {url} did not answer after {attempts} attempts" in line
    if endpoint == "silent":
        assert request.getfixturevalue("silent_endpoint").accepted == attempts  # bounded: one connection per attempt


@pytest.mark.parametrize("endpoint", ["closed port", "silent"])
def test_operator_an_unreachable_endpoint_fails_in_one_sentence_naming_it(endpoint, aws_env, monkeypatch, request):
    from graphstorm_provider.execution.sagemaker import SageMakerUnreachable
    from graphstorm_provider.operators import GSTrainOperator

    url = _closed_port_url() if endpoint == "closed port" else request.getfixturevalue("silent_endpoint").url
    connection = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    connection["extra"]["endpoint_url"] = url
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    operator = GSTrainOperator(task_id="train", aws_max_attempts=2, print_log=False, **TRAIN_KWARGS)
    began = time.monotonic()
    with pytest.raises(SageMakerUnreachable) as failure:
        operator.execute(context={})
    print(f"the operator against a {endpoint} endpoint failed after {time.monotonic() - began:.1f} s")
    message = str(failure.value)
    assert message.startswith(f"The SageMaker endpoint {url} did not answer after 2 attempts")
    assert "\n" not in message
    if endpoint == "silent":
        assert request.getfixturevalue("silent_endpoint").accepted == 2


# --------------------------------------------------------------------------- operator details
def test_a_deferrable_retry_defers_on_the_running_job_without_creating(aws_env, running_jobs_proxy, monkeypatch):
    from types import SimpleNamespace

    from airflow.providers.common.compat.sdk import TaskDeferred

    from graphstorm_provider.jobs import naming
    from graphstorm_provider.operators import GSTrainOperator

    connection = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    connection["extra"]["endpoint_url"] = running_jobs_proxy.url
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    pushed: dict[str, object] = {}  # the extra links' XCom record (operators/links.py)
    ti = SimpleNamespace(
        dag_id="dag",
        task_id="train",
        run_id="scheduled__2024-01-01",
        map_index=3,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )
    name = naming.task_job_name("gs-train-acm", naming.task_identity({"ti": ti}))
    backend_at(running_jobs_proxy.url).start(train_job(name))  # the first attempt's job, still running
    operator = GSTrainOperator(task_id="train", deferrable=True, **TRAIN_KWARGS)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={"ti": ti})
    trigger = deferred.value.trigger
    assert (type(trigger).__name__, trigger.job_name) == ("GraphStormSageMakerTrigger", name)
    assert trigger.botocore_config["retries"] == {"mode": "adaptive", "total_max_attempts": 5}
    assert name in json.dumps(pushed, default=str)  # the extra links name the job it re-attached to
    assert created_names(aws_env) == [name]


def test_the_connection_config_kwargs_win_over_the_defaults():
    from graphstorm_provider.execution.sagemaker import botocore_config

    assert botocore_config() == {
        "connect_timeout": 5,
        "read_timeout": 7,
        "retries": {"mode": "adaptive", "total_max_attempts": 5},
    }
    mine = botocore_config(None, {"read_timeout": 30, "retries": {"mode": "standard", "max_attempts": 9}})
    assert mine == {"connect_timeout": 5, "read_timeout": 30, "retries": {"mode": "standard", "max_attempts": 9}}
    assert botocore_config(2, {"retries": {"max_attempts": 9}})["retries"] == {
        "mode": "adaptive",
        "total_max_attempts": 2,
    }
