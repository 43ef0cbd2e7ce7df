"""
Pure validators for job parameters.

Each takes the parameter's name (snake_case field name, reported as its CLI flag)
and the raw value, and returns the normalised value or raises :class:`JobSpecError`
with one sentence naming the parameter.

URI rule: a *folder* URI (graph data, outputs, model artifacts) is normalised to end
with exactly one ``/``, so S3 prefix matching never picks up a sibling
(``s3://b/acm`` would also match ``s3://b/acm_output/...``) and joining a name onto it
is plain concatenation. A *file* URI (a YAML config) must not end with ``/``.
``file://`` URIs (absolute paths) are accepted only with ``--instance-type local``; their path is
checked after percent-decoding (``%2e%2e`` is ``..`` and ``%00`` is NUL: refused, as are the raw
ones), and they must not name ``/`` or a system folder (:func:`system_folder`: the compose backend
bind-mounts them). ``s3://`` URIs are split by hand, never with ``urlparse`` (``?`` and ``#`` are
legal in S3 keys); an S3 key is never percent-decoded (``uris.parse_uri``), so ``%00`` in one is
three ordinary characters and stays.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote

from graphstorm_provider.argparsing import closest
from graphstorm_provider.jobs.errors import JobSpecError, flag
from graphstorm_provider.jobs.request import LOCAL_INSTANCE_TYPE
from graphstorm_provider.uris import FILE_SCHEME, S3_SCHEME, UriError, parse_uri

# SageMaker's job-name pattern (botocore TrainingJobName / ProcessingJobName).
JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
JOB_NAME_MAX = 63
MAX_IMAGE_URL_CHARS = 255  # SageMaker's TrainingImage / ImageUri limit
_NAME_PREFIX_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")  # a job name of any length
# S3 bucket naming rules (general purpose buckets).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_INSTANCE_TYPE_RE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9-]+$")
_REGION_RE = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d+$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")

# Host folders a job must never read from or write to as a whole (the compose backend bind-mounts
# file:// paths into every container): the root, the OS's own folders, and the container's /opt/ml.
SYSTEM_FOLDERS = (
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
)
# ... and nothing inside these either.
SYSTEM_TREES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/sbin",
    "/sys",
    "/usr",
    "/opt/ml",
)


def system_folder(path: str) -> str | None:
    """Return the system folder ``path`` (absolute, normalised) is or lies in, else None."""
    clean = "/" + str(PurePosixPath(path)).lstrip("/")  # POSIX keeps a leading "//"
    if clean in SYSTEM_FOLDERS:
        return clean
    for tree in SYSTEM_TREES:
        if clean == tree or clean.startswith(tree + "/"):
            return tree
    return None


# More hosts than this in one job is a typo, not a plan (SageMaker's own quotas are far lower).
MAX_INSTANCE_COUNT = 100
# A message quotes at most this many characters of a bad value (a 10 MB URI stays out of the log).
MAX_QUOTED_CHARS = 100


def quoted(value: Any) -> str:
    """``repr`` of a bad value for a message, cut to :data:`MAX_QUOTED_CHARS` characters."""
    text = repr(value)
    if len(text) <= MAX_QUOTED_CHARS:
        return text
    return f"{text[:MAX_QUOTED_CHARS]}... ({len(str(value))} characters)"


def _inside_or_equal(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def outputs_apart(outputs: dict[str, str], inputs: dict[str, str | None]) -> None:
    """
    Check that no output prefix equals or lies inside an input prefix, or another output's.

    Otherwise the step would overwrite (and clear the manifest of) what it reads, or two
    outputs would share one manifest. URIs are normalised folder URIs (one trailing ``/``).
    """
    names = sorted(outputs)
    for out_name in names:
        out = outputs[out_name]
        for in_name, value in inputs.items():
            if value and _inside_or_equal(out, value):
                where = "is" if out == value else "lies inside"
                raise JobSpecError(
                    f"{flag(out_name)} {quoted(out)} {where} the input {flag(in_name)} "
                    f"{quoted(value)}: write the output to a folder of its own."
                )
        for other in names:
            if other != out_name and _inside_or_equal(out, outputs[other]):
                raise JobSpecError(
                    f"{flag(out_name)} {quoted(out)} overlaps {flag(other)} {quoted(outputs[other])}: "
                    f"each output needs a folder of its own."
                )


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
# The task types whose inference writes predictions (entrypoints/gsentry/launcher.py has the same list).
PREDICTION_TASK_TYPES = tuple(t for t in TRAIN_TASK_TYPES if t != "link_prediction")


def required_str(name: str, value: Any) -> str:
    """Return a non-empty string without surrounding whitespace."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise JobSpecError(f"{flag(name)} is required.")
    if not isinstance(value, str):
        raise JobSpecError(f"{flag(name)} must be a string, got {type(value).__name__}.")
    return value.strip()


def optional_str(name: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return required_str(name, value)


def _is_control(ch: str) -> bool:
    """Whether ``ch`` is a control character (Unicode category Cc: U+0000-U+001F, U+007F-U+009F)."""
    return unicodedata.category(ch) == "Cc"


def uri(name: str, value: Any, *, instance_type: str, folder: bool, required: bool = True) -> str | None:
    """Validate and normalise an ``s3://`` (or, locally, ``file://``) URI (parsed by ``uris.parse_uri``)."""
    text = required_str(name, value) if required else optional_str(name, value)
    if text is None:
        return None
    if any(ch.isspace() or _is_control(ch) for ch in text):
        raise JobSpecError(f"{flag(name)} must not contain whitespace or control characters, got {quoted(text)}.")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise JobSpecError(f"{flag(name)} must be an s3:// URI, got {quoted(text)}.")
    local = instance_type == LOCAL_INSTANCE_TYPE
    if scheme == FILE_SCHEME and not local:
        raise JobSpecError(
            f"{flag(name)} is a file:// URI, which only works with --instance-type local; "
            f"upload the data to S3 and pass an s3:// URI."
        )
    if scheme not in (S3_SCHEME, FILE_SCHEME):
        allowed = "an s3:// or file://" if local else "an s3://"
        raise JobSpecError(f"{flag(name)} must be {allowed} URI, got {quoted(text)}.")
    try:
        parsed = parse_uri(text)
    except UriError:
        parsed = None
    if scheme == FILE_SCHEME:
        if parsed is None or not rest.startswith("/"):
            raise JobSpecError(
                f"{flag(name)} must be an absolute file:///path without '..' "
                f"(also percent-encoded), got {quoted(text)}."
            )
        if any(_is_control(ch) for ch in parsed.path):
            raise JobSpecError(
                f"{flag(name)} must not contain control characters, also percent-encoded "
                f"(like %00 or %0a), got {quoted(text)}."
            )
        prefix, key = "file:///", str(PurePosixPath(rest)).lstrip("/")
    else:
        bucket, _, key = rest.partition("/")
        if not _BUCKET_RE.match(bucket) or ".." in bucket:
            hint = "s3://bucket/prefix/" if folder else "s3://bucket/path/file"
            raise JobSpecError(
                f"{flag(name)} has an invalid S3 bucket name {bucket!r} "
                f"(3-63 lowercase letters, digits, dots, hyphens); expected {hint}, got {quoted(text)}."
            )
        if parsed is None:
            raise JobSpecError(f"{flag(name)} must not have a '..' segment (also percent-encoded), got {quoted(text)}.")
        prefix = f"s3://{bucket}/"
    key = key.rstrip("/")
    if not folder and (not key or text.endswith("/")):
        raise JobSpecError(f"{flag(name)} must name a file (like s3://bucket/path/config.yaml), got {quoted(text)}.")
    if scheme == "file" and system_folder(unquote(rest)):
        raise JobSpecError(
            f"{flag(name)} must be a path of its own, not the root or a system folder "
            f"({system_folder(unquote(rest))}), got {quoted(text)}."
        )
    if folder:
        return prefix + (key + "/" if key else "")
    return prefix + key


def _matching(name: str, value: Any, pattern: re.Pattern[str], expected: str) -> str:
    """Return a required string that ``pattern`` matches, else "--flag 'value' is not <expected>."."""
    text = required_str(name, value)
    if not pattern.match(text):
        raise JobSpecError(f"{flag(name)} {quoted(text)} is not {expected}.")
    return text


def job_name(name: str, value: Any) -> str:
    """Return a SageMaker job name: letters, digits, hyphens, at most 63 characters."""
    expected = (
        f"a valid SageMaker job name (1-{JOB_NAME_MAX} letters, digits and hyphens, starting and ending "
        "with a letter or digit)"
    )
    text = _matching(name, value, JOB_NAME_RE, expected)
    if len(text) > JOB_NAME_MAX:  # the pattern bounds the letters and digits, not the hyphens between them
        raise JobSpecError(f"{flag(name)} {quoted(text)} is not {expected}: it has {len(text)} characters.")
    return text


def name_prefix(name: str, value: Any) -> str:
    """Return a job-name prefix (``--task-name``): job-name characters, any length (truncated later)."""
    return _matching(
        name,
        value,
        _NAME_PREFIX_RE,
        "a valid SageMaker job name (letters, digits and hyphens, starting and ending with a letter or digit)",
    )


def graph_name(name: str, value: Any) -> str:
    """
    Return a graph name that passes GraphStorm's rule (graphstorm.utils.check_graph_name).

    A Python identifier, hyphens allowed, may start with digits.
    """
    text = required_str(name, value)
    if not re.sub(r"^\d+", "", text).replace("-", "_").isidentifier() or not text.isascii():
        raise JobSpecError(
            f"{flag(name)} {quoted(text)} is not a valid GraphStorm graph name "
            f"(ASCII letters, digits, '_' and '-', e.g. ogbn-arxiv)."
        )
    return text


def choice(name: str, value: Any, allowed: Iterable[str], *, upper: bool = False) -> str:
    text = required_str(name, value)
    text = text.upper() if upper else text
    allowed = tuple(allowed)
    if text not in allowed:
        meant = closest(text, allowed)
        hint = f" (did you mean {meant}?)" if meant else ""
        raise JobSpecError(f"{flag(name)} {quoted(text)} is not one of: {', '.join(allowed)}{hint}.")
    return text


def positive_int(name: str, value: Any, *, maximum: int | None = None) -> int:
    """
    Return an integer >= 1 (and at most ``maximum``).

    Digit strings are accepted (Airflow renders templates to str).
    """
    if isinstance(value, bool):
        raise JobSpecError(f"{flag(name)} must be an integer >= 1, got {quoted(value)}.")
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise JobSpecError(f"{flag(name)} must be an integer >= 1, got {quoted(value)}.")
    if value < 1:
        raise JobSpecError(f"{flag(name)} must be at least 1, got {value}.")
    if maximum is not None and value > maximum:
        raise JobSpecError(f"{flag(name)} must be at most {maximum}, got {quoted(value)}.")
    return value


def boolean(name: str, value: Any) -> bool:
    """Return a bool; 'true'/'false' strings are accepted (Airflow renders templates to str)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no", ""):
        return value.strip().lower() in ("true", "1", "yes")
    raise JobSpecError(f"{flag(name)} must be true or false, got {quoted(value)}.")


def instance_type(name: str, value: Any) -> str:
    text = required_str(name, value)
    if text == LOCAL_INSTANCE_TYPE:
        return text
    return _matching(name, text, _INSTANCE_TYPE_RE, "a SageMaker instance type (like ml.m5.12xlarge, or 'local')")


def region(name: str, value: Any) -> str:
    return _matching(name, value, _REGION_RE, "an AWS region name (like us-west-2)")


def role(name: str, value: Any, *, instance_type: str) -> str:
    """Return an IAM role ARN; any non-empty value in local mode, where no role is assumed."""
    if instance_type == LOCAL_INSTANCE_TYPE:
        return required_str(name, value)
    return _matching(name, value, _ROLE_ARN_RE, "an IAM role ARN (like arn:aws:iam::123456789012:role/SageMakerRole)")


def image_url(name: str, value: Any) -> str:
    text = required_str(name, value)
    if any(ch.isspace() for ch in text) or len(text) > MAX_IMAGE_URL_CHARS:
        raise JobSpecError(f"{flag(name)} {quoted(text)} is not a container image URI.")
    return text


def relative_path(name: str, value: Any, *, base: str) -> str:
    """
    Return a relative POSIX path that stays inside ``base`` (a flag naming a folder).

    No absolute path, no '..', normalised (``./a//b`` -> ``a/b``).
    """
    text = required_str(name, value)
    if "://" in text:
        raise JobSpecError(f"{flag(name)} must be a path relative to {flag(base)}, not a URI, got {quoted(text)}.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise JobSpecError(f"{flag(name)} must not contain control characters, got {quoted(text)}.")
    path = PurePosixPath(text.replace("\\", "/"))
    if path.is_absolute():
        raise JobSpecError(f"{flag(name)} must be a path relative to {flag(base)}, got absolute {quoted(text)}.")
    if ".." in path.parts:
        raise JobSpecError(f"{flag(name)} must stay inside {flag(base)} ('..' is not allowed), got {quoted(text)}.")
    if str(path) in ("", "."):
        raise JobSpecError(f"{flag(name)} must name a file under {flag(base)}, got {quoted(text)}.")
    return str(path)
