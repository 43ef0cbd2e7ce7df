"""
Request skeletons shared by the step specs.

Job names, container arguments, and the CreateTrainingJob / CreateProcessingJob bodies before
``--sm-estimator-parameters``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from graphstorm_provider.aws_env import CREDENTIAL_VARIABLES
from graphstorm_provider.jobs import validation as v
from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.request import CONTAINER_CODE_DIR, CONTAINER_PYTHON

# SageMaker limits (botocore: TrainingContainerArguments / ContainerArguments).
MAX_CONTAINER_ARGS = 100
MAX_CONTAINER_ARG_CHARS = 256
# The SDK 2 defaults GraphStorm's SageMaker launch scripts get implicitly.
DEFAULT_VOLUME_GB = 30
DEFAULT_MAX_RUNTIME_S = 24 * 3600
# Training jobs must name an S3OutputPath; when --sm-estimator-parameters has no output_path,
# SageMaker's own output (<path>/<job>/output/model.tar.gz of /opt/ml/model) goes into the model
# folder for training (as GraphStorm's own SageMaker training puts it) and beside the main output
# for the other steps (sagemaker_output_path).
SM_OUTPUT_PREFIX = "sagemaker-output/"
SM_OUTPUT_SUFFIX = "-sagemaker-output/"
PROCESSING_INPUT_DIR = "/opt/ml/processing/input"
PROCESSING_OUTPUT_DIR = "/opt/ml/processing/output"
ARGUMENT_SEPARATOR = "--"


def sagemaker_output_path(main_output: str, *, inside: bool) -> str:
    """
    Return where SageMaker's own output goes: ``<main>/sagemaker-output/`` or, beside it, ``<main>-sagemaker-output/``.

    Beside keeps a step's output folder to the step's files (a reader listing ``<emb>/<node type>/``
    finds no extra folder); a bucket or file-system root has no beside, so it goes inside.
    """
    folder = main_output.rstrip("/")
    scheme, _, rest = folder.partition("://")
    path = rest.strip("/")
    at_root = not path or (scheme == "s3" and "/" not in path)  # file:/// or s3://bucket
    return folder + "/" + SM_OUTPUT_PREFIX if inside or at_root else folder + SM_OUTPUT_SUFFIX


def derive_job_name(base: str, now: datetime) -> str:
    """``<base>-<UTC timestamp to the millisecond>``, like the SDK's base_job_name, cut to 63 chars."""
    stamp = now.strftime("%Y-%m-%d-%H-%M-%S-") + f"{now.microsecond // 1000:03d}"
    clean = re.sub(r"[^a-zA-Z0-9-]+", "-", base).strip("-")
    clean = clean[: v.JOB_NAME_MAX - len(stamp) - 1].strip("-") or "graphstorm"
    return f"{clean}-{stamp}"


def container_entrypoint(step: str) -> list[str]:
    return [CONTAINER_PYTHON, f"{CONTAINER_CODE_DIR}/{step}_entry.py"]


# Flags that would put an AWS credential into a job's arguments: the credential variables as flags
# (--aws-secret-access-key, ...; gs-sagemaker compose takes them for the containers' environment).
CREDENTIAL_OPTIONS = tuple("--" + name.lower().replace("_", "-") for name in CREDENTIAL_VARIABLES)


def check_container_arguments(arguments: list[str]) -> list[str]:
    """
    Refuse container arguments SageMaker would reject or should never hold, naming them.

    That is: more than 100 arguments, any longer than 256 characters, an AWS credential flag
    (:data:`CREDENTIAL_OPTIONS`: SageMaker shows a job's arguments to whoever may describe it), and
    ``--dry-run`` in any spelling (gs-sagemaker's flag: in a job's arguments it would only launch the job).
    """
    from graphstorm_provider.argparsing import DRY_RUN_FLAG, spelled_as_flag

    for argument in arguments:
        flag = argument.partition("=")[0]
        spelled = spelled_as_flag(flag) if flag.startswith("--") and flag != "--" else ""
        if spelled in CREDENTIAL_OPTIONS:
            raise JobSpecError(
                f"{flag} would put an AWS credential into the job's arguments, which SageMaker shows to "
                "anyone who may describe the job: the job gets its credentials from its role (--role)."
            )
        if spelled == DRY_RUN_FLAG:
            raise JobSpecError(
                f"{flag} would go to GraphStorm, which has no such flag, and the job would be launched: "
                "gs-sagemaker's --dry-run goes before -- and outside quoted GraphStorm options."
            )
    if len(arguments) > MAX_CONTAINER_ARGS:
        raise JobSpecError(
            f"The job would pass {len(arguments)} container arguments but SageMaker allows at most "
            f"{MAX_CONTAINER_ARGS}: move GraphStorm options from the command line into the YAML config."
        )
    for index, argument in enumerate(arguments):
        if len(argument) > MAX_CONTAINER_ARG_CHARS:
            owner = arguments[index - 1] if index and arguments[index - 1].startswith("-") else argument[:40]
            raise JobSpecError(
                f"The value of {owner} is {len(argument)} characters long but SageMaker allows at most "
                f"{MAX_CONTAINER_ARG_CHARS} per container argument."
            )
    return arguments


def _common(region: str, step_tag: str) -> dict[str, Any]:
    return {
        # AWS_REGION is what the entry points read; AWS_DEFAULT_REGION is what boto3 reads.
        "Environment": {"AWS_REGION": region, "AWS_DEFAULT_REGION": region},
        # GraphStorm's SageMaker launch scripts tag every job the same way.
        "Tags": [{"Key": "GraphStorm", "Value": "graphstorm-airflow"}, {"Key": "GraphStorm_Task", "Value": step_tag}],
    }


def training_request(
    *,
    name: str,
    image_url: str,
    role: str,
    instance_type: str,
    instance_count: int,
    step: str,
    arguments: list[str],
    output_path: str,
    region: str,
    step_tag: str,
) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "RoleArn": role,
        "AlgorithmSpecification": {
            "TrainingImage": image_url,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": container_entrypoint(step),
            "ContainerArguments": arguments,
        },
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeSizeInGB": DEFAULT_VOLUME_GB,
        },
        "OutputDataConfig": {"S3OutputPath": output_path},
        "StoppingCondition": {"MaxRuntimeInSeconds": DEFAULT_MAX_RUNTIME_S},
        **_common(region, step_tag),
    }


def processing_request(
    *,
    name: str,
    image_url: str,
    role: str,
    instance_type: str,
    step: str,
    arguments: list[str],
    input_uri: str,
    output_uri: str,
    region: str,
    step_tag: str,
) -> dict[str, Any]:
    return {
        "ProcessingJobName": name,
        "RoleArn": role,
        "AppSpecification": {
            "ImageUri": image_url,
            "ContainerEntrypoint": container_entrypoint(step),
            "ContainerArguments": arguments,
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": DEFAULT_VOLUME_GB},
        },
        "ProcessingInputs": [
            {
                "InputName": "input",
                "S3Input": {
                    "S3Uri": input_uri,
                    "LocalPath": PROCESSING_INPUT_DIR,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "output",
                    "S3Output": {"S3Uri": output_uri, "LocalPath": PROCESSING_OUTPUT_DIR, "S3UploadMode": "EndOfJob"},
                }
            ]
        },
        **_common(region, step_tag),
    }
