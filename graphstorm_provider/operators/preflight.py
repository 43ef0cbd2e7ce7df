"""
Checks an operator makes before it launches anything: inputs must be complete pipeline outputs.

A step refuses an input prefix that has no complete ``_manifest.json`` (the manifest contract,
docs/ARCHITECTURE.md) at task start, before any request or process, in one sentence naming the
parameter and the prefix, and fails without retry (the same input would fail again). The entry
points make the same check inside the job; this one saves the launch. The opt-out for data made
outside the pipeline is the operators' ``require_input_manifests=False``, which the spec renders as
the entry points' own opt-out (``GSENTRY_ALLOW_UNMANIFESTED_INPUT=1`` in the job's environment), so
both sides agree.

A step operator also refuses, at task start, an output URI its Assets cannot keep (``#`` or ``?``,
:func:`check_asset_outputs`; ``operators/assets.py``), in one sentence naming the parameter and the
character, without retry. The job layer and the ``gs-sagemaker`` CLI (no Assets) accept them.

What is checked comes from the rendered request alone (the entry point's flags before ``--``).
``s3://`` prefixes are read through the operator's AWS connection (``S3Hook``), ``file://`` as plain
files. Airflow, boto3 and the Amazon provider are imported inside the functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphstorm_provider.data.manifest import ManifestError, read_manifest, verify_complete

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

# The entry points' opt-out (entrypoints/gsentry/manifest.py ALLOW_UNMANIFESTED_ENV).
ALLOW_UNMANIFESTED_ENV = "GSENTRY_ALLOW_UNMANIFESTED_INPUT"
# A model URI naming one checkpoint folder is covered by its parent's manifest (as in the entry points).
CHECKPOINT_DIR = re.compile(r"^epoch-(\d+)(?:-iter-(\d+))?$")
ARGUMENT_SEPARATOR = "--"


@dataclass(frozen=True)
class CheckedInput:
    """An input the entry point refuses without a manifest: its flag and the operator parameter."""

    flag: str
    parameter: str


# step -> the inputs its entry point requires manifests for (docs/ARCHITECTURE.md, "Readers").
CHECKED_INPUTS: Mapping[str, tuple[CheckedInput, ...]] = {
    "train": (
        CheckedInput("--graph-data-s3", "graph_data_s3"),
        CheckedInput("--model-checkpoint-to-load", "model_checkpoint_to_load"),
    ),
    "infer": (
        CheckedInput("--graph-data-s3", "graph_data_s3"),
        CheckedInput("--model-artifact-s3", "model_artifact_s3"),
    ),
}


class InputNotComplete(ValueError):
    """An input prefix without a complete manifest (one sentence naming parameter and prefix)."""


class OutputNotAnAsset(ValueError):
    """An output URI an Airflow Asset cannot keep as written (one sentence naming parameter and character)."""


class InputUnreadable(RuntimeError):
    """The input's manifest could not be read (network, throttling, 5xx): retried like any failure."""


# Errors that say the input is not there, whatever the next attempt does.
_DEFINITE_CODES = frozenset({"NoSuchBucket", "NoSuchKey", "404", "NotFound", "InvalidBucketName"})


def _transient(err: ManifestError) -> bool:
    cause = err.__cause__
    if cause is None or isinstance(cause, (ValueError, KeyError, TypeError, AttributeError)):
        return False  # a manifest that is not one
    code = getattr(cause, "response", {}).get("Error", {}).get("Code")
    return code not in _DEFINITE_CODES


def entry_flags(job: JobRequest) -> dict[str, str]:
    """``{flag: value}`` of the entry point's own flags (before ``--``)."""
    args = job.container_arguments
    if ARGUMENT_SEPARATOR in args:
        args = args[: args.index(ARGUMENT_SEPARATOR)]
    flags: dict[str, str] = {}
    for index, arg in enumerate(args):
        if arg.startswith("--") and index + 1 < len(args) and not args[index + 1].startswith("--"):
            flags[arg] = args[index + 1]
    return flags


def opted_out(job: JobRequest) -> bool:
    return job.environment.get(ALLOW_UNMANIFESTED_ENV, "").strip().lower() in ("1", "true", "yes")


def _manifest_prefix(uri: str, reader: Callable[[str], Any]) -> tuple[str, Any]:
    """``(prefix, manifest)``: the prefix's own manifest, else (a checkpoint folder) its parent's."""
    manifest = reader(uri)
    if manifest is not None:
        return uri, manifest
    stripped = uri.rstrip("/")
    head, _, last = stripped.rpartition("/")
    if CHECKPOINT_DIR.match(last) and "/" in head.partition("://")[2]:
        parent = head + "/"
        parent_manifest = reader(parent)
        if parent_manifest is not None:
            return parent, parent_manifest
    return uri, None


def check_input(parameter: str, uri: str, s3_client: Any = None) -> None:
    """
    Raise :class:`InputNotComplete` unless ``uri`` holds a complete manifest.

    Or is covered by its parent's, for a checkpoint folder.
    """
    try:
        prefix, manifest = _manifest_prefix(uri, lambda u: read_manifest(u, s3_client))
        if manifest is None:
            raise InputNotComplete(
                f"{parameter} {uri} has no complete manifest (_manifest.json is missing: the step that wrote it "
                f"did not finish, or the data was made outside the pipeline; set require_input_manifests=False "
                f"to use it anyway)."
            )
        found = verify_complete(prefix, manifest, s3_client)
    except ManifestError as err:
        if _transient(err):  # the store did not answer properly: a retry may succeed
            raise InputUnreadable(f"{parameter} {uri}: {err}") from err
        raise InputNotComplete(f"{parameter} {uri} has no complete manifest: {err}") from err
    if not found.complete:
        raise InputNotComplete(f"{parameter} {uri} has no complete manifest: {found.reason()}")


def inputs_to_check(job: JobRequest) -> list[tuple[str, str]]:
    """``[(parameter, uri)]`` this job's entry point refuses without a manifest (none when opted out)."""
    if opted_out(job):
        return []
    flags = entry_flags(job)
    return [(item.parameter, flags[item.flag]) for item in CHECKED_INPUTS.get(job.step, ()) if flags.get(item.flag)]


def check_inputs(job: JobRequest, s3_client_factory: Callable[[], Any]) -> None:
    """Check every input of ``job``; the S3 client is made only if an ``s3://`` input needs it."""
    client: Any = None
    for parameter, uri in inputs_to_check(job):
        if uri.startswith("s3://") and client is None:
            client = s3_client_factory()
        check_input(parameter, uri, client if uri.startswith("s3://") else None)


def check_asset_outputs(job: JobRequest) -> None:
    """Raise :class:`OutputNotAnAsset` for the first output of ``job`` that becomes an Asset but cannot be one."""
    from graphstorm_provider.operators.assets import STEP_OUTPUTS, asset_uri_problem

    for output in STEP_OUTPUTS.get(job.step, ()):
        uri = job.outputs.get(output)
        if uri and (problem := asset_uri_problem(uri)) is not None:
            raise OutputNotAnAsset(f"{output} {uri} {problem}; use an output URI without '#' and '?'.")


def refuse_unkept_asset_outputs(job: JobRequest) -> None:
    """
    Fail the task without retry (``AirflowFailException``) when :func:`check_asset_outputs` refuses ``job``.

    Called by the step operators (``GraphStormBaseOperator.execute``) and ``LocalComposeOperator.execute``
    before anything is launched.
    """
    try:
        check_asset_outputs(job)
    except OutputNotAnAsset as err:  # the same output fails again
        from airflow.providers.common.compat.sdk import AirflowFailException

        raise AirflowFailException(str(err)) from err


def with_manifest_opt_out(kwargs: dict[str, Any], require_input_manifests: Any, kind: str) -> dict[str, Any]:
    """
    Return the spec's keyword arguments, with the entry points' opt-out when asked.

    The opt-out goes into the job's environment when ``require_input_manifests`` is false
    (merged into ``sm_estimator_parameters``' environment).
    """
    from graphstorm_provider.jobs import validation as v
    from graphstorm_provider.jobs.sm_params import normalise_sm_parameters

    if require_input_manifests is None:  # the site's default: [graphstorm] require_input_manifests
        from airflow.sdk.configuration import conf

        require_input_manifests = conf.getboolean("graphstorm", "require_input_manifests", fallback=True)
    if v.boolean("require_input_manifests", require_input_manifests):
        return kwargs
    params = normalise_sm_parameters(kwargs.get("sm_estimator_parameters"))
    key = "environment" if kind == "training" else "env"
    environment = dict(params.get(key) or {})
    environment[ALLOW_UNMANIFESTED_ENV] = "1"
    params[key] = environment
    return {**kwargs, "sm_estimator_parameters": params}
