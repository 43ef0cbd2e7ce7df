"""
Deferring a SageMaker wait to the triggerer: how long the trigger waits, and whether to defer.

* :func:`waiter_max_attempts`: the trigger checks the job every ``check_interval`` seconds for as
  long as the job may run - its ``StoppingCondition`` (``MaxRuntimeInSeconds``, the estimator's
  ``max_run``; for spot training ``MaxWaitTimeInSeconds``), else :data:`DEFAULT_WAIT_SECONDS`
  (24 h) - plus :data:`WAIT_MARGIN_SECONDS` for what SageMaker does outside that limit
  (provisioning, image pull, download and upload).
* :func:`ended_before_deferring`: the operator checks the job once before deferring; a job that
  already ended is finished (or failed) at once, without a round trip through the triggerer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

# A job without a StoppingCondition is waited for this long (SageMaker's own default is 1 day).
DEFAULT_WAIT_SECONDS = 24 * 3600
# Time a job spends outside MaxRuntimeInSeconds: instances, image, input download, upload.
WAIT_MARGIN_SECONDS = 3600


def job_time_limit(job: JobRequest) -> int:
    """Seconds the job may take according to its request (24 h when it sets no limit)."""
    stopping = job.request.get("StoppingCondition") or {}
    limits = [int(v) for k in ("MaxRuntimeInSeconds", "MaxWaitTimeInSeconds") if (v := stopping.get(k))]
    return max(limits) if limits else DEFAULT_WAIT_SECONDS


def waiter_max_attempts(job: JobRequest, check_interval: float, explicit: int | None = None) -> int:
    """
    Return the status checks the trigger makes before giving up.

    ``explicit`` if given, else enough to cover the job's time limit plus the margin at one
    check per ``check_interval`` seconds.
    """
    if explicit is not None:
        return int(explicit)
    interval = max(float(check_interval), 1.0)
    return math.ceil((job_time_limit(job) + WAIT_MARGIN_SECONDS) / interval)


def ended_before_deferring(backend: Any, job: JobRequest, log: Any) -> bool:
    """
    Check the job once.

    ``True`` if it already completed (finish without deferring), ``False`` if it is still
    running (defer).

    :raises SageMakerJobFailed: when it already ended ``Failed`` or ``Stopped``.
    """
    from graphstorm_provider.execution.sagemaker import FAILED_STATES, SageMakerJobFailed

    status = backend.status(job.kind, job.job_name)
    log.info("%s", status)
    if not status.is_terminal:
        return False
    if status.status in FAILED_STATES:
        raise SageMakerJobFailed(job.job_name, status.status, status.failure_reason)
    log.info("SageMaker job %s already ended; finishing without deferring.", job.job_name)
    return True
