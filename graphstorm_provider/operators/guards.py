"""
What a step operator does between building its request and launching it.

One call from ``GraphStormBaseOperator.execute``: the input manifest check (:mod:`.preflight`)
and the step cache (:mod:`.step_cache`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

    from graphstorm_provider.jobs.request import JobRequest


def s3_client_factory(aws_conn_id: str | None, region: str) -> Any:
    """Return a factory of the S3 client of the operator's AWS connection (``S3Hook``), made on first use."""

    def make() -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=aws_conn_id or None, region_name=region).get_conn()

    return make


def before_launch(operator: BaseOperator, job: JobRequest) -> dict[str, str] | None:
    """
    Refuse incomplete inputs (``AirflowFailException``, no retry, one sentence).

    With ``skip_if_complete``, return the cached XCom value on a hit (None: launch the job).
    """
    from graphstorm_provider.jobs import validation as v
    from graphstorm_provider.operators import preflight, step_cache

    factory = s3_client_factory(getattr(operator, "aws_conn_id", None), job.region)
    try:
        preflight.check_inputs(job, factory)
        skip = v.boolean("skip_if_complete", getattr(operator, "skip_if_complete", False))
    except ValueError as err:  # InputNotComplete, JobSpecError: the same input fails again
        from airflow.providers.common.compat.sdk import AirflowFailException

        raise AirflowFailException(str(err)) from err
    if not skip:
        return None
    found = step_cache.lookup(job, factory)
    if not found.hit:
        operator.log.info("Step cache miss for %s job %s: %s.", job.step, job.job_name, found.reason)
        return None
    operator.log.info(
        "Step cache hit: the outputs of this %s request were produced by job %s; not launching %s.",
        job.step,
        found.job_name,
        job.job_name,
    )
    return found.xcom_value(job)
