"""
The outputs of the GraphStorm steps as Airflow Assets.

Output URIs are per run (and per attempt), so they cannot be declared when the DAG is parsed.
Each step operator declares one :class:`~airflow.sdk.AssetAlias` per kind of output it writes
(:data:`OUTPUT_ALIASES`) as an outlet, and when its job has completed it attaches the concrete
URI to the alias (:func:`emit`): ``outlet_events[AssetAlias(name)].add(Asset(uri), extra=...)``,
with the job name, graph name and (for a model) the final epoch's metrics as the event's extra.
A DAG scheduled on an alias (``schedule=[AssetAlias("graphstorm-model")]``) runs whenever such
an output lands; see ``dags/graphstorm_on_new_model.py``.

Asset URIs follow Airflow's rules: ``file://`` and ``s3://`` URIs as the job wrote them, without
the trailing ``/`` of a folder (Airflow strips it anyway). Airflow also drops a ``#fragment`` and
sorts (or drops) a ``?query``, so an output URI with ``#`` or ``?`` (legal in S3 keys and file
names) would become the asset of another location: the step operators refuse such an output at
task start (:func:`asset_uri_problem`, checked by ``operators/preflight.py``).

Imported at DAG parse time: imports only ``airflow.sdk``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from graphstorm_provider import (
    EMBEDDINGS_ALIAS as EMBEDDINGS_ALIAS,
    GRAPH_ALIAS as GRAPH_ALIAS,
    MODEL_ALIAS as MODEL_ALIAS,
    PARTITIONED_GRAPH_ALIAS as PARTITIONED_GRAPH_ALIAS,
    PREDICTIONS_ALIAS as PREDICTIONS_ALIAS,
)

log = logging.getLogger(__name__)

# A step's output name (``JobRequest.outputs`` key) -> the alias its URI is attached to.
OUTPUT_ALIASES: dict[str, str] = {
    "output_graph_s3": GRAPH_ALIAS,  # gconstruct
    "output_data_s3": PARTITIONED_GRAPH_ALIAS,  # partition
    "model_artifact_s3": MODEL_ALIAS,  # train
    "output_emb_s3": EMBEDDINGS_ALIAS,  # infer
    "output_prediction_s3": PREDICTIONS_ALIAS,  # infer
}
# The outputs each step can write (``jobs.<step>.outputs()``), i.e. the aliases it declares.
STEP_OUTPUTS: dict[str, tuple[str, ...]] = {
    "gconstruct": ("output_graph_s3",),
    "partition": ("output_data_s3",),
    "train": ("model_artifact_s3",),
    "infer": ("output_emb_s3", "output_prediction_s3"),
}


def step_aliases(step: str) -> list[Any]:
    """Return the ``AssetAlias`` outlets of a step (none for an unknown step)."""
    from airflow.sdk import AssetAlias

    return [AssetAlias(OUTPUT_ALIASES[output]) for output in STEP_OUTPUTS.get(step, ())]


def with_step_outlets(step: str, outlets: Any) -> list[Any]:
    """Return the operator's ``outlets`` argument (``None``, one item or a list) plus the step's aliases."""
    if outlets is None:
        given: list[Any] = []
    elif isinstance(outlets, (list, tuple)):
        given = list(outlets)
    else:
        given = [outlets]
    names = {getattr(outlet, "name", None) for outlet in given}
    return given + [alias for alias in step_aliases(step) if alias.name not in names]


# Characters an Airflow Asset URI does not keep as written (``_sanitize_uri``: fragment, query).
UNKEPT_URI_CHARACTERS: tuple[str, ...] = ("#", "?")


def asset_uri_problem(uri: str) -> str | None:
    """
    Return why ``uri`` cannot be an Asset URI as written (the middle of a sentence), else None.

    Pure: no Airflow import. Airflow cuts a URI's ``#fragment`` and sorts or drops its ``?query``,
    so ``s3://bucket-a/models/run#1/`` would be the asset ``s3://bucket-a/models/run``.
    """
    for character in UNKEPT_URI_CHARACTERS:
        if character in uri:
            return (
                f"contains {character!r}, which an Airflow Asset URI cannot keep (Airflow drops a '#' fragment "
                f"and reorders or drops a '?' query, so the output's asset would name another location)"
            )
    return None


def asset_uri(uri: str) -> str:
    """Return the Asset URI of an output folder or file: the URI without its trailing ``/``."""
    stripped = uri.rstrip("/")
    return stripped if "://" in stripped and not stripped.endswith(":/") else uri


def event_extra(
    *, job_name: str, step: str, output: str, graph_name: str | None, metrics: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the extra of one asset event (JSON: names, and the model's final metrics)."""
    extra: dict[str, Any] = {"job_name": job_name, "step": step, "output": output, "graph_name": graph_name}
    if metrics is not None:
        extra["metrics"] = dict(metrics)
    return extra


def emit(
    context: Mapping[str, Any],
    *,
    step: str,
    job_name: str,
    outputs: Mapping[str, str],
    graph_name: str | None,
    metrics: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """
    Attach each written output to its alias; return ``[(alias, asset URI), ...]``.

    :param context: the task's context (its ``outlet_events``).
    :param outputs: output name -> URI, as in the step's XCom; names without an alias are skipped.
    :param metrics: the model's final metrics, added to the model's event only.
    """
    from airflow.sdk import Asset, AssetAlias

    outlet_events = context.get("outlet_events") if context else None
    if outlet_events is None:  # executed outside a task (tests calling execute({}) directly)
        return []
    emitted = []
    for output, uri in outputs.items():
        alias = OUTPUT_ALIASES.get(output)
        if alias is None or not uri or output not in STEP_OUTPUTS.get(step, ()):
            continue
        extra = event_extra(
            job_name=job_name,
            step=step,
            output=output,
            graph_name=graph_name,
            metrics=metrics if output == "model_artifact_s3" else None,
        )
        outlet_events[AssetAlias(alias)].add(Asset(asset_uri(uri)), extra=extra)
        emitted.append((alias, asset_uri(uri)))
    for alias, uri in emitted:
        log.info("Asset %s (alias %s)", uri, alias)
    return emitted


def emit_completed(
    context: Mapping[str, Any], job: Any, result: Mapping[str, Any], graph_name: str | None
) -> list[tuple[str, str]]:
    """
    Attach a completed job's outputs to their aliases (:func:`emit`), the model's event with its final metrics.

    :param job: the ``JobRequest`` that completed (its step, name and outputs).
    :param result: the task's XCom value (its ``metrics``, for a training job).
    """
    from graphstorm_provider.operators.metrics import final_metrics

    return emit(
        context,
        step=job.step,
        job_name=job.job_name,
        outputs=job.outputs,
        graph_name=graph_name,
        metrics=final_metrics(result.get("metrics")),
    )


def alias_names(outlets: Iterable[Any]) -> list[str]:
    """Return the names of the ``AssetAlias`` outlets among ``outlets`` (for tests and docs)."""
    from airflow.sdk import AssetAlias

    return [outlet.name for outlet in outlets if isinstance(outlet, AssetAlias)]
