"""How a run ends when it does not succeed: nothing is left running, and the reason stays the task's.

1. A deferred wait that ends in anything but success (a trigger ``error`` event: AccessDenied or an
   expired token while describing; a crashed trigger, resumed with ``__fail__``) stops the SageMaker
   job it followed, as the non-deferred wait does; a stop that fails too is logged and the task
   still fails with the original reason (moto server behind ``running_jobs_proxy``).
2. ``max_ingestion_time`` and ``compose_timeout`` bound a one-host local run too: the task fails in
   one sentence naming the limit and the job's process tree is ended.
3. The compose options (``gpus``, ``shm_size``, ``compose_timeout``) are checked at task start,
   each refused in one sentence naming it (``AirflowFailException``: no retries).
"""

from __future__ import annotations

import logging
import socket
import textwrap
import time
import uuid
from types import SimpleNamespace

import pytest

from graphstorm_provider import config
from tests.process_trees import live_processes_with
from tests.test_operators_sagemaker import _operators, _point_connection_at


@pytest.fixture(autouse=True)
def _no_input_manifests(monkeypatch):
    """moto runs no job, so the inputs these jobs name carry no manifest (operators/preflight.py)."""
    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS", "False")


class _Log:
    """Collects what an operator logs (it stands in for Airflow's structlog proxy)."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def log(self, level: int, message: str, *args: object) -> None:
        self.lines.append((level, message % args if args else message))

    def info(self, message: str, *args: object) -> None:
        self.log(logging.INFO, message, *args)

    def warning(self, message: str, *args: object) -> None:
        self.log(logging.WARNING, message, *args)

    def error(self, message: str, *args: object) -> None:
        self.log(logging.ERROR, message, *args)

    def debug(self, message: str, *args: object) -> None:
        pass

    def errors(self) -> list[str]:
        return [line for level, line in self.lines if level >= logging.ERROR]


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _task_instance() -> SimpleNamespace:
    return SimpleNamespace(
        dag_id="dag", task_id="gconstruct", run_id=f"manual__{uuid.uuid4().hex[:8]}", map_index=-1,
        xcom_push=lambda key, value: None,
    )  # fmt: skip


def _stops(aws_env) -> list[str]:
    return [r["ProcessingJobName"] for r in aws_env.received("SageMaker.StopProcessingJob")]


# --------------------------------------------------------------------------- 1. deferred endings
@pytest.mark.parametrize("meanwhile", ["InProgress", "Failed"])
def test_a_trigger_error_event_stops_the_job_it_followed(meanwhile, aws_env, running_jobs_proxy, monkeypatch):
    """An ``error`` event (an AWS error while describing) stops the job; one that has ended is left alone."""
    from airflow.providers.common.compat.sdk import AirflowException

    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["gconstruct"]
    name = operator_class(task_id="gconstruct", wait_for_completion=False, **kwargs).execute(context={})["job_name"]
    if meanwhile != "InProgress":
        running_jobs_proxy.finish(name, meanwhile)
    operator = operator_class(task_id="gconstruct", deferrable=True, **kwargs)
    event = {"status": "error", "job_name": name, "message": "AccessDeniedException: not authorized"}
    with pytest.raises(AirflowException) as failed:
        operator.execute_complete({}, event)
    assert "AccessDeniedException: not authorized" in str(failed.value)  # the original reason
    if meanwhile == "InProgress":
        assert _stops(aws_env) == [name]
        assert running_jobs_proxy.statuses[name] == "Stopped"
    else:
        assert _stops(aws_env) == []  # an ended job: nothing to stop
        assert running_jobs_proxy.statuses[name] == meanwhile


def test_a_stop_that_fails_after_an_error_event_leaves_the_original_reason(
    aws_env, running_jobs_proxy, monkeypatch, caplog
):
    """The failed stop is logged (by the backend, with the command that stops the job); the task fails as the event says."""
    from airflow.providers.common.compat.sdk import AirflowException

    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["gconstruct"]
    name = operator_class(task_id="gconstruct", wait_for_completion=False, **kwargs).execute(context={})["job_name"]
    _point_connection_at(_closed_port_url(), monkeypatch)  # SageMaker is out of reach now
    operator = operator_class(task_id="gconstruct", deferrable=True, aws_max_attempts=1, **kwargs)
    event = {"status": "error", "job_name": name, "message": "ExpiredTokenException: token expired"}
    with caplog.at_level(logging.ERROR, logger="graphstorm_provider.execution.sagemaker"):
        with pytest.raises(AirflowException) as failed:
            operator.execute_complete({}, event)
    assert type(failed.value) is AirflowException
    assert "ExpiredTokenException: token expired" in str(failed.value)
    stop_command = f"stop it with: aws sagemaker stop-processing-job --processing-job-name {name}"
    assert any(stop_command in record.getMessage() for record in caplog.records), caplog.records
    assert running_jobs_proxy.statuses[name] == "InProgress"  # the stop never reached it (and the log says so)


def _deferred(operator_class, kwargs, ti):
    from airflow.providers.common.compat.sdk import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        operator_class(task_id="gconstruct", deferrable=True, **kwargs).execute(context={"ti": ti})
    return deferred.value.trigger.job_name


def test_a_crashed_trigger_stops_the_job(aws_env, running_jobs_proxy, monkeypatch):
    """The triggerer resumes a task whose trigger raised with ``__fail__`` (``TRIGGER_FAILURE``), no job name."""
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
    from airflow.sdk.exceptions import TaskDeferralError

    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["gconstruct"]
    ti = _task_instance()
    name = _deferred(operator_class, kwargs, ti)
    resumed = operator_class(task_id="gconstruct", deferrable=True, **kwargs)  # a new worker
    crash = {"error": TriggerFailureReason.TRIGGER_FAILURE, "traceback": ["Traceback ...", "KeyError: 'x'"]}
    with pytest.raises(TaskDeferralError):
        resumed.resume_execution(TRIGGER_FAIL_REPR, crash, context={"ti": ti})
    assert _stops(aws_env) == [name]
    assert running_jobs_proxy.statuses[name] == "Stopped"


def test_a_crashed_trigger_whose_stop_fails_still_fails_as_airflow_says(aws_env, running_jobs_proxy, monkeypatch):
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
    from airflow.sdk.exceptions import TaskDeferralError

    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["gconstruct"]
    ti = _task_instance()
    name = _deferred(operator_class, kwargs, ti)
    _point_connection_at(_closed_port_url(), monkeypatch)
    resumed = operator_class(task_id="gconstruct", deferrable=True, aws_max_attempts=1, **kwargs)
    logged = _Log()
    monkeypatch.setattr(type(resumed), "log", property(lambda self: logged))
    with pytest.raises(TaskDeferralError):
        resumed.resume_execution(TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_FAILURE}, {"ti": ti})
    assert any(name in line and "did not answer" in line for line in logged.errors()), logged.lines
    assert running_jobs_proxy.statuses[name] == "InProgress"


# --------------------------------------------------------------------------- 2. local time limits
# A train entry point that runs 30 s (longer than any limit here; bounded, so a run that ignores its
# limit fails the test instead of hanging it) and leaves a child; the graph name (its marker) is in
# every process's argv.
SLEEPING_TRAIN_ENTRY = """
import subprocess, sys, time
marker = sys.argv[sys.argv.index("--graph-name") + 1]
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
print("READY", flush=True)
time.sleep(30)
"""


@pytest.fixture
def sleeping_train_entry(tmp_path, monkeypatch):
    folder = tmp_path / "entrypoints"
    folder.mkdir()
    (folder / "train_entry.py").write_text(textwrap.dedent(SLEEPING_TRAIN_ENTRY))
    monkeypatch.setenv(config.ENTRYPOINTS_DIR_ENV, str(folder))
    scratch = tmp_path / "tmpdir"  # a stopped job keeps its work dir: keep it out of the real /tmp
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    return folder


def _local_train(marker: str, **overrides):
    from graphstorm_provider.operators.train import GSTrainOperator

    kwargs = dict(
        task_id="train", instance_type="local", image_url="graphstorm:sm", aws_conn_id=None,
        role="arn:aws:iam::123456789012:role/SageMakerRole", graph_data_s3="file:///nonexistent/graph/",
        yaml_s3="file:///nonexistent/train.yaml", model_artifact_s3="file:///nonexistent/model/",
        graph_name=marker, task_type="node_classification", require_input_manifests=False,
    )  # fmt: skip
    return GSTrainOperator(**{**kwargs, **overrides})


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        ({"max_ingestion_time": 2}, "max_ingestion_time=2"),
        ({"compose_timeout": 2}, "compose_timeout=2"),
        ({"compose_timeout": 2.5, "max_ingestion_time": 600}, "compose_timeout=2.5"),  # the sooner one
    ],
)
def test_a_one_host_local_run_honours_its_time_limit(limits, named, sleeping_train_entry):
    from graphstorm_provider.execution.local import LocalJobError

    marker = f"gs-local-limit-{uuid.uuid4().hex}"
    operator = _local_train(marker, **limits)
    started = time.monotonic()
    with pytest.raises(LocalJobError) as failed:
        operator.execute(context={})
    assert time.monotonic() - started < 20
    first_line = str(failed.value).splitlines()[0]
    assert f"ran longer than {named} and was stopped" in first_line, first_line
    assert live_processes_with(marker) == set()


# --------------------------------------------------------------------------- 3. compose options
BAD_COMPOSE_OPTIONS = [
    ("gpus", "two"),
    ("gpus", 1.9),
    ("gpus", -1),
    ("gpus", True),
    ("gpus", "1.5"),
    ("gpus", None),
    ("compose_timeout", "abc"),
    ("compose_timeout", "600"),
    ("compose_timeout", 0),
    ("compose_timeout", -5),
    ("compose_timeout", True),
    ("compose_timeout", float("nan")),
    ("compose_timeout", float("inf")),
    ("shm_size", 4),
    ("shm_size", 4.5),
    ("shm_size", "4x"),
    ("shm_size", "4"),  # templated fields arrive as text: a unit is still required (compose: 4 bytes)
    ("shm_size", "0gb"),
    ("shm_size", ""),
    ("shm_size", None),
]


@pytest.fixture
def no_local_run(monkeypatch):
    """Records the runner a local task would build, and runs nothing."""
    made: list[dict] = []

    class _Runner:
        def run(self):
            return None

        def stop(self):
            return None

    def make_local_runner(job, **kwargs):
        made.append({"job": job, **kwargs})
        return _Runner()

    monkeypatch.setattr("graphstorm_provider.execution.runners.make_local_runner", make_local_runner)
    return made


@pytest.mark.parametrize(("name", "value"), BAD_COMPOSE_OPTIONS, ids=repr)
def test_a_bad_compose_option_fails_at_task_start_naming_it(name, value, no_local_run):
    from airflow.providers.common.compat.sdk import AirflowFailException

    operator = _local_train("acm", instance_count=2, **{name: value})
    with pytest.raises(AirflowFailException) as failed:
        operator.execute(context={})
    message = str(failed.value)
    assert message.startswith(f"{name} must be "), message
    assert message.endswith("."), message
    assert "\n" not in message, message
    assert ". " not in message, message  # one sentence
    assert no_local_run == []  # refused before anything ran


def test_a_bare_number_as_shm_size_is_refused_with_a_hint(no_local_run):
    from airflow.providers.common.compat.sdk import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"shm_size must be .*'4gb'.*bytes"):
        _local_train("acm", instance_count=2, shm_size=4).execute(context={})


def test_good_compose_options_reach_the_compose_backend(no_local_run):
    operator = _local_train("acm", instance_count=2, gpus=" 2 ", shm_size="512m", compose_timeout=90)
    operator.execute(context={})
    [made] = no_local_run
    assert (made["compose_options"].gpus, made["compose_options"].shm_size) == (2, "512m")
    assert made["timeout_s"] == 90


@pytest.mark.parametrize(("name", "value"), [("gpus", "two"), ("shm_size", 4), ("timeout", "abc")], ids=repr)
def test_local_compose_operator_checks_its_compose_options_at_task_start_too(name, value, no_local_run, tmp_path):
    from airflow.providers.common.compat.sdk import AirflowFailException

    from graphstorm_provider.operators import LocalComposeOperator

    operator = LocalComposeOperator(
        task_id="train",
        step="train",
        instance_count=2,
        image_url="graphstorm:sm",
        graph_name="acm",
        task_type="node_classification",
        graph_data_s3=f"file://{tmp_path}/graph/",
        yaml_s3=f"file://{tmp_path}/t.yaml",
        model_artifact_s3=f"file://{tmp_path}/model/",
        **{name: value},
    )
    with pytest.raises(AirflowFailException, match=rf"^{name} must be "):
        operator.execute(context={})
    assert no_local_run == []
