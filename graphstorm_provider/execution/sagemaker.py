"""Launch, follow and stop SageMaker jobs rendered as a :class:`JobRequest`.

Shared by the operators (which pass the boto3 client of the Amazon provider's ``SageMakerHook``
and let the hook do the waiting and CloudWatch log streaming) and by ``gs-sagemaker`` (which
passes a plain boto3 client and waits with :func:`wait`). Nothing here imports boto3 at module
level: the CLI's ``--dry-run`` and DAG parsing must not pay for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobKind, JobRequest

log = logging.getLogger(__name__)

# Same state sets as the Amazon provider's SageMakerHook; "Stopped" counts as a failure because
# the job did not produce its outputs.
NON_TERMINAL_STATES = frozenset({"InProgress", "Stopping"})
FAILED_STATES = frozenset({"Failed", "Stopped"})
SUCCESS_STATE = "Completed"


class SageMakerJobFailed(RuntimeError):
    """The job ended in ``Failed`` or ``Stopped``."""

    def __init__(self, job_name: str, status: str, reason: str | None) -> None:
        self.job_name = job_name
        self.status = status
        self.reason = reason
        super().__init__(f"SageMaker job {job_name} ended {status}: {reason or '(no reason given)'}")


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


def sagemaker_client(region: str) -> Any:
    """A plain boto3 SageMaker client. boto3 itself honours ``AWS_ENDPOINT_URL`` (e.g. moto)."""
    import boto3

    return boto3.client("sagemaker", region_name=region)


def job_type(kind: JobKind) -> str:
    """The Amazon provider's ``SageMakerTrigger`` job type for a request kind."""
    return "Training" if kind == "training" else "Processing"


def create_job(client: Any, job: JobRequest) -> str:
    """Send the create request as rendered; return the job ARN."""
    if job.kind == "training":
        return client.create_training_job(**job.request)["TrainingJobArn"]
    return client.create_processing_job(**job.request)["ProcessingJobArn"]


def describe_job(client: Any, kind: JobKind, job_name: str) -> dict[str, Any]:
    if kind == "training":
        return client.describe_training_job(TrainingJobName=job_name)
    return client.describe_processing_job(ProcessingJobName=job_name)


def job_status(client: Any, kind: JobKind, job_name: str) -> JobStatus:
    description = describe_job(client, kind, job_name)
    key = "TrainingJobStatus" if kind == "training" else "ProcessingJobStatus"
    return JobStatus(
        job_name=job_name,
        status=description[key],
        secondary_status=description.get("SecondaryStatus"),
        failure_reason=description.get("FailureReason"),
    )


def stop_job(client: Any, kind: JobKind, job_name: str) -> bool:
    """Stop the job if it is still running; return whether a stop request was sent.

    Never raises: it runs from ``on_kill`` and from cleanup paths, where a second error would
    hide the first. A job that already ended is left alone.
    """
    try:
        if job_status(client, kind, job_name).is_terminal:
            log.info("SageMaker job %s already ended; nothing to stop.", job_name)
            return False
        if kind == "training":
            client.stop_training_job(TrainingJobName=job_name)
        else:
            client.stop_processing_job(ProcessingJobName=job_name)
    except Exception:  # noqa: BLE001 - best effort, see docstring
        log.exception("Could not stop SageMaker job %s; stop it in the console.", job_name)
        return False
    log.info("Stop requested for SageMaker job %s.", job_name)
    return True


def wait(
    client: Any,
    kind: JobKind,
    job_name: str,
    *,
    poll_seconds: float = 30,
    timeout_seconds: float | None = None,
    on_status: Callable[[JobStatus], None] = lambda status: log.info("%s", status),
    sleep: Callable[[float], None] = time.sleep,
) -> JobStatus:
    """Poll until the job ends, reporting every change of (secondary) status.

    :return: the final status when the job completed.
    :raises SageMakerJobFailed: when it ended ``Failed`` or ``Stopped``.
    :raises TimeoutError: after ``timeout_seconds``; the job is left running (the caller decides).
    """
    started = time.monotonic()
    last: tuple[str, str | None] | None = None
    while True:
        status = job_status(client, kind, job_name)
        if (status.status, status.secondary_status) != last:
            on_status(status)
            last = (status.status, status.secondary_status)
        if status.is_terminal:
            if status.status in FAILED_STATES:
                raise SageMakerJobFailed(job_name, status.status, status.failure_reason)
            return status
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise TimeoutError(f"SageMaker job {job_name} still {status.status} after {timeout_seconds:.0f} s")
        sleep(poll_seconds)
