"""Deferrable mode where it pays: the trigger waits as long as the job may run, and a job that
already ended finishes the task without deferring (moto server; the running-jobs proxy keeps a job
``InProgress``)."""

from __future__ import annotations

import pytest

from tests.test_operators_sagemaker import REGION, _operators, _point_connection_at


@pytest.fixture(autouse=True)
def _no_input_manifests(monkeypatch):
    """moto runs no job, so the inputs these jobs name carry no manifest (operators/preflight.py)."""
    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS", "False")


def _train_job(**sm_params):
    operator_class, kwargs = _operators()["train"]
    if sm_params:
        kwargs = {**kwargs, "sm_estimator_parameters": sm_params}
    return operator_class(task_id="train", **kwargs).build_job()


@pytest.mark.parametrize(
    ("sm_params", "interval", "expected"),
    [
        ({"max_run": 7200}, 30, (7200 + 3600) // 30),  # the job's max_run, plus the hour of margin
        ({"max_run": 100}, 7, -(-(100 + 3600) // 7)),  # rounded up
        ({}, 60, (24 * 3600 + 3600) // 60),  # SageMaker's default MaxRuntimeInSeconds: 24 h
    ],
)
def test_waiter_max_attempts_follows_the_jobs_max_run(sm_params, interval, expected):
    from graphstorm_provider.operators.deferral import waiter_max_attempts

    assert waiter_max_attempts(_train_job(**sm_params), interval) == expected
    assert waiter_max_attempts(_train_job(**sm_params), interval, explicit=5) == 5


def test_a_processing_job_without_a_limit_waits_24_hours_plus_margin():
    from graphstorm_provider.operators.deferral import DEFAULT_WAIT_SECONDS, WAIT_MARGIN_SECONDS, waiter_max_attempts

    operator_class, kwargs = _operators()["gconstruct"]
    job = operator_class(task_id="gconstruct", **kwargs).build_job()
    assert "MaxRuntimeInSeconds" not in (job.request.get("StoppingCondition") or {})
    assert waiter_max_attempts(job, 30) == (DEFAULT_WAIT_SECONDS + WAIT_MARGIN_SECONDS) // 30


def test_a_running_job_defers_with_attempts_from_its_max_run(aws_env, running_jobs_proxy, monkeypatch):
    from airflow.providers.common.compat.sdk import TaskDeferred

    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["train"]
    operator = operator_class(
        task_id="train", deferrable=True, check_interval=20, sm_estimator_parameters={"max_run": 1800}, **kwargs
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={})
    _, trigger = deferred.value.trigger.serialize()
    assert trigger["waiter_max_attempts"] == (1800 + 3600) // 20
    assert trigger["waiter_delay"] == 20
    [created] = aws_env.received("SageMaker.CreateTrainingJob")
    assert trigger["job_name"] == created["TrainingJobName"]
    # It looked once before deferring (the job was InProgress), then left the waiting to the trigger.
    # one describe before the create (the re-attach check), one before deferring
    assert running_jobs_proxy.targets.count("SageMaker.DescribeTrainingJob") == 2


@pytest.mark.parametrize(("configured", "expected"), [("12", 12), (None, 30)])
def test_without_check_interval_the_trigger_checks_as_often_as_the_config_says(
    configured, expected, aws_env, running_jobs_proxy, monkeypatch
):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from graphstorm_provider.operators.base import DEFAULT_CHECK_INTERVAL_S

    assert DEFAULT_CHECK_INTERVAL_S == 30
    if configured is None:
        monkeypatch.delenv("AIRFLOW__GRAPHSTORM__CHECK_INTERVAL", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW__GRAPHSTORM__CHECK_INTERVAL", configured)
    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["train"]
    operator = operator_class(task_id="train", deferrable=True, sm_estimator_parameters={"max_run": 1800}, **kwargs)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={})
    _, trigger = deferred.value.trigger.serialize()
    assert trigger["waiter_delay"] == expected
    assert trigger["waiter_max_attempts"] == -(-(1800 + 3600) // expected)


@pytest.mark.parametrize(
    ("explicit", "configured", "named"),
    [
        (0, None, "check_interval"),
        ("soon", None, "check_interval"),
        (None, "0", "[graphstorm] check_interval"),
        (None, "1.5", "[graphstorm] check_interval"),
    ],
)
def test_a_bad_check_interval_fails_at_task_start_without_retries_naming_where_it_came_from(
    explicit, configured, named, aws_env, monkeypatch
):
    from airflow.providers.common.compat.sdk import AirflowFailException

    if configured is not None:
        monkeypatch.setenv("AIRFLOW__GRAPHSTORM__CHECK_INTERVAL", configured)
    operator_class, kwargs = _operators()["train"]
    operator = operator_class(task_id="train", deferrable=True, check_interval=explicit, **kwargs)
    with pytest.raises(AirflowFailException) as failed:
        operator.execute(context={})
    message = str(failed.value)
    assert message.startswith(f"{named} must be a whole number of seconds from 1, got ")
    assert "\n" not in message
    assert aws_env.received("SageMaker.CreateTrainingJob") == []  # nothing launched


def test_a_job_that_already_ended_finishes_without_deferring(aws_env):
    """moto completes jobs at once: the check before deferring sees Completed, no TaskDeferred."""
    operator_class, kwargs = _operators()["train"]
    result = operator_class(task_id="train", deferrable=True, check_interval=1, **kwargs).execute(context={})
    [created] = aws_env.received("SageMaker.CreateTrainingJob")
    assert result["job_name"] == created["TrainingJobName"]
    assert result["model_artifact_s3"] == kwargs["model_artifact_s3"].rstrip("/") + "/"
    # one describe before the create (the re-attach check), one before deferring
    assert len(aws_env.received("SageMaker.DescribeTrainingJob")) == 2


def test_a_job_that_already_failed_fails_the_task_without_deferring(aws_env, running_jobs_proxy, monkeypatch):
    """A job stopped before the check fails the task (a processing job: moto cannot stop training jobs)."""
    from graphstorm_provider.execution.sagemaker import SageMakerJobFailed
    from graphstorm_provider.operators.deferral import ended_before_deferring

    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["gconstruct"]
    operator = operator_class(task_id="gconstruct", deferrable=True, **kwargs)
    job = operator.build_job()
    backend = operator._sagemaker_backend(job.region)
    backend.create(job)
    assert ended_before_deferring(backend, job, operator.log) is False  # InProgress
    backend.client.stop_processing_job(ProcessingJobName=job.job_name)
    with pytest.raises(SageMakerJobFailed, match="Stopped"):
        ended_before_deferring(backend, job, operator.log)


@pytest.mark.parametrize("reason", ["timeout", "trigger failure"])
def test_a_deferral_that_times_out_stops_its_job(reason, aws_env, running_jobs_proxy, monkeypatch):
    """The deferral's timeout (``max_ingestion_time``) resumes the task only to fail it, without the
    trigger's job name: the job is found by the task instance's name and stopped. So does a trigger
    that failed (``TRIGGER_FAILURE``): nobody waits for the job any more (tests/test_operator_endings.py)."""
    from types import SimpleNamespace

    from airflow.providers.common.compat.sdk import TaskDeferred
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
    from airflow.sdk.exceptions import TaskDeferralError, TaskDeferralTimeout

    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["train"]
    operator = operator_class(task_id="train", deferrable=True, max_ingestion_time=60, **kwargs)
    ti = SimpleNamespace(
        dag_id="dag", task_id="train", run_id="manual__1", map_index=-1, xcom_push=lambda key, value: None
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={"ti": ti})
    name = deferred.value.trigger.job_name
    assert deferred.value.timeout.total_seconds() == 60
    error = TriggerFailureReason.TRIGGER_TIMEOUT if reason == "timeout" else TriggerFailureReason.TRIGGER_FAILURE
    expected = TaskDeferralTimeout if reason == "timeout" else TaskDeferralError
    resumed = operator_class(task_id="train", deferrable=True, max_ingestion_time=60, **kwargs)  # a new worker
    with pytest.raises(expected):
        resumed.resume_execution(TRIGGER_FAIL_REPR, {"error": error}, context={"ti": ti})
    proxied = resumed._sagemaker_backend(REGION).status("training", name).status
    assert "SageMaker.StopTrainingJob" in running_jobs_proxy.targets
    assert proxied == "Stopped"
