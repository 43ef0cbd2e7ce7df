"""
The SDK-2 ``Estimator`` / ``Processor`` argument names we accept, and where each lands.

Each lands in the CreateTrainingJob / CreateProcessingJob request.

Names the launch flags own (role, instance_type, ...) and names that have no meaning
without the SDK's code upload (entry_point, source_dir, ...) are refused with the
reason, in ``NOT_APPLICABLE``. ``CROSS_KIND`` points users at the other kind's name
(``volume_size`` on a processing job -> ``volume_size_in_gb``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, cast

from graphstorm_provider.aws_env import SECRET_CREDENTIAL_VARIABLES
from graphstorm_provider.jobs import validation
from graphstorm_provider.jobs.errors import JobSpecError, flag_spellings
from graphstorm_provider.jobs.request import LOCAL_INSTANCE_TYPE, JobKind
from graphstorm_provider.jobs.validation import quoted

# SageMaker's maxima, lengths, patterns and enums are checked on the whole rendered request against
# botocore's model (api_limits.py); the checks here are types and shapes, and the limits the model
# does not state (max_run's 28 days, a training volume's 16384 GB).
MAX_DAYS_TRAINING = 28
MAX_VOLUME_GB = 16384

PARAM_FLAG = "--sm-estimator-parameters"
KIND_STEPS = {"training": "train, infer and partition", "processing": "gconstruct"}
_ENV_KEY_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # fullmatch ("$" also matches before a final newline)


def _bad(name: str, expected: str, value: Any) -> JobSpecError:
    return JobSpecError(f"{PARAM_FLAG}: {name} must be {expected}, got {quoted(value)}.")


# --- value checkers: (name, value, request) -> API value -----------------------------


def _int(low: int, high: int | None = None) -> Callable[[str, Any, dict[str, Any]], int]:
    """Check an integer from ``low`` to ``high``; without ``high``, the model's maximum applies (api_limits.py)."""

    def check(name: str, value: Any, request: dict[str, Any]) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            raise _bad(
                name, f"an integer from {low} to {high}" if high is not None else f"an integer of at least {low}", value
            )
        return value

    return check


def _bool(name: str, value: Any, request: dict[str, Any]) -> bool:
    if not isinstance(value, bool):
        raise _bad(name, "True or False", value)
    return value


def _text(name: str, value: Any, request: dict[str, Any]) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(name, "a non-empty quoted string", value)
    return value


def _text_list(max_items: int) -> Callable[[str, Any, dict[str, Any]], list[str]]:
    def check(name: str, value: Any, request: dict[str, Any]) -> list[str]:
        if (
            not isinstance(value, (list, tuple))
            or not 1 <= len(value) <= max_items
            or not all(isinstance(item, str) and item for item in value)
        ):
            raise _bad(name, f"a list of 1 to {max_items} quoted strings like ['id-1','id-2']", value)
        return list(value)

    return check


def _choice(*allowed: str) -> Callable[[str, Any, dict[str, Any]], str]:
    def check(name: str, value: Any, request: dict[str, Any]) -> str:
        if value not in allowed:
            raise _bad(name, "one of " + ", ".join(repr(a) for a in allowed), value)
        return cast("str", value)

    return check


# The container folder SageMaker mounts checkpoints into must be inside /opt/ml (its own tree).
CONTAINER_ROOT = "/opt/ml"


def _container_path(name: str, value: Any, request: dict[str, Any]) -> str:
    """Return an absolute, normalised path inside the container's /opt/ml (no '..', no control characters)."""
    text = _text(name, value, request)
    path = PurePosixPath(text)
    if (
        not path.is_absolute()
        or ".." in path.parts
        or any(ord(ch) < 32 for ch in text)
        or not (str(path) == CONTAINER_ROOT or str(path).startswith(CONTAINER_ROOT + "/"))
    ):
        raise _bad(name, f"an absolute path inside {CONTAINER_ROOT} without '..' (like '/opt/ml/checkpoints')", value)
    return str(path)


def _uri(name: str, value: Any, request: dict[str, Any]) -> str:
    """
    Return a folder URI checked like every other (:func:`validation.uri`), named as this parameter.

    So an ``output_path`` gets the same '..' (also percent-encoded), control-character and
    system-folder rules as ``--model-artifact-s3``, with the request's instance type deciding
    whether ``file://`` is allowed.
    """
    instance_type = request.get("ResourceConfig", {}).get("InstanceType", "")
    if not isinstance(value, str) or (instance_type != LOCAL_INSTANCE_TYPE and not value.startswith("s3://")):
        raise _bad(name, "an s3://bucket/prefix URI", value)
    with flag_spellings({name: f"{PARAM_FLAG}: {name}"}):
        return cast("str", validation.uri(name, value, instance_type=instance_type, folder=True))


def _compression(name: str, value: Any, request: dict[str, Any]) -> str:
    return "NONE" if _bool(name, value, request) else "GZIP"


def _metrics(name: str, value: Any, request: dict[str, Any]) -> list[dict[str, str]]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(m, Mapping) and set(m) == {"Name", "Regex"} and all(isinstance(v, str) for v in m.values())
        for m in value
    ):
        raise _bad(name, "a list of {'Name':...,'Regex':...} dicts", value)
    return [dict(m) for m in value]


# --- fields ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SmField:
    """One SDK argument: where it lands (``path`` of nested keys) and how it is checked."""

    name: str
    path: tuple[str, ...]
    check: Callable[[str, Any, dict[str, Any]], Any]

    def apply(self, request: dict[str, Any], value: Any, kind: JobKind) -> None:
        api_value = self.check(self.name, value, request)
        node = request
        for key in self.path[:-1]:
            node = node.setdefault(key, {})
        node[self.path[-1]] = api_value


class EnvField(SmField):
    """
    ``environment`` / ``env``: merged into Environment.

    The job's own variables win only if equal (a different AWS_REGION must come from --region).
    """

    def apply(self, request: dict[str, Any], value: Any, kind: JobKind) -> None:
        if not isinstance(value, Mapping):  # the value may hold secrets: its type only
            raise JobSpecError(
                f"{PARAM_FLAG}: {self.name} must be a dict like {{'NAME':'value'}}, got {type(value).__name__}."
            )
        env = request.setdefault("Environment", {})
        for key, val in value.items():
            if not isinstance(key, str) or not _ENV_KEY_RE.fullmatch(key):
                raise _bad(self.name, "a dict whose keys are environment variable names", key)
            if key.upper() in SECRET_CREDENTIAL_VARIABLES:  # the value is never shown
                raise JobSpecError(
                    f"{PARAM_FLAG}: {self.name} must not set {key}, because the job's request would hold the "
                    "credential (SageMaker shows it to whoever may describe the job); a job gets its AWS "
                    "credentials from its role on SageMaker and from the task's Airflow connection locally."
                )
            if isinstance(val, (int, float)) and not isinstance(val, bool):
                val = str(val)  # noqa: PLW2901
            if not isinstance(val, str):  # the value may be a secret: its type only
                raise JobSpecError(
                    f"{PARAM_FLAG}: {self.name} value of {key} must be a string, got {type(val).__name__}."
                )
            if key in env and env[key] != val:
                raise JobSpecError(
                    f"{PARAM_FLAG}: {self.name} sets {key}, which the job sets itself; "
                    f"use the launch flag (e.g. --region for AWS_REGION)."
                )
            env[key] = val


class TagsField(SmField):
    """``tags``: a list of {'Key':...,'Value':...} (the SDK's form) or a {key: value} dict."""

    def apply(self, request: dict[str, Any], value: Any, kind: JobKind) -> None:
        if isinstance(value, Mapping):
            value = [{"Key": k, "Value": v} for k, v in value.items()]
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(t, Mapping)
            and set(t) == {"Key", "Value"}
            and isinstance(t["Key"], str)
            and isinstance(t["Value"], str)
            for t in value
        ):
            raise _bad(self.name, "a list of {'Key':...,'Value':...} dicts or a {'key':'value'} dict of strings", value)
        tags = {t["Key"]: t["Value"] for t in request.get("Tags", [])}
        tags.update({t["Key"]: t["Value"] for t in value})
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]


class NetworkConfigField(SmField):
    """``network_config``: the SDK's NetworkConfig object, written as a dict of its arguments."""

    def apply(self, request: dict[str, Any], value: Any, kind: JobKind) -> None:
        pieces = ("subnets", "security_group_ids", "encrypt_inter_container_traffic", "enable_network_isolation")
        if not isinstance(value, Mapping) or not set(value) <= set(pieces):
            raise _bad(self.name, "a dict with keys " + ", ".join(pieces), value)
        for key, item in value.items():
            FIELDS["processing"][key].apply(request, item, kind)


def _fields(*fields: SmField) -> dict[str, SmField]:
    return {f.name: f for f in fields}


_MAX_TRAINING_S = MAX_DAYS_TRAINING * 24 * 3600
_NET = ("NetworkConfig",)

FIELDS: dict[str, dict[str, SmField]] = {
    "training": _fields(
        SmField("max_run", ("StoppingCondition", "MaxRuntimeInSeconds"), _int(1, _MAX_TRAINING_S)),
        SmField("max_wait", ("StoppingCondition", "MaxWaitTimeInSeconds"), _int(1, _MAX_TRAINING_S)),
        SmField("volume_size", ("ResourceConfig", "VolumeSizeInGB"), _int(1, MAX_VOLUME_GB)),
        SmField("volume_kms_key", ("ResourceConfig", "VolumeKmsKeyId"), _text),
        SmField("keep_alive_period_in_seconds", ("ResourceConfig", "KeepAlivePeriodInSeconds"), _int(0)),
        SmField("output_path", ("OutputDataConfig", "S3OutputPath"), _uri),
        SmField("output_kms_key", ("OutputDataConfig", "KmsKeyId"), _text),
        SmField("disable_output_compression", ("OutputDataConfig", "CompressionType"), _compression),
        SmField("subnets", ("VpcConfig", "Subnets"), _text_list(16)),
        SmField("security_group_ids", ("VpcConfig", "SecurityGroupIds"), _text_list(5)),
        SmField("encrypt_inter_container_traffic", ("EnableInterContainerTrafficEncryption",), _bool),
        SmField("enable_network_isolation", ("EnableNetworkIsolation",), _bool),
        SmField("use_spot_instances", ("EnableManagedSpotTraining",), _bool),
        SmField("checkpoint_s3_uri", ("CheckpointConfig", "S3Uri"), _uri),
        SmField("checkpoint_local_path", ("CheckpointConfig", "LocalPath"), _container_path),
        SmField("max_retry_attempts", ("RetryStrategy", "MaximumRetryAttempts"), _int(1)),
        SmField("input_mode", ("AlgorithmSpecification", "TrainingInputMode"), _choice("File", "Pipe", "FastFile")),
        SmField("metric_definitions", ("AlgorithmSpecification", "MetricDefinitions"), _metrics),
        SmField("enable_sagemaker_metrics", ("AlgorithmSpecification", "EnableSageMakerMetricsTimeSeries"), _bool),
        SmField(
            "training_repository_access_mode",
            ("AlgorithmSpecification", "TrainingImageConfig", "TrainingRepositoryAccessMode"),
            _choice("Platform", "Vpc"),
        ),
        SmField(
            "training_repository_credentials_provider_arn",
            (
                "AlgorithmSpecification",
                "TrainingImageConfig",
                "TrainingRepositoryAuthConfig",
                "TrainingRepositoryCredentialsProviderArn",
            ),
            _text,
        ),
        SmField("disable_profiler", ("ProfilerConfig", "DisableProfiler"), _bool),
        SmField("enable_infra_check", ("InfraCheckConfig", "EnableInfraCheck"), _bool),
        SmField("enable_remote_debug", ("RemoteDebugConfig", "EnableRemoteDebug"), _bool),
        EnvField("environment", ("Environment",), _text),
        TagsField("tags", ("Tags",), _text),
    ),
    "processing": _fields(
        SmField("max_runtime_in_seconds", ("StoppingCondition", "MaxRuntimeInSeconds"), _int(1)),
        SmField("volume_size_in_gb", ("ProcessingResources", "ClusterConfig", "VolumeSizeInGB"), _int(1)),
        SmField("volume_kms_key", ("ProcessingResources", "ClusterConfig", "VolumeKmsKeyId"), _text),
        SmField("output_kms_key", ("ProcessingOutputConfig", "KmsKeyId"), _text),
        SmField("subnets", _NET + ("VpcConfig", "Subnets"), _text_list(16)),
        SmField("security_group_ids", _NET + ("VpcConfig", "SecurityGroupIds"), _text_list(5)),
        SmField("encrypt_inter_container_traffic", _NET + ("EnableInterContainerTrafficEncryption",), _bool),
        SmField("enable_network_isolation", _NET + ("EnableNetworkIsolation",), _bool),
        NetworkConfigField("network_config", _NET, _text),
        EnvField("env", ("Environment",), _text),
        TagsField("tags", ("Tags",), _text),
    ),
}

# Name given on the wrong kind of job -> this kind's name for the same thing.
CROSS_KIND: dict[str, dict[str, str]] = {
    "training": {
        "volume_size_in_gb": "volume_size",
        "max_runtime_in_seconds": "max_run",
        "env": "environment",
        "network_config": "subnets=[...] security_group_ids=[...] encrypt_inter_container_traffic=...",
    },
    "processing": {"volume_size": "volume_size_in_gb", "max_run": "max_runtime_in_seconds", "environment": "env"},
}

_FLAG_OWNED = "it is set by the launch flag {}"
_NO_UPLOAD = "the entry points are in the image under /opt/ml/code, there is no code upload"
NOT_APPLICABLE: dict[str, str] = {
    "role": _FLAG_OWNED.format("--role"),
    "image_uri": _FLAG_OWNED.format("--image-url"),
    "image_name": _FLAG_OWNED.format("--image-url"),
    "instance_type": _FLAG_OWNED.format("--instance-type"),
    "instance_count": _FLAG_OWNED.format("--instance-count"),
    "base_job_name": _FLAG_OWNED.format("--task-name"),
    "job_name": _FLAG_OWNED.format("--task-name"),
    "sagemaker_session": "there is no SageMaker SDK session; the region comes from --region",
    "hyperparameters": "GraphStorm options go on the command line after the launch flags, not in hyperparameters",
    "entry_point": _NO_UPLOAD,
    "source_dir": _NO_UPLOAD,
    "dependencies": _NO_UPLOAD,
    "code_location": _NO_UPLOAD,
    "git_config": _NO_UPLOAD,
    "command": "the container entrypoint is fixed to the step's entry point",
    "entrypoint": "the container entrypoint is fixed to the step's entry point",
    "container_entry_point": "the container entrypoint is fixed to the step's entry point",
    "container_arguments": "container arguments are rendered from the launch flags",
    "py_version": "the Python version is the image's",
    "framework_version": "the framework version is the image's",
}


def check_combination(request: dict[str, Any], params: Mapping[str, Any], kind: JobKind) -> None:
    """Rules across several parameters that SageMaker would otherwise reject after submission."""
    vpc = request.get("VpcConfig") if kind == "training" else request.get("NetworkConfig", {}).get("VpcConfig")
    if vpc is not None and not (vpc.get("Subnets") and "SecurityGroupIds" in vpc):
        missing = "security_group_ids" if vpc.get("Subnets") else "subnets"
        raise JobSpecError(
            f"{PARAM_FLAG}: {missing} is required together with "
            f"{'subnets' if missing == 'security_group_ids' else 'security_group_ids'} (a VPC needs both)."
        )
    if kind != "training":
        return
    spot = request.get("EnableManagedSpotTraining", False)
    stopping = request.get("StoppingCondition", {})
    if "max_wait" in params and not spot:
        raise JobSpecError(f"{PARAM_FLAG}: max_wait only applies with use_spot_instances=True.")
    if spot and "MaxWaitTimeInSeconds" not in stopping:
        raise JobSpecError(f"{PARAM_FLAG}: use_spot_instances=True needs max_wait (seconds to wait for spot capacity).")
    if spot and stopping["MaxWaitTimeInSeconds"] < stopping.get("MaxRuntimeInSeconds", 0):
        raise JobSpecError(f"{PARAM_FLAG}: max_wait must be at least max_run.")
    if "CheckpointConfig" in request and "S3Uri" not in request["CheckpointConfig"]:
        raise JobSpecError(f"{PARAM_FLAG}: checkpoint_local_path needs checkpoint_s3_uri.")
    image_config = request.get("AlgorithmSpecification", {}).get("TrainingImageConfig", {})
    if image_config and "TrainingRepositoryAccessMode" not in image_config:
        raise JobSpecError(
            f"{PARAM_FLAG}: training_repository_credentials_provider_arn needs training_repository_access_mode='Vpc'."
        )
    if request.get("EnableNetworkIsolation"):
        raise JobSpecError(
            f"{PARAM_FLAG}: enable_network_isolation=True would cut the train, infer and partition "
            f"entry points off from S3, which they read and write themselves."
        )
