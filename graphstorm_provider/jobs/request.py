"""
The one description of a job that every backend consumes.

A step's spec (gconstruct, partition, train, infer) validates its parameters and
renders a :class:`JobRequest`: the complete SageMaker API request plus the output
URIs the step produces. The SageMaker backend sends ``request`` as it is; the local
backend emulates SageMaker from the same ``request`` (entry point, arguments,
environment, inputs, instance count); the compose backend renders one service per
host from it. Nothing about a job is kept anywhere else.

The request holds the job's ``Environment`` values as SageMaker needs them, secrets included;
whatever shows a request (``gs-sagemaker --dry-run``, the local emulation's
``processingjobconfig.json``) shows :func:`printable_request` instead.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from graphstorm_provider.aws_env import REDACTED, looks_secret

log = logging.getLogger(__name__)

JobKind = Literal["processing", "training"]
# The request key that holds the job name, per kind.
JOB_NAME_KEYS: dict[str, str] = {"training": "TrainingJobName", "processing": "ProcessingJobName"}

# Where the entry points live inside the job image (and what ContainerEntrypoint names).
CONTAINER_CODE_DIR = "/opt/ml/code"
CONTAINER_PYTHON = "python3"
# Instance type that means "run on this machine", as in SageMaker local mode.
LOCAL_INSTANCE_TYPE = "local"


@dataclass(frozen=True)
class JobRequest:
    """
    A validated, fully rendered job.

    ``request`` is exactly the keyword arguments of boto3's ``create_training_job``
    (kind ``training``) or ``create_processing_job`` (kind ``processing``).
    ``outputs`` maps output names (``model_artifact_s3``, ``output_emb_s3``, ...) to
    the URIs the job writes; operators push them to XCom together with the job name.
    """

    kind: JobKind
    step: str
    request: dict[str, Any]
    outputs: dict[str, str] = field(default_factory=dict)
    region: str = "us-west-2"

    @property
    def job_name(self) -> str:
        return str(self.request[JOB_NAME_KEYS[self.kind]])

    @property
    def instance_type(self) -> str:
        return str(self._resources()["InstanceType"])

    @property
    def instance_count(self) -> int:
        return int(self._resources()["InstanceCount"])

    @property
    def is_local(self) -> bool:
        return self.instance_type == LOCAL_INSTANCE_TYPE

    @property
    def image_uri(self) -> str:
        return str(self._app()["TrainingImage" if self.kind == "training" else "ImageUri"])

    @property
    def container_entrypoint(self) -> list[str]:
        """Argv prefix, e.g. ``["python3", "/opt/ml/code/train_entry.py"]``."""
        return list(self._app()["ContainerEntrypoint"])

    @property
    def container_arguments(self) -> list[str]:
        return list(self._app().get("ContainerArguments", []))

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.request.get("Environment", {}))

    def _app(self) -> dict[str, Any]:
        key = "AlgorithmSpecification" if self.kind == "training" else "AppSpecification"
        app: dict[str, Any] = self.request[key]
        return app

    def _resources(self) -> dict[str, Any]:
        if self.kind == "training":
            resources: dict[str, Any] = self.request["ResourceConfig"]
        else:
            resources = self.request["ProcessingResources"]["ClusterConfig"]
        return resources

    def xcom_value(self) -> dict[str, str]:
        """Summarise the job for an operator's return value: the job name and every output URI."""
        return {"job_name": self.job_name, **self.outputs}


def printable_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """
    Return a copy of ``request`` fit to print, log or write to a file.

    Secret-looking ``Environment`` values (:func:`~graphstorm_provider.aws_env.looks_secret`)
    are :data:`~graphstorm_provider.aws_env.REDACTED`; everything else is as sent. The one
    function for that: the request itself is left as it is (SageMaker needs the values).
    """
    printable = copy.deepcopy(dict(request))
    environment = printable.get("Environment")
    if isinstance(environment, Mapping):
        printable["Environment"] = {
            name: REDACTED if looks_secret(str(name), value) else value for name, value in environment.items()
        }
    return printable


def secret_environment_names(job: JobRequest) -> list[str]:
    """Return the names in ``job``'s ``Environment`` whose values look secret, in request order."""
    return [name for name, value in job.environment.items() if looks_secret(name, value)]


def warn_secret_environment(
    job: JobRequest, logger: logging.Logger | logging.LoggerAdapter[Any] | None = None
) -> list[str]:
    """
    Log one warning naming the secret-looking ``Environment`` variables of a SageMaker job.

    SageMaker keeps a job's Environment in plain text and returns it from ``Describe*Job`` to
    whoever may describe the job. A local job stays on this machine: no warning. Return the
    names warned about (empty: none).

    :param logger: Where to warn (an operator's task log); default this module's logger.
    """
    if job.is_local:
        return []
    names = secret_environment_names(job)
    if names:
        (logger or log).warning(
            "The environment of SageMaker %s job %s sets %s, whose %s look%s secret: SageMaker stores "
            "Environment values in plain text and shows them to whoever may describe the job "
            "(Describe%sJob). Keep secrets in a secrets manager (AWS Secrets Manager, SSM Parameter "
            "Store) and pass their names instead.",
            job.kind,
            job.job_name,
            ", ".join(names),
            "values" if len(names) > 1 else "value",
            "" if len(names) > 1 else "s",
            "Training" if job.kind == "training" else "Processing",
        )
    return names
