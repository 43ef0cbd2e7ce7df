"""
Extra links of the GraphStorm step operators: the SageMaker job's console page and log streams.

The log streams are the job's CloudWatch log streams.

The URLs are built from the job's region and name alone (no AWS call to render a link): the
operator persists ``{"kind", "job_name", "region"}`` under :data:`JOB_XCOM_KEY` when it sends a
SageMaker job (:func:`persist`), and each link formats that record. Airflow 3 calls
``get_link`` on the worker when the task finishes and stores the URL in the link's own XCom,
which the UI shows - the Amazon provider's links work the same way. A local run
(``instance_type="local"``) persists nothing and looks nothing up, so it links to nothing
SageMaker (empty link).

SageMaker names a job's log streams ``<job name>/algo-<n>-<start time>``; the start time is
unknown until the job runs, so the log link opens the job's log group filtered to the streams
of this job (every host's).

Imported at DAG parse time (the operators declare the links): imports only ``airflow.sdk``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

# The XCom key the operators persist the job's identity under.
JOB_XCOM_KEY = "graphstorm_sagemaker_job"
# CloudWatch log groups SageMaker writes a job's streams to (as execution/sagemaker.LOG_GROUPS).
LOG_GROUPS: dict[str, str] = {
    "training": "/aws/sagemaker/TrainingJobs",
    "processing": "/aws/sagemaker/ProcessingJobs",
}
# The SageMaker console's page of one job, by request kind.
CONSOLE_JOB_PATHS: dict[str, str] = {"training": "jobs", "processing": "processing-jobs"}
# Console domains by region prefix (AWS partitions); any other region is in the ``aws`` partition.
PARTITION_DOMAINS: tuple[tuple[str, str], ...] = (
    ("cn-", "console.amazonaws.cn"),
    ("us-gov-", "console.amazonaws-us-gov.com"),
)
DEFAULT_CONSOLE_DOMAIN = "console.aws.amazon.com"


class SageMakerJobRef(NamedTuple):
    """
    What names a SageMaker job: enough to build its links.

    A NamedTuple, not a dataclass: this module is imported at every DAG parse, and making a
    dataclass costs 0.6 ms (it compiles its methods), a NamedTuple 0.1 ms.
    """

    kind: str  # "training" or "processing" (jobs.request.JobKind)
    job_name: str
    region: str

    @classmethod
    def from_xcom(cls, value: Any) -> SageMakerJobRef | None:
        if not isinstance(value, dict):
            return None
        try:
            ref = cls(kind=str(value["kind"]), job_name=str(value["job_name"]), region=str(value["region"]))
        except KeyError:
            return None
        return ref if ref.kind in CONSOLE_JOB_PATHS else None

    def to_xcom(self) -> dict[str, str]:
        return {"kind": self.kind, "job_name": self.job_name, "region": self.region}


def console_domain(region: str) -> str:
    """Return the AWS console's host for ``region``'s partition."""
    for prefix, domain in PARTITION_DOMAINS:
        if region.startswith(prefix):
            return domain
    return DEFAULT_CONSOLE_DOMAIN


def job_console_url(ref: SageMakerJobRef) -> str:
    """Return the SageMaker console page of the job."""
    region = quote(ref.region, safe="")
    return (
        f"https://{console_domain(ref.region)}/sagemaker/home?region={region}"
        f"#/{CONSOLE_JOB_PATHS[ref.kind]}/{quote(ref.job_name, safe='')}"
    )


def _console_fragment(text: str) -> str:
    """CloudWatch's ``logsV2`` fragment encoding: URL-encode, then write ``%`` as ``$25``."""
    return quote(quote(text, safe=""), safe="").replace("%", "$")


def job_logs_url(ref: SageMakerJobRef) -> str:
    """Return the CloudWatch console's view of the job's log group, filtered to this job's streams."""
    region = quote(ref.region, safe="")
    group = _console_fragment(LOG_GROUPS[ref.kind])
    stream_filter = _console_fragment(f"{ref.job_name}/")
    return (
        f"https://{console_domain(ref.region)}/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{group}$3FlogStreamNameFilter$3D{stream_filter}"
    )


def persist(context: Any, operator: Any, ref: SageMakerJobRef) -> None:
    """Record the job for the links (an XCom of the running task); nothing without XCom push."""
    if not getattr(operator, "do_xcom_push", True) or not context or "ti" not in context:
        return
    context["ti"].xcom_push(key=JOB_XCOM_KEY, value=ref.to_xcom())


def _persisted_job(operator: BaseOperator, ti_key: TaskInstanceKey) -> SageMakerJobRef | None:
    """
    Return the job the task recorded; a local run recorded none, so it is not looked up.

    Airflow calls the links with the task as it ran (templates rendered). Looking up an XCom that
    is not there logs an ERROR line from Airflow's client, two per local task, one per link.
    """
    from graphstorm_provider.jobs.request import LOCAL_INSTANCE_TYPE

    if getattr(operator, "instance_type", None) == LOCAL_INSTANCE_TYPE:
        return None
    from airflow.sdk.execution_time.xcom import XCom

    return SageMakerJobRef.from_xcom(XCom.get_value(key=JOB_XCOM_KEY, ti_key=ti_key))


class SageMakerJobConsoleLink(BaseOperatorLink):
    """The SageMaker console page of the task's job (training or processing)."""

    name = "SageMaker job"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        ref = _persisted_job(operator, ti_key)
        return job_console_url(ref) if ref else ""


class SageMakerJobLogsLink(BaseOperatorLink):
    """The CloudWatch log streams of the task's job (every host's)."""

    name = "SageMaker job logs"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        ref = _persisted_job(operator, ti_key)
        return job_logs_url(ref) if ref else ""


OPERATOR_LINKS: tuple[BaseOperatorLink, ...] = (SageMakerJobConsoleLink(), SageMakerJobLogsLink())
EXTRA_LINK_CLASSES: tuple[str, ...] = tuple(
    f"{cls.__module__}.{cls.__qualname__}" for cls in (SageMakerJobConsoleLink, SageMakerJobLogsLink)
)
