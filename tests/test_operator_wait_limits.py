"""``waiter_max_attempts`` and ``max_ingestion_time`` are checked before any job is launched.

Both were stored unchecked and first used only after the SageMaker job was created: ``"abc"``
failed with a traceback after the launch (retried, the job left running), ``0`` or a negative
number of attempts made the trigger give up at once (job stopped, task retried, each retry
launching ``<name>-aN``), ``"3600"`` raised ``TypeError`` after the launch, ``-1`` timed out at
once. Now a bad value fails when the operator is created (DAG parse) with one sentence naming
the parameter; a value only known at task start (a mapped task: ``.partial()`` / ``.expand()``)
fails the task without retries (``AirflowFailException``), before anything is launched.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from airflow.sdk import DAG

from tests.test_operators_sagemaker import _operators

BAD_WAITER_MAX_ATTEMPTS = ["abc", "5", 0, -1, True, 2.5, 5.0]
BAD_MAX_INGESTION_TIME = ["3600", 0, -1, True, 0.5, float("nan"), float("inf"), 10**30]
GOOD_WAITER_MAX_ATTEMPTS = [None, 1, 100]
GOOD_MAX_INGESTION_TIME = [None, 1, 3600, 3600.5]
STEPS = ["gconstruct", "train"]


def _new(step: str, **overrides: object):
    operator_class, kwargs = _operators()[step]
    return operator_class(task_id=step, **{**kwargs, **overrides})


def _assert_one_sentence_naming(error: BaseException, name: str) -> None:
    message = str(error)
    assert message.startswith(f"{name} must be "), message
    assert message.endswith("."), message
    assert "\n" not in message, message
    assert message.count(". ") == 0, message  # one sentence
    assert len(message) < 200, message
    assert error.__cause__ is None  # the exception itself, no chained traceback


# --------------------------------------------------------------------------- at construction
@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("value", BAD_WAITER_MAX_ATTEMPTS, ids=repr)
def test_a_bad_waiter_max_attempts_fails_at_construction_naming_it(step, value):
    with pytest.raises(ValueError, match="waiter_max_attempts") as error:
        _new(step, waiter_max_attempts=value)
    _assert_one_sentence_naming(error.value, "waiter_max_attempts")


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("value", BAD_MAX_INGESTION_TIME, ids=repr)
def test_a_bad_max_ingestion_time_fails_at_construction_naming_it(step, value):
    with pytest.raises(ValueError, match="max_ingestion_time") as error:
        _new(step, max_ingestion_time=value)
    _assert_one_sentence_naming(error.value, "max_ingestion_time")


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("value", GOOD_WAITER_MAX_ATTEMPTS, ids=repr)
def test_a_good_waiter_max_attempts_is_kept(step, value):
    assert _new(step, waiter_max_attempts=value).waiter_max_attempts == value


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("value", GOOD_MAX_INGESTION_TIME, ids=repr)
def test_a_good_max_ingestion_time_is_kept(step, value):
    assert _new(step, max_ingestion_time=value).max_ingestion_time == value


def test_the_upper_bounds_are_accepted_and_one_more_is_not():
    from graphstorm_provider.operators.base import MAX_INGESTION_TIME_S, MAX_WAITER_ATTEMPTS

    assert _new("train", waiter_max_attempts=MAX_WAITER_ATTEMPTS).waiter_max_attempts == MAX_WAITER_ATTEMPTS
    assert _new("train", max_ingestion_time=MAX_INGESTION_TIME_S).max_ingestion_time == MAX_INGESTION_TIME_S
    with pytest.raises(ValueError, match=f"waiter_max_attempts must be a whole number from 1 to {MAX_WAITER_ATTEMPTS}"):
        _new("train", waiter_max_attempts=MAX_WAITER_ATTEMPTS + 1)
    with pytest.raises(ValueError, match="max_ingestion_time must be "):
        _new("train", max_ingestion_time=MAX_INGESTION_TIME_S + 1)


def test_the_message_shows_a_string_as_a_string():
    """``"3600"`` looks like a number: the message quotes it, so the reader sees it is a string."""
    with pytest.raises(ValueError, match="max_ingestion_time") as error:
        _new("gconstruct", max_ingestion_time="3600")
    assert str(error.value).endswith("got '3600'.")
    with pytest.raises(ValueError, match="waiter_max_attempts") as error:
        _new("gconstruct", waiter_max_attempts=0)
    assert str(error.value).endswith("got 0.")


@pytest.mark.parametrize(
    ("name", "value"), [("waiter_max_attempts", 0), ("waiter_max_attempts", "abc"), ("max_ingestion_time", -1)]
)
def test_a_bad_value_from_default_args_fails_at_construction_naming_it(name, value):
    _, kwargs = _operators()["train"]
    from graphstorm_provider.operators.train import GSTrainOperator

    with DAG(dag_id="wait_limits", schedule=None, start_date=datetime(2024, 1, 1), default_args={name: value}):
        with pytest.raises(ValueError, match=name) as error:
            GSTrainOperator(task_id="train", **kwargs)
    _assert_one_sentence_naming(error.value, name)
    with DAG(dag_id="wait_limits_task", schedule=None, start_date=datetime(2024, 1, 1)):
        with pytest.raises(ValueError, match=name) as error:
            GSTrainOperator(task_id="train", default_args={name: value}, **kwargs)
    _assert_one_sentence_naming(error.value, name)


# --------------------------------------------------------------------------- mapped tasks
@pytest.mark.parametrize(
    ("name", "value"), [("waiter_max_attempts", "abc"), ("waiter_max_attempts", 0), ("max_ingestion_time", "3600")]
)
@pytest.mark.parametrize("where", ["partial", "expand"])
def test_a_bad_value_of_a_mapped_task_fails_at_task_start_without_retries(name, value, where):
    """A mapped task is created only when it starts (``unmap``): no retry, one sentence, before execute."""
    from airflow.providers.common.compat.sdk import AirflowFailException

    from graphstorm_provider.operators.train import GSTrainOperator

    _, kwargs = _operators()["train"]
    fixed = {k: v for k, v in kwargs.items() if k != "graph_name"}
    with DAG(dag_id="wait_limits_mapped", schedule=None, start_date=datetime(2024, 1, 1)):
        if where == "partial":
            mapped = GSTrainOperator.partial(task_id="train", **{name: value}, **fixed).expand(graph_name=["acm"])
            resolve = {"graph_name": "acm"}
        else:
            mapped = GSTrainOperator.partial(task_id="train", graph_name="acm", **fixed).expand(**{name: [value]})
            resolve = {name: value}
    with pytest.raises(AirflowFailException) as error:  # the task runner fails it without retries
        mapped.unmap(resolve)
    _assert_one_sentence_naming(error.value, name)


def test_a_good_value_of_a_mapped_task_unmaps():
    from graphstorm_provider.operators.train import GSTrainOperator

    _, kwargs = _operators()["train"]
    with DAG(dag_id="wait_limits_mapped_ok", schedule=None, start_date=datetime(2024, 1, 1)):
        mapped = GSTrainOperator.partial(task_id="train", max_ingestion_time=3600, **kwargs).expand(
            waiter_max_attempts=[1, 100]
        )
    operator = mapped.unmap({"waiter_max_attempts": 100})
    assert (operator.waiter_max_attempts, operator.max_ingestion_time) == (100, 3600)


# --------------------------------------------------------------------------- at task start
@pytest.mark.parametrize(
    ("name", "value"),
    [("waiter_max_attempts", "abc"), ("waiter_max_attempts", 0), ("max_ingestion_time", "3600")],
)
def test_a_value_changed_after_construction_fails_at_task_start_before_any_request(name, value, aws_env):
    """E.g. a subclass that templates the parameter: checked again when the task starts, no retry."""
    from airflow.providers.common.compat.sdk import AirflowFailException

    operator = _new("train", deferrable=True)
    setattr(operator, name, value)
    with pytest.raises(AirflowFailException) as error:
        operator.execute(context={})
    _assert_one_sentence_naming(error.value, name)
    assert aws_env.received("SageMaker.CreateTrainingJob") == []
    assert aws_env.received("SageMaker.DescribeTrainingJob") == []


def test_an_explicit_waiter_max_attempts_reaches_the_trigger(aws_env, running_jobs_proxy, monkeypatch):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from tests.test_operators_sagemaker import _point_connection_at

    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS", "False")
    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator = _new("train", deferrable=True, check_interval=5, waiter_max_attempts=7, max_ingestion_time=3600.5)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={})
    _, trigger = deferred.value.trigger.serialize()
    assert trigger["waiter_max_attempts"] == 7
    assert deferred.value.timeout.total_seconds() == 3600.5


MAPPED_DAG = """
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.train import GSTrainOperator

with DAG("gs_wait_limits_mapped", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    GSTrainOperator.partial(
        task_id="train", retries=1, retry_delay=pendulum.duration(seconds=0), deferrable=True,
        waiter_max_attempts={value!r}, **{kwargs!r}
    ).expand(graph_name=["acm", "mag"])
"""


def test_a_mapped_task_with_a_bad_value_fails_in_the_task_runner_without_retries_or_jobs(aws_env, load_dag):
    """Through Airflow's own task runner (``dag.test()``): failed at the first try, nothing sent to SageMaker.

    Without the check a ``ValueError`` from ``unmap`` is retried (``try_number`` 2 here, no retry delay).
    """
    from tests.test_operators_sagemaker import task_states

    _, kwargs = _operators()["train"]
    fixed = {k: v for k, v in kwargs.items() if k != "graph_name"}
    dag_run = load_dag(MAPPED_DAG.format(value=0, kwargs=fixed), "gs_wait_limits_mapped").test()
    assert dag_run.state == "failed"
    tries = {(ti.map_index, str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}
    assert tries == {(0, "failed", 1), (1, "failed", 1)}
    assert task_states(dag_run) == {"train": "failed"}
    assert aws_env.received("SageMaker.DescribeTrainingJob") == []
    assert aws_env.received("SageMaker.CreateTrainingJob") == []
