"""
The SageMaker backend: the one place that talks to SageMaker about a :class:`JobRequest`.

It creates, describes, waits on, stops and tails the CloudWatch logs of a job rendered as a
:class:`JobRequest`.

The caller supplies the boto3 clients, so credentials stay the caller's business: the operators
take them from the Amazon provider's ``SageMakerHook`` / ``AwsLogsHook`` (the Airflow AWS
connection), ``gs-sagemaker`` from plain boto3 (:func:`sagemaker_client`, :func:`logs_client`).
Airflow concerns (templating, deferral with ``SageMakerTrigger``, XCom) stay in the operators.
Nothing here imports boto3 at module level: the CLI's ``--dry-run`` and DAG parsing must not pay
for it.

:meth:`SageMakerBackend.start` is the single start path: it describes the job's name first (never
lists jobs) and re-attaches to a running job, takes a completed one's result, or launches under the
next attempt name (``-a2``, ...) after a failed or stopped one; ``ResourceInUse`` on create is
resolved the same way. :meth:`SageMakerBackend.run` is start + wait, stopping the job whenever the
wait ends in an error. A stop that fails raises :class:`SageMakerStopFailed`, whose message is the
``aws sagemaker stop-...`` command. :func:`botocore_config` bounds retries and timeouts, and API
calls that cannot reach the endpoint raise :class:`SageMakerUnreachable` (one sentence naming it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from graphstorm_provider.jobs import naming

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobKind, JobRequest

log = logging.getLogger(__name__)

# The Amazon provider's SageMakerHook uses the same sets; "Stopped" counts as a failure because
# the job did not produce its outputs.
NON_TERMINAL_STATES = frozenset({"InProgress", "Stopping"})
FAILED_STATES = frozenset({"Failed", "Stopped"})
SUCCESS_STATE = "Completed"
# CloudWatch log groups SageMaker writes a job's streams to (``<group>/<job name>/<host>``).
LOG_GROUPS: dict[str, str] = {
    "training": "/aws/sagemaker/TrainingJobs",
    "processing": "/aws/sagemaker/ProcessingJobs",
}
DEFAULT_POLL_SECONDS = 30.0
# How botocore talks to AWS (operators and CLI alike): throttling and 5xx retried with botocore's
# adaptive mode, at most DEFAULT_AWS_MAX_ATTEMPTS attempts per call; a connect or read that takes
# longer than its timeout counts as a failed attempt. Worst case for an endpoint that accepts and
# never answers: attempts x read timeout + botocore's jittered backoff (rand x 1, 2, 4, 8 s between
# the five attempts: at most 15 s) <= 50 s with the defaults; a refused connection fails in about
# the backoff alone (measured 11-16 s; bench/unreachable_endpoint.py).
DEFAULT_AWS_MAX_ATTEMPTS = 5
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 7
RETRY_MODE = "adaptive"
# botocore error codes meaning "a job with this name exists already" (SageMaker answers
# ResourceInUse for training and processing job names).
_NAME_TAKEN_CODES = frozenset({"ResourceInUse", "ResourceInUseException"})
_NOT_FOUND_CODES = frozenset({"ValidationException", "ValidationError", "ResourceNotFound"})
Outcome = Literal["created", "attached", "completed"]


class SageMakerJobFailed(RuntimeError):
    """The job ended in ``Failed`` or ``Stopped``."""

    def __init__(self, job_name: str, status: str, reason: str | None) -> None:
        self.job_name = job_name
        self.status = status
        self.reason = reason
        super().__init__(f"SageMaker job {job_name} ended {status}: {reason or '(no reason given)'}")


class SageMakerUnreachable(ConnectionError):
    """An API call could not reach the SageMaker endpoint within the bounded retries."""

    def __init__(self, endpoint: str, attempts: int | None, err: BaseException) -> None:
        self.endpoint = endpoint
        tries = f" after {attempts} attempts" if attempts else ""
        detail = str(err).rstrip(".")
        super().__init__(f"The SageMaker endpoint {endpoint} did not answer{tries} ({detail}).")


class SageMakerStopFailed(RuntimeError):
    """A stop request for a running job failed: the job may still run (and cost money)."""

    def __init__(self, job_name: str, command: str, err: BaseException) -> None:
        self.job_name = job_name
        self.command = command
        super().__init__(f"Could not stop SageMaker job {job_name} ({err}); stop it with: {command}")


class SageMakerJobTimeout(TimeoutError):
    """The job ran longer than the caller's limit (the operators' ``max_ingestion_time``)."""

    def __init__(self, job_name: str, status: str, timeout_seconds: float) -> None:
        self.job_name = job_name
        super().__init__(f"SageMaker job {job_name} took more than {timeout_seconds:.0f} seconds (still {status})")


@dataclass(frozen=True)
class JobStatus:
    """One observation of a job: its status, SageMaker's secondary status and failure reason."""

    job_name: str
    status: str
    secondary_status: str | None = None
    failure_reason: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status not in NON_TERMINAL_STATES

    def __str__(self) -> str:
        text = f"{self.job_name}: {self.status}"
        if self.secondary_status and self.secondary_status != self.status:
            text += f" ({self.secondary_status})"
        if self.failure_reason:
            text += f" - {self.failure_reason}"
        return text


@dataclass(frozen=True)
class Started:
    """
    What :meth:`SageMakerBackend.start` did.

    ``job`` is the request under the name it used (the job that produces the outputs),
    ``outcome`` whether it created that job, attached to it running, or found it completed.
    """

    job: JobRequest
    outcome: Outcome


def botocore_config(max_attempts: int | None = None, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """
    Botocore ``Config`` keyword arguments: bounded adaptive retries and timeouts.

    :param max_attempts: attempts per API call, the first try included (botocore's
        ``total_max_attempts``); ``None`` keeps ``base``'s ``retries``, else
        :data:`DEFAULT_AWS_MAX_ATTEMPTS`.
    :param base: the user's own settings (an AWS connection's ``config_kwargs``): they win over
        the defaults here, except ``max_attempts`` when given.
    """
    base = dict(base or {})
    # botocore: ``total_max_attempts`` counts the first try, ``max_attempts`` only the retries.
    retries = {"mode": RETRY_MODE, **dict(base.pop("retries", None) or {})}
    if max_attempts is not None:
        retries.pop("max_attempts", None)
        retries["total_max_attempts"] = int(max_attempts)
    elif "max_attempts" not in retries and "total_max_attempts" not in retries:
        retries["total_max_attempts"] = DEFAULT_AWS_MAX_ATTEMPTS
    return {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
        **base,
        "retries": retries,
    }


def _client(service: str, region: str, max_attempts: int | None) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(service, region_name=region, config=Config(**botocore_config(max_attempts)))  # type: ignore[call-overload]


def sagemaker_client(region: str, max_attempts: int | None = None) -> Any:
    """
    Return a plain boto3 SageMaker client with :func:`botocore_config`.

    boto3 itself honours ``AWS_ENDPOINT_URL`` (e.g. moto).
    """
    return _client("sagemaker", region, max_attempts)


def logs_client(region: str, max_attempts: int | None = None) -> Any:
    """Return a plain boto3 CloudWatch Logs client with :func:`botocore_config`."""
    return _client("logs", region, max_attempts)


def job_type(kind: JobKind) -> str:
    """Return the Amazon provider's ``SageMakerTrigger`` job type for a request kind."""
    return "Training" if kind == "training" else "Processing"


def stop_command(job: JobRequest) -> str:
    """Return the AWS CLI command that stops the job (for messages when nobody will stop it)."""
    return kind_stop_command(job.kind, job.job_name, job.region)


def kind_stop_command(kind: JobKind, job_name: str, region: str | None) -> str:
    flag = (
        "stop-training-job --training-job-name" if kind == "training" else ("stop-processing-job --processing-job-name")
    )
    return f"aws sagemaker {flag} {job_name}" + (f" --region {region}" if region else "")


def error_code(err: BaseException) -> str:
    """Return the AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(err, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _is_not_found(err: BaseException) -> bool:
    message = str(err).lower()
    return error_code(err) in _NOT_FOUND_CODES and (
        "not find" in message or "not found" in message or "does not exist" in message
    )


# The fields of a create request that make it "the same job": compared with what describe
# answers, where describe has them (moto drops some), before a job is re-attached or its result
# taken. Paths are key sequences; "*" walks a list.
_IDENTITY_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "training": (
        ("AlgorithmSpecification", "TrainingImage"),
        ("AlgorithmSpecification", "ContainerEntrypoint"),
        ("AlgorithmSpecification", "ContainerArguments"),
        ("ResourceConfig", "InstanceType"),
        ("ResourceConfig", "InstanceCount"),
        ("RoleArn",),
        ("OutputDataConfig", "S3OutputPath"),
    ),
    "processing": (
        ("AppSpecification", "ImageUri"),
        ("AppSpecification", "ContainerEntrypoint"),
        ("AppSpecification", "ContainerArguments"),
        ("ProcessingResources", "ClusterConfig", "InstanceType"),
        ("ProcessingResources", "ClusterConfig", "InstanceCount"),
        ("RoleArn",),
        ("ProcessingInputs", "*", "S3Input", "S3Uri"),
        ("ProcessingOutputConfig", "Outputs", "*", "S3Output", "S3Uri"),
    ),
}
_MISSING = object()


def _pick(tree: Any, path: tuple[str, ...]) -> Any:
    for index, key in enumerate(path):
        if key == "*":
            if not isinstance(tree, list):
                return _MISSING
            return [_pick(item, path[index + 1 :]) for item in tree]
        if not isinstance(tree, dict) or key not in tree:
            return _MISSING
        tree = tree[key]
    return tree


def request_difference(job: JobRequest, description: Mapping[str, Any]) -> str | None:
    """
    Return the first identity field in which the described job differs from ``job``'s request.

    Such as ``"AlgorithmSpecification.ContainerArguments"``; ``None`` when it is the same job.
    """
    for path in _IDENTITY_FIELDS[job.kind]:
        described = _pick(description, path)
        if described is _MISSING:
            continue
        if described != _pick(job.request, path):
            return ".".join(key for key in path if key != "*")
    return None


class CloudWatchTail:
    """
    Emits new CloudWatch log lines of a job's streams (``<log group>/<job name>/...``).

    Best effort: logs are a convenience, so any error reading them is logged once and ignored.
    """

    def __init__(self, client: Any, kind: JobKind, job_name: str) -> None:
        self.group = LOG_GROUPS[kind]
        self.prefix = f"{job_name}/"
        self._client = client
        self._tokens: dict[str, str | None] = {}
        self._broken = False

    def poll(self, emit: Callable[[str], None]) -> int:
        """Emit what is new in every stream; return the number of lines emitted."""
        if self._broken:
            return 0
        try:
            return self._poll(emit)
        except Exception as err:
            if type(err).__name__ != "ResourceNotFoundException":  # no logs yet
                log.warning("Not showing CloudWatch logs: %s", err)
                self._broken = True
            return 0

    def _poll(self, emit: Callable[[str], None]) -> int:
        streams = self._client.describe_log_streams(logGroupName=self.group, logStreamNamePrefix=self.prefix)
        printed = 0
        for stream in streams.get("logStreams", []):
            name = stream["logStreamName"]
            while True:
                kwargs: dict[str, Any] = {"logGroupName": self.group, "logStreamName": name, "startFromHead": True}
                if self._tokens.get(name):
                    kwargs["nextToken"] = self._tokens[name]
                page = self._client.get_log_events(**kwargs)
                for event in page.get("events", []):
                    emit(f"[{name.removeprefix(self.prefix)}] {event['message']}")
                    printed += 1
                token = page.get("nextForwardToken")
                if token == self._tokens.get(name) or not page.get("events"):
                    self._tokens[name] = token
                    break
                self._tokens[name] = token
        return printed


class SageMakerBackend:
    """
    Runs :class:`JobRequest` s on SageMaker through the caller's boto3 clients.

    :param client: a boto3 SageMaker client (e.g. ``SageMakerHook(...).conn``), configured with
        :func:`botocore_config`.
    :param logs: a boto3 CloudWatch Logs client; ``None`` shows no job logs.
    """

    def __init__(self, client: Any, logs: Any = None) -> None:
        self.client = client
        self.logs = logs

    # ------------------------------------------------------------------ one job, one call each
    def _call(self, method: str, **kwargs: Any) -> Any:
        """
        Make one SageMaker API call.

        A call that cannot reach the endpoint (after botocore's bounded retries) raises
        :class:`SageMakerUnreachable` naming it.
        """
        from botocore.exceptions import (
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        try:
            return getattr(self.client, method)(**kwargs)
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError) as err:
            meta = getattr(self.client, "meta", None)
            endpoint = getattr(meta, "endpoint_url", None) or "(unknown)"
            retries = getattr(getattr(meta, "config", None), "retries", None) or {}
            attempts = retries.get("total_max_attempts") or (
                retries["max_attempts"] + 1 if retries.get("max_attempts") is not None else None
            )
            raise SageMakerUnreachable(endpoint, attempts, err) from None

    def create(self, job: JobRequest) -> str:
        """Send the create request as rendered; return the job ARN. Only :meth:`start` calls it."""
        if job.kind == "training":
            return cast("str", self._call("create_training_job", **job.request)["TrainingJobArn"])
        return cast("str", self._call("create_processing_job", **job.request)["ProcessingJobArn"])

    def describe(self, kind: JobKind, job_name: str) -> dict[str, Any]:
        if kind == "training":
            return cast("dict[str, Any]", self._call("describe_training_job", TrainingJobName=job_name))
        return cast("dict[str, Any]", self._call("describe_processing_job", ProcessingJobName=job_name))

    def find(self, kind: JobKind, job_name: str) -> dict[str, Any] | None:
        """Return the job's description, or ``None`` when no job has this name (other errors raise)."""
        try:
            return self.describe(kind, job_name)
        except Exception as err:
            if _is_not_found(err):
                return None
            raise

    def status(self, kind: JobKind, job_name: str) -> JobStatus:
        return _status(kind, job_name, self.describe(kind, job_name))

    def stop(self, kind: JobKind, job_name: str, region: str | None = None) -> bool:
        """
        Stop the job if it is still running; return whether a stop request was sent.

        A job that already ended, is already stopping, or never existed is left alone. A stop request that fails
        raises :class:`SageMakerStopFailed` (logged first with the ``aws sagemaker stop-...``
        command): the job may still be running, and that must not go unnoticed.
        """
        try:
            found = self.find(kind, job_name)
            status = None if found is None else _status(kind, job_name, found)
            if status is None or status.is_terminal or status.status == "Stopping":
                log.info("SageMaker job %s is %s; nothing to stop.", job_name, status.status if status else "absent")
                return False
            if kind == "training":
                self._call("stop_training_job", TrainingJobName=job_name)
            else:
                self._call("stop_processing_job", ProcessingJobName=job_name)
        except Exception as err:
            failure = SageMakerStopFailed(job_name, kind_stop_command(kind, job_name, region), err)
            log.error("%s", failure)
            raise failure from err
        log.info("Stop requested for SageMaker job %s.", job_name)
        return True

    def stop_attempts(self, job: JobRequest) -> list[str]:
        """
        Stop every attempt of ``job`` that is still running: ``job.job_name``, ``-a2``, ``-a3``, ...

        The names are described in :meth:`start`'s order, up to the first that does not exist.
        Return the names a stop request was sent for (a failed stop raises, as in :meth:`stop`).
        """
        stopped = []
        for attempt in range(1, naming.MAX_JOB_ATTEMPTS + 1):
            name = naming.attempt_name(job.job_name, attempt)
            if self.find(job.kind, name) is None:
                break
            if self.stop(job.kind, name, job.region):
                stopped.append(name)
        return stopped

    # ------------------------------------------------------------------ starting, re-attaching
    def start(
        self,
        job: JobRequest,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Started:
        """
        Find the job by name, else create it: the one start path.

        For each name ``job.job_name``, ``-a2``, ``-a3``, ... (:func:`naming.attempt_name`) the
        name is described (never listed):

        * no such job: create it (``created``); a create answered ``ResourceInUse`` (e.g.
          botocore retried a create whose reply was lost) is described and decided like this;
        * ``InProgress`` with the same request: attach (``attached``), the caller waits;
        * ``Completed`` with the same request: take its result without launching (``completed``);
        * ``Stopping``: wait until it has stopped, then go on as for ``Stopped``;
        * ``Failed``, ``Stopped``, or a different request (the DAG changed): log why and try the
          next name; a different request still running is stopped first (two jobs of one task
          would write the same outputs).
        """
        for attempt in range(1, naming.MAX_JOB_ATTEMPTS + 1):
            candidate = naming.renamed(job, naming.attempt_name(job.job_name, attempt))
            name = candidate.job_name
            found = self.find(job.kind, name)
            if found is None:
                try:
                    self.create(candidate)
                    log.debug("Created SageMaker %s job %s.", job.kind, name)
                    return Started(candidate, "created")
                except Exception as err:
                    if error_code(err) not in _NAME_TAKEN_CODES:
                        raise
                    log.info("SageMaker job %s exists already (%s); deciding from its status.", name, error_code(err))
                    found = self.describe(job.kind, name)
            status = _status(job.kind, name, found)
            difference = request_difference(candidate, found)
            if status.status == "Stopping":
                log.info("SageMaker job %s is stopping; waiting for it to end.", name)
                try:
                    status = self.wait(job.kind, name, poll_seconds=poll_seconds, sleep=sleep)
                except SageMakerJobFailed as err:
                    status = JobStatus(name, err.status, failure_reason=err.reason)
            if difference is None and status.status == SUCCESS_STATE:
                log.info("SageMaker job %s already completed; taking its outputs without launching.", name)
                return Started(candidate, "completed")
            if difference is None and status.status in NON_TERMINAL_STATES:
                log.info("SageMaker job %s is %s; attaching to it instead of launching another.", name, status.status)
                return Started(candidate, "attached")
            if difference is not None:
                log.warning(
                    "SageMaker job %s (%s) was started from a different request (%s differs); "
                    "launching the next attempt.",
                    name,
                    status.status,
                    difference,
                )
                if status.status in NON_TERMINAL_STATES:
                    self.stop(job.kind, name, job.region)
            else:
                log.warning(
                    "SageMaker job %s ended %s (%s); launching the next attempt.",
                    name,
                    status.status,
                    status.failure_reason or "no reason given",
                )
        raise RuntimeError(
            f"SageMaker job {job.job_name} has {naming.MAX_JOB_ATTEMPTS} attempts already; "
            f"choose another task_name or job name."
        )

    # ------------------------------------------------------------------ following a job
    def wait(
        self,
        kind: JobKind,
        job_name: str,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        timeout_seconds: float | None = None,
        on_status: Callable[[JobStatus], None] = lambda status: log.info("%s", status),
        on_log: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> JobStatus:
        """
        Poll until the job ends, reporting every change of (secondary) status.

        With ``on_log`` and a logs client, also report every new CloudWatch log line.

        :return: the final status when the job completed.
        :raises SageMakerJobFailed: when it ended ``Failed`` or ``Stopped``.
        :raises SageMakerJobTimeout: after ``timeout_seconds``; the job is left running.
        """
        tail = CloudWatchTail(self.logs, kind, job_name) if on_log and self.logs is not None else None

        def show_logs() -> None:
            if tail is not None and on_log is not None:
                tail.poll(on_log)

        started = time.monotonic()
        last: tuple[str, str | None] | None = None
        while True:
            status = self.status(kind, job_name)
            if (status.status, status.secondary_status) != last:
                on_status(status)
                last = (status.status, status.secondary_status)
            if status.is_terminal:
                show_logs()
                if status.status in FAILED_STATES:
                    raise SageMakerJobFailed(job_name, status.status, status.failure_reason)
                return status
            if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
                raise SageMakerJobTimeout(job_name, status.status, timeout_seconds)
            show_logs()
            sleep(poll_seconds)

    def run(
        self,
        job: JobRequest,
        *,
        wait: bool = True,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        timeout_seconds: float | None = None,
        on_status: Callable[[JobStatus], None] = lambda status: log.info("%s", status),
        on_log: Callable[[str], None] | None = None,
        on_started: Callable[[Started], None] = lambda started: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Started:
        """
        :meth:`start` the job and, with ``wait``, follow it to its end.

        ``on_started`` learns the job's actual name before the wait (so a kill can stop it).
        Whatever ends the wait in an error (job failure, timeout, an API error, Ctrl-C), a job
        still running is stopped: nobody would wait for it any more. If that stop fails too,
        :class:`SageMakerStopFailed` is raised (from the first error).
        """
        started = self.start(job, poll_seconds=poll_seconds, sleep=sleep)
        on_started(started)
        if not wait or started.outcome == "completed":
            return started
        name = started.job.job_name
        try:
            self.wait(
                job.kind,
                name,
                poll_seconds=poll_seconds,
                timeout_seconds=timeout_seconds,
                on_status=on_status,
                on_log=on_log,
                sleep=sleep,
            )
        except BaseException as err:
            if not isinstance(err, SageMakerJobFailed):  # a failed job has ended: nothing to stop
                self.stop(job.kind, name, job.region)
            raise
        return started


def _status(kind: JobKind, job_name: str, description: Mapping[str, Any]) -> JobStatus:
    key = "TrainingJobStatus" if kind == "training" else "ProcessingJobStatus"
    return JobStatus(
        job_name=job_name,
        status=description[key],
        secondary_status=description.get("SecondaryStatus"),
        failure_reason=description.get("FailureReason"),
    )
