"""
What the example DAGs share: run conf checks, date-keyed prefixes, params, the ``prepare`` body.

That is: refusing a run conf with unknown keys, date-keyed prefixes, their params, and the
``prepare`` task body (the synthetic raw graph in either format and the YAML).

Airflow validates each *declared* param of a run's conf against its JSON schema (at trigger, in
the REST API and the form), but it accepts and ignores keys no param declares: a typo such as
``{"num_epoch": 5}`` silently runs the default. :func:`check_run_conf` is called first thing in
every example DAG's first task and fails the run at once, without retry, naming the unknown keys
(with "did you mean" where one is close), and what else the schemas let through
(:func:`run_values_message`: ``2.0`` for an integer, a ``base_uri`` no run can write under).

This module is imported by DAG files at parse time: it imports nothing heavy (Airflow's
exceptions only when it raises, ``difflib`` only when a run conf has an unknown key) and compiles
no regular expression until a task uses one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

# Characters allowed in one path segment of a run prefix; the rest become '-'.
_UNSAFE_SEGMENT = r"[^A-Za-z0-9._-]+"
# A logical date as a prefix segment: sortable, no ':' or '+' (``20260105`` for midnight runs).
DATE_FORMAT = "%Y%m%d"
DATETIME_FORMAT = "%Y%m%dT%H%M%S"


def unknown_conf_message(
    conf: Mapping[str, Any] | None, known: Iterable[str], what: str = "the run conf has"
) -> str | None:
    """One sentence naming the keys of ``conf`` (``what`` has them) not in ``known``; ``None`` if all are."""
    known = sorted(known)
    unknown = sorted(set(conf or {}) - set(known))
    if not unknown:
        return None
    from graphstorm_provider.argparsing import closest

    parts = []
    for key in unknown:
        close = closest(key, known)
        parts.append(f"{key!r} (did you mean {close!r}?)" if close else repr(key))
    noun = "key" if len(unknown) == 1 else "keys"
    declared = f"this DAG's params are: {', '.join(known)}" if known else "this DAG takes no params"
    return f"{what} unknown {noun} {', '.join(parts)}; {declared}"


# What a run writes below ``base_uri`` (``<run key>/model/<n>/<job name>/output/model.tar.gz`` and the
# like) needs room: a base longer than these is refused at once rather than failing a step later.
MAX_BASE_PATH_BYTES = 3072  # file://: Linux paths are at most 4096 bytes (PATH_MAX)
MAX_BASE_KEY_BYTES = 768  # s3://: keys are at most 1024 bytes
NAME_MAX_BYTES = 255  # one file name (path segment) on Linux filesystems


def base_uri_problem(uri: str) -> str | None:
    """Return why no run can write under ``uri`` (one sentence naming ``base_uri``), else None."""
    from graphstorm_provider.uris import UriError, parse_uri

    try:
        parsed = parse_uri(uri)
    except UriError as err:
        return f"base_uri: {err}"
    if parsed.scheme == "s3":
        if len(parsed.key.encode()) > MAX_BASE_KEY_BYTES:
            return f"base_uri's key is longer than {MAX_BASE_KEY_BYTES} bytes, leaving no room for a run's outputs."
        return None
    if "\0" in parsed.path:
        return "base_uri holds a NUL character (%00), which no file name can."
    if not PurePosixPath(parsed.path).parts[1:]:  # "/", "/.", "//"
        return "base_uri must name a folder below /, e.g. file:///tmp/graphstorm-runs."
    if any(len(part.encode()) > NAME_MAX_BYTES for part in parsed.path.split("/")):
        return f"base_uri has a path segment longer than {NAME_MAX_BYTES} bytes, the longest file name allowed."
    if len(parsed.path.encode()) > MAX_BASE_PATH_BYTES:
        return f"base_uri's path is longer than {MAX_BASE_PATH_BYTES} bytes, leaving no room for a run's outputs."
    return None


def run_values_message(values: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """
    One sentence on what is wrong with a task's resolved params ``values``; ``None`` if nothing is.

    Catches what the params' schemas let through: keys no param declares (``airflow tasks test -t``
    passes task params, not a run conf), a whole number written as a decimal (JSON Schema counts
    ``2.0`` as an integer, but it renders as ``2.0`` in the steps' flags) and a ``base_uri`` no run
    can write under.
    """
    message = unknown_conf_message(values, params.keys(), what="the task's params have")
    if message:
        return message
    for name, value in values.items():
        param = params.get_param(name) if hasattr(params, "get_param") else None
        schema = getattr(param, "schema", None) or {}
        if schema.get("type") == "integer" and isinstance(value, float):
            return f"{name} must be a whole number written without a decimal point ({int(value)}, not {value!r})."
    if isinstance(values.get("base_uri"), str):
        return base_uri_problem(values["base_uri"])
    return None


def check_run_conf(
    conf: Mapping[str, Any] | None, params: Mapping[str, Any], values: Mapping[str, Any] | None = None
) -> None:
    """
    Fail the task (no retry) when the run holds what the DAG's params do not allow.

    :param conf: the run's ``dag_run.conf``: refused if it has a key the DAG declares no param for.
    :param params: the DAG's params (``dag.params``; any mapping whose keys are the param names).
    :param values: the task's resolved params (its ``params`` argument), checked by
        :func:`run_values_message`; not checked if None.
    :raises AirflowFailException: one sentence naming the key or param, with "did you mean" where apt.
    """
    message = unknown_conf_message(conf, params.keys())
    if not message and values is not None:
        message = run_values_message(values, params)
    if message:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(message)


def safe_segment(text: str) -> str:
    """``text`` as one path segment / S3 key part (run ids hold ':' and '+')."""
    return re.sub(_UNSAFE_SEGMENT, "-", text).strip("-.") or "run"


def run_key(logical_date: datetime | None, run_id: str) -> str:
    """
    Return what names a run's outputs: its logical date, else (manual runs without one) its run id.

    A midnight date (what ``@daily``/``@weekly`` schedules and backfills produce) is ``YYYYMMDD``
    - Airflow's ``ds_nodash``; any other time is ``YYYYMMDDTHHMMSS`` so two manual runs on one
    day do not share a prefix.
    """
    if logical_date is None:
        return safe_segment(run_id)
    if logical_date.tzinfo is not None:
        logical_date = logical_date.astimezone(UTC)
    if (logical_date.hour, logical_date.minute, logical_date.second, logical_date.microsecond) == (0, 0, 0, 0):
        return logical_date.strftime(DATE_FORMAT)
    return logical_date.strftime(DATETIME_FORMAT)


def run_prefix(base_uri: str, logical_date: datetime | None, run_id: str) -> str:
    """``<base_uri>/<run key>``: every output of one run lives under it (``file:///`` + key for the root)."""
    scheme, sep, rest = base_uri.partition("://")
    base = f"{scheme}{sep}{rest.rstrip('/')}" if sep else base_uri.rstrip("/")
    return f"{base}/{run_key(logical_date, run_id)}"


def first_try(ti: Any) -> int:
    """
    Return the try number that started the task instance's current run (the ``gs_first_try`` macro).

    Its retries share it; clearing the task starts a new run, with a new number. Airflow's own rule
    (``max_tries - retries + 1``: clearing sets ``max_tries`` to the last try plus the retries).
    The examples name a step's output folder by it: a retry renders the same request, so it
    re-attaches to the job a dead worker left running, and a cleared step writes a new folder.
    """
    return max(1, int(ti.max_tries) - int(ti.task.retries or 0) + 1)


# --- The example DAGs' params ---------------------------------------------------------------
# Integer ranges go into the schema as exclusiveMinimum/exclusiveMaximum, not minimum/maximum:
# Airflow 3's trigger form hands minimum/maximum to its number field, which clamps an
# out-of-range entry on blur (99 typed into num_layers silently became 4). The exclusive bounds
# are validated by Airflow on every trigger (form, REST API, CLI) and refused with a message;
# the inclusive range is spelled out in each description.
INSTANCE_TYPE_PATTERN = r"^(local|ml\.[a-z0-9]+\.[a-z0-9]+)$"
GRAPH_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"
TASK_TYPES = ("node_classification",)


def int_param(default: int, low: int, high: int, title: str, what: str) -> Any:
    """Return an integer param from ``low`` to ``high`` inclusive (see the note above on the form)."""
    from airflow.sdk import Param

    return Param(
        default,
        type="integer",
        exclusiveMinimum=low - 1,
        exclusiveMaximum=high + 1,
        title=title,
        description=f"{what} Integer, {low} to {high}; default {default}.",
    )


def graphstorm_params(
    *, base_uri: str, base_description: str, instance_type: str, image_url: str, role: str, region: str
) -> dict[str, Any]:
    """Return the params every example DAG shares: where, on what, and the GraphStorm settings."""
    from airflow.sdk import Param

    return {
        "base_uri": Param(
            base_uri,
            type="string",
            pattern=r"^(file:///[^/]|s3://[a-z0-9.-]{3,63}(/|$))",
            title="Output base URI",
            description=base_description,
        ),
        "instance_type": Param(
            instance_type,
            type="string",
            pattern=INSTANCE_TYPE_PATTERN,
            title="Instance type",
            description="'local' runs every step on this machine (SageMaker local mode); "
            "an ml.<family>.<size> type (e.g. ml.m5.xlarge) runs it on SageMaker.",
        ),
        "image_url": Param(
            image_url,
            type="string",
            minLength=1,
            title="GraphStorm image URL",
            description="The GraphStorm SageMaker image, e.g. "
            "<account>.dkr.ecr.<region>.amazonaws.com/graphstorm:sagemaker-cpu "
            "(local runs without containers do not use it).",
        ),
        "role": Param(
            role,
            type="string",
            pattern=ROLE_ARN_PATTERN,
            title="SageMaker execution role",
            description="ARN of the role SageMaker jobs run as, arn:aws:iam::<12 digits>:role/<name> "
            "(any well-formed ARN works locally).",
        ),
        "region": Param(
            region,
            type="string",
            pattern=REGION_PATTERN,
            title="AWS region",
            description="Region of the SageMaker jobs, e.g. us-west-2.",
        ),
        "task_type": Param(
            TASK_TYPES[0],
            type="string",
            enum=list(TASK_TYPES),
            title="Task type",
            description="GraphStorm task; the synthetic ACM graph has paper labels for node classification only.",
        ),
        "graph_name": Param(
            "acm",
            type="string",
            pattern=GRAPH_NAME_PATTERN,
            minLength=1,
            maxLength=40,
            title="Graph name",
            description="GraphStorm graph name: letters, digits, '_' and '-', 1 to 40 characters "
            "(two runs on one host at once need different names).",
        ),
        "num_papers": int_param(2500, 50, 1_000_000, "Papers", "Size of the synthetic graph (paper nodes)."),
        "num_classes": int_param(5, 2, 50, "Classes", "Paper classes of the synthetic graph."),
        "seed": int_param(
            0,
            0,
            2**31 - 1,
            "Seed",
            "Seeds the synthetic graph and GraphStorm's training (same seed, same graph: same model).",
        ),
        "num_epochs": int_param(3, 1, 100, "Epochs", "Training epochs."),
        "hidden_size": int_param(64, 1, 1024, "Hidden size", "Width of the RGCN layers."),
        "num_layers": int_param(2, 1, 4, "GNN layers", "RGCN layers."),
        "fanout": int_param(10, 1, 100, "Fan-out", "Neighbours sampled per node and layer."),
        "batch_size": int_param(128, 1, 65536, "Batch size", "Training mini-batch size (target nodes)."),
        "lr": Param(
            0.01,
            type="number",
            exclusiveMinimum=0,
            exclusiveMaximum=1,
            title="Learning rate",
            description="Adam learning rate: a number above 0 and below 1; default 0.01.",
        ),
    }


def hyperparameters(params: Mapping[str, Any], *, seed: bool = False) -> str:
    """
    Return the exposed hyperparameters as GraphStorm flags (one string; the operators split it).

    :param seed: add ``--seed`` (the train entry point consumes it; GraphStorm 0.5 has no such
        option), for the training step only.
    """
    import shlex

    from graphstorm_provider.data.train_config import hyperparameter_args

    args = hyperparameter_args(
        num_epochs=int(params["num_epochs"]),
        hidden_size=int(params["hidden_size"]),
        num_layers=int(params["num_layers"]),
        fanout=int(params["fanout"]),
        batch_size=int(params["batch_size"]),
        lr=float(params["lr"]),
    )
    if seed:
        args += ["--seed", str(int(params["seed"]))]
    return shlex.join(args)


# --- The example DAGs' task bodies ------------------------------------------------------------
AWS_CONN_ID = "aws_default"  # the operators' default too


def s3_client_for(uri: str) -> Any:
    """Return the Airflow connection's S3 client for an ``s3://`` URI (credentials, region, endpoint); else None."""
    if not uri.startswith("s3://"):
        return None
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()


def prepare_inputs(
    params: Mapping[str, Any], prefix: str, *, graph_format: str = "gconstruct", num_chunks: int | None = None
) -> dict[str, str]:
    """
    Write the synthetic raw graph (in ``graph_format``) and the GraphStorm YAML under ``prefix``.

    :param graph_format: ``gconstruct`` (GConstruct's input) or ``chunked`` (the partition step's;
        its metadata's ``graph_name`` is ``params["graph_name"]``, which names the partitioned graph).
    :param num_chunks: chunks per node and edge type (``chunked`` only; the writer's default if None).
    :returns: the ``prepare`` task's XCom: ``run_prefix``, ``raw_graph_s3``, ``graph_format``,
        ``graph_config_file`` (under ``raw_graph_s3``) and ``train_yaml_s3``.
    """
    from graphstorm_provider.data import storage
    from graphstorm_provider.data.synthetic_acm import CHUNKED_FORMAT, SyntheticAcmSpec, generate_synthetic_acm
    from graphstorm_provider.data.train_config import node_classification_yaml

    raw = f"{prefix}/raw"
    spec = SyntheticAcmSpec(
        num_papers=int(params["num_papers"]), num_classes=int(params["num_classes"]), seed=int(params["seed"])
    )
    options: dict[str, Any] = {"graph_format": graph_format}
    if graph_format == CHUNKED_FORMAT:
        options["graph_name"] = params["graph_name"]
        if num_chunks is not None:
            options["num_chunks"] = num_chunks
    yaml_uri = f"{prefix}/config/{params['graph_name']}_nc.yaml"
    with storage.using_s3_client(s3_client_for(prefix)):
        summary = generate_synthetic_acm(raw, spec, **options)
        storage.write_bytes(yaml_uri, node_classification_yaml(spec.num_classes).encode())
    return {
        "run_prefix": prefix,
        "raw_graph_s3": raw,
        "graph_format": graph_format,
        "graph_config_file": summary.graph_config_file,
        "train_yaml_s3": yaml_uri,
    }
