"""Pure validators for job parameters.

Each takes the parameter's name (snake_case field name, reported as its CLI flag)
and the raw value, and returns the normalised value or raises :class:`JobSpecError`
with one sentence naming the parameter.

URI rule: a *folder* URI (graph data, outputs, model artifacts) is normalised to end
with exactly one ``/``, so S3 prefix matching never picks up a sibling
(``s3://b/acm`` would also match ``s3://b/acm_output/...``) and joining a name onto it
is plain concatenation. A *file* URI (a YAML config) must not end with ``/``.
``file://`` URIs (absolute paths) are accepted only with ``--instance-type local``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, Iterable

from graphstorm_provider.jobs.errors import JobSpecError, flag
from graphstorm_provider.jobs.request import LOCAL_INSTANCE_TYPE

# SageMaker's job-name pattern (botocore TrainingJobName / ProcessingJobName).
JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
JOB_NAME_MAX = 63
_NAME_PREFIX_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")  # a job name of any length
# S3 bucket naming rules (general purpose buckets).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_INSTANCE_TYPE_RE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9-]+$")
_REGION_RE = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d+$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "FATAL")
TRAIN_TASK_TYPES = (
    "node_classification",
    "node_regression",
    "edge_classification",
    "edge_regression",
    "link_prediction",
    "multi_task",
)
INFER_TASK_TYPES = TRAIN_TASK_TYPES + ("compute_emb",)


def required_str(name: str, value: Any) -> str:
    """A non-empty string without surrounding whitespace."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise JobSpecError(f"{flag(name)} is required.")
    if not isinstance(value, str):
        raise JobSpecError(f"{flag(name)} must be a string, got {type(value).__name__}.")
    return value.strip()


def optional_str(name: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return required_str(name, value)


def _split_uri(name: str, value: str) -> tuple[str, str]:
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise JobSpecError(f"{flag(name)} must be an s3:// URI, got {value!r}.")
    return scheme, rest


def uri(name: str, value: Any, *, instance_type: str, folder: bool, required: bool = True) -> str | None:
    """Validate and normalise an ``s3://`` (or, locally, ``file://``) URI."""
    text = required_str(name, value) if required else optional_str(name, value)
    if text is None:
        return None
    if any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise JobSpecError(f"{flag(name)} must not contain whitespace or control characters, got {text!r}.")
    scheme, rest = _split_uri(name, text)
    local = instance_type == LOCAL_INSTANCE_TYPE
    if scheme == "file":
        if not local:
            raise JobSpecError(
                f"{flag(name)} is a file:// URI, which only works with --instance-type local; "
                f"upload the data to S3 and pass an s3:// URI."
            )
        path = PurePosixPath(rest)
        if not rest.startswith("/") or ".." in path.parts:
            raise JobSpecError(f"{flag(name)} must be an absolute file:///path without '..', got {text!r}.")
        prefix, key = "file:///", str(path).lstrip("/")
    elif scheme == "s3":
        bucket, _, key = rest.partition("/")
        if not _BUCKET_RE.match(bucket) or ".." in bucket:
            hint = "s3://bucket/prefix/" if folder else "s3://bucket/path/file"
            raise JobSpecError(
                f"{flag(name)} has an invalid S3 bucket name {bucket!r} "
                f"(3-63 lowercase letters, digits, dots, hyphens); expected {hint}, got {text!r}."
            )
        prefix = f"s3://{bucket}/"
    else:
        allowed = "an s3:// or file://" if local else "an s3://"
        raise JobSpecError(f"{flag(name)} must be {allowed} URI, got {text!r}.")
    key = key.rstrip("/")
    if folder:
        return prefix + (key + "/" if key else "")
    if not key or text.endswith("/"):
        raise JobSpecError(f"{flag(name)} must name a file (like s3://bucket/path/config.yaml), got {text!r}.")
    return prefix + key


def _matching(name: str, value: Any, pattern: re.Pattern[str], expected: str) -> str:
    """A required string that ``pattern`` matches, else "--flag 'value' is not <expected>."."""
    text = required_str(name, value)
    if not pattern.match(text):
        raise JobSpecError(f"{flag(name)} {text!r} is not {expected}.")
    return text


def job_name(name: str, value: Any) -> str:
    """A SageMaker job name: letters, digits, hyphens, at most 63 characters."""
    return _matching(name, value, JOB_NAME_RE, "a valid SageMaker job name "
                     "(1-63 letters, digits and hyphens, starting and ending with a letter or digit)")


def name_prefix(name: str, value: Any) -> str:
    """A job-name prefix (``--task-name``): job-name characters, any length (truncated later)."""
    return _matching(name, value, _NAME_PREFIX_RE, "a valid SageMaker job name "
                     "(letters, digits and hyphens, starting and ending with a letter or digit)")


def graph_name(name: str, value: Any) -> str:
    """GraphStorm's rule (graphstorm.utils.check_graph_name): a Python identifier,
    hyphens allowed, may start with digits."""
    text = required_str(name, value)
    if not re.sub(r"^\d+", "", text).replace("-", "_").isidentifier() or not text.isascii():
        raise JobSpecError(
            f"{flag(name)} {text!r} is not a valid GraphStorm graph name "
            f"(ASCII letters, digits, '_' and '-', e.g. ogbn-arxiv)."
        )
    return text


def choice(name: str, value: Any, allowed: Iterable[str], *, upper: bool = False) -> str:
    text = required_str(name, value)
    text = text.upper() if upper else text
    allowed = tuple(allowed)
    if text not in allowed:
        raise JobSpecError(f"{flag(name)} {text!r} is not one of: {', '.join(allowed)}.")
    return text


def positive_int(name: str, value: Any) -> int:
    """An integer >= 1; digit strings are accepted (Airflow renders templates to str)."""
    if isinstance(value, bool):
        raise JobSpecError(f"{flag(name)} must be an integer >= 1, got {value!r}.")
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise JobSpecError(f"{flag(name)} must be an integer >= 1, got {value!r}.")
    if value < 1:
        raise JobSpecError(f"{flag(name)} must be at least 1, got {value}.")
    return value


def boolean(name: str, value: Any) -> bool:
    """A bool; 'true'/'false' strings are accepted (Airflow renders templates to str)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no", ""):
        return value.strip().lower() in ("true", "1", "yes")
    raise JobSpecError(f"{flag(name)} must be true or false, got {value!r}.")


def instance_type(name: str, value: Any) -> str:
    text = required_str(name, value)
    if text == LOCAL_INSTANCE_TYPE:
        return text
    return _matching(name, text, _INSTANCE_TYPE_RE, "a SageMaker instance type (like ml.m5.12xlarge, or 'local')")


def region(name: str, value: Any) -> str:
    return _matching(name, value, _REGION_RE, "an AWS region name (like us-west-2)")


def role(name: str, value: Any, *, instance_type: str) -> str:
    """An IAM role ARN; any non-empty value in local mode, where no role is assumed."""
    if instance_type == LOCAL_INSTANCE_TYPE:
        return required_str(name, value)
    return _matching(name, value, _ROLE_ARN_RE,
                     "an IAM role ARN (like arn:aws:iam::123456789012:role/SageMakerRole)")


def image(name: str, value: Any) -> str:
    text = required_str(name, value)
    if any(ch.isspace() for ch in text) or len(text) > 255:
        raise JobSpecError(f"{flag(name)} {text!r} is not a container image URI.")
    return text


def relative_path(name: str, value: Any, *, base: str) -> str:
    """A relative POSIX path that stays inside ``base`` (a flag naming a folder): no absolute
    path, no '..', normalised (``./a//b`` -> ``a/b``)."""
    text = required_str(name, value)
    if "://" in text:
        raise JobSpecError(f"{flag(name)} must be a path relative to {flag(base)}, not a URI, got {text!r}.")
    path = PurePosixPath(text.replace("\\", "/"))
    if path.is_absolute():
        raise JobSpecError(f"{flag(name)} must be a path relative to {flag(base)}, got absolute {text!r}.")
    if ".." in path.parts:
        raise JobSpecError(f"{flag(name)} must stay inside {flag(base)} ('..' is not allowed), got {text!r}.")
    if str(path) in ("", "."):
        raise JobSpecError(f"{flag(name)} must name a file under {flag(base)}, got {text!r}.")
    return str(path)
